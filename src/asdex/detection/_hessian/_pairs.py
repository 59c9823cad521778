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
    """Symmetric set of input pairs `(i, j)`, kept as boolean `(n, n)` CSR products."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._parts: list[sp.csr_array] = []

    def add_rowwise(self, a: Pattern, b: Pattern) -> None:
        """Add `a[e] x b[e]` for every row `e` (`a` and `b` have the same rows).

        That is the boolean product `aᵀ · b`, which SciPy computes with duplicates
        merged as it goes; the transpose is added at the end.
        """
        if a.nnz == 0 or b.nnz == 0:
            return
        self._parts.append(sp.csr_array(a.T @ b, dtype=bool))
        if len(self._parts) > MAX_PARTS:
            self._parts = [self._merged()]

    def _merged(self) -> sp.csr_array:
        total = sp.csr_array((self.n, self.n), dtype=bool)
        for part in self._parts:
            total = total + part
        return total

    def coo(self) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
        """Rows and columns of the symmetric pattern, sorted by row then column."""
        merged = self._merged()
        symmetric = sp.csr_array(merged + merged.T, dtype=bool)
        symmetric.sum_duplicates()
        symmetric.sort_indices()
        rows = np.repeat(np.arange(self.n, dtype=np.int32), np.diff(symmetric.indptr))
        return rows, symmetric.indices.astype(np.int32)
