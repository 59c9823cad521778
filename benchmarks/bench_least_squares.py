"""Sparse Gauss-Newton / Levenberg-Marquardt against Optimistix's least-squares solvers.

Times the *second* solve of each solver instance (the first compiles and detects
sparsity), each solve one ``jax.jit``-compiled call, to a gradient-norm tolerance, and
counts steps; writes
``benchmarks/results/least_squares.md``. The baselines are ``optx.GaussNewton`` and
``optx.LevenbergMarquardt`` with their default dense linear solver (n ≈ 10^3 only: a
dense QR of the Jacobian at n = 10^4 takes GBs and minutes) and with the matrix-free
``lineax.NormalCG``, measured in the same run.

Run: ``python benchmarks/bench_least_squares.py`` (``--quick``: n ≈ 10^3, no dense).
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
import optimistix as optx  # noqa: E402

from asdex_opt.optimistix import SparseGaussNewton, SparseLevenbergMarquardt  # noqa: E402

warnings.filterwarnings("ignore")
TOL = 1e-10
GTOL = 1e-6
MAX_STEPS = 200
RESULTS = Path(__file__).parent / "results" / "least_squares.md"


def liarwhd(n: int) -> tuple[Callable, jax.Array]:
    """LIARWHDNE (CUTEst, as in sif2jax): ``2(y_i² - y_1)`` and ``y_i - 1``, m = 2n.

    Overdetermined, so Gauss-Newton solves the normal equations; every ``2(y_i² - y_1)``
    involves ``y_1``, so ``JᵀJ`` is an arrowhead matrix. From ``y = 4``.
    """

    def residuals(y, args):
        del args
        return jnp.concatenate([2.0 * (y * y - y[0]), y - 1.0])

    return residuals, jnp.full(n, 4.0)


def bratu(n: int, lam: float = 6.0) -> tuple[Callable, jax.Array]:
    """2-D Bratu ``-Δu = λ eᵘ`` on the unit square, ``u = 0`` on the boundary, m = n.

    Five-point stencil on a k x k interior grid (k = round(√n)), residuals scaled by
    h²; λ = 6 is below the turning point 6.81. Square, so `SparseGaussNewton` is Newton
    on ``J``; ``JᵀJ`` (for LM) has a 13-point stencil. From ``u = 0``.
    """
    k = round(n**0.5)
    h2 = 1.0 / (k + 1) ** 2

    def residuals(y, args):
        del args
        u = jnp.pad(y.reshape(k, k), 1)
        centre = u[1:-1, 1:-1]
        laplacian = 4 * centre - u[:-2, 1:-1] - u[2:, 1:-1] - u[1:-1, :-2] - u[1:-1, 2:]
        return (laplacian - h2 * lam * jnp.exp(centre)).ravel()

    return residuals, jnp.zeros(k * k)


PROBLEMS = {"LIARWHDNE (m = 2n)": liarwhd, "2-D Bratu, λ = 6 (m = n)": bratu}


REPEATS = 3


def normal_cg() -> lx.NormalCG:
    return lx.NormalCG(rtol=TOL, atol=TOL)


SOLVERS: dict[str, Callable[[], optx.AbstractLeastSquaresSolver]] = {
    "SparseGaussNewton": lambda: SparseGaussNewton(TOL, TOL),
    "SparseLevenbergMarquardt": lambda: SparseLevenbergMarquardt(TOL, TOL),
    "optx.GaussNewton (NormalCG)": lambda: optx.GaussNewton(
        TOL, TOL, linear_solver=normal_cg()
    ),
    "optx.LevenbergMarquardt (NormalCG)": lambda: optx.LevenbergMarquardt(
        TOL, TOL, linear_solver=normal_cg()
    ),
    "optx.GaussNewton (dense default)": lambda: optx.GaussNewton(TOL, TOL),
    "optx.LevenbergMarquardt (dense default)": lambda: optx.LevenbergMarquardt(TOL, TOL),
}
BASELINE = {
    "SparseGaussNewton": "optx.GaussNewton",
    "SparseLevenbergMarquardt": "optx.LevenbergMarquardt",
}


def solve_row(fn: Callable, y0: jax.Array, name: str) -> dict:
    """Solves with one solver instance; the fastest of `REPEATS` solves after the first."""
    solver = SOLVERS[name]()

    @jax.jit
    def jitted(y0):
        sol = optx.least_squares(fn, solver, y0, max_steps=MAX_STEPS, throw=False)
        return sol.value, sol.stats["num_steps"]

    def solve():
        value, steps = jitted(y0)
        return jax.block_until_ready(value), int(steps)

    solve()  # compile, detect sparsity
    seconds = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        y, steps = solve()
        seconds = min(seconds, time.perf_counter() - start)
    grad = jax.grad(lambda z: 0.5 * jnp.sum(fn(z, None) ** 2))(y)
    return {"solver": name, "seconds": seconds, "steps": steps,
            "gnorm": float(jnp.max(jnp.abs(grad)))}


def ratios(rows: list[dict], row: dict) -> str:
    """Baseline time / this time, for each baseline of the same method, size and problem."""
    if row["solver"] not in BASELINE:
        return ""
    found = [
        f"{other['solver'].split('(')[1].rstrip(')')}: {other['seconds'] / row['seconds']:.2g}x"
        for other in rows
        if other["problem"] == row["problem"] and other["n"] == row["n"]
        and other["solver"].startswith(BASELINE[row["solver"]] + " ")
    ]
    return ", ".join(found)


def fmt(row: dict, rows: list[dict]) -> str:
    ok = "yes" if row["gnorm"] <= GTOL else "**no**"
    return (
        f"| {row['problem']} | {row['n']} | {row['solver']} | {row['seconds'] * 1e3:.1f} | "
        f"{row['steps']} | {row['gnorm']:.1e} | {ok} | {ratios(rows, row)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="n ≈ 10^3 only, no dense")
    cli = parser.parse_args()
    rows: list[dict] = []
    sizes = [1_000] if cli.quick else [1_000, 10_000, 100_000]
    for problem, make in PROBLEMS.items():
        for n in sizes:
            fn, y0 = make(n)
            for name in SOLVERS:
                dense = "dense" in name
                if (dense and (cli.quick or n > 1_000)) or (n > 10_000 and name not in BASELINE):
                    continue
                if n > 10_000 and name == "SparseLevenbergMarquardt" and "Bratu" in problem:
                    continue  # SuperLU of JᵀJ + λI (13-point stencil) at n = 10^5: > 24 GB

                row = solve_row(fn, y0, name)
                row.update(problem=problem, n=y0.size)
                rows.append(row)
                print(fmt(row, rows), flush=True)

    header = [
        "# Least squares: sparse Gauss-Newton / Levenberg-Marquardt vs Optimistix",
        "",
        f"Command: `python benchmarks/bench_least_squares.py{' --quick' if cli.quick else ''}` "
        f"(float64, CPU, {jax.device_count()} device(s), `jax {jax.__version__}`). Time = "
        f"fastest of {REPEATS} solves of one solver instance after a first one (which "
        "compiles and detects sparsity), each solve one `jax.jit` call, "
        f"rtol = atol = {TOL:g} (also for `lineax.NormalCG`), at most {MAX_STEPS} steps, "
        f"success = max |Jᵀr| ≤ {GTOL:g} at the returned point. Steps = Optimistix steps "
        "(rejected trust-region trials included). Sparse solvers: default linear solver "
        "(chosen from the pattern: `BorderedBlockLU` for LIARWHDNE, `SparseLU` for "
        "Bratu). Baselines: "
        "`optx.GaussNewton` / `optx.LevenbergMarquardt` with the "
        "matrix-free `lineax.NormalCG` (CG on JᵀJ through JVPs/VJPs, no matrix) and, at "
        "n ≈ 10^3 only, their dense default linear solver. Ratio = baseline time / sparse "
        "time (> 1: the sparse solver is faster). At n = 10^5 only the sparse solvers run; "
        "SparseLevenbergMarquardt on Bratu at n = 10^5 is left out (its SuperLU of JᵀJ + λI, "
        "a 13-point stencil, was killed for memory at 24 GB).",
        "",
        "| problem | n | solver | time [ms] | steps | max abs Jᵀr | reached tol | "
        "ratio (baseline / sparse) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    RESULTS.write_text("\n".join(header + [fmt(r, rows) for r in rows]) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
