"""The global set of second-order interactions, and the row-wise products that fill it."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from asdex.detection._maps import (
    SMALL,
    Broadcast,
    DependencyMap,
    Groups,
    Identity,
    Pattern,
    apply_map,
    gather_rows,
)

MAX_PARTS = 32
"""Pending products beyond which they are merged, to bound memory."""


def rows_of(dependency: DependencyMap, pattern: Pattern, rows: NDArray[np.int64] | None,
            out_size: int) -> Pattern:
    """Rows `rows` (all when `None`) of `D · P`, computing only those rows where cheap."""
    if isinstance(dependency, Identity):
        return pattern if rows is None else gather_rows(pattern, rows)
    if isinstance(dependency, Broadcast):
        source = dependency.source if rows is None else dependency.source[rows]
        return gather_rows(pattern, source)
    if isinstance(dependency, Groups) and rows is not None:
        restricted = Groups(dependency.output_group[rows], dependency.operand_group,
                            dependency.num_groups)
        return apply_map(restricted, pattern, rows.size)
    applied = apply_map(dependency, pattern, out_size)
    return applied if rows is None else gather_rows(applied, rows)


class PairSet:
    """Symmetric set of input pairs `(i, j)`.

    Small row-wise products are kept as flat keys `i * n + j`; large ones as boolean
    `(n, n)` CSR products.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self._parts: list[sp.csr_array] = []
        self._keys: list[NDArray[np.int64]] = []
        self._pending = 0

    def add_rowwise(self, a: Pattern, b: Pattern) -> None:
        """Add `a[e] x b[e]` for every row `e` (`a` and `b` have the same rows).

        That is the boolean product `aᵀ · b`: listed pair by pair when small, else
        computed by SciPy with duplicates merged as it goes; the transpose is added at
        the end.
        """
        if a.nnz == 0 or b.nnz == 0:
            return
        a_lengths, b_lengths = np.diff(a.indptr), np.diff(b.indptr)
        counts = a_lengths.astype(np.int64) * b_lengths
        total = int(counts.sum())
        if total > SMALL:
            self._parts.append(sp.csr_array(a.T @ b, dtype=bool))
            if len(self._parts) > MAX_PARTS:
                self._parts = [self._merged()]
            return
        # pair t of row e is (a[e][t // len(b[e])], b[e][t % len(b[e])])
        rows = np.repeat(np.arange(counts.size), counts)
        starts = np.zeros(counts.size, np.int64)
        np.cumsum(counts[:-1], out=starts[1:])
        within = np.arange(total) - starts[rows]
        left = a.indices[a.indptr[rows] + within // b_lengths[rows]]
        right = b.indices[b.indptr[rows] + within % b_lengths[rows]]
        self._keys.append(left.astype(np.int64) * self.n + right)
        self._pending += total
        if self._pending > MAX_PARTS * SMALL:
            self._keys = [np.unique(np.concatenate(self._keys))]
            self._pending = self._keys[0].size

    def _merged(self) -> sp.csr_array:
        total = sp.csr_array((self.n, self.n), dtype=bool)
        for part in self._parts:
            total = total + part
        return total

    def coo(self) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """Rows and columns of the symmetric pattern, sorted by row then column."""
        keys = np.concatenate([np.zeros(0, np.int64), *self._keys])
        rows, cols = np.divmod(keys, self.n)
        if not self._parts:
            rows, cols = np.divmod(np.unique(np.concatenate([keys, cols * self.n + rows])),
                                   self.n)
            return rows.astype(np.int32), cols.astype(np.int32)
        listed = sp.csr_array((np.ones(keys.size, bool), (rows, cols)), shape=(self.n, self.n))
        merged = self._merged() + listed
        symmetric = sp.csr_array(merged + merged.T, dtype=bool)
        symmetric.sum_duplicates()
        symmetric.sort_indices()
        rows = np.repeat(np.arange(self.n, dtype=np.int32), np.diff(symmetric.indptr))
        return rows, symmetric.indices.astype(np.int32)
