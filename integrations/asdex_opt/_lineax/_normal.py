"""The Gauss-Newton matrix ``JᵀJ`` of a sparse Jacobian, with a static structure."""

import jax
import lineax as lx
import numpy as np

from asdex_opt._lineax._operator import SparseMatrixLinearOperator
from asdex_opt._lineax._structure import SparseStructure

__all__ = ["NormalProduct"]


def _small_int(array: np.ndarray) -> np.ndarray:
    return array.astype(np.int32) if array.size == 0 or array.max() < 2**31 else array


class NormalProduct:
    """Forms ``JᵀJ`` from the nonzeros of ``J`` with one gather and one segment sum.

    ``(JᵀJ)_ab = Σ_i J_ia J_ib``: every pair of nonzeros in a row of ``J`` contributes
    to one entry. The pairs and the structure of ``JᵀJ`` (plus its whole diagonal, so
    that shifts ``JᵀJ + τI`` keep it) come from the structure of ``J`` on the host, once.

    Attributes:
        jacobian: The structure of ``J``.
        structure: The structure of ``JᵀJ``.

    Examples:
        >>> import jax.numpy as jnp, numpy as np
        >>> from asdex_opt._lineax._normal import NormalProduct
        >>> from asdex_opt.lineax import SparseMatrixLinearOperator, SparseStructure
        >>> s = SparseStructure(np.array([[0, 0], [0, 1], [1, 1]]), (2, 2))
        >>> J = SparseMatrixLinearOperator.from_structure(jnp.array([1.0, 2.0, 3.0]), s)
        >>> NormalProduct(s)(J).as_matrix().tolist()
        [[1.0, 2.0], [2.0, 13.0]]
    """

    def __init__(self, jacobian: SparseStructure):
        m, n = jacobian.shape
        rows, cols = jacobian.rows, jacobian.cols  # sorted by row, then column
        counts = np.bincount(rows, minlength=m)
        starts = np.cumsum(counts) - counts
        per_entry = counts[rows]  # each nonzero pairs with every nonzero of its row
        left = np.repeat(np.arange(rows.size), per_entry)
        group_start = np.repeat(np.cumsum(per_entry) - per_entry, per_entry)
        right = np.repeat(starts[rows], per_entry) + np.arange(left.size) - group_start
        pair_keys = cols[left] * n + cols[right]
        out_keys, out = np.unique(
            np.concatenate([pair_keys, np.arange(n) * (n + 1)]), return_inverse=True
        )
        self.jacobian = jacobian
        self.left, self.right = _small_int(left), _small_int(right)
        self.out, self.num_out = _small_int(out.ravel()[: pair_keys.size]), out_keys.size
        self.structure = SparseStructure(
            np.stack([out_keys // max(n, 1), out_keys % max(n, 1)], axis=1), (n, n)
        )

    def __call__(self, jac: SparseMatrixLinearOperator) -> SparseMatrixLinearOperator:
        """``JᵀJ``, tagged symmetric positive semidefinite."""
        if jac.structure != self.jacobian:
            raise ValueError(
                f"`NormalProduct` was planned for a Jacobian of structure {self.jacobian}, "
                f"got one of structure {jac.structure}."
            )
        data = jax.ops.segment_sum(
            jac.data[self.left] * jac.data[self.right],
            self.out,
            num_segments=self.num_out,
            indices_are_sorted=False,
        )
        tags = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})
        return SparseMatrixLinearOperator.from_structure(data, self.structure, tags)
