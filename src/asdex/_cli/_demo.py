"""`python -m asdex demo`: a 2-D reaction-diffusion problem solved by sparse Newton.

Detects and colors the Jacobian of the discrete Bratu equations, times it against dense
`jax.jacfwd`, solves them with asdex_opt's `SparseNewtonRootFinder` one step at a time,
printing each step, and saves a picture of the pattern, the convergence and the solution.
"""

from __future__ import annotations

import argparse
import functools
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import asdex
from asdex._cli._bratu import LAMBDA, bratu_residual
from asdex._cli._colorings import max_per_row_and_col, warm_up
from asdex._cli._errors import CLIError
from asdex._cli._figures import NO_MATPLOTLIB, have_matplotlib, save_demo_figure
from asdex._cli._timing import format_seconds, format_speedup, time_jitted

DEFAULT_SIZE = 64
DENSE_LIMIT = 10_000
"""Above this many unknowns the dense `jax.jacfwd` baseline is skipped (time, memory)."""
MAX_STEPS = 50


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected an integer of at least 2, got {text!r}")
    return value


def add_parser(subparsers: Any) -> None:
    """Register the `demo` command and its options."""
    parser = subparsers.add_parser(
        "demo", help="solve a 2-D reaction-diffusion PDE by sparse Newton, step by step",
        description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("--size", type=_positive, default=DEFAULT_SIZE, metavar="N",
                        help=f"interior grid points per side: N² unknowns "
                        f"(default {DEFAULT_SIZE})")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("asdex-demo.png"),
                        metavar="PNG", help="where to save the picture "
                        "(default: asdex-demo.png in the current directory)")
    parser.set_defaults(run=run)


def _say(text: str = "") -> None:
    print(text, flush=True)


def _detect_and_color(residual: Any, u0: jax.Array) -> asdex.ColoredPattern:
    start = time.perf_counter()
    pattern = asdex.jacobian_sparsity(residual, u0)
    detection_s = time.perf_counter() - start
    kernels_s = warm_up()
    start = time.perf_counter()
    coloring = asdex.jacobian_coloring_from_sparsity(pattern)
    coloring_s = time.perf_counter() - start
    per_row, _ = max_per_row_and_col(pattern)
    _say(f"1. Sparsity detection and coloring of the {pattern.m} x {pattern.n} Jacobian")
    _say(str(coloring))
    _say(f"  detected in {format_seconds(detection_s)}, colored in {format_seconds(coloring_s)}"
         f" (after {format_seconds(kernels_s)} loading the compiled coloring kernels once)")
    _say(f"  at most {per_row} nonzeros per row, so no column coloring needs fewer than "
         f"{per_row} colors")
    return coloring


def _compare_with_dense(residual: Any, coloring: asdex.ColoredPattern, u0: jax.Array) -> None:
    n = coloring.sparsity.n
    _say("\n2. One Jacobian at u = 0, sparse against dense (compile excluded)")
    sparse_timing, sparse_jac = time_jitted(asdex.jacobian_from_coloring(residual, coloring), u0)
    label = f"asdex ({coloring.num_colors} JVPs)"
    _say(f"  {label:<26}{format_seconds(sparse_timing.run_s):>10}   (median of "
         f"{sparse_timing.repeats} calls; compile {format_seconds(sparse_timing.compile_s)})")
    if n > DENSE_LIMIT:
        _say(f"  jax.jacfwd skipped: {n} unknowns (it is run up to {DENSE_LIMIT}, "
             f"e.g. --size {int(DENSE_LIMIT**0.5)})")
        return
    dense_timing, dense_jac = time_jitted(jax.jacfwd(residual), u0)
    label = f"jax.jacfwd ({n} JVPs)"
    _say(f"  {label:<26}{format_seconds(dense_timing.run_s):>10}   (median of "
         f"{dense_timing.repeats} calls; compile {format_seconds(dense_timing.compile_s)})")
    difference = float(jnp.max(jnp.abs(sparse_jac.todense() - dense_jac)))
    speedup = format_speedup(dense_timing.run_s / sparse_timing.run_s)
    _say(f"  speed-up: {speedup}; largest difference between the two matrices: "
         f"{difference:.3g}")


