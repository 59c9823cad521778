"""Sparse symmetric factorization: `SparseLDL` against SciPy's SuperLU and dense lineax.

Problems (SciPy matrices built by index arithmetic):

* ``poisson2d``: five-point Laplacian on an N x N grid (n = N^2); ``poisson3d``: the
  seven-point one on N^3.
* ``banded``: symmetric, bandwidth 10, diagonally dominant.
* ``blockdiag``: 2 x 2 or 16 x 16 diagonal blocks, positive definite.
* ``arrowhead``: diagonal plus a dense first row and column.
* ``kkt``: ``[[H + δI, Aᵀ], [A, -εI]]`` of a sparse equality-constrained QP (``H`` a 1-D
  Laplacian plus identity, ``A`` with 3 random entries a row; quasi-definite).
* ``dixmaan``: the Hessian pattern of the DIXMAAN family (sif2jax DIXMAANF): a band of
  width 1 plus couplings at distance n/3 and 2n/3, positive definite values.
* ``kkt_tiny``: ``kkt`` with ``δ = ε = 1e-10``.
* ``sif2jax:NAME``: the Hessian pattern of a sif2jax unconstrained problem, detected by
  `asdex.hessian_sparsity` at the size nearest ``size`` (where the SIF file lets n vary),
  with diagonally dominant values (off-diagonal ``-1``, diagonal the row's degree + 1).

Columns (each a minimum over ``--repeats`` runs after a warm-up):

* ``analysis``: `SparseLDL`'s symbolic analysis (ordering, trees, supernodes, plan).
* ``compile``, ``HLO``: tracing and XLA compilation of the jitted factor + solve with
  `SparseLDL()` inside the function (the plan's index arrays are constants of the
  program), and the characters of its StableHLO text.
* ``compile args``, ``HLO args``: the same with ``SparseLDL.from_structure`` passed in
  as an argument of the jitted function (the index arrays are arguments).
* ``LDL f+s``: numeric factorization and solve of a new matrix with the analysed
  pattern (jitted, `lineax.linear_solve` with the `SparseLDL` passed as an argument).
* ``LDL f+s, no ref.``: the same with ``refinement_steps=0``, as `SparseNewton` solves
  for its step (without the refinement's residual and loop).
* ``splu new``: ``scipy.sparse.linalg.splu`` (COLAMD) + solve of the same matrix.
* ``splu reused``: the solve alone with that factorization.
* ``SparseLU``: `asdex_opt.lineax.SparseLU` (SuperLU through a host callback) on a new
  matrix with a known pattern, jitted.
* ``dense Cholesky`` / ``dense LU``: lineax's dense solvers, where n <= --dense-max.
* ``structured``: the structured solver whose home pattern this is (`BlockDiagonalLU`,
  `BorderedBlockLU` or `TridiagonalLU`, as `choose_solver` would pick it), same call.
* ``peak RSS``: growth of the process's peak resident memory over this problem's
  SparseLDL runs (compile included; 0 when an earlier problem peaked higher).
* ``plan``: `SparseLDL`'s numeric plan: ``scalar`` (level-scheduled scalar updates,
  with the number of batches of the factorization and the two solves and the runs
  they form: a run is one batch or one loop over batches) or the number of size classes
  of dense fronts (one compiled loop each).
* ``nnz(L)``: nonzeros of the factor ``L`` (diagonal included), without padding.
* ``stored``: entries of the factor as stored (padded fronts, or ``nnz(L)`` for the
  scalar plan; memory: 8 bytes each in float64).

Run from the repository root:

    python benchmarks/bench_factorization.py --output benchmarks/results/factorization.md
"""

import argparse
import resource
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import lineax as lx  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as sla  # noqa: E402

from asdex_opt._lineax._block_diagonal import BlockDiagonalLU  # noqa: E402
from asdex_opt._lineax._bordered import BorderedBlockLU  # noqa: E402
from asdex_opt._lineax._ldl import SparseLDL, analyse  # noqa: E402
from asdex_opt._lineax._tridiagonal import TridiagonalLU  # noqa: E402
from asdex_opt.lineax import SparseLU, SparseMatrixLinearOperator, SparseStructure  # noqa: E402


