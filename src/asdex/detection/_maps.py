"""Element dependency maps and the sparse boolean algebra that applies them.

A dependency map `D` of an operand says, for each output element, which operand
elements it depends on. The engine composes it with the operand's pattern `P`
(shape `(operand.size, n)`) into the output's pattern `D · P`. Each map kind has a
fast path: most primitives never need a general sparse product.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

Pattern = sp.csr_array
"""Boolean CSR matrix of shape `(variable.size, n)`: row `i` holds the inputs element `i`
of a variable depends on."""


def empty_pattern(size: int, n: int) -> Pattern:
    """A pattern with no dependencies."""
    return sp.csr_array(
        (np.zeros(0, bool), np.zeros(0, np.int32), np.zeros(size + 1, np.int32)), shape=(size, n)
    )


def identity_pattern(offset: int, size: int, n: int) -> Pattern:
    """Pattern of input elements `offset .. offset + size - 1` of an `n`-element input."""
    return sp.csr_array(
        (np.ones(size, bool), np.arange(offset, offset + size, dtype=np.int32),
         np.arange(size + 1, dtype=np.int32)),
        shape=(size, n),
    )


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
    size, n = pattern.shape
    # One empty row appended at index `size` stands for -1; scipy's row indexing is C++.
    indptr = np.append(pattern.indptr, pattern.indptr[-1])
    extended = sp.csr_array((pattern.data, pattern.indices, indptr), shape=(size + 1, n))
    rows = extended[np.where(np.asarray(source) >= 0, source, size)]
    return sp.csr_array(rows)


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
    result = nonempty[0]
    for p in nonempty[1:]:
        result = result + p
    if len(nonempty) > 1:
        result = sp.csr_array(result, dtype=bool)
        result.sum_duplicates()
    return result
