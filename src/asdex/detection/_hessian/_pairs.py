"""The global set of second-order interactions, and the row-wise products that fill it."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from asdex.detection._maps import (
    Broadcast,
    DependencyMap,
    Groups,
    Identity,
    Pattern,
    apply_map,
    gather_rows,
)

COMPACT_AT = 1 << 25
"""Pending pairs beyond which duplicates are merged, to bound memory."""


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
    """Symmetric set of input pairs `(i, j)`, kept as canonical `i <= j` keys."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._pending: list[NDArray[np.int64]] = []
        self._count = 0

    def add_rowwise(self, a: Pattern, b: Pattern) -> None:
        """Add `a[e] x b[e]` for every row `e` (`a` and `b` have the same rows).

        That is the boolean product `aᵀ · b`, which SciPy computes with duplicates
        merged as it goes.
        """
        if a.nnz == 0 or b.nnz == 0:
            return
        product = sp.csr_array(a.T @ b, dtype=bool).tocoo()
        i = product.row.astype(np.int64)
        j = product.col.astype(np.int64)
        self._add(np.minimum(i, j) * self.n + np.maximum(i, j))

    def _add(self, keys: NDArray[np.int64]) -> None:
        self._pending.append(keys)
        self._count += keys.size
        if self._count > COMPACT_AT:
            upper = self._upper()
            rows = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(upper.indptr))
            merged = rows * self.n + upper.indices
            self._pending, self._count = [merged], merged.size

    def _upper(self) -> sp.csr_array:
        """The pairs as an upper-triangular boolean CSR matrix, without duplicates."""
        keys = np.concatenate(self._pending) if self._pending else np.zeros(0, np.int64)
        i, j = np.divmod(keys, max(self.n, 1))
        upper = sp.csr_array((np.ones(keys.size, bool), (i, j)), shape=(self.n, self.n))
        upper.sum_duplicates()
        return upper

    def coo(self) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """Rows and columns of the symmetric pattern, sorted by row then column."""
        upper = self._upper()
        symmetric = sp.csr_array(upper + upper.T, dtype=bool)
        symmetric.sum_duplicates()
        symmetric.sort_indices()
        rows = np.repeat(np.arange(self.n, dtype=np.int32), np.diff(symmetric.indptr))
        return rows, symmetric.indices.astype(np.int32)
