"""The static structure of the interior-point KKT matrix, and its assembly.

The unknowns are ordered ``[x (n), s (mi), Δy_e (me), Δy_i (mi)]`` and the matrix is

    [ W + Σ_x + δ_w I          0         J_eᵀ    J_iᵀ ]
    [        0          Σ_s + δ_w I        0      -I   ]
    [       J_e                 0       -δ_c I      0   ]
    [       J_i                -I          0    -δ_c I ]

with ``W`` the Lagrangian Hessian, ``J_e`` / ``J_i`` the equality / inequality
Jacobians and ``s`` the inequality slacks. Its lower triangle is stored: the pattern
and a map from every contribution (Hessian and Jacobian nonzeros, diagonals, the slack
``-1`` entries) to its entry are built once on the host, so assembling a matrix is one
segment sum.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

__all__ = ["KKTStructure"]


class KKTStructure:
    """Lower-triangle pattern of the KKT matrix and the map that fills it.

    Attributes:
        size: The order of the matrix, ``n + me + 2 mi``.
        num_primal: ``n + mi`` (rows of the primal block; its inertia is positive).
        num_dual: ``me + mi`` (rows of the constraint block; its inertia is negative).
        rows: Row of each stored entry (``rows >= cols``), sorted by row, then column.
        cols: Column of each stored entry.

    Examples:
        >>> import numpy as np, jax.numpy as jnp
        >>> kkt = KKTStructure(2, 1, 0, np.array([0, 1]), np.array([0, 1]),
        ...                    np.array([0, 0]), np.array([0, 1]))
        >>> kkt.size, kkt.rows.size
        (3, 5)
        >>> data = kkt.assemble(jnp.array([2.0, 2.0]), jnp.ones(2), jnp.array([1.0, 1.0]),
        ...                     jnp.array(0.0))
        >>> kkt.dense(data).tolist()
        [[3.0, 0.0, 1.0], [0.0, 3.0, 1.0], [1.0, 1.0, 0.0]]
    """

    def __init__(
        self,
        n: int,
        num_equality: int,
        num_inequality: int,
        hess_rows: np.ndarray,
        hess_cols: np.ndarray,
        jac_rows: np.ndarray,
        jac_cols: np.ndarray,
    ):
        me, mi = num_equality, num_inequality
        primal, dual = n + mi, me + mi
        self.n, self.num_primal, self.num_dual = n, primal, dual
        self.num_inequality = mi
        self.size = size = primal + dual
        slack = np.arange(mi)
        diag_w, diag_y = np.arange(primal), primal + np.arange(dual)
        rows = np.concatenate(
            [hess_rows, diag_w, primal + jac_rows, primal + me + slack, diag_y]
        ).astype(np.int64)
        cols = np.concatenate([hess_cols, diag_w, jac_cols, n + slack, diag_y]).astype(np.int64)
        keys, target = np.unique(rows * size + cols, return_inverse=True)
        self.rows, self.cols = keys // size, keys % size
        self._target = target.ravel().astype(np.int32)
        self._num_slack_ones = mi

    @property
    def nnz(self) -> int:
        """Number of stored (lower-triangle) entries."""
        return int(self.rows.size)

    def assemble(
        self, hess: Array, diag_w: Array, jac: Array, delta_c: Array
    ) -> Array:
        """The stored entries of the KKT matrix.

        Args:
            hess: Lower-triangle Hessian nonzeros (the problem's Hessian order).
            diag_w: The diagonal added to the primal block, ``Σ + δ_w`` (``n + mi``).
            jac: The constraint Jacobian's nonzeros (the problem's Jacobian order).
            delta_c: The regularisation ``δ_c`` of the constraint block.

        Returns:
            The values at ``(rows, cols)``.
        """
        dtype = diag_w.dtype
        values = jnp.concatenate(
            [
                hess.astype(dtype),
                diag_w,
                jac.astype(dtype),
                -jnp.ones(self._num_slack_ones, dtype),
                jnp.broadcast_to(-delta_c, (self.num_dual,)).astype(dtype),
            ]
        )
        return jax.ops.segment_sum(values, self._target, num_segments=self.nnz)

    def dense(self, data: Array) -> Array:
        """The full symmetric matrix of the stored entries."""
        lower = jnp.zeros((self.size, self.size), data.dtype).at[self.rows, self.cols].set(data)
        return lower + jnp.tril(lower, -1).T

    def matvec(self, data: Array, vector: Array) -> Array:
        """The product of the full symmetric matrix with ``vector``, from the stored entries."""
        rows, cols = self.rows, self.cols
        off = rows != cols
        out = jax.ops.segment_sum(data * vector[cols], rows, num_segments=self.size)
        return out + jax.ops.segment_sum(
            jnp.where(off, data, 0) * vector[rows], cols, num_segments=self.size
        )
