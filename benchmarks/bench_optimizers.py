"""Sparse Newton against Optimistix and Optax minimisers (least squares: bench_least_squares.py).

Times the *second* run of each solve (the first compiles and detects sparsity), each
solve one ``jax.jit``-compiled call, to a gradient-norm tolerance, and counts steps;
writes ``benchmarks/results/optimizers.md``.

Run: ``python benchmarks/bench_optimizers.py`` (``--quick`` for n ≤ 10^4 only).
"""

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import lineax as lx  # noqa: E402
import optax  # noqa: E402
import optimistix as optx  # noqa: E402
import sif2jax  # noqa: E402

from asdex_opt.lineax import Preconditioned  # noqa: E402
from asdex_opt.optimistix import (  # noqa: E402
    NonmonotoneArmijo,
    SparseNewton,
    SparseTrustRegionNewton,
    Watchdog,
)

warnings.filterwarnings("ignore")
GTOL = 1e-6
RESULTS = Path(__file__).parent / "results" / "optimizers.md"


def extended_rosenbrock(x, args):
    del args
    return jnp.sum(100 * (x[1::2] - x[::2] ** 2) ** 2 + (1 - x[::2]) ** 2)


def pcg() -> Preconditioned:
    return Preconditioned(lx.CG(rtol=1e-10, atol=1e-12, max_steps=1000))


# One instance per solver, reused by every solve, so that the second solve hits the jit
# cache (a fresh `optax.lbfgs()` holds fresh closures and would be traced again).
MINIMISERS: dict[str, optx.AbstractMinimiser] = {
    "SparseNewton (default: pattern-chosen direct solve)": SparseNewton(1e-12, 1e-12),
    "SparseNewton (NonmonotoneArmijo)": SparseNewton(
        1e-12, 1e-12, search=NonmonotoneArmijo()
    ),
    "SparseNewton (Watchdog)": SparseNewton(1e-12, 1e-12, search=Watchdog()),
    "SparseTrustRegionNewton": SparseTrustRegionNewton(1e-12, 1e-12),
    "SparseNewton (Jacobi-PCG)": SparseNewton(1e-12, 1e-12, linear_solver=pcg()),
    "optx.BFGS": optx.BFGS(1e-12, 1e-12),
    "optx.LBFGS": optx.LBFGS(1e-12, 1e-12),
    "optax.lbfgs": optx.OptaxMinimiser(optax.lbfgs(), 1e-12, 1e-12),
}
SPARSE = ("Sparse",)
MIN_REPEATS, MAX_REPEATS, BUDGET = 5, 50, 0.5  # repeats: as many as fit in BUDGET seconds


def timed(solve: Callable[[], tuple[jax.Array, int]]) -> tuple[float, jax.Array, int]:
    """The fastest of 5 to 50 solves (as many as fit in half a second) after a first one.

    The first solve compiles and detects sparsity. Sub-millisecond solves get more
    repeats: their fastest time is otherwise a draw of this VM's noise.
    """
    solve()
    start = time.perf_counter()
    y, steps = solve()
    jax.block_until_ready(y)
    best = time.perf_counter() - start
    repeats = min(MAX_REPEATS, max(MIN_REPEATS, int(BUDGET / best)))
    for _ in range(repeats - 1):
        start = time.perf_counter()
        y, steps = solve()
        jax.block_until_ready(y)
        best = min(best, time.perf_counter() - start)
    return best, y, steps


def jitted_solve(solve: Callable, y0, args) -> Callable[[], tuple[jax.Array, int]]:
    """``solve(y0, args)`` as one ``jax.jit``-compiled call, the same for every solver.

    Calling ``optx.minimise`` without an outer ``jit`` costs every solver the Python
    dispatch of its ``filter_jit``, and costs ``optax.lbfgs`` about 7 ms more per call
    (it is traced again: its closures are not a stable cache key), whatever the size.
    """

    @jax.jit
    def compiled(y0, args):
        sol = solve(y0, args)
        return sol.value, sol.stats["num_steps"]

    def run():
        value, steps = compiled(y0, args)
        return value, int(steps)

    return run


def minimise_row(fn, y0, args, name: str, max_steps: int) -> dict:
    solve = jitted_solve(
        lambda y, a: optx.minimise(fn, MINIMISERS[name], y, a, max_steps=max_steps, throw=False),
        y0,
        args,
    )

    seconds, y, steps = timed(solve)
    gnorm = float(jnp.max(jnp.abs(jax.grad(fn)(y, args))))
    return {"solver": name, "seconds": seconds, "steps": steps, "gnorm": gnorm}


