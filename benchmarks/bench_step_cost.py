"""What one SparseNewton step costs, part by part, against one optx.LBFGS step.

For each problem (sif2jax, float64, standard start; by default the 15 on which
SparseNewton's warm time loses by more than 2x on per-step cost in
``results/profile.md``), in one process:

- ``step``: SparseNewton's warm solve (``optx.minimise`` under ``jax.jit``, rtol = atol
  = 1e-12, the default settings: ``solver`` is the linear solver it chooses) divided by
  its steps, with its ``steps``, ``hessians`` and ``solves`` (shifted factorizations
  and solves, counted in a separate instrumented solve); ``step (LDL)`` the same with
  ``linear_solver=SparseLDL(refinement_steps=0)`` where the choice is another solver,
  ``step (LU)`` with ``linear_solver=SparseLU()`` (SuperLU on the host, the solver every
  general pattern fell to before `SparseLDL`) where the choice is `SparseLDL`;
  ``LBFGS step`` the same for ``optx.LBFGS`` (its own steps);
- the parts of a step, each compiled alone inside a ``lax.fori_loop`` (so that no
  dispatch is counted) at the start point: ``f``, ``f+grad`` (what the `Wolfe` search
  evaluates at every trial), ``H`` (the sparse Hessian's products and decompression)
  and ``one solve`` (one factorization and solve of ``H + τI`` with the chosen solver,
  ``τ`` large enough for it to be positive definite, new values at every iteration);
- ``rest``: ``step`` less ``f+grad`` and, per step, ``hessians x H + solves x one
  solve``: the solver's own work (search, shift schedule, termination test, state,
  loops) and whatever the parts cost more inside the solve than alone.

Every time is the least of ``--repeats`` runs. Usage::

    python benchmarks/bench_step_cost.py [--only BROYDN7D ...] [--size 3000]
        [--output results/step_cost.md]
"""

from __future__ import annotations

import argparse
import pathlib
import shlex
import sys
import time
import timeit
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import asdex_opt._lineax._newton as newton_direction  # noqa: E402
from asdex_opt._lineax._newton import shifted  # noqa: E402
from asdex_opt.lineax import SparseLDL, SparseLU  # noqa: E402
from asdex_opt.optimistix import SparseNewton  # noqa: E402
from cutest import problem_class, sized, task  # noqa: E402

PROBLEMS = (
    "BDQRTIC",
    "BROYDN7D",
    "CYCLIC3LS",
    "DIXMAANA1",
    "DIXMAANB",
    "DIXMAANC",
    "DIXMAAND",
    "DIXMAANF",
    "DIXMAANG",
    "FMINSRF2",
    "LUKSAN15LS",
    "LUKSAN16LS",
    "DRCAV1LQ",
    "DRCAV2LQ",
    "SPARSINE",
)
TARGET_N = 1000  # the profile's sizes: n <= 1000 where n can be set
TOL = 1e-12


def _least(run, repeats: int) -> float:
    run()
    return min(timeit.repeat(run, number=1, repeat=repeats))


def _per_iteration(body, y0: jax.Array, repeats: int, budget: float = 0.05) -> float:
    """Seconds per iteration of ``y <- y - 1e-30 * body(i, y)`` in one compiled loop."""

    def loop(count):
        def run(y):
            return jax.lax.fori_loop(0, count, lambda i, y: y - 1e-30 * body(i, y), y)

        return jax.jit(run)

    once = loop(1)
    single = _least(lambda: once(y0).block_until_ready(), repeats)
    count = max(1, min(2000, int(budget / max(single, 1e-6))))
    run = loop(count)
    return _least(lambda: run(y0).block_until_ready(), repeats) / count


def _solve_time(fn, solver, y0, repeats: int) -> tuple[float, int, int]:
    max_steps = 2000 if isinstance(solver, SparseNewton) else 20000

    @jax.jit
    def solve(y):
        sol = optx.minimise(fn, solver, y, max_steps=max_steps, throw=False)
        return sol.value, sol.stats["num_steps"], sol.stats.get("num_hessians", -1)

    _, steps, hessians = jax.block_until_ready(solve(y0))
    seconds = _least(lambda: jax.block_until_ready(solve(y0)), repeats)
    return seconds, int(steps), int(hessians)


def _count_solves(fn, y0) -> int:
    """The shifted solves of a default SparseNewton solve (one per factorization)."""
    calls = []
    solve = newton_direction._solve

    def counted(*args):
        out = solve(*args)
        jax.debug.callback(lambda: calls.append(None))
        return out

    newton_direction._solve = counted
    try:
        jax.clear_caches()
        optx.minimise(fn, SparseNewton(TOL, TOL), y0, max_steps=2000, throw=False)
    finally:
        newton_direction._solve = solve
        jax.clear_caches()
    return len(calls)


