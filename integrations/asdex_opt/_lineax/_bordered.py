"""A direct solve, all in JAX, for small diagonal blocks bordered by a few dense rows."""

import functools
import hashlib
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
from jaxtyping import Array

from asdex_opt._lineax._block_diagonal import BlockDiagonalLU, gather_blocks, solve_blocks
from asdex_opt._lineax._definite import (
    POSITIVE_DEFINITE,
    blocks_positive_definite,
    claims_positive_definite,
)
from asdex_opt._lineax._direct import AbstractSparseDirectSolver, SparseSolveState
from asdex_opt._lineax._structure import HashedByKey, SparseStructure, gather_plan
from asdex_opt._lineax._take import gather_entries, take

__all__ = ["BorderedBlockLU"]


class _Border(HashedByKey):
    """The split of the variables into small blocks and a dense border (static, hashable).

    Attributes:
        interior: The interior variables, in the order of ``blocks``' variables.
        border: The border variables.
        blocks: The block layout of the interior (over positions in ``interior``).
    """

    def __init__(self, interior: np.ndarray, border: np.ndarray, blocks: BlockDiagonalLU):
        self.interior, self.border, self.blocks = interior, border, blocks
        digest = hashlib.blake2b(interior.tobytes() + border.tobytes(), digest_size=16)
        self._key = (digest.digest(), blocks.layout)
        self._plans: dict[tuple[SparseStructure, bool], tuple[np.ndarray, ...]] = {}

    @functools.cached_property
    def position(self) -> np.ndarray:
        """For each variable, its index in ``interior`` or in ``border``."""
        position = np.empty(self.interior.size + self.border.size, np.int64)
        position[self.interior] = np.arange(self.interior.size)
        position[self.border] = np.arange(self.border.size)
        return position

    @functools.cached_property
    def unpermute(self) -> np.ndarray:
        """Where each variable is in ``interior`` followed by ``border``."""
        return np.argsort(np.concatenate([self.interior, self.border]))

    def plans(self, structure: SparseStructure, transpose: bool) -> tuple[np.ndarray, ...]:
        """Gather plans of the four parts ``A_II`` (blocks), ``A_IK``, ``A_KI``, ``A_KK``.

        ``A_IK`` is laid out like the blocks' right-hand sides, ``(num_blocks, size, k)``;
        ``A_KI`` as ``(k, num_blocks, size)``.
        """
        key = (structure, transpose)
        if key not in self._plans:
            self._plans[key] = self._make_plans(structure, transpose)
        return self._plans[key]

    def _make_plans(self, structure: SparseStructure, transpose: bool) -> tuple[np.ndarray, ...]:
        rows, cols = structure.indices.T
        if transpose:
            rows, cols = cols, rows
        layout, k = self.blocks.layout, self.border.size
        in_border = np.zeros(self.position.size, bool)
        in_border[self.border] = True
        row_k, col_k = in_border[rows], in_border[cols]
        row_at, col_at = self.position[rows], self.position[cols]
        slots = layout.num_blocks * layout.size

        def where(mask: np.ndarray, target: np.ndarray) -> np.ndarray:
            return np.where(mask, target, -1)

        interior_rows = np.where(row_k, 0, row_at)  # any valid index where masked out
        interior_cols = np.where(col_k, 0, col_at)
        blocks = where(
            ~row_k & ~col_k,
            layout.slot[interior_rows] * layout.size + layout.position[interior_cols],
        )
        interior_border = where(~row_k & col_k, layout.slot[interior_rows] * k + col_at)
        border_interior = where(row_k & ~col_k, row_at * slots + layout.slot[interior_cols])
        border_border = where(row_k & col_k, row_at * k + col_at)
        return (
            gather_plan(blocks, slots * layout.size),
            gather_plan(interior_border, slots * k),
            gather_plan(border_interior, k * slots),
            gather_plan(border_border, k * k),
        )


