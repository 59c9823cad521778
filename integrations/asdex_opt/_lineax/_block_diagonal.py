"""A direct solve, all in JAX, for sparse matrices made of small diagonal blocks."""

import functools
import hashlib
from typing import Any, NamedTuple

import equinox as eqx
import jax.numpy as jnp
import lineax as lx
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
from jaxtyping import Array

from asdex_opt._lineax._definite import (
    POSITIVE_DEFINITE,
    blocks_positive_definite,
    claims_positive_definite,
    entries_2x2,
)
from asdex_opt._lineax._direct import AbstractSparseDirectSolver, SparseSolveState
from asdex_opt._lineax._structure import HashedByKey, SparseStructure, gather_plan
from asdex_opt._lineax._take import gather_entries, pad_take, take

__all__ = ["BlockDiagonalLU", "BlockLayout", "BlockPlan", "gather_blocks", "solve_blocks"]


class BlockLayout(HashedByKey):
    """Which block, and which row within it, every variable belongs to (static, hashable).

    Attributes:
        block: For each variable, the index of its block.
        position: For each variable, its row within its block.
        num_blocks: Number of blocks.
        size: Size of the largest block (smaller blocks are padded with identity).
    """

    def __init__(self, block: np.ndarray, position: np.ndarray, num_blocks: int, size: int):
        """Store read-only copies of ``block`` and ``position``."""
        self.block, self.position = np.array(block, np.int64), np.array(position, np.int64)
        self.block.setflags(write=False)
        self.position.setflags(write=False)
        self.num_blocks, self.size = int(num_blocks), int(size)
        digest = hashlib.blake2b(self.block.tobytes() + self.position.tobytes(), digest_size=16)
        self._key = (self.num_blocks, self.size, digest.digest())
        self._plans: dict[tuple[SparseStructure, bool], BlockPlan] = {}

    @functools.cached_property
    def slot(self) -> np.ndarray:
        """For each variable, its place in the flattened ``(num_blocks, size)`` vector."""
        return self.block * self.size + self.position

    @functools.cached_property
    def variable_at_slot(self) -> np.ndarray:
        """For each place in the flattened blocks, its variable (``n`` for padding)."""
        variables = np.full(self.num_blocks * self.size, self.block.size)
        variables[self.slot] = np.arange(self.block.size)
        return variables

    @functools.cached_property
    def padding(self) -> np.ndarray:
        """The flattened blocks with ones on the diagonal of padding rows."""
        padding = np.zeros((self.num_blocks * self.size, self.size))
        padded = self.variable_at_slot == self.block.size
        padding[padded, np.arange(padding.shape[0])[padded] % self.size] = 1.0
        return padding.reshape(-1)

    def gather_plan(self, structure: SparseStructure, transpose: bool) -> "BlockPlan":
        """How to assemble the flattened blocks from the stored entries of ``structure``."""
        key = (structure, transpose)
        if key not in self._plans:
            self._plans[key] = self._gather_plan(structure, transpose)
        return self._plans[key]

    def _gather_plan(self, structure: SparseStructure, transpose: bool) -> "BlockPlan":
        rows, cols = structure.rows, structure.cols
        if transpose:
            rows, cols = cols, rows
        inside = self.block[rows] == self.block[cols]
        target = np.where(inside, self.slot[rows] * self.size + self.position[cols], -1)
        gather = gather_plan(target, self.num_blocks * self.size**2)
        return BlockPlan(gather, np.flatnonzero(~inside))


class BlockPlan(NamedTuple):
    """A gather plan of the flattened blocks, and the stored entries outside every block.

    Attributes:
        gather: ``(num_blocks * size * size, k)`` indices into the stored entries,
            padded with ``nse`` (see `gather_plan`).
        outside: The stored entries that lie outside the blocks (they must be zero).
    """

    gather: np.ndarray
    outside: np.ndarray