def poisson2d(N: int) -> sp.coo_matrix:
    second = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(N, N))
    eye = sp.identity(N)
    return (sp.kron(second, eye) + sp.kron(eye, second)).tocoo()


def poisson3d(N: int) -> sp.coo_matrix:
    second = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(N, N))
    eye = sp.identity(N)
    return (sp.kron(sp.kron(second, eye), eye) + sp.kron(sp.kron(eye, second), eye)
            + sp.kron(sp.kron(eye, eye), second)).tocoo()


def banded(n: int, width: int = 10) -> sp.coo_matrix:
    offsets = list(range(-width, width + 1))
    values = [np.full(n - abs(o), -0.5 if o else 2.0 * width) for o in offsets]
    return sp.diags(values, offsets, shape=(n, n)).tocoo()


def blockdiag(n: int, size: int, seed: int = 0) -> sp.coo_matrix:
    rng = np.random.default_rng(seed)
    blocks = rng.standard_normal((n // size, size, size))
    blocks = blocks @ blocks.transpose(0, 2, 1) + size * np.eye(size)
    return sp.block_diag(list(blocks)).tocoo()


def arrowhead(n: int) -> sp.coo_matrix:
    matrix = sp.lil_matrix((n, n))
    matrix.setdiag(float(n))
    matrix[0, 1:] = 1.0
    matrix[1:, 0] = 1.0
    return matrix.tocoo()


def kkt(n: int, m: int, seed: int = 0, epsilon: float = 1e-8) -> sp.coo_matrix:
    rng = np.random.default_rng(seed)
    h = sp.diags([-1.0, 3.0, -1.0], [-1, 0, 1], shape=(n, n)) + epsilon * sp.identity(n)
    rows = np.repeat(np.arange(m), 3)
    a = sp.csr_matrix((rng.standard_normal(3 * m), (rows, rng.integers(0, n, 3 * m))), (m, n))
    return sp.bmat([[h, a.T], [a, -epsilon * sp.identity(m)]]).tocoo()


def dixmaan(n: int) -> sp.coo_matrix:
    third = n // 3
    rows, cols = [np.arange(n - 1)], [np.arange(1, n)]
    for shift in (third, 2 * third):
        rows.append(np.arange(n - shift))
        cols.append(np.arange(shift, n))
    r, c = np.concatenate(rows), np.concatenate(cols)
    off = sp.coo_matrix((np.full(r.size, 0.25), (r, c)), shape=(n, n))
    return (off + off.T + sp.diags(np.full(n, 2.0))).tocoo()


def sif2jax_hessian(name: str, size: int) -> sp.coo_matrix:
    import asdex
    import cutest

    problem, _ = cutest.sized("unconstrained", name, size)
    t = cutest.task("unconstrained", problem)
    pattern = asdex.hessian_sparsity(t.f, t.y0).to_scipy().tocoo()
    n = pattern.shape[0]
    off = pattern.row != pattern.col
    r, c = pattern.row[off], pattern.col[off]
    degree = np.bincount(r, minlength=n)
    matrix = sp.coo_matrix((-np.ones(r.size), (r, c)), shape=(n, n))
    return (matrix + sp.diags(degree + 1.0)).tocoo()


def _best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3g} ms"


def _structured(n: int, rows: np.ndarray, cols: np.ndarray):
    """The structured solver `choose_solver` would pick for this pattern, or ``None``."""
    for cls in (BlockDiagonalLU, BorderedBlockLU):
        solver = cls.from_pattern(rows, cols, n)
        if solver is not None:
            return solver
    if np.all(np.abs(rows - cols) <= 1):
        return TridiagonalLU()
    return None


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _plan(analysis) -> str:
    if analysis.levels is not None:
        plan = analysis.levels
        runs = len(plan.update_runs) + 2 * len(plan.solve_runs)
        return f"scalar, {plan.steps} batches in {runs} runs"
    return f"{len(analysis.classes)} classes"


def measure(
    name: str, matrix: sp.coo_matrix, repeats: int, dense_max: int, analysis_only: bool = False
) -> str:
    matrix = matrix.tocsr()
    matrix.sum_duplicates()
    matrix = matrix.tocoo()  # sorted by row, then column, as `SparseStructure` needs
    n = matrix.shape[0]
    rows, cols = matrix.row.astype(np.int64), matrix.col.astype(np.int64)
    start = time.perf_counter()
    analysis = analyse(n, rows, cols)
    analysis_time = time.perf_counter() - start
    structure = SparseStructure(np.stack([rows, cols], axis=1), (n, n))
    tags = lx.symmetric_tag
    rhs = jnp.ones(n)

    def solver_fn(solver):
        @jax.jit
        def run(data, b):
            operator = SparseMatrixLinearOperator.from_structure(data, structure, tags)
            return lx.linear_solve(operator, b, solver, throw=False).value
        return run

    if analysis_only:
        return (
            f"| {name} | {n:,} | {matrix.nnz:,} | {analysis.ordering} | {_plan(analysis)} | "
            f"{analysis.nnz_factor:,} | {analysis.stored:,} | {_ms(analysis_time)} |"
            + " - |" * 14
        )
    data = jnp.asarray(matrix.data)
    rss_before = _peak_rss_mb()
    start = time.perf_counter()
    lowered = solver_fn(SparseLDL()).lower(data, rhs)
    hlo = len(lowered.as_text())
    lowered.compile()
    compile_time = time.perf_counter() - start

    @jax.jit
    def prepared_fn(data, b, solver):
        operator = SparseMatrixLinearOperator.from_structure(data, structure, tags)
        return lx.linear_solve(operator, b, solver, throw=False).value

    solver = SparseLDL.from_structure(structure)
    start = time.perf_counter()
    lowered = prepared_fn.lower(data, rhs, solver)
    hlo_args = len(lowered.as_text())
    compiled = lowered.compile()
    compile_args = time.perf_counter() - start
    scale = iter(np.linspace(1.0, 2.0, 10 * repeats + 10))
    x = compiled(data, rhs, solver)
    residual = np.linalg.norm(matrix.tocsr() @ np.asarray(x) - 1.0) / np.sqrt(n)
    ldl_time = _best(
        lambda: compiled(data * next(scale), rhs, solver).block_until_ready(), repeats
    )
    unrefined = SparseLDL.from_structure(structure, refinement_steps=0)
    unrefined_fn = prepared_fn.lower(data, rhs, unrefined).compile()
    unrefined_time = _best(
        lambda: unrefined_fn(data * next(scale), rhs, unrefined).block_until_ready(), repeats
    )
    rss = _peak_rss_mb() - rss_before
    structured_time = None
    special = _structured(n, rows, cols)
    if special is not None:
        special_fn = solver_fn(special)
        special_fn(data, rhs).block_until_ready()
        structured_time = _best(
            lambda: special_fn(data * next(scale), rhs).block_until_ready(), repeats
        )
    csc = matrix.tocsc()
    splu_time = _best(lambda: sla.splu(csc).solve(np.ones(n)), repeats)
    lu = sla.splu(csc)
    reused = _best(lambda: lu.solve(np.ones(n)), repeats)
    superlu = solver_fn(SparseLU())
    superlu(data, rhs).block_until_ready()
    superlu_time = _best(lambda: superlu(data * next(scale), rhs).block_until_ready(), repeats)
    cholesky = dense_lu = None
    if n <= dense_max:
        dense = jnp.asarray(matrix.toarray())
        pd_tags = (lx.symmetric_tag, lx.positive_semidefinite_tag)
        dense_chol = jax.jit(lambda a, b: lx.linear_solve(
            lx.MatrixLinearOperator(a, pd_tags), b, lx.Cholesky()).value)
        dense_lu_fn = jax.jit(lambda a, b: lx.linear_solve(
            lx.MatrixLinearOperator(a), b, lx.LU()).value)
        if not name.startswith("kkt"):
            cholesky = _best(lambda: dense_chol(dense, rhs).block_until_ready(), repeats)
        dense_lu = _best(lambda: dense_lu_fn(dense, rhs).block_until_ready(), repeats)
    return (
        f"| {name} | {n:,} | {matrix.nnz:,} | {analysis.ordering} | {_plan(analysis)} | "
        f"{analysis.nnz_factor:,} | {analysis.stored:,} | {_ms(analysis_time)} | "
        f"{_ms(compile_time)} | {hlo / 1e6:.3g}M | {_ms(compile_args)} | "
        f"{hlo_args / 1e6:.3g}M | {_ms(ldl_time)} | {_ms(unrefined_time)} | "
        f"{_ms(splu_time)} | {_ms(reused)} | {_ms(superlu_time)} | {_ms(cholesky)} | "
        f"{_ms(dense_lu)} | {_ms(structured_time)} | {rss:.0f} MB | {residual:.1e} |"
    )


PROBLEMS = {
    "poisson2d": lambda size: poisson2d(size),
    "poisson3d": lambda size: poisson3d(size),
    "banded": lambda size: banded(size),
    "blockdiag2": lambda size: blockdiag(size, 2),
    "blockdiag16": lambda size: blockdiag(size, 16),
    "tridiagonal": lambda size: banded(size, 1),
    "arrowhead": lambda size: arrowhead(size),
    "kkt": lambda size: kkt(2 * size // 3, size // 3),
    "kkt_tiny": lambda size: kkt(2 * size // 3, size // 3, epsilon=1e-10),
    "dixmaan": lambda size: dixmaan(size),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=[
        "poisson2d:100", "poisson2d:316", "poisson3d:16", "banded:10000",
        "blockdiag2:10000", "blockdiag16:10000", "arrowhead:10000", "tridiagonal:10000",
        "kkt:3000", "dixmaan:3000",
    ], help="problem:size pairs (grid side for poisson, n otherwise)")
    parser.add_argument("--analysis-only", nargs="*", default=[],
                        help="problem:size pairs that are only analysed (too large to factor)")
    parser.add_argument("--quick", action="store_true", help="small sizes of every problem")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dense-max", type=int, default=4000)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    if args.quick:
        args.cases = ["poisson2d:60", "blockdiag2:2000", "blockdiag16:2048", "arrowhead:2000",
                      "tridiagonal:2000", "dixmaan:3000"]
    command = "python benchmarks/bench_factorization.py --cases " + " ".join(args.cases)
    if args.analysis_only:
        command += " --analysis-only " + " ".join(args.analysis_only)
    lines = [
        "# Sparse symmetric factorization (CPU)",
        "",
        f"Command: `{command} --repeats {args.repeats}`. Times: minimum over the repeats "
        "after a warm-up; analysis and compile: one run each.",
        "",
        "| problem | n | nnz | ordering | plan | nnz(L) | stored | analysis | compile | HLO "
        "| compile args | HLO args | LDL f+s | LDL f+s, no ref. | splu new | splu reused "
        "| SparseLU | dense Cholesky | dense LU | structured | peak RSS | residual |",
        "|---" * 22 + "|",
    ]
    for case in args.cases + args.analysis_only:
        name, size = case.rsplit(":", 1)
        if name.startswith("sif2jax:"):
            matrix = sif2jax_hessian(name.split(":")[1], int(size))
        else:
            matrix = PROBLEMS[name](int(size))
        only = case in args.analysis_only
        line = measure(name, matrix, args.repeats, args.dense_max, only)
        print(line, flush=True)
        lines.append(line)
    text = "\n".join(lines) + "\n"
    if args.output:
        with open(args.output, "w") as handle:
            handle.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
