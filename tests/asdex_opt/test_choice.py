"""choose_solver: structured solvers first; SparseLDL where the analysis predicts it pays."""

import numpy as np
import scipy.sparse

from asdex_opt.lineax import (
    BlockDiagonalLU,
    SparseLDL,
    SparseLU,
    SparseStructure,
    choose_solver,
)


def _structure(matrix: scipy.sparse.spmatrix) -> SparseStructure:
    coo = scipy.sparse.coo_matrix(matrix).tocsr().tocoo()
    return SparseStructure(np.stack([coo.row, coo.col], axis=1), coo.shape)


def _poisson3d(grid: int) -> scipy.sparse.spmatrix:
    second = scipy.sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(grid, grid))
    eye = scipy.sparse.identity(grid)
    return (
        scipy.sparse.kron(scipy.sparse.kron(second, eye), eye)
        + scipy.sparse.kron(scipy.sparse.kron(eye, second), eye)
        + scipy.sparse.kron(scipy.sparse.kron(eye, eye), second)
    )


def _poisson2d(grid: int) -> scipy.sparse.spmatrix:
    second = scipy.sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(grid, grid))
    eye = scipy.sparse.identity(grid)
    return scipy.sparse.kron(second, eye) + scipy.sparse.kron(eye, second)


def _dixmaan(n: int) -> scipy.sparse.spmatrix:
    """A band of width 1 plus couplings at distance n/3 and 2n/3 (small fronts)."""
    third = n // 3
    offsets = [0, 1, -1, third, -third, 2 * third, -2 * third]
    return scipy.sparse.diags([np.ones(n - abs(o)) for o in offsets], offsets)


def test_symmetric_large_fronts_get_sparse_ldl():
    structure = _structure(_poisson3d(16))
    assert isinstance(choose_solver(structure, symmetric=True), SparseLDL)
    assert isinstance(choose_solver(structure), SparseLU)  # symmetry unknown: unchanged


def test_symmetric_small_fronts_get_sparse_ldl_and_costly_scalar_plans_do_not():
    dixmaan = _structure(_dixmaan(600))
    assert isinstance(choose_solver(dixmaan, symmetric=True), SparseLDL)
    assert isinstance(choose_solver(dixmaan), SparseLU)
    # A 2-D grid's scalar plan makes millions of updates: SuperLU is faster there.
    assert isinstance(choose_solver(_structure(_poisson2d(40)), symmetric=True), SparseLU)


def test_structured_patterns_keep_their_solvers():
    blocks = scipy.sparse.block_diag([np.ones((4, 4))] * 50)
    assert isinstance(choose_solver(_structure(blocks), symmetric=True), BlockDiagonalLU)
