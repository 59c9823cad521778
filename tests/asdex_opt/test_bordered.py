"""BorderedBlockLU: small blocks bordered by dense rows and columns, against dense solves."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest

from asdex_opt.lineax import BorderedBlockLU, SparseMatrixLinearOperator, SparseStructure
from asdex_opt.optimistix import SparseGaussNewton, SparseNewton

pytestmark = pytest.mark.usefixtures("x64")


def bordered_pattern(n: int, border: list[int], block_sizes: list[int]) -> np.ndarray:
    """Indices of a matrix: blocks over the other variables, dense border rows/columns."""
    interior = np.setdiff1d(np.arange(n), border)
    assert sum(block_sizes) == interior.size
    entries, start = [], 0
    for size in block_sizes:
        block = interior[start : start + size]
        entries += [(i, j) for i in block for j in block]
        start += size
    entries += [(b, j) for b in border for j in range(n)]
    entries += [(i, b) for b in border for i in range(n)]
    return np.unique(np.array(entries), axis=0)


@pytest.mark.parametrize("transpose", [False, True])
def test_matches_dense_solve(transpose):
    n, border = 40, [3, 17, 39]
    indices = bordered_pattern(n, border, [1, 2, 3, 4, 5, 6, 5, 4, 3, 2, 1, 1])
    structure = SparseStructure(indices, (n, n))
    solver = BorderedBlockLU.from_pattern(*indices.T, n, max_block_size=8)
    assert solver is not None and solver.border.border.tolist() == border
    rng = np.random.default_rng(0)
    data = rng.normal(size=structure.nse) + 8.0 * (indices[:, 0] == indices[:, 1])
    operator = SparseMatrixLinearOperator.from_structure(jnp.asarray(data), structure)
    dense = operator.as_matrix()
    b = jnp.asarray(rng.normal(size=n))
    if transpose:
        operator, dense = operator.transpose(), dense.T
    x = jax.jit(lambda op, b: lx.linear_solve(op, b, solver).value)(operator, b)
    np.testing.assert_allclose(x, jnp.linalg.solve(dense, b), rtol=1e-10, atol=1e-12)


def test_gradient_through_the_solve_uses_the_transpose():
    n, border = 12, [0]
    indices = bordered_pattern(n, border, [2] * 5 + [1])
    structure = SparseStructure(indices, (n, n))
    solver = BorderedBlockLU.from_pattern(*indices.T, n, max_block_size=4)
    rng = np.random.default_rng(1)
    data = jnp.asarray(rng.normal(size=structure.nse) + 5.0 * (indices[:, 0] == indices[:, 1]))
    dense = SparseMatrixLinearOperator.from_structure(data, structure).as_matrix()
    b = jnp.asarray(rng.normal(size=n))

    def loss(data, b):
        operator = SparseMatrixLinearOperator.from_structure(data, structure)
        return jnp.sum(lx.linear_solve(operator, b, solver).value ** 2)

    def dense_loss(dense, b):
        return jnp.sum(jnp.linalg.solve(dense, b) ** 2)

    np.testing.assert_allclose(
        jax.grad(loss, argnums=1)(data, b), jax.grad(dense_loss, argnums=1)(dense, b), rtol=1e-9
    )


def test_patterns_that_do_not_fit():
    n = 30
    chain = np.array([(i, i + 1) for i in range(n - 1)])
    assert BorderedBlockLU.from_pattern(*chain.T, n) is None  # no border: one long chain
    blocks = bordered_pattern(n, [], [3] * 10)
    assert BorderedBlockLU.from_pattern(*blocks.T, n) is None  # no border: BlockDiagonalLU
    dense = np.array([(i, j) for i in range(n) for j in range(n)])
    assert BorderedBlockLU.from_pattern(*dense.T, n, max_border=4) is None


def test_an_operator_from_a_shuffled_bcoo_gets_its_structure():
    from jax.experimental.sparse import BCOO

    n = 20
    indices = bordered_pattern(n, [0], [1] * 19)
    solver = BorderedBlockLU.from_pattern(*indices.T, n)
    shuffle = np.random.default_rng(2).permutation(len(indices))
    data = jnp.where(indices[:, 0] == indices[:, 1], 4.0, 1.0)[shuffle]
    matrix = BCOO((data, jnp.asarray(indices[shuffle])), shape=(n, n))
    x = lx.linear_solve(SparseMatrixLinearOperator(matrix), jnp.ones(n), solver).value
    np.testing.assert_allclose(x, jnp.linalg.solve(matrix.todense(), jnp.ones(n)), rtol=1e-5)


def test_arrowhead_problems_get_the_bordered_solve():
    """LIARWHD-like objective and least squares: every term involves y_0."""

    def liarwhd(y, args):
        del args
        return jnp.sum(4.0 * (y**2 - y[0]) ** 2 + (y - 1.0) ** 2)

    y0 = jnp.full(200, 4.0)
    sol = optx.minimise(liarwhd, SparseNewton(1e-10, 1e-10), y0, max_steps=100)
    assert isinstance(sol.state.descent.linear_solver, BorderedBlockLU)
    np.testing.assert_allclose(sol.value, 1.0, atol=1e-8)

    def residuals(y, args):
        del args
        return jnp.concatenate([2.0 * (y * y - y[0]), y - 1.0])

    sol = optx.least_squares(residuals, SparseGaussNewton(1e-10, 1e-10), y0, max_steps=100)
    assert isinstance(sol.state.descent.linear_solver, BorderedBlockLU)
    np.testing.assert_allclose(sol.value, 1.0, atol=1e-8)
