"""Static sparse structures: operators that carry them, and the solvers' plans built on them."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
from jax.experimental import sparse as jsparse

from asdex_opt._lineax._operator import SparseMatrixLinearOperator
from asdex_opt._lineax._structure import SparseStructure
from asdex_opt._optimistix._descents import _shifted
from asdex_opt.lineax import BlockDiagonalLU


def _random_blocks(rng, blocks, n):
    entries = [(i, j) for b in blocks for i in b for j in b]
    rng.shuffle(entries)
    indices = np.array(entries)
    data = rng.normal(size=len(entries)) + 3.0 * (indices[:, 0] == indices[:, 1])
    dense = np.zeros((n, n))
    np.add.at(dense, (indices[:, 0], indices[:, 1]), data)
    return indices, data, dense


def test_structure_hash_diagonal_and_completion():
    s = SparseStructure(np.array([[0, 1], [1, 0], [2, 2]]), (3, 3))
    assert s == SparseStructure(s.indices.copy(), (3, 3)) and hash(s) == hash(
        SparseStructure(s.indices.copy(), (3, 3))
    )
    assert s != SparseStructure(s.indices, (4, 4))
    assert not s.has_full_diagonal and s.diagonal_positions is None
    full, source = s.with_diagonal()
    assert full.indices.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1], [2, 2]]
    assert source.tolist() == [3, 0, 1, 3, 2]
    assert full.has_full_diagonal and full.diagonal_positions.tolist() == [0, 3, 4]
    with pytest.raises(ValueError, match="duplicate"):
        SparseStructure(np.array([[0, 0], [0, 0]]), (1, 1)).with_diagonal()


def test_operator_from_structure_checks_the_layout():
    s = SparseStructure(np.array([[0, 0], [1, 1]]), (2, 2))
    op = SparseMatrixLinearOperator.from_structure(jnp.array([2.0, 3.0]), s)
    np.testing.assert_allclose(lx.diagonal(op), [2.0, 3.0])
    np.testing.assert_allclose(jax.jit(lambda o: lx.conj(o).mv(jnp.ones(2)))(op), [2.0, 3.0])
    other = jsparse.BCOO((jnp.ones(2), jnp.array([[0, 1], [1, 1]])), shape=(2, 2))
    with pytest.raises(ValueError, match="does not describe"):
        SparseMatrixLinearOperator(other, structure=s)
    with pytest.raises(ValueError, match="data of shape"):
        SparseMatrixLinearOperator.from_structure(jnp.ones(3), s)


def test_shift_keeps_a_full_diagonal_structure():
    s = SparseStructure(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), (2, 2))
    op = SparseMatrixLinearOperator.from_structure(
        jnp.array([1.0, 2.0, 2.0, 5.0]), s, lx.symmetric_tag
    )
    shifted = jax.jit(_shifted)(op, 0.5)
    assert shifted.structure == s and lx.is_positive_semidefinite(shifted)
    np.testing.assert_allclose(shifted.as_matrix(), [[1.5, 2.0], [2.0, 5.5]])
    partial = SparseStructure(np.array([[0, 1], [1, 0]]), (2, 2))
    op = SparseMatrixLinearOperator.from_structure(jnp.array([2.0, 2.0]), partial)
    np.testing.assert_allclose(_shifted(op, 1.0).as_matrix(), [[1.0, 2.0], [2.0, 1.0]])


@pytest.mark.parametrize(
    "blocks", [[[0], [1], [2]], [[0, 3], [1], [2, 4]], [[0, 3, 5], [1, 2], [4]]]
)
def test_block_solver_plan_matches_the_scatter_and_dense_solve(blocks):
    rng = np.random.default_rng(len(blocks[0]))
    n = sum(map(len, blocks))
    indices, data, dense = _random_blocks(rng, blocks, n)
    # Duplicated entries (summed) are part of the layout too.
    indices = np.concatenate([indices, indices[:2]])
    data = np.concatenate([data, [0.25, -0.5]])
    np.add.at(dense, (indices[-2:, 0], indices[-2:, 1]), [0.25, -0.5])
    structure = SparseStructure(indices, (n, n))
    structured = SparseMatrixLinearOperator.from_structure(jnp.asarray(data), structure)
    plain = SparseMatrixLinearOperator(
        jsparse.BCOO((jnp.asarray(data), jnp.asarray(indices)), shape=(n, n))
    )
    solver = BlockDiagonalLU.from_pattern(indices[:, 0], indices[:, 1], n)
    b = jnp.arange(1.0, n + 1.0)

    def solve(op, b):
        return lx.linear_solve(op, b, solver).value

    expected = np.linalg.solve(dense, np.asarray(b))
    for op in (structured, plain):
        np.testing.assert_allclose(jax.jit(solve)(op, b), expected, rtol=1e-4, atol=1e-5)
        # Reverse mode solves with the transposed blocks.
        grad = jax.grad(lambda b, op=op: jnp.sum(solve(op, b) ** 2))(b)
        reference = jax.grad(lambda b: jnp.sum(jnp.linalg.solve(jnp.asarray(dense), b) ** 2))(b)
        np.testing.assert_allclose(grad, reference, rtol=1e-3, atol=1e-4)


def test_block_solver_structure_outside_the_blocks_falls_back():
    indices = np.array([[0, 0], [1, 1], [0, 1]])
    structure = SparseStructure(indices, (2, 2))
    solver = BlockDiagonalLU.from_pattern(np.array([0, 1]), np.array([0, 1]), 2)
    zero_coupling = SparseMatrixLinearOperator.from_structure(jnp.array([2.0, 4.0, 0.0]), structure)
    np.testing.assert_allclose(
        lx.linear_solve(zero_coupling, jnp.ones(2), solver).value, [0.5, 0.25]
    )
    coupled = SparseMatrixLinearOperator.from_structure(jnp.array([2.0, 4.0, 1.0]), structure)
    result = lx.linear_solve(coupled, jnp.ones(2), solver, throw=False).result
    assert result == lx.RESULTS.singular


def test_tridiagonal_structure_answers_lineax_and_gives_its_bands():
    n = 7
    indices = np.array([(i, j) for i in range(n) for j in (i - 1, i, i + 1) if 0 <= j < n])
    indices = np.concatenate([indices, [[3, 4]]])  # a duplicate: entries sum
    structure = SparseStructure(indices, (n, n))
    data = jnp.arange(1.0, len(indices) + 1.0)
    operator = SparseMatrixLinearOperator.from_structure(data, structure)
    assert lx.is_tridiagonal(operator) and structure.is_tridiagonal
    dense = operator.as_matrix()
    diagonal, lower, upper = lx.tridiagonal(operator)
    np.testing.assert_array_equal(diagonal, jnp.diag(dense))
    np.testing.assert_array_equal(lower, jnp.diag(dense, -1))
    np.testing.assert_array_equal(upper, jnp.diag(dense, 1))
    b = jnp.ones(n)
    x = lx.linear_solve(operator, b, lx.Tridiagonal()).value
    np.testing.assert_allclose(x, jnp.linalg.solve(dense, b), rtol=1e-5)

    wide = SparseStructure(np.array([[0, 2], [1, 1]]), (3, 3))
    assert not wide.is_tridiagonal
    assert not lx.is_tridiagonal(SparseMatrixLinearOperator.from_structure(jnp.ones(2), wide))
