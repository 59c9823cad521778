"""The nonzero layout of a sparse matrix, known when tracing: hashable, so it can be static."""

import functools
import hashlib

import numpy as np

__all__ = ["HashedByKey", "SparseStructure", "gather_plan"]


class HashedByKey:
    """Equality and hash by a content key ``_key``, set in ``__init__``.

    For the static layouts (structures, block plans) that are static fields of Equinox
    modules: equal content means equal jit cache keys.
    """

    _key: tuple

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._key == other._key


class SparseStructure(HashedByKey):
    """The indices of a sparse matrix's stored entries, as a NumPy array.

    A `SparseMatrixLinearOperator` carrying a structure promises that its
    ``matrix.indices`` equal ``structure.indices``. Consumers then plan their work on the
    host, once per structure and at trace time: shifting by ``τI`` becomes an add on the
    stored diagonal entries, and `BlockDiagonalLU` assembles its blocks with one gather
    instead of a scatter. Structures compare and hash by content, so they can be static
    fields of Equinox modules.

    Attributes:
        indices: ``(nse, 2)`` row and column of every stored entry (read-only).
        shape: The matrix shape.

    Examples:
        >>> import numpy as np
        >>> s = SparseStructure(np.array([[0, 0], [0, 1], [1, 1]]), (2, 2))
        >>> s.has_full_diagonal, s.diagonal_mask.tolist()
        (True, [True, False, True])
    """

    def __init__(self, indices: np.ndarray, shape: tuple[int, int]):
        """Copies ``indices`` (an ``(nse, 2)`` integer array) for a matrix of ``shape``."""
        indices = np.array(indices, dtype=np.int64)
        if indices.ndim != 2 or indices.shape[1] != 2:
            raise ValueError(f"`SparseStructure` needs (nse, 2) indices, got {indices.shape}.")
        indices.setflags(write=False)
        self.indices = indices
        self.shape = (int(shape[0]), int(shape[1]))
        self._key = (self.shape, hashlib.blake2b(indices.tobytes(), digest_size=16).digest())

    def __repr__(self) -> str:
        return f"SparseStructure(shape={self.shape}, nse={self.nse})"

    @property
    def nse(self) -> int:
        """Number of stored entries."""
        return self.indices.shape[0]

    @functools.cached_property
    def transposed(self) -> "SparseStructure":
        """The structure of the transpose, entries in the same order."""
        return SparseStructure(self.indices[:, ::-1], self.shape[::-1])

    @functools.cached_property
    def is_tridiagonal(self) -> bool:
        """Whether every stored entry lies on the diagonal or next to it."""
        return bool(np.all(np.abs(self.indices[:, 0] - self.indices[:, 1]) <= 1))

    def band_plan(self, offset: int) -> np.ndarray:
        """The `gather_plan` of the band ``A[i, i + offset]``, entry ``min(i, i + offset)``."""
        rows, cols = self.indices.T
        m, n = self.shape
        length = max(0, min(m, n - offset) if offset >= 0 else min(m + offset, n))
        target = np.where(cols - rows == offset, np.minimum(rows, cols), -1)
        return gather_plan(target, length)

    @functools.cached_property
    def diagonal_mask(self) -> np.ndarray:
        """Which stored entries lie on the diagonal."""
        return self.indices[:, 0] == self.indices[:, 1]

    @functools.cached_property
    def has_full_diagonal(self) -> bool:
        """Whether every diagonal entry is stored exactly once."""
        diagonal = self.indices[self.diagonal_mask, 0]
        n = min(self.shape)
        return diagonal.size == n and np.array_equal(np.sort(diagonal), np.arange(n))

    @functools.cached_property
    def diagonal_positions(self) -> np.ndarray | None:
        """Where each diagonal entry ``i`` is stored, if `has_full_diagonal`, else ``None``."""
        if not self.has_full_diagonal:
            return None
        positions = np.flatnonzero(self.diagonal_mask)
        return positions[np.argsort(self.indices[positions, 0])]

    def with_diagonal(self) -> tuple["SparseStructure", np.ndarray]:
        """The structure plus any missing diagonal entries, sorted by row then column.

        Returns:
            ``(structure, source)``: entry ``k`` of the new structure is entry
            ``source[k]`` of this one, or a new (zero) entry where ``source[k] == nse``.
        """
        n = min(self.shape)
        keys = self.indices[:, 0] * self.shape[1] + self.indices[:, 1]
        if np.unique(keys).size != keys.size:
            raise ValueError("`with_diagonal` needs a structure without duplicate entries.")
        merged = np.union1d(keys, np.arange(n) * (self.shape[1] + 1))
        source = np.full(merged.size, self.nse)
        if keys.size:
            order = np.argsort(keys)
            found = np.minimum(np.searchsorted(keys[order], merged), keys.size - 1)
            present = keys[order][found] == merged
            source[present] = order[found[present]]
        indices = np.stack([merged // self.shape[1], merged % self.shape[1]], axis=1)
        return SparseStructure(indices, self.shape), source


def gather_plan(target: np.ndarray, size: int) -> np.ndarray:
    """For each of ``size`` outputs, the stored entries summed into it.

    Args:
        target: For each stored entry, its output position, or ``-1`` to leave it out.
        size: Number of outputs.

    Returns:
        ``(size, k)`` indices into the stored entries, padded with ``target.size`` (a
        zero appended to the entries).

    Examples:
        >>> gather_plan(np.array([1, -1, 1]), 3).tolist()
        [[3, 3], [0, 2], [3, 3]]
    """
    kept = np.flatnonzero(target >= 0)
    order = kept[np.argsort(target[kept], kind="stable")]
    counts = np.bincount(target[kept], minlength=size)
    width = max(int(counts.max(initial=0)), 1)
    starts = np.cumsum(counts) - counts
    rank = np.arange(order.size) - starts[target[order]]
    plan = np.full((size, width), target.size)
    plan[target[order], rank] = order
    return plan
