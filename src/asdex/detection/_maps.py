"""Element dependency maps and the sparse boolean algebra that applies them.

A dependency map `D` of an operand says, for each output element, which operand
elements it depends on. The engine composes it with the operand's pattern `P`
(shape `(operand.size, n)`) into the output's pattern `D · P`. Each map kind has a
fast path: most primitives never need a general sparse product.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

Pattern = sp.csr_array
"""Boolean CSR matrix of shape `(variable.size, n)`: row `i` holds the inputs element `i`
of a variable depends on."""


SMALL = 1 << 14
"""Total stored entries up to which patterns are combined by NumPy code of our own;
SciPy's sparse routines, whose fixed cost per call is larger, take bigger ones."""

_INT32_MAX = np.iinfo(np.int32).max


def index_dtype(*extents: int) -> type[np.signedinteger]:
    """The index dtype SciPy picks for these extents: int32 when every one fits."""
    return np.int32 if max(extents, default=0) <= _INT32_MAX else np.int64


def csr(indices: NDArray[np.integer], indptr: NDArray[np.integer], shape: tuple[int, int]
        ) -> Pattern:
    """Wrap CSR index arrays in a `Pattern` without SciPy's format checks.

    The caller guarantees what the checks would establish: `indptr` has `shape[0] + 1`
    non-decreasing entries from 0 to `indices.size`, and each row's indices are unique
    and in `[0, shape[1])` (SciPy finds out lazily whether they are sorted). Both arrays
    get the `index_dtype` of the extents.
    """
    dtype = index_dtype(shape[0], shape[1], indices.size)
    pattern = object.__new__(Pattern)
    pattern._shape = (int(shape[0]), int(shape[1]))
    pattern.maxprint = 50
    pattern.indices = indices.astype(dtype, copy=False)
    pattern.indptr = indptr.astype(dtype, copy=False)
    pattern.data = np.ones(indices.size, bool)
    return pattern


@functools.lru_cache(maxsize=256)
def empty_pattern(size: int, n: int) -> Pattern:
    """A pattern with no dependencies (shared: patterns are never modified in place)."""
    dtype = index_dtype(size, n)
    return csr(np.zeros(0, dtype), np.zeros(size + 1, dtype), (size, n))


def identity_pattern(offset: int, size: int, n: int) -> Pattern:
    """Pattern of input elements `offset .. offset + size - 1` of an `n`-element input."""
    dtype = index_dtype(size, n)
    return csr(np.arange(offset, offset + size, dtype=dtype), np.arange(size + 1, dtype=dtype),
               (size, n))


@dataclasses.dataclass(frozen=True)
class Identity:
    """Output element `i` depends on operand element `i` (same size)."""


@dataclasses.dataclass(frozen=True)
class Broadcast:
    """Output element `i` depends on operand element `source[i]`; `-1` means none.

    The map of every data-movement primitive (reshape, transpose, slice, pad, gather
    with known indices, ...): each output element comes from at most one operand element.
    """

    source: NDArray[np.int64]


@dataclasses.dataclass(frozen=True)
class Groups:
    """Output element `i` depends on the operand elements of its group.

    That is, on every `j` with `operand_group[j] == output_group[i]`; group `-1`
    belongs to no group.

    The map of reductions (group = kept index) and of batched linear algebra
    (group = batch index).
    """

    output_group: NDArray[np.int64]
    operand_group: NDArray[np.int64]
    num_groups: int


@dataclasses.dataclass(frozen=True)
class Matrix:
    """A general boolean map of shape `(output.size, operand.size)`."""

    matrix: sp.csr_array


DependencyMap = Identity | Broadcast | Groups | Matrix


