"""Sparse direct and preconditioned iterative solves against dense ``lineax.LU``.

Problems (sparse matrices built directly with NumPy/SciPy index arithmetic):

* ``poisson``: the 2-D five-point Laplacian on an N x N grid (Dirichlet), n = N^2;
  symmetric positive definite.
* ``brusselator``: the Newton matrix ``W = I - gamma * J`` of the 2-D Brusselator
  reaction-diffusion system (two species, periodic five-point Laplacian,
  ``alpha = 10``, ``gamma = 1e-3``) at a random state, n = 2 N^2; nonsymmetric.
* ``arrowhead``: a diagonal plus a dense first row and column (the Hessian pattern of
  CUTEst's LIARWHD, ARWHEAD, ...); symmetric positive definite.

Solvers, each timed inside ``jax.jit`` on the same matrix and right-hand side:

* ``dense LU``: ``lx.linear_solve(lx.MatrixLinearOperator(A), b, lx.LU())`` (the
  factorization is included), only where the dense matrix fits (n <= --dense-max).
* ``SparseLU (new A)``: `asdex_opt.lineax.SparseLU` on a matrix not seen before with a
  known sparsity pattern, as for the Hessians and shifted systems of an optimizer
  (assembly, factorization and solve; the ordering is reused from the cache).
* ``SparseLU (same A)``: the same solver, a further solve with the same matrix
  (factorization reused from the cache).
* ``SparseLU (shuffled entries)``: the same matrix given as a BCOO with its entries in
  a new order; the operator is built on the host, which sorts them into its static
  structure (included), so the caches see a known pattern.
* ``SparseLDL (in JAX)``: `asdex_opt.lineax.SparseLDL` on the symmetric problems
  (Poisson, arrowhead), on an operator with a static structure: factorization and
  solve inside ``jax.jit`` (the symbolic analysis happens once, when it is traced).
* ``BorderedBlockLU (in JAX)`` / ``BlockDiagonalLU (in JAX)``: the in-JAX direct solve
  that `asdex_opt`'s solvers pick from the pattern, where one fits (the arrowhead), on
  an operator with a static structure, as the optimizers build them.
* ``jax spsolve``: ``jax.experimental.sparse.linalg.spsolve`` (SciPy's ``spsolve``
  through a callback on CPU; no factorization reuse).
* Krylov solvers with and without `asdex_opt.lineax.Preconditioned` (Jacobi): CG for
  Poisson, GMRES and BiCGStab for the Brusselator; ``rtol = atol = 1e-8``.

Times are the minimum over ``--repeats`` runs after one compilation run. Every solve's
relative residual ``|Ax - b| / |b|`` is reported. Run from the repository root:

    python benchmarks/bench_linear_solve.py --output benchmarks/results/linear_solve.md
"""

import argparse
import platform
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import lineax as lx  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from jax.experimental import sparse as jsparse  # noqa: E402
from jax.experimental.sparse.linalg import spsolve  # noqa: E402

from asdex_opt.lineax import (  # noqa: E402
    BlockDiagonalLU,
    BorderedBlockLU,
    Preconditioned,
    SparseLDL,
    SparseLU,
    SparseMatrixLinearOperator,
)

TOL = 1e-8


def poisson_2d(N: int) -> sp.csr_matrix:
    """Five-point Laplacian (negated, so positive definite) on an N x N grid."""
    second = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(N, N))
    eye = sp.identity(N)
    return (sp.kron(second, eye) + sp.kron(eye, second)).tocsr()


def brusselator_2d(N: int, *, alpha: float = 10.0, gamma: float = 1e-3, seed: int = 0):
    """``I - gamma * J`` for the 2-D Brusselator at a random state; unknowns interleaved."""
    rng = np.random.default_rng(seed)
    u, v = 1.0 + rng.random(N * N), 3.0 + rng.random(N * N)
    i, j = np.divmod(np.arange(N * N), N)
    neighbours = [
        ((i + di) % N) * N + (j + dj) % N for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))
    ]
    scale = alpha * (N - 1) ** 2
    rows, cols, vals = [], [], []
    for species in (0, 1):
        point = 2 * np.arange(N * N) + species
        for k in neighbours:  # diffusion: off-diagonal couplings
            rows.append(point)
            cols.append(2 * k + species)
            vals.append(np.full(N * N, scale))
    uu, vv = 2 * np.arange(N * N), 2 * np.arange(N * N) + 1
    # Reaction Jacobian (A = 1, B = 3.4) plus the diffusion diagonal.
    rows += [uu, uu, vv, vv]
    cols += [uu, vv, uu, vv]
    vals += [2 * u * v - 4.4 - 4 * scale, u**2, 3.4 - 2 * u * v, -(u**2) - 4 * scale]
    jac = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(2 * N * N, 2 * N * N),
    )
    return (sp.identity(2 * N * N) - gamma * jac).tocsr()


