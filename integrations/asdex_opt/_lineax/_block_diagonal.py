"""A direct solve, all in JAX, for sparse matrices made of small diagonal blocks."""

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import lineax as lx
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
from jaxtyping import Array

from ._fold import fold_sparse
from ._operator import SparseMatrixLinearOperator

__all__ = ["BlockDiagonalLU"]


class _BlockState(eqx.Module):
    operator: SparseMatrixLinearOperator
    transpose: bool = eqx.field(static=True)


class BlockDiagonalLU(lx.AbstractLinearSolver[_BlockState]):
    """Direct solve of a sparse matrix that is block diagonal up to a permutation.

    Built from a sparsity pattern (`from_pattern`) whose graph splits into small
    connected components, e.g. the 2 x 2 blocks of the extended Rosenbrock Hessian or a
    diagonal. Each solve scatters the nonzeros into one dense block per component and
    runs Gaussian elimination with partial pivoting on all blocks at once, entirely in
    JAX (no host callback), so it is cheap inside ``jit`` and on accelerators. Matrices
    from the pattern plus a diagonal (``H + λI``) fit too. A nonzero outside the blocks,
    or a singular block, returns ``lineax.RESULTS.singular``.

    Attributes:
        block: For each variable, the index of its block.
        position: For each variable, its row within its block.
        num_blocks: Number of blocks.
        block_size: Size of the largest block (smaller blocks are padded with identity).

    Example:
        >>> import jax.numpy as jnp, lineax as lx, numpy as np
        >>> from jax.experimental.sparse import BCOO
        >>> dense = jnp.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 4.0]])
        >>> A = BCOO.fromdense(dense)
        >>> rows, cols = np.asarray(A.indices).T
        >>> solver = BlockDiagonalLU.from_pattern(rows, cols, 3)
        >>> x = lx.linear_solve(SparseMatrixLinearOperator(A), jnp.array([3.0, 3.0, 4.0]), solver)
        >>> x.value
        Array([1., 1., 1.], dtype=float32)
    """

    block: Array
    position: Array
    num_blocks: int = eqx.field(static=True)
    block_size: int = eqx.field(static=True)

    @classmethod
    def from_pattern(
        cls, rows: np.ndarray, cols: np.ndarray, n: int, max_block_size: int = 16
    ) -> "BlockDiagonalLU | None":
        """The solver for an ``n x n`` pattern, or ``None`` if its blocks are too large.

        Args:
            rows: Row indices of the structural nonzeros.
            cols: Column indices of the structural nonzeros.
            n: The matrix size.
            max_block_size: Largest connected component to accept. ``None`` is also
                returned when padding every block to the largest one would store more
                than eight times the nonzeros (plus the diagonal).

        Returns:
            A `BlockDiagonalLU`, or ``None``.
        """
        rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        graph = scipy.sparse.coo_matrix((np.ones(rows.size), (rows, cols)), shape=(n, n))
        num_blocks, block = scipy.sparse.csgraph.connected_components(graph, directed=False)
        sizes = np.bincount(block, minlength=num_blocks)
        size = int(sizes.max(initial=1))
        if size > max_block_size or num_blocks * size * size > 8 * (rows.size + n):
            return None
        order = np.argsort(block, kind="stable")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        position = np.empty(n, np.int64)
        position[order] = np.arange(n) - starts[block[order]]
        return cls(
            jnp.asarray(block, jnp.int32), jnp.asarray(position, jnp.int32), num_blocks, size
        )

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        """Folds the operator into one sparse matrix."""
        del options
        if operator.in_size() != operator.out_size():
            raise ValueError(
                "`BlockDiagonalLU` may only be used for linear solves with square operators;"
                f" got an operator of shape ({operator.out_size()}, {operator.in_size()})."
            )
        if not isinstance(operator, SparseMatrixLinearOperator):
            operator = fold_sparse(operator)
        return _BlockState(operator, transpose=False)

    def compute(
        self, state: _BlockState, vector: Array, options: dict[str, Any]
    ) -> tuple[Array, lx.RESULTS, dict[str, Any]]:
        """Assembles the dense blocks and solves them all at once."""
        del options
        matrix = state.operator.matrix
        n, size = matrix.shape[0], self.block_size
        dtype = jnp.result_type(vector.dtype, matrix.dtype)
        rows, cols = matrix.indices[:, 0], matrix.indices[:, 1]
        if state.transpose:
            rows, cols = cols, rows
        valid = (rows >= 0) & (rows < n) & (cols >= 0) & (cols < n)
        rows, cols = jnp.where(valid, rows, 0), jnp.where(valid, cols, 0)
        block = self.block[rows]
        inside = valid & (block == self.block[cols])
        fits = jnp.all(inside | jnp.invert(valid) | (matrix.data == 0))
        data = jnp.where(inside, matrix.data, 0).astype(dtype)
        used = jnp.zeros((self.num_blocks, size), bool).at[self.block, self.position].set(True)
        blocks = jnp.where(jnp.invert(used)[:, :, None], jnp.eye(size, dtype=dtype), 0)
        blocks = blocks.at[block, self.position[rows], self.position[cols]].add(data)
        rhs = jnp.zeros((self.num_blocks, size), dtype).at[self.block, self.position].set(vector)
        solution = _solve_blocks(blocks, rhs)[self.block, self.position]
        ok = fits & jnp.all(jnp.isfinite(solution))
        result = lx.RESULTS.where(ok, lx.RESULTS.successful, lx.RESULTS.singular)
        return solution, result, {}

    def transpose(self, state: _BlockState, options: dict[str, Any]):
        """Same blocks, transposed."""
        del options
        return _BlockState(state.operator, transpose=not state.transpose), {}

    def conj(self, state: _BlockState, options: dict[str, Any]):
        """The conjugated matrix."""
        del options
        return _BlockState(lx.conj(state.operator), transpose=state.transpose), {}

    def assume_full_rank(self) -> bool:
        """Only nonsingular operators are supported."""
        return True


def _solve_blocks(blocks: Array, rhs: Array) -> Array:
    """Gaussian elimination with partial pivoting on a batch ``(B, s, s)`` of small blocks.

    Unrolled over ``s``, vectorised over the batch (no per-block LAPACK call).
    """
    size = blocks.shape[-1]
    index = jnp.arange(size)
    for k in range(size):
        pivot = k + jnp.argmax(jnp.abs(blocks[:, k:, k]), axis=1)
        swap = jnp.where(index == k, pivot[:, None], jnp.where(index == pivot[:, None], k, index))
        blocks = jnp.take_along_axis(blocks, swap[:, :, None], axis=1)
        rhs = jnp.take_along_axis(rhs, swap, axis=1)
        factors = blocks[:, k + 1 :, k] / blocks[:, k, k, None]
        blocks = blocks.at[:, k + 1 :, :].add(-factors[:, :, None] * blocks[:, k, None, :])
        rhs = rhs.at[:, k + 1 :].add(-factors * rhs[:, k, None])
    solution = jnp.zeros_like(rhs)
    for k in reversed(range(size)):
        partial = jnp.sum(blocks[:, k, k + 1 :] * solution[:, k + 1 :], axis=1)
        solution = solution.at[:, k].set((rhs[:, k] - partial) / blocks[:, k, k])
    return solution
