"""Solver choice: `choose_solver`'s predicted times of SparseLDL and SparseLU against measured.

For each symmetric matrix: the cost model's features (see
`asdex_opt._lineax._choice.cost_features`), its predicted factorization + solve time
of `SparseLDL` and of `SparseLU` on CPU, the measured ones (each jitted,
`lineax.linear_solve` of a new matrix with the analysed pattern, the minimum over
``--repeats`` runs after a warm-up, as ``LDL f+s`` and ``SparseLU`` of
`bench_factorization`), the solver `choose_solver(structure, symmetric=True)` picks and
whether that pick was the faster one or within 1.3x of it ("ok"), else "WRONG".

Matrices: cases of `bench_factorization` (``poisson2d:100``, ``kkt:3000``, ...), the
Hessian patterns of sif2jax unconstrained problems (``sif2jax:NAME:n``) and the
``JᵀJ`` patterns of sif2jax nonlinear equations solved as least squares
(``jtj:NAME:n``, ``n`` 0 for the default instance; the normal equations of
`SparseLevenbergMarquardt`), all with diagonally dominant values (off-diagonal
``-1``, diagonal the row's degree + 1).

Run from the repository root:

    python benchmarks/bench_solver_choice.py --output benchmarks/results/solver_choice.md

``--features PATH`` also writes every row's features and times as JSON lines (the
calibration of the model's constants).
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import lineax as lx  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from asdex_opt._lineax._choice import cost_features, predicted_times  # noqa: E402
from asdex_opt._lineax._ldl import cached_analysis  # noqa: E402
from asdex_opt.lineax import (  # noqa: E402
    SparseLDL,
    SparseLU,
    SparseMatrixLinearOperator,
    SparseStructure,
    choose_solver,
)
from bench_factorization import PROBLEMS, _best, sif2jax_hessian  # noqa: E402

CASES = [
    "dixmaan:3000",
    "sif2jax:DIXMAANF:3000",
    "sif2jax:BROYDN7D:1000",
    "sif2jax:NONCVXUN:1000",
    "sif2jax:NONCVXUN:5000",
    "poisson2d:100",
    "poisson2d:316",
    "banded:10000",
    "poisson3d:12",
    "poisson3d:16",
    "poisson3d:20",
    "kkt:1500",
    "kkt:3000",
    "kkt:6000",
    "jtj:DRCAVTY1:0",
    "jtj:DRCAVTY2:0",
    "sif2jax:DRCAV1LQ:4000",
    "sif2jax:SPARSINE:1000",
    "sif2jax:CURLY20:1000",
    "sif2jax:CYCLOOCFLS:1000",
    "sif2jax:LUKSAN15LS:1000",
    "sif2jax:FREUROTH:5000",
    "sif2jax:SBRYBND:5000",
    "poisson2d:50",
    "poisson2d:200",
    "banded:3000",
]


def _diagonally_dominant(pattern: sp.spmatrix) -> sp.coo_matrix:
    pattern = sp.coo_matrix(pattern)
    off = pattern.row != pattern.col
    r, c = pattern.row[off], pattern.col[off]
    n = pattern.shape[0]
    degree = np.bincount(r, minlength=n)
    return (
        sp.coo_matrix((-np.ones(r.size), (r, c)), shape=(n, n)) + sp.diags(degree + 1.0)
    ).tocoo()


def jtj_pattern(name: str, size: int) -> sp.coo_matrix:
    """``JᵀJ`` (plus the diagonal) of a sif2jax nonlinear-equations problem's residuals."""
    import asdex
    import cutest

    if size:
        problem, _ = cutest.sized("equations", name, size)
    else:
        problem = cutest.problem_class("equations", name)()
    t = cutest.task("least squares", problem)
    jacobian = asdex.jacobian_sparsity(t.f, t.y0).to_scipy().tocsr()
    jacobian.data[:] = 1.0
    return _diagonally_dominant((jacobian.T @ jacobian).tocoo())


def build(case: str) -> sp.coo_matrix:
    kind, *rest = case.split(":")
    if kind == "sif2jax":
        return _diagonally_dominant(sif2jax_hessian(rest[0], int(rest[1])))
    if kind == "jtj":
        return jtj_pattern(rest[0], int(rest[1]))
    return PROBLEMS[kind](int(rest[0]))


