"""Static sparse structures: operators that carry them, and the solvers' plans built on them."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
from jax.experimental import sparse as jsparse

import asdex
from asdex_opt._lineax._newton import shifted
from asdex_opt.lineax import BlockDiagonalLU, SparseMatrixLinearOperator, SparseStructure


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
    assert s.is_symmetric and not s.has_full_diagonal and s.diagonal_positions is None
    full, source = s.with_diagonal()
    assert full.indices.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1], [2, 2]]
    assert source.tolist() == [3, 0, 1, 3, 2]
    assert full.has_full_diagonal and full.diagonal_positions.tolist() == [0, 3, 4]
    for unsorted in ([[0, 0], [0, 0]], [[1, 0], [0, 1]], [[0, 3]]):
        with pytest.raises(ValueError, match="canonical"):
            SparseStructure(np.array(unsorted), (2, 2))


def test_structure_of_the_pattern_and_canonical_indices():
    pattern = asdex.jacobian_sparsity(lambda x: x[1:] * x[:-1], jnp.ones(4))
    structure = SparseStructure.from_pattern(pattern)
    assert structure.rows.tolist() == pattern.rows.tolist()
    assert structure.cols.tolist() == pattern.cols.tolist() and structure.shape == (3, 4)
    # Duplicates merge, padding (out of range) is dropped, the order is by row then column.
    canonical, target = SparseStructure.canonical(
        np.array([[1, 1], [0, 2], [5, 0], [1, 1]]), (2, 3)
    )
    assert canonical.indices.tolist() == [[0, 2], [1, 1]]
    assert target.tolist() == [1, 0, -1, 1]
    transposed = canonical.transposed
    assert transposed.shape == (3, 2) and transposed.indices.tolist() == [[1, 1], [2, 0]]


def test_operator_holds_data_and_one_static_structure():
    s = SparseStructure(np.array([[0, 0], [1, 1]]), (2, 2))
    op = SparseMatrixLinearOperator.from_structure(jnp.array([2.0, 3.0]), s)
    assert jax.tree_util.tree_leaves(op) == [op.data] and op.structure is s
    np.testing.assert_allclose(lx.diagonal(op), [2.0, 3.0])
    np.testing.assert_allclose(jax.jit(lambda o: lx.conj(o).mv(jnp.ones(2)))(op), [2.0, 3.0])
    with pytest.raises(ValueError, match="data of shape"):
        SparseMatrixLinearOperator.from_structure(jnp.ones(3), s)
    # A BCOO's indices must be known when tracing: inside `jit` they are not.
    matrix = jsparse.BCOO.fromdense(jnp.eye(2))
    with pytest.raises(ValueError, match="traced"):
        jax.jit(lambda m: SparseMatrixLinearOperator(m).data)(matrix)
    # Duplicates are summed into the structure, as BCOO means them.
    duplicated = jsparse.BCOO(
        (jnp.array([1.0, 2.0, 4.0]), jnp.array([[1, 0], [0, 0], [1, 0]])), shape=(2, 2)
    )
    op = SparseMatrixLinearOperator(duplicated)
    assert op.structure.indices.tolist() == [[0, 0], [1, 0]]
    np.testing.assert_allclose(op.as_matrix(), duplicated.todense())
    np.testing.assert_allclose(op.transpose().as_matrix(), duplicated.todense().T)


def test_shift_keeps_a_full_diagonal_structure():
    s = SparseStructure(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), (2, 2))
    op = SparseMatrixLinearOperator.from_structure(
        jnp.array([1.0, 2.0, 2.0, 5.0]), s, lx.symmetric_tag
    )
    result = jax.jit(shifted)(op, 0.5)
    assert result.structure == s and lx.is_positive_semidefinite(result)
    np.testing.assert_allclose(result.as_matrix(), [[1.5, 2.0], [2.0, 5.5]])
    partial = SparseStructure(np.array([[0, 1], [1, 0]]), (2, 2))
    op = SparseMatrixLinearOperator.from_structure(jnp.array([2.0, 2.0]), partial)
    np.testing.assert_allclose(shifted(op, 1.0).as_matrix(), [[1.0, 2.0], [2.0, 1.0]])


@pytest.mark.parametrize(
    "blocks", [[[0], [1], [2]], [[0, 3], [1], [2, 4]], [[0, 3, 5], [1, 2], [4]]]
)
def test_block_solver_plan_matches_the_dense_solve(blocks):
    rng = np.random.default_rng(len(blocks[0]))
    n = sum(map(len, blocks))
    indices, data, dense = _random_blocks(rng, blocks, n)
    # Shuffled and duplicated entries (summed) become one canonical structure.
    indices = np.concatenate([indices, indices[:2]])
    data = np.concatenate([data, [0.25, -0.5]])
    np.add.at(dense, (indices[-2:, 0], indices[-2:, 1]), [0.25, -0.5])
    from_bcoo = SparseMatrixLinearOperator(
        jsparse.BCOO((jnp.asarray(data), jnp.asarray(indices)), shape=(n, n))
    )
    structure = from_bcoo.structure
    from_structure = SparseMatrixLinearOperator.from_structure(from_bcoo.data, structure)
    solver = BlockDiagonalLU.from_pattern(indices[:, 0], indices[:, 1], n)
    b = jnp.arange(1.0, n + 1.0)

    def solve(op, b):
        return lx.linear_solve(op, b, solver).value

    expected = np.linalg.solve(dense, np.asarray(b))
    for op in (from_bcoo, from_structure):
        np.testing.assert_allclose(jax.jit(solve)(op, b), expected, rtol=1e-4, atol=1e-5)
        # Reverse mode solves with the transposed blocks.
        grad = jax.grad(lambda b, op=op: jnp.sum(solve(op, b) ** 2))(b)
        reference = jax.grad(lambda b: jnp.sum(jnp.linalg.solve(jnp.asarray(dense), b) ** 2))(b)
        np.testing.assert_allclose(grad, reference, rtol=1e-3, atol=1e-4)


def test_block_solver_structure_outside_the_blocks_falls_back():
    structure = SparseStructure(np.array([[0, 0], [0, 1], [1, 1]]), (2, 2))
    solver = BlockDiagonalLU.from_pattern(np.array([0, 1]), np.array([0, 1]), 2)
    zero_coupling = SparseMatrixLinearOperator.from_structure(jnp.array([2.0, 0.0, 4.0]), structure)
    np.testing.assert_allclose(
        lx.linear_solve(zero_coupling, jnp.ones(2), solver).value, [0.5, 0.25]
    )
    coupled = SparseMatrixLinearOperator.from_structure(jnp.array([2.0, 1.0, 4.0]), structure)
    result = lx.linear_solve(coupled, jnp.ones(2), solver, throw=False).result
    assert result == lx.RESULTS.singular


def test_tridiagonal_structure_answers_lineax_and_gives_its_bands():
    n = 7
    indices = np.array([(i, j) for i in range(n) for j in (i - 1, i, i + 1) if 0 <= j < n])
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
