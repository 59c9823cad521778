"""The nonzero layout of a sparse matrix, known when tracing: hashable, so it can be static."""

import functools
import hashlib

import numpy as np

import asdex

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


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=np.int64)
    array.setflags(write=False)
    return array


class SparseStructure(HashedByKey):
    """Where the stored entries of a sparse matrix are: sorted, unique, in range.

    The one static layout of a `SparseMatrixLinearOperator`: entry ``k`` of its data
    sits at ``(rows[k], cols[k])``, the entries sorted by row, then column, with no
    duplicates (the order of ``asdex.SparsityPattern`` and of asdex's BCOO output).
    Consumers plan their work on the host, once per structure and at trace time:
    shifting by ``τI`` is an add on the stored diagonal entries, `BlockDiagonalLU`
    assembles its blocks with one gather. Structures compare and hash by content, so
    they can be static fields of Equinox modules.

    Attributes:
        indices: ``(nse, 2)`` row and column of every stored entry (read-only).
        rows: Row of every stored entry (read-only).
        cols: Column of every stored entry (read-only).
        shape: The matrix shape ``(m, n)``.

    Examples:
        >>> import numpy as np
        >>> from asdex_opt.lineax import SparseStructure
        >>> s = SparseStructure(np.array([[0, 0], [0, 1], [1, 1]]), (2, 2))
        >>> s.has_full_diagonal, s.is_symmetric, s.diagonal_mask.tolist()
        (True, False, [True, False, True])
    """

    def __init__(self, indices: np.ndarray, shape: tuple[int, int]):
        """Check and copy the ``(nse, 2)`` entries of a matrix of ``shape``.

        Raises:
            ValueError: If the entries are out of range, unsorted or duplicated (use
                `SparseStructure.canonical` to sort and merge them).
        """
        indices = np.asarray(indices)
        if indices.ndim != 2 or indices.shape[1] != 2:
            raise ValueError(f"`SparseStructure` needs (nse, 2) indices, got {indices.shape}.")
        self.indices = _read_only(indices)
        self.rows, self.cols = self.indices[:, 0], self.indices[:, 1]
        self.shape = (int(shape[0]), int(shape[1]))
        m, n = self.shape
        inside = np.all((self.rows >= 0) & (self.rows < m) & (self.cols >= 0) & (self.cols < n))
        keys = self.rows * n + self.cols
        if not inside or np.any(keys[1:] <= keys[:-1]):
            raise ValueError(
                "`SparseStructure` needs in-range entries sorted by row, then column, "
                "without duplicates; `SparseStructure.canonical` sorts and merges them."
            )
        digest = hashlib.blake2b(keys.tobytes(), digest_size=16).digest()
        self._key = (self.shape, digest)

    @classmethod
    def from_pattern(cls, pattern: asdex.SparsityPattern) -> "SparseStructure":
        """The structure of an ``asdex.SparsityPattern`` (already in this order).

        Examples:
            >>> import asdex
            >>> from asdex_opt.lineax import SparseStructure
            >>> p = asdex.SparsityPattern.from_coo([1, 0], [0, 1], (2, 2))
            >>> SparseStructure.from_pattern(p).rows.tolist()
            [0, 1]
        """
        return cls(np.stack([pattern.rows, pattern.cols], axis=1), pattern.shape)

    @classmethod
    def canonical(
        cls, indices: np.ndarray, shape: tuple[int, int]
    ) -> tuple["SparseStructure", np.ndarray | None]:
        """The structure of arbitrary ``(nse, 2)`` indices, and where each entry goes.

        Returns:
            ``(structure, target)``: entry ``k`` of ``indices`` is summed into stored
            entry ``target[k]`` (``-1`` for an out-of-range padding entry);
            ``target`` is ``None`` when the indices are already canonical.

        Examples:
            >>> import numpy as np
            >>> from asdex_opt.lineax import SparseStructure
            >>> s, target = SparseStructure.canonical(np.array([[1, 1], [0, 0], [1, 1]]), (2, 2))
            >>> s.rows.tolist(), target.tolist()
            ([0, 1], [1, 0, 1])
        """
        indices = np.asarray(indices, np.int64).reshape(-1, 2)
        m, n = int(shape[0]), int(shape[1])
        rows, cols = indices[:, 0], indices[:, 1]
        valid = (rows >= 0) & (rows < m) & (cols >= 0) & (cols < n)
        keys = rows * n + cols
        if np.all(valid) and np.all(keys[1:] > keys[:-1]):
            return cls(indices, (m, n)), None
        unique, inverse = np.unique(keys[valid], return_inverse=True)
        target = np.full(keys.size, -1, np.int64)
        target[valid] = inverse.ravel()
        return _from_keys(unique, (m, n)), target

    def __repr__(self) -> str:
        return f"SparseStructure(shape={self.shape}, nse={self.nse})"

    @property
    def nse(self) -> int:
        """Number of stored entries."""
        return self.rows.size

    @functools.cached_property
    def transpose_order(self) -> np.ndarray:
        """The stored entries in the order of the transpose's structure."""
        return np.lexsort((self.rows, self.cols))

    @functools.cached_property
    def transposed(self) -> "SparseStructure":
        """The structure of the transpose (data reordered by `transpose_order`)."""
        return SparseStructure(self.indices[self.transpose_order, ::-1], self.shape[::-1])

    @functools.cached_property
    def is_symmetric(self) -> bool:
        """Whether the pattern equals its transpose (both triangles stored)."""
        return self.shape[0] == self.shape[1] and self == self.transposed

    @functools.cached_property
    def is_tridiagonal(self) -> bool:
        """Whether every stored entry lies on the diagonal or next to it."""
        return bool(np.all(np.abs(self.rows - self.cols) <= 1))

    def band_plan(self, offset: int) -> np.ndarray:
        """The `gather_plan` of the band ``A[i, i + offset]``, entry ``min(i, i + offset)``."""
        m, n = self.shape
        length = max(0, min(m, n - offset) if offset >= 0 else min(m + offset, n))
        target = np.where(self.cols - self.rows == offset, np.minimum(self.rows, self.cols), -1)
        return gather_plan(target, length)

    @functools.cached_property
    def diagonal_mask(self) -> np.ndarray:
        """Which stored entries lie on the diagonal."""
        return self.rows == self.cols

    @functools.cached_property
    def has_full_diagonal(self) -> bool:
        """Whether every diagonal entry is stored."""
        return int(np.count_nonzero(self.diagonal_mask)) == min(self.shape)

    @functools.cached_property
    def diagonal_positions(self) -> np.ndarray | None:
        """Where each diagonal entry ``i`` is stored, if `has_full_diagonal`, else ``None``."""
        return np.flatnonzero(self.diagonal_mask) if self.has_full_diagonal else None

    def with_diagonal(self) -> tuple["SparseStructure", np.ndarray]:
        """The structure plus any missing diagonal entries.

        Returns:
            ``(structure, source)``: entry ``k`` of the new structure is entry
            ``source[k]`` of this one, or a new (zero) entry where ``source[k] == nse``.
        """
        n = self.shape[1]
        keys = self.rows * n + self.cols
        merged = np.union1d(keys, np.arange(min(self.shape)) * (n + 1))
        found = np.minimum(np.searchsorted(keys, merged), max(keys.size - 1, 0))
        present = keys[found] == merged if keys.size else np.zeros(merged.size, bool)
        source = np.where(present, found, self.nse)
        return _from_keys(merged, self.shape), source


def _from_keys(keys: np.ndarray, shape: tuple[int, int]) -> SparseStructure:
    """The structure of sorted, unique keys ``row * n + col``."""
    n = max(int(shape[1]), 1)
    return SparseStructure(np.stack([keys // n, keys % n], axis=1), shape)


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