def measure(case: str, matrix: sp.coo_matrix, repeats: int) -> dict:
    matrix = matrix.tocsr()
    matrix.sum_duplicates()
    matrix = matrix.tocoo()
    n = matrix.shape[0]
    rows, cols = matrix.row.astype(np.int64), matrix.col.astype(np.int64)
    structure = SparseStructure(np.stack([rows, cols], axis=1), (n, n))
    start = time.perf_counter()
    analysis = cached_analysis(n, rows, cols)
    analysis_time = time.perf_counter() - start
    features = cost_features(analysis, rows, cols)
    ldl_predicted, lu_predicted = predicted_times(features)
    choice = type(choose_solver(structure, symmetric=True)).__name__
    data, rhs = jnp.asarray(matrix.data), jnp.ones(n)
    scale = iter(np.linspace(1.0, 2.0, 4 * repeats + 4))

    @jax.jit
    def run(data, b, solver):
        operator = SparseMatrixLinearOperator.from_structure(data, structure, lx.symmetric_tag)
        return lx.linear_solve(operator, b, solver, throw=False).value

    times = {}
    for label, solver in (
        ("SparseLDL", SparseLDL.from_structure(structure)),
        ("SparseLU", SparseLU()),
    ):
        run(data, rhs, solver).block_until_ready()
        times[label] = _best(
            lambda solver=solver: run(data * next(scale), rhs, solver).block_until_ready(), repeats
        )
    fastest = min(times.values())
    if choice not in times:
        verdict = "structured"
    else:
        verdict = "ok" if times[choice] <= 1.3 * fastest else "WRONG"
    return {
        "case": case,
        "n": n,
        "nnz": int(matrix.nnz),
        "plan": features["plan"],
        "analysis": analysis_time,
        "features": features,
        "predicted": {"SparseLDL": ldl_predicted, "SparseLU": lu_predicted},
        "measured": times,
        "choice": choice,
        "verdict": verdict,
    }


def _load() -> str:
    return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g}"


def row(result: dict) -> str:
    f = result["features"]
    p, m = result["predicted"], result["measured"]
    return (
        f"| {result['case']} | {result['n']:,} | {result['nnz']:,} | {result['plan']} | "
        f"{f['flops']:.3g} | {f['padded']:.3g} | {_ms(p['SparseLDL'])} | "
        f"{_ms(m['SparseLDL'])} | {_ms(p['SparseLU'])} | {_ms(m['SparseLU'])} | "
        f"{result['choice']} | {m['SparseLU'] / m['SparseLDL']:.2f} | {result['verdict']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=CASES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=None)
    parser.add_argument("--features", default=None, help="JSON lines of features and times")
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    lines = [
        "# Solver choice: predicted against measured (CPU)",
        "",
        f"Command: `python benchmarks/bench_solver_choice.py --cases {' '.join(args.cases)} "
        f"--repeats {args.repeats}` at commit {commit}, load average at the start "
        f"{_load()}. Times in ms, factorization + solve of a new matrix, minimum "
        "over the repeats after a warm-up. `flops`: the factorization's true multiply-adds "
        "(sum over columns of the squared column count of L); `padded`: those the chosen "
        "SparseLDL plan executes (dense fronts: padded; scalar: the plan's update slots). "
        "`LU/LDL`: measured SparseLU time over SparseLDL's. `pick`: ok when the chosen "
        "solver was the faster or within 1.3x of it (structured: a structured solver "
        "was chosen; not compared).",
        "",
        "| matrix | n | nnz | plan | flops | padded | LDL predicted | LDL measured "
        "| LU predicted | LU measured | choice | LU/LDL | pick |",
        "|---" * 13 + "|",
    ]
    for case in args.cases:
        result = measure(case, build(case), args.repeats)
        line = row(result)
        print(line, flush=True)
        lines.append(line)
        if args.features:
            with open(args.features, "a") as out:
                out.write(json.dumps(result) + "\n")
    lines.append("")
    lines.append(f"Load average at the end: {_load()}.")
    text = "\n".join(lines) + "\n"
    if args.output:
        pathlib.Path(args.output).write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