def dense_newton_row(fn, y0, args) -> dict:
    grad = jax.grad(fn)

    solve = jitted_solve(
        lambda y, a: optx.root_find(grad, optx.Newton(1e-12, 1e-12), y, a, throw=False), y0, args
    )

    seconds, y, steps = timed(solve)
    return {
        "solver": "dense Newton (optx.Newton on ∇f, dense Hessian)",
        "seconds": seconds,
        "steps": steps,
        "gnorm": float(jnp.max(jnp.abs(grad(y, args)))),
        "fn_value": float(fn(y, args)),
    }


def fmt(row: dict) -> str:
    ok = "yes" if row["gnorm"] <= GTOL else "**no**"
    speedup = f"{row['speedup']:.3g}x" if row.get("speedup") else ""
    return (
        f"| {row['problem']} | {row['n']} | {row['solver']} | {row['seconds'] * 1e3:.3g} | "
        f"{row['steps']} | {row['gnorm']:.1e} | {ok} | {speedup} |"
    )


def add_speedups(rows: list[dict]) -> None:
    """Best baseline time / own time, for the sparse solvers that reached the tolerance."""
    for key in dict.fromkeys((r["problem"], r["n"]) for r in rows):
        group = [r for r in rows if (r["problem"], r["n"]) == key]
        baselines = [
            r["seconds"]
            for r in group
            if not r["solver"].startswith(SPARSE) and r["gnorm"] <= GTOL
        ]
        for r in group:
            if r["solver"].startswith(SPARSE) and r["gnorm"] <= GTOL and baselines:
                r["speedup"] = min(baselines) / r["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip n = 10^5")
    cli = parser.parse_args()
    rows = []

    def add(problem, n, row):
        row.update(problem=problem, n=n)
        rows.append(row)
        print(fmt(row), flush=True)

    sizes = [1_000, 10_000] if cli.quick else [1_000, 10_000, 100_000]
    for n in sizes:
        y0 = jnp.tile(jnp.array([-1.2, 1.0]), n // 2)
        for name in MINIMISERS:
            if name == "optx.BFGS" and n > 1_000:
                continue  # a dense n x n inverse-Hessian approximation: 0.8 GB at n = 10^4
            add("extended Rosenbrock", n, minimise_row(extended_rosenbrock, y0, None, name, 2000))
        if n <= 1_000:
            add("extended Rosenbrock", n, dense_newton_row(extended_rosenbrock, y0, None))

    problems = {type(p).__name__: p for p in sif2jax.unconstrained_minimisation_problems}
    for name in ["LIARWHD", "ARWHEAD", "SROSENBR", "DQRTIC", "EDENSCH", "CRAGGLVY"]:
        p = problems[name]
        fn = lambda y, args, p=p: p.objective(y, args)  # noqa: E731
        for solver in [
            "SparseNewton (default: pattern-chosen direct solve)",
            "SparseNewton (NonmonotoneArmijo)",
            "SparseNewton (Watchdog)",
            "SparseTrustRegionNewton",
            "optx.LBFGS",
            "optax.lbfgs",
        ]:
            add(name, p.y0.size, minimise_row(fn, p.y0, p.args, solver, 2000))

    header = [
        "# Optimizers: sparse Newton vs Optimistix and Optax minimisers",
        "",
        f"Command: `python benchmarks/bench_optimizers.py{' --quick' if cli.quick else ''}` "
        f"(float64, CPU, {jax.device_count()} device(s), `jax {jax.__version__}`). Time of the "
        "second solve (the first compiles and detects sparsity), every solve wrapped in one "
        "`jax.jit` (without it optax.lbfgs is traced again on every call, about 7 ms), "
        "rtol = atol = 1e-12, "
        f"success = max |∇f| ≤ {GTOL:g} at the returned point. Steps = Optimistix steps "
        "(line-search / trust-region trials included). "
        f"Time = fastest of {MIN_REPEATS} to {MAX_REPEATS} solves (as many as fit in "
        f"{BUDGET} s). "
        "Speed-up = time of the fastest baseline (optx.BFGS / LBFGS, optax.lbfgs, dense "
        "Newton) that reached the tolerance on the same problem, divided by this solver's time.",
        "",
        "| problem | n | solver | time [ms] | steps | max abs grad | reached tol | "
        "speed-up vs best baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    add_speedups(rows)
    RESULTS.write_text("\n".join(header + [fmt(r) for r in rows]) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