class BorderedBlockLU(AbstractSparseDirectSolver):
    """Direct solve of a sparse matrix made of small blocks and a few dense rows/columns.

    Arrowhead-like patterns, e.g. the Hessian of ``Σᵢ g(xᵢ, x₀)``: once the few
    variables of high degree (the *border* ``K``) are set aside, the rest (the
    *interior* ``I``) splits into small blocks. With ``A_II`` block diagonal the solve
    is, by the Schur complement ``S = A_KK - A_KI A_II⁻¹ A_IK``,

        ``x_K = S⁻¹ (b_K - A_KI A_II⁻¹ b_I)``,  ``x_I = A_II⁻¹ (b_I - A_IK x_K)``,

    all in JAX: one batched solve of the blocks with ``k + 1`` right-hand sides and a
    dense ``k x k`` solve. Each part is assembled with a gather planned once per
    static `SparseStructure` of the operator. Unsafe for matrices whose blocks are singular even
    where the whole matrix is not (no pivoting across the border): the solve then
    reports ``lineax.RESULTS.singular``.

    Attributes:
        border: The static split of the variables.

    Examples:
        >>> import jax.numpy as jnp, lineax as lx, numpy as np
        >>> from asdex_opt.lineax import (
        ...     BorderedBlockLU, SparseMatrixLinearOperator, SparseStructure
        ... )
        >>> n = 6
        >>> rows = np.r_[np.arange(n), np.zeros(n - 1, int), np.arange(1, n)]
        >>> cols = np.r_[np.arange(n), np.arange(1, n), np.zeros(n - 1, int)]
        >>> solver = BorderedBlockLU.from_pattern(rows, cols, n, max_block_size=2)
        >>> s, _ = SparseStructure.canonical(np.c_[rows, cols], (n, n))
        >>> data = jnp.where(s.rows == s.cols, 4.0, 1.0)
        >>> A = SparseMatrixLinearOperator.from_structure(data, s)
        >>> x = lx.linear_solve(A, jnp.ones(n), solver).value
        >>> bool(jnp.allclose(A.mv(x), 1.0))
        True
    """

    border: _Border = eqx.field(static=True)

    @classmethod
    def from_pattern(
        cls,
        rows: np.ndarray,
        cols: np.ndarray,
        n: int,
        max_block_size: int = 16,
        max_border: int = 16,
    ) -> "BorderedBlockLU | None":
        """The solver for an ``n x n`` pattern, or ``None`` if it does not fit.

        The border is every variable coupled to more than ``max_block_size`` others.

        Args:
            rows: Row indices of the structural nonzeros.
            cols: Column indices of the structural nonzeros.
            n: The matrix size.
            max_block_size: Largest block of the interior.
            max_border: Largest border; ``None`` is returned for a larger one, or for
                no border at all (use `BlockDiagonalLU`).

        Returns:
            A `BorderedBlockLU`, or ``None``.
        """
        rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        off = rows != cols
        graph = scipy.sparse.coo_matrix((np.ones(off.sum()), (rows[off], cols[off])), (n, n))
        graph = ((graph + graph.T) > 0).tocsr()
        degree = np.diff(graph.indptr)
        border = np.flatnonzero(degree > max_block_size)
        if border.size == 0 or border.size > max_border or border.size == n:
            return None
        interior = np.setdiff1d(np.arange(n), border)
        inner = graph[interior][:, interior]
        inner_rows, inner_cols = inner.nonzero()
        blocks = BlockDiagonalLU.from_pattern(inner_rows, inner_cols, interior.size, max_block_size)
        if blocks is None:
            return None
        return cls(_Border(interior, border, blocks))

    def compute(
        self, state: SparseSolveState, vector: Array, options: dict[str, Any]
    ) -> tuple[Array, lx.RESULTS, dict[str, Any]]:
        """Solve the blocks with ``k + 1`` right-hand sides, then the Schur complement."""
        del options
        border, operator = self.border, state.operator
        layout, k = border.blocks.layout, border.border.size
        dtype = jnp.result_type(vector.dtype, operator.data.dtype)
        data = operator.data.astype(dtype)
        block_plan, *border_plans = border.plans(operator.structure, state.transpose)
        blocks = gather_blocks(layout, data, block_plan)
        a_ik, a_ki, a_kk = (gather_entries(data, plan) for plan in border_plans)
        shape = (layout.num_blocks, layout.size)
        blocks = blocks.reshape((*shape, layout.size))
        vector = vector.astype(dtype)
        b_i = jnp.concatenate([take(vector, border.interior), jnp.zeros(1, dtype)])
        b_i = take(b_i, layout.variable_at_slot).reshape(shape)
        rhs = jnp.concatenate([a_ik.reshape((*shape, k)), b_i[..., None]], axis=-1)
        solved = jax.vmap(solve_blocks, in_axes=(None, 2), out_axes=2)(blocks, rhs)
        a_ki = a_ki.reshape((k, *shape))
        schur = a_kk.reshape(k, k) - jnp.einsum("kbs,bsj->kj", a_ki, solved[..., :k])
        reduced = take(vector, border.border) - jnp.einsum("kbs,bs->k", a_ki, solved[..., k])
        x_k = jnp.linalg.solve(schur, reduced)
        x_i = solved[..., k] - solved[..., :k] @ x_k
        x_i = take(x_i.reshape(-1), layout.slot)
        solution = take(jnp.concatenate([x_i, x_k]), border.unpermute)
        # Singular blocks or Schur complement give non-finite values: Lineax reports those.
        stats = {}
        if claims_positive_definite(operator):
            # Positive definite exactly when the blocks and the Schur complement are.
            stats[POSITIVE_DEFINITE] = blocks_positive_definite(blocks) & blocks_positive_definite(
                schur[None]
            )
        return solution, lx.RESULTS.successful, stats