def gather_rows(pattern: Pattern, source: NDArray[np.int64]) -> Pattern:
    """Rows `pattern[source[i]]`, with empty rows where `source[i] == -1`."""
    source = np.asarray(source)
    size, n = pattern.shape
    if pattern.nnz == size and (np.diff(pattern.indptr) == 1).all():
        # one entry per row, the common case: row i is just column indices[i]
        taken = source >= 0
        out_indptr = np.zeros(source.size + 1, np.int64)
        np.cumsum(taken, out=out_indptr[1:])
        return csr(pattern.indices[source[taken]], out_indptr, (source.size, n))
    indptr = pattern.indptr.astype(np.int64)
    taken = source >= 0
    rows = np.where(taken, source, 0)
    starts = indptr[rows]
    lengths = np.where(taken, indptr[rows + 1] - starts, 0)
    out_indptr = np.zeros(source.size + 1, np.int64)
    np.cumsum(lengths, out=out_indptr[1:])
    total = int(out_indptr[-1])
    if source.size == size and total == pattern.nnz and np.array_equal(source, np.arange(size)):
        return pattern
    # entry t of output row i is entry t - out_indptr[i] of row source[i]
    shift = np.repeat(starts - out_indptr[:-1], lengths)
    indices = pattern.indices[shift + np.arange(total)]
    return csr(indices, out_indptr, (source.size, n))


def group_union(pattern: Pattern, dependency: Groups, out_size: int) -> Pattern:
    """Apply a `Groups` map: union the rows of each group, then hand them out."""
    member = dependency.operand_group >= 0
    columns = np.nonzero(member)[0]
    indicator = sp.csr_array(
        (np.ones(columns.size, bool), (dependency.operand_group[member], columns)),
        shape=(dependency.num_groups, pattern.shape[0]),
    )
    per_group = (indicator @ pattern).tocsr()
    per_group.sum_duplicates()
    return gather_rows(per_group, dependency.output_group)


def apply_map(dependency: DependencyMap, pattern: Pattern, out_size: int) -> Pattern:
    """Compute `D · P` for one operand."""
    if pattern.nnz == 0:
        return empty_pattern(out_size, pattern.shape[1])
    if isinstance(dependency, Identity):
        return pattern
    if isinstance(dependency, Broadcast):
        return gather_rows(pattern, dependency.source)
    if isinstance(dependency, Groups):
        return group_union(pattern, dependency, out_size)
    product = (dependency.matrix.astype(bool) @ pattern).tocsr()
    product.sum_duplicates()
    return product


def union(patterns: list[Pattern], size: int, n: int) -> Pattern:
    """Elementwise OR of patterns of the same shape, sharing inputs where possible."""
    nonempty = []
    for p in patterns:
        if p.nnz and not any(p is q for q in nonempty):
            nonempty.append(p)
    if not nonempty:
        return empty_pattern(size, n)
    if len(nonempty) == 1 or all(_same(nonempty[0], p) for p in nonempty[1:]):
        return nonempty[0]
    if sum(p.nnz for p in nonempty) <= SMALL:
        return _small_union(nonempty, size, n)
    result = nonempty[0]
    for p in nonempty[1:]:
        result = result + p
    result = sp.csr_array(result, dtype=bool)
    result.sum_duplicates()
    return result


def _same(a: Pattern, b: Pattern) -> bool:
    """Whether two patterns store the same entries in the same order."""
    return (a.nnz == b.nnz and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices))


def _small_union(patterns: list[Pattern], size: int, n: int) -> Pattern:
    """`union` by sorting the entries' flat positions `row * n + column`."""
    if size == 1:
        columns = np.unique(np.concatenate([p.indices for p in patterns]))
        return csr(columns, np.array([0, columns.size]), (1, n))
    keys = np.unique(np.concatenate([
        np.repeat(np.arange(size, dtype=np.int64) * n, np.diff(p.indptr)) + p.indices
        for p in patterns
    ]))
    rows, columns = np.divmod(keys, n)
    indptr = np.zeros(size + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=size), out=indptr[1:])
    return csr(columns, indptr, (size, n))