def _newton(residual: Any, u0: jax.Array) -> tuple[jax.Array, list[float]]:
    """Run `SparseNewtonRootFinder` through Optimistix's solver interface, step by step."""
    import equinox as eqx
    import optimistix as optx

    import asdex_opt  # the integration layer builds on asdex, so asdex imports it late

    _say("\n3. Newton's method: asdex_opt.SparseNewtonRootFinder, the solver of "
         "optimistix.root_find, one step at a time")
    solver = asdex_opt.SparseNewtonRootFinder(rtol=1e-10, atol=1e-10)

    def with_aux(y: jax.Array, args: Any) -> tuple[jax.Array, None]:
        return residual(y), None

    start = time.perf_counter()
    f_struct = jax.eval_shape(residual, u0)
    state = solver.init(with_aux, u0, None, {}, f_struct, None, frozenset())
    set_up = time.perf_counter() - start

    def step(y: jax.Array, state: Any) -> tuple[jax.Array, Any, jax.Array, Any]:
        y, state, _ = solver.step(with_aux, y, None, {}, state, frozenset())
        done, result = solver.terminate(with_aux, y, None, {}, state, frozenset())
        return y, state, jnp.max(jnp.abs(residual(y))), (done, result)

    start = time.perf_counter()
    compiled = eqx.filter_jit(step).lower(u0, state).compile()  # state holds non-arrays
    _say(f"  solver set up in {format_seconds(set_up)} (it detects and colors the Jacobian "
         f"once), one step compiled in {format_seconds(time.perf_counter() - start)}")
    residuals = [float(jnp.max(jnp.abs(residual(u0))))]
    _say(f"  {'step':>4}  {'‖F(u)‖∞':>10}  {'step time':>10}")
    _say(f"  {0:>4}  {residuals[0]:>10.3e}")
    u, total = u0, 0.0
    for number in range(1, MAX_STEPS + 1):
        start = time.perf_counter()
        u, state, norm, (done, result) = jax.block_until_ready(compiled(u, state))
        seconds = time.perf_counter() - start
        total += seconds
        residuals.append(float(norm))
        _say(f"  {number:>4}  {residuals[-1]:>10.3e}  {format_seconds(seconds):>10}")
        if bool(done):
            break
    if not bool(done) or result != optx.RESULTS.successful:
        reason = f"no convergence in {MAX_STEPS} steps" if not bool(done) else str(result)
        raise CLIError(f"Newton's method failed: {reason}.")
    _say(f"  converged in {number} steps, {format_seconds(total)} of steps in all")
    return u, residuals


def run(args: argparse.Namespace) -> None:
    """Run the demo as parsed by `add_parser`, in float64 (restored afterwards)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)  # Newton's quadratic convergence, to 1e-15
    try:
        _run(args.size, args.out)
    finally:
        jax.config.update("jax_enable_x64", previous)


def _run(size: int, out: pathlib.Path) -> None:
    begin = time.perf_counter()
    _say(f"asdex demo: the 2-D Bratu reaction-diffusion problem Δu + λ eᵘ = 0 on the unit "
         f"square, u = 0 on its edges, λ = {LAMBDA:g},\non a {size} x {size} grid "
         f"({size * size} unknowns, five-point stencil), solved by Newton's method with a "
         "sparse Jacobian.\n")
    residual = functools.partial(bratu_residual, size=size)
    u0 = jnp.zeros(size * size)
    coloring = _detect_and_color(residual, u0)
    _compare_with_dense(residual, coloring, u0)
    u, residuals = _newton(residual, u0)
    solution = np.asarray(u).reshape(size, size)
    _say(f"\n4. Result: u peaks at {solution.max():.6f} (the centre of the square), "
         f"‖F(u)‖∞ = {residuals[-1]:.2e}")
    if have_matplotlib():
        path = save_demo_figure(coloring, residuals, solution, out)
        _say(f"Saved the picture (colored Jacobian, convergence, solution) to {path}")
    else:
        _say(NO_MATPLOTLIB)
    _say(f"Done in {format_seconds(time.perf_counter() - begin)}.")