def arrowhead(n: int) -> sp.csr_matrix:
    """Diagonal ``n`` plus a first row and column of ones; positive definite."""
    k = np.arange(1, n)
    rows = np.r_[np.arange(n), np.zeros(n - 1, int), k]
    cols = np.r_[np.arange(n), k, np.zeros(n - 1, int)]
    data = np.r_[np.full(n, float(n)), np.ones(2 * (n - 1))]
    return sp.csr_matrix((data, (rows, cols)), shape=(n, n))


def to_bcoo(matrix: sp.csr_matrix) -> jsparse.BCOO:
    coo = matrix.tocoo()
    indices = np.stack([coo.row, coo.col], axis=1).astype(np.int32)
    return jsparse.BCOO((jnp.asarray(coo.data), jnp.asarray(indices)), shape=coo.shape)


def timed(fn, *args, repeats: int):
    jax.block_until_ready(fn(*args))  # compile (and warm any cache)
    best = np.inf
    out = None
    for _ in range(repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_problem(name, matrix, *, tags, krylov, dense_max, repeats):
    symmetric = bool(tags)
    n = matrix.shape[0]
    bcoo = to_bcoo(matrix)
    b = jnp.asarray(np.sin(np.arange(n) + 1.0))
    csr = jsparse.BCSR.from_bcoo(bcoo)
    rows = []

    def residual(x):
        return float(np.linalg.norm(matrix @ np.asarray(x) - np.asarray(b)) / np.linalg.norm(b))

    def record(solver, seconds, x, steps=""):
        rows.append(
            dict(
                problem=name,
                n=n,
                nnz=matrix.nnz,
                solver=solver,
                seconds=seconds,
                residual=residual(x),
                steps=steps,
            )
        )
        print(
            f"{name:12s} n={n:7d} {solver:24s} {seconds * 1e3:10.2f} ms",
            f"res={rows[-1]['residual']:.1e} {steps}",
            flush=True,
        )

    if n <= dense_max:
        dense = jnp.asarray(matrix.toarray())
        solve = jax.jit(lambda a, b: lx.linear_solve(lx.MatrixLinearOperator(a), b, lx.LU()).value)
        seconds, x = timed(solve, dense, b, repeats=repeats if n <= 5000 else 1)
        record("dense LU", seconds, x)
        del dense

    # A fresh scale per call makes every matrix new to the factorization cache.
    scales = iter(1.0 + np.finfo(np.float64).eps * np.arange(1, repeats + 3))

    @jax.jit
    def sparse_lu(data, b):
        op = SparseMatrixLinearOperator(jsparse.BCOO((data, bcoo.indices), shape=bcoo.shape), tags)
        return lx.linear_solve(op, b, SparseLU()).value

    jax.block_until_ready(sparse_lu(bcoo.data, b))
    best = np.inf
    for _ in range(repeats):
        data = bcoo.data * next(scales)
        start = time.perf_counter()
        x = jax.block_until_ready(sparse_lu(data, b))
        best = min(best, time.perf_counter() - start)
    record("SparseLU (new A)", best, x)
    seconds, x = timed(sparse_lu, bcoo.data, b, repeats=repeats)
    record("SparseLU (same A)", seconds, x)

    solve_operator = jax.jit(lambda op, b: lx.linear_solve(op, b, SparseLU()).value)

    def sparse_lu_pattern(data, indices, b):
        matrix = jsparse.BCOO((data, indices), shape=bcoo.shape)
        return solve_operator(SparseMatrixLinearOperator(matrix, tags), b)

    rng = np.random.default_rng(0)
    shuffles = [rng.permutation(bcoo.nse) for _ in range(repeats + 1)]
    best = np.inf
    for k, shuffle in enumerate(shuffles):  # the first run warms up (compiles)
        data, indices = bcoo.data[shuffle], bcoo.indices[shuffle]
        start = time.perf_counter()
        x = jax.block_until_ready(sparse_lu_pattern(data, indices, b))
        if k:
            best = min(best, time.perf_counter() - start)
    record("SparseLU (shuffled entries)", best, x)

    jax_spsolve = jax.jit(lambda data, b: spsolve(data, csr.indices, csr.indptr, b, tol=0))
    seconds, x = timed(jax_spsolve, csr.data, b, repeats=repeats)
    record("jax spsolve", seconds, x)

    coo = matrix.tocoo()
    indices = jnp.asarray(np.stack([coo.row, coo.col], axis=1))
    sorted_op = SparseMatrixLinearOperator(
        jsparse.BCOO((jnp.asarray(coo.data), indices), shape=matrix.shape)
    )
    structure = sorted_op.structure

    def structured_solve(solver, label):
        @jax.jit
        def structured(data, b):
            op = SparseMatrixLinearOperator.from_structure(data, structure, tags)
            return lx.linear_solve(op, b, solver).value

        seconds, x = timed(structured, sorted_op.data, b, repeats=repeats)
        record(label, seconds, x)

    if symmetric:  # the in-JAX LDLᵀ, on an operator with a static structure
        structured_solve(SparseLDL(), "SparseLDL (in JAX)")
    in_jax = BorderedBlockLU.from_pattern(coo.row, coo.col, n) or BlockDiagonalLU.from_pattern(
        coo.row, coo.col, n
    )
    if in_jax is not None:  # a direct solve in JAX, chosen from the pattern
        structured_solve(in_jax, f"{type(in_jax).__name__} (in JAX)")

    op = SparseMatrixLinearOperator(bcoo, tags)
    for label, inner in krylov:
        for prefix, solver in (("", inner), ("Jacobi-", Preconditioned(inner))):
            solve = jax.jit(
                lambda op, b, solver=solver: lx.linear_solve(op, b, solver, throw=False)
            )
            seconds, sol = timed(solve, op, b, repeats=repeats)
            ok = "" if sol.result == lx.RESULTS.successful else " FAILED"
            record(prefix + label, seconds, sol.value, f"{int(sol.stats['num_steps'])} steps{ok}")
    return rows


def markdown(rows, command):
    lines = [
        "# Sparse linear solves vs dense `lineax.LU`",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}; JAX {jax.__version__} "
        f"on {jax.devices()[0].platform}; float64. Times: minimum of repeated runs inside "
        "`jax.jit`, after compilation; speed-up = dense LU time / solver time in the same run.",
        "",
        "| problem | n | nnz | solver | time (ms) | speed-up vs dense LU | rel. residual "
        "| iterations |",
        "|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for row in rows:
        dense = [
            r
            for r in rows
            if r["problem"] == row["problem"] and r["n"] == row["n"] and r["solver"] == "dense LU"
        ]
        speedup = (
            f"{dense[0]['seconds'] / row['seconds']:.0f}x" if dense else "n/a (dense too large)"
        )
        lines.append(
            f"| {row['problem']} | {row['n']} | {row['nnz']} | {row['solver']} | "
            f"{row['seconds'] * 1e3:.2f} | {speedup} | {row['residual']:.1e} | {row['steps']} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--grid", type=int, nargs="*", default=[32, 100, 316], help="Poisson N (n = N^2)"
    )
    parser.add_argument(
        "--brusselator-grid",
        type=int,
        nargs="*",
        default=[22, 71, 224],
        help="Brusselator N (n = 2 N^2)",
    )
    parser.add_argument(
        "--arrowhead", type=int, nargs="*", default=[5000, 100_000], help="arrowhead n"
    )
    parser.add_argument("--dense-max", type=int, default=11_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    cg = [("CG", lx.CG(rtol=TOL, atol=TOL))]
    nonsymmetric = [
        ("GMRES", lx.GMRES(rtol=TOL, atol=TOL)),
        ("BiCGStab", lx.BiCGStab(rtol=TOL, atol=TOL)),
    ]
    families = [
        ("poisson", poisson_2d, args.grid, lx.positive_semidefinite_tag, cg),
        ("brusselator", brusselator_2d, args.brusselator_grid, (), nonsymmetric),
        ("arrowhead", arrowhead, args.arrowhead, lx.positive_semidefinite_tag, cg),
    ]
    rows = []
    for name, build, sizes, tags, krylov in families:
        for size in sizes:
            rows += bench_problem(
                name, build(size), tags=tags, krylov=krylov,
                dense_max=args.dense_max, repeats=args.repeats,
            )
    if args.output:
        command = "python " + " ".join(sys.argv)
        with open(args.output, "w") as file:
            file.write(markdown(rows, command))


if __name__ == "__main__":
    main()
