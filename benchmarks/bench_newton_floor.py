"""SparseNewton on the chained Rosenbrock function against the floor of a Newton step.

Issue 23, item 3: on sif2jax's GENROSE (``sum 100 (x[1:] - x[:-1]**2)**2 + (1 -
x[:-1])**2``, standard start) the number of Newton steps is inherent (IPOPT takes about
as many), so the question is what each step costs against the least it could: one
gradient, one sparse Hessian and one solve with the linear solver `choose_solver` picks
(here the tridiagonal one), compiled together and run in a `lax.fori_loop` so that no
dispatch is counted. Two floors are reported:

* ``steps x step``: every step pays the whole floor step (the issue's floor);
* ``Hessians x step + trials x (f, grad)``: only the steps that evaluate a Hessian pay
  for it and a solve; rejected line-search trials pay a value and gradient.

Usage::

    python benchmarks/bench_newton_floor.py --output benchmarks/results/newton_floor.md
    python benchmarks/bench_newton_floor.py --quick   # n = 100 and 1000
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
import timeit

import jax
import lineax as lx
import optimistix as optx

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from asdex_opt._problem import HessianEvaluator, detect_hessian, flatten  # noqa: E402
from asdex_opt.lineax import SparseLDL, choose_solver  # noqa: E402
from asdex_opt.optimistix import SparseNewton  # noqa: E402
from cutest import problem_class, sized, task  # noqa: E402

LOOP = 500


def _per_iteration(body, y0: jax.Array) -> float:
    """Seconds per iteration of ``y <- y - 1e-30 * body(y)`` in one compiled loop."""
    run = jax.jit(lambda y: jax.lax.fori_loop(0, LOOP, lambda i, y: y - 1e-30 * body(y), y))
    run(y0).block_until_ready()
    return min(timeit.repeat(lambda: run(y0).block_until_ready(), number=1, repeat=5)) / LOOP


def measure(n: int) -> dict:
    """Return the solve's and the floor's figures for GENROSE at size ``n``."""
    _, size = sized("unconstrained", "GENROSE", n)
    t = task("unconstrained", problem_class("unconstrained", "GENROSE")(**size))
    flat_fn, y0, dynamic = flatten(lambda y, a: (t.f(y), None), t.y0, None, ravel_out=False)
    hessian = HessianEvaluator(flat_fn, detect_hessian(flat_fn, y0, dynamic), dynamic)
    solver = choose_solver(hessian.structure, symmetric=True)
    if isinstance(solver, SparseLDL):
        solver = dataclasses.replace(solver, refinement_steps=0)

    def newton_step(y):
        return lx.linear_solve(hessian(y, dynamic), jax.grad(t.f)(y), solver).value

    step = _per_iteration(newton_step, y0)
    value_and_grad = _per_iteration(lambda y: jax.value_and_grad(t.f)(y)[1], y0)

    @jax.jit
    def solve(y):
        sol = optx.minimise(
            lambda y, _: t.f(y), SparseNewton(1e-12, 1e-12), y, max_steps=50_000, throw=False
        )
        return sol.value, sol.stats["num_steps"], sol.stats["num_hessians"]

    value, steps, hessians = solve(y0)
    value.block_until_ready()
    warm = min(timeit.repeat(lambda: solve(y0)[0].block_until_ready(), number=1, repeat=3))
    steps, hessians = int(steps), int(hessians)
    floor = steps * step
    tight = hessians * step + (steps - hessians) * value_and_grad
    return {
        "n": int(y0.size), "solver": type(solver).__name__, "steps": steps,
        "hessians": hessians, "f": float(t.f(value)), "warm": warm, "step": step,
        "value_and_grad": value_and_grad, "floor": floor, "tight": tight,
    }


def table(rows: list[dict]) -> str:
    """Return the results as a Markdown table."""
    lines = [
        "| n | linear solver | steps | Hessians | final f | solve (ms) | floor step (µs) "
        "| f, grad (µs) | steps x step (ms) | ratio | Hessians x step + trials x f,grad (ms) "
        "| ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['solver']} | {r['steps']} | {r['hessians']} | {r['f']:.6g} "
            f"| {1e3 * r['warm']:.1f} | {1e6 * r['step']:.1f} | {1e6 * r['value_and_grad']:.1f} "
            f"| {1e3 * r['floor']:.1f} | {r['warm'] / r['floor']:.2f} | {1e3 * r['tight']:.1f} "
            f"| {r['warm'] / r['tight']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 100 and 1000")
    parser.add_argument("--output", type=pathlib.Path, help="write the Markdown table here")
    options = parser.parse_args()
    sizes = (100, 1000) if options.quick else (1000, 10_000)
    rows = []
    for n in sizes:
        rows.append(measure(n))
        print(rows[-1], flush=True)
    text = (
        "# SparseNewton on the chained Rosenbrock function (GENROSE) against a Newton "
        "step's floor\n\n"
        f"Command: `python benchmarks/bench_newton_floor.py{' --quick' if options.quick else ''}`"
        ". Times: least of 3 warm solves; floor steps: least of 5 runs of a compiled loop "
        f"of {LOOP} steps. Ratio: the solve's time over the floor.\n\n" + table(rows) + "\n"
    )
    if options.output:
        options.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