class BlockDiagonalLU(AbstractSparseDirectSolver):
    """Direct solve of a sparse matrix that is block diagonal up to a permutation.

    Built from a sparsity pattern (`from_pattern`) whose graph splits into small
    connected components, e.g. the 2 x 2 blocks of the extended Rosenbrock Hessian or a
    diagonal. Each solve assembles one dense block per component and solves all blocks
    at once (closed form up to 2 x 2, else Gaussian elimination with partial pivoting),
    entirely in JAX (no host callback), so it is cheap inside ``jit`` and on
    accelerators: the assembly is one gather, planned from the operator's static
    `SparseStructure` when tracing. Matrices from the pattern plus a diagonal
    (``H + λI``) fit too. A nonzero outside the blocks, or a singular block, returns
    ``lineax.RESULTS.singular``.

    Attributes:
        layout: The `BlockLayout` of the variables.

    Examples:
        >>> import jax.numpy as jnp, lineax as lx, numpy as np
        >>> from jax.experimental.sparse import BCOO
        >>> from asdex_opt.lineax import BlockDiagonalLU, SparseMatrixLinearOperator
        >>> dense = jnp.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 4.0]])
        >>> A = BCOO.fromdense(dense)
        >>> rows, cols = np.asarray(A.indices).T
        >>> solver = BlockDiagonalLU.from_pattern(rows, cols, 3)
        >>> x = lx.linear_solve(SparseMatrixLinearOperator(A), jnp.array([3.0, 3.0, 4.0]), solver)
        >>> x.value
        Array([1., 1., 1.], dtype=float32)
    """

    layout: BlockLayout = eqx.field(static=True)

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
        return cls(BlockLayout(block, position, num_blocks, size))

    @property
    def num_blocks(self) -> int:
        """Number of blocks."""
        return self.layout.num_blocks

    @property
    def block_size(self) -> int:
        """Size of the largest block."""
        return self.layout.size

    def compute(
        self, state: SparseSolveState, vector: Array, options: dict[str, Any]
    ) -> tuple[Array, lx.RESULTS, dict[str, Any]]:
        """Assemble the dense blocks and solve them all at once."""
        del options
        layout, operator = self.layout, state.operator
        if operator.shape[0] != layout.block.size:
            raise ValueError(
                f"This `BlockDiagonalLU` was built for {layout.block.size} variables, but "
                f"the operator has shape {operator.shape}."
            )
        dtype = jnp.result_type(vector.dtype, operator.data.dtype)
        plan = layout.gather_plan(operator.structure, state.transpose)
        data = operator.data.astype(dtype)
        blocks = gather_blocks(layout, data, plan.gather)
        fits = jnp.all(take(data, plan.outside) == 0) if plan.outside.size else jnp.array(True)
        shape = (layout.num_blocks, layout.size)
        blocks = blocks.reshape((*shape, layout.size))
        rhs = pad_take(vector.astype(dtype), layout.variable_at_slot).reshape(shape)
        solution = solve_blocks(blocks, rhs)
        solution = take(solution.reshape(-1), layout.slot)
        # A singular block gives a non-finite solution, which Lineax reports as singular.
        result = lx.RESULTS.where(fits, lx.RESULTS.successful, lx.RESULTS.singular)
        stats = {}
        if claims_positive_definite(operator):
            stats[POSITIVE_DEFINITE] = fits & blocks_positive_definite(blocks)
        return solution, result, stats


def gather_blocks(layout: BlockLayout, data: Array, plan: np.ndarray) -> Array:
    """The flattened blocks from the stored entries, by the layout's gather plan."""
    blocks = gather_entries(data, plan)
    if layout.padding.any():
        blocks = blocks + layout.padding.astype(data.dtype)
    return blocks


def solve_blocks(blocks: Array, rhs: Array) -> Array:
    """Solve a batch ``(B, s, s)`` of small systems, vectorised over the batch.

    ``s ≤ 2`` in closed form (Cramer's rule, forward stable for 2 x 2), larger blocks by
    Gaussian elimination with partial pivoting unrolled over ``s`` (no per-block LAPACK
    call).
    """
    size = blocks.shape[-1]
    if size == 1:
        return rhs / blocks[:, :, 0]
    if size == 2:
        a, b, c, d = entries_2x2(blocks)
        first = d * rhs[:, 0] - b * rhs[:, 1]
        second = a * rhs[:, 1] - c * rhs[:, 0]
        return jnp.stack([first, second], axis=1) / (a * d - b * c)[:, None]
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