def measure(name: str, repeats: int, target_n: int = TARGET_N) -> dict:
    """The row of one problem at ``n <= target_n``: per-step times in milliseconds."""
    _, size = sized("unconstrained", name, target_n)
    t = task("unconstrained", problem_class("unconstrained", name)(**size))
    y0 = t.y0

    def fn(y, _):
        return t.f(y)

    newton = SparseNewton(TOL, TOL)
    f_struct = jax.ShapeDtypeStruct((), y0.dtype)
    state = newton.init(lambda y, a: (fn(y, a), None), y0, None, {}, f_struct, None, frozenset())
    flat_fn, hessian_fn, descent = state.flat_fn, state.hessian_fn, state.descent
    linear_solver = descent.linear_solver
    row = {"problem": name, "n": int(y0.size), "solver": type(linear_solver).__name__}
    seconds, steps, hessians = _solve_time(fn, newton, y0, repeats)
    row |= {"steps": steps, "hessians": hessians, "step": 1e3 * seconds / max(steps, 1)}
    if not isinstance(linear_solver, SparseLDL):
        ldl = SparseNewton(TOL, TOL, linear_solver=SparseLDL(refinement_steps=0))
        seconds, ldl_steps, _ = _solve_time(fn, ldl, y0, repeats)
        row["step (LDL)"] = 1e3 * seconds / max(ldl_steps, 1)
    else:
        lu = SparseNewton(TOL, TOL, linear_solver=SparseLU())
        seconds, lu_steps, _ = _solve_time(fn, lu, y0, repeats)
        row["step (LU)"] = 1e3 * seconds / max(lu_steps, 1)
    seconds, lsteps, _ = _solve_time(fn, optx.LBFGS(TOL, TOL), y0, repeats)
    row |= {"LBFGS steps": lsteps, "LBFGS step": 1e3 * seconds / max(lsteps, 1)}
    row["solves"] = _count_solves(fn, y0)

    dynamic = (None, None)
    g0 = jax.grad(lambda y: flat_fn(y, dynamic)[0])(y0)
    h0 = hessian_fn(y0, dynamic)
    diagonal = jnp.abs(lx.diagonal(h0))
    # A shift that makes H + shift I positive definite (Gershgorin), so every solve succeeds.
    shift = jnp.max(row_sums(h0)) + diagonal.max()

    def f_only(i, y):
        return flat_fn(y, dynamic)[0] * jnp.ones_like(y)

    def f_grad(i, y):
        value, grad = jax.value_and_grad(lambda y: flat_fn(y, dynamic)[0])(y)
        return value + grad

    def hessian(i, y):
        return hessian_fn(y, dynamic).mv(jnp.ones_like(y))

    def one_solve(i, y):
        # New values at every iteration: host solvers cache factorizations by value.
        scale = 1 + 1e-9 * i.astype(y.dtype) + (y[0] - jax.lax.stop_gradient(y0[0]))
        matrix = eqx.tree_at(lambda o: o.data, h0, h0.data * scale)
        return lx.linear_solve(shifted(matrix, shift), g0, linear_solver, throw=False).value

    for part, body in (("f", f_only), ("f+grad", f_grad), ("H", hessian), ("one solve", one_solve)):
        row[part] = 1e3 * _per_iteration(body, y0, repeats)
    parts = row["f+grad"] + (hessians * row["H"] + row["solves"] * row["one solve"]) / max(steps, 1)
    row["rest"] = row["step"] - parts
    return row


def row_sums(operator) -> jax.Array:
    """``|A| 1``: the absolute row sums of a sparse operator."""
    return eqx.tree_at(lambda o: o.data, operator, jnp.abs(operator.data)).mv(
        jnp.ones(operator.in_size(), operator.data.dtype)
    )


COLUMNS = (
    "problem",
    "n",
    "solver",
    "steps",
    "hessians",
    "solves",
    "step",
    "step (LDL)",
    "step (LU)",
    "LBFGS steps",
    "LBFGS step",
    "f",
    "f+grad",
    "H",
    "one solve",
    "rest",
)


def _cell(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---" * len(COLUMNS) + "|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['problem']} | error: {row['error']} |")
            continue
        lines.append("| " + " | ".join(_cell(row.get(c, "")) for c in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=TARGET_N, help="n <= this, where n can be set")
    parser.add_argument("--output", type=pathlib.Path, default=None)
    cli = parser.parse_args()
    warnings.filterwarnings("ignore")
    rows = []
    for name in cli.only or PROBLEMS:
        start = time.perf_counter()
        try:
            row = measure(name, cli.repeats, cli.size)
        except Exception as error:  # a problem that fails to build or solve: report it
            row = {"problem": name, "error": f"{type(error).__name__}: {error}"[:200]}
        rows.append(row)
        print(table([row]).splitlines()[-1], f"({time.perf_counter() - start:.0f} s)", flush=True)
    text = table(rows)
    print(text)
    if cli.output:
        command = shlex.join(["python", "benchmarks/bench_step_cost.py", *sys.argv[1:]])
        cli.output.write_text(
            f"Command: `{command}`; milliseconds per step or part.\n\n" + text + "\n"
        )


if __name__ == "__main__":
    main()
