"""choose_solver: structured solvers first; SparseLDL where the cost model predicts it pays."""

import numpy as np
import pytest
import scipy.sparse

from asdex_opt._lineax._choice import _LDL_TIE, _ldl_pays, cost_features, predicted_times
from asdex_opt._lineax._ldl import analyse, cached_analysis
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


def _poisson2d(grid: int) -> scipy.sparse.spmatrix:
    second = scipy.sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(grid, grid))
    eye = scipy.sparse.identity(grid)
    return scipy.sparse.kron(second, eye) + scipy.sparse.kron(eye, second)


def _dixmaan(n: int) -> scipy.sparse.spmatrix:
    """A band of width 1 plus couplings at distance n/3 and 2n/3 (small fronts)."""
    third = n // 3
    offsets = [0, 1, -1, third, -third, 2 * third, -2 * third]
    return scipy.sparse.diags([np.ones(n - abs(o)) for o in offsets], offsets)


def _stencil_normal_equations(grid: int) -> scipy.sparse.spmatrix:
    """``JᵀJ`` of a 13-point stencil on a square grid (DRCAVTY1's at ``grid = 63``)."""
    index = np.arange(grid * grid).reshape(grid, grid)
    offsets = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (1, -1), (-1, 1), (-1, -1)]
    offsets += [(2, 0), (-2, 0), (0, 2), (0, -2)]
    rows, cols = [], []
    for di, dj in offsets:
        inside = index[max(0, -di) : grid - max(0, di), max(0, -dj) : grid - max(0, dj)]
        rows.append(inside.ravel())
        cols.append(inside.ravel() + di * grid + dj)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    jacobian = scipy.sparse.csr_matrix((np.ones(rows.size), (rows, cols)), (grid**2, grid**2))
    return jacobian.T @ jacobian


def _cholesky_flops(matrix: scipy.sparse.spmatrix, order: np.ndarray) -> int:
    """The sum of squared column counts of the Cholesky factor in ``order``, numerically."""
    pattern = scipy.sparse.csr_matrix(matrix)[order][:, order].toarray() != 0
    rng = np.random.default_rng(1)
    values = np.where(pattern, rng.uniform(-1.0, 0.0, pattern.shape), 0.0)
    values = values + values.T
    values[np.diag_indices_from(values)] = pattern.shape[0]
    count = np.sum(np.linalg.cholesky(values) != 0, axis=0)
    return int(np.sum(count**2))


@pytest.mark.parametrize("scalar_updates", [10**7, 0])
def test_cost_features_count_the_factorizations_multiply_adds(scalar_updates):
    matrix = _poisson2d(12) + scipy.sparse.eye(144, k=30)
    matrix = matrix + matrix.T
    coo = scipy.sparse.coo_matrix(matrix).tocsr().tocoo()
    analysis = analyse(144, coo.row, coo.col, max_scalar_updates=scalar_updates)
    features = cost_features(analysis, coo.row, coo.col)
    assert features["plan"] == ("scalar" if scalar_updates else "fronts")
    assert features["flops"] == _cholesky_flops(matrix, analysis.order)
    assert features["factor"] == analysis.nnz_factor


def test_normal_equations_of_wide_stencils_get_superlu():
    # DRCAVTY1's JᵀJ: SuperLU factors it about 4x faster than the padded dense fronts.
    structure = _structure(_stencil_normal_equations(63))
    assert isinstance(choose_solver(structure, symmetric=True), SparseLU)
    ldl, superlu = predicted_times(
        cost_features(
            cached_analysis(structure.shape[0], structure.rows, structure.cols),
            structure.rows,
            structure.cols,
        )
    )
    assert ldl > 2 * superlu


def test_symmetric_small_fronts_get_sparse_ldl():
    dixmaan = _structure(_dixmaan(600))
    assert isinstance(choose_solver(dixmaan, symmetric=True), SparseLDL)
    assert isinstance(choose_solver(dixmaan), SparseLU)  # symmetry unknown: unchanged


def test_structured_patterns_keep_their_solvers():
    blocks = scipy.sparse.block_diag([np.ones((4, 4))] * 50)
    assert isinstance(choose_solver(_structure(blocks), symmetric=True), BlockDiagonalLU)


@pytest.mark.parametrize(
    "matrix",
    [_dixmaan(600), _poisson2d(40), _stencil_normal_equations(24), _poisson2d(8)],
    ids=["dixmaan", "grid", "stencil", "small grid"],
)
def test_the_shortcut_decides_as_the_whole_model(matrix):
    # `_ldl_pays` skips SuperLU's ordering where SuperLU's cheapest factor already loses.
    structure = _structure(matrix)
    analysis = cached_analysis(structure.shape[0], structure.rows, structure.cols)
    ldl, superlu = predicted_times(cost_features(analysis, structure.rows, structure.cols))
    assert _ldl_pays(structure) == (ldl <= _LDL_TIE * superlu)
