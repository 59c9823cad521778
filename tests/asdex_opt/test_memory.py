"""Resident memory stays flat over hundreds of sparse direct solves with new values."""

import os

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import scipy.sparse

from asdex_opt.lineax import SparseLDL, SparseLU, SparseMatrixLinearOperator, SparseStructure


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _poisson(grid: int) -> scipy.sparse.coo_matrix:
    second = scipy.sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(grid, grid))
    eye = scipy.sparse.identity(grid)
    return (scipy.sparse.kron(second, eye) + scipy.sparse.kron(eye, second)).tocsr().tocoo()


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm")
@pytest.mark.parametrize(
    ("solver", "grid"), [(SparseLU(), 70), (SparseLDL(), 20)], ids=["SparseLU", "SparseLDL"]
)
def test_resident_memory_is_bounded(solver, grid):
    """300 solves, each with a matrix never seen before (SuperLU's factors: ~3 MB each)."""
    matrix = _poisson(grid)
    n = matrix.shape[0]
    structure = SparseStructure(np.stack([matrix.row, matrix.col], axis=1), (n, n))
    tags = (lx.symmetric_tag, lx.positive_semidefinite_tag)

    @jax.jit
    def step(data, rhs):
        operator = SparseMatrixLinearOperator.from_structure(data, structure, tags)
        return lx.linear_solve(operator, rhs, solver).value

    data, rhs = jnp.asarray(matrix.data, jnp.float32), jnp.ones(n, jnp.float32)
    for k in range(300):
        if k == 50:
            start = _resident_mb()
        step(data * (1.0 + 1e-3 * k), rhs).block_until_ready()
    assert _resident_mb() - start < 40.0
