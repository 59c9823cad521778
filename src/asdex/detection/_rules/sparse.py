"""JAX sparse (`jax.experimental.sparse`) products: `bcoo_dot_general`.

`bcoo_dot_general(data, indices, rhs)` is `dot_general(L, rhs)` where `L` is the dense
array of the BCOO matrix `(data, indices)`: each stored element of `data` lands at
the position its row of `indices` names (padding indices out of range land nowhere).
With known indices the rule builds that scatter as a relation from `data` to the
positions of `L` and reuses the `dot_general` rule on `L`: the pattern is exact (a
constant sparse matrix times `x` gives the matrix's own pattern). With traced indices
a stored element may land anywhere, so every result element depends on every stored
element and on every `rhs` element that a dense `L` would reach.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from asdex.detection._maps import DependencyMap, Groups, Matrix
from asdex.detection._registry import register_rule
from asdex.detection._rule import Curvature, Equation, Operand, Output
from asdex.detection._rules.contractions import dot_general_rule


def _scatter(data: Operand, indices: np.ndarray, dense_shape: tuple[int, ...]
             ) -> tuple[np.ndarray, np.ndarray]:
    """Return `(position, element)` pairs: where in the dense array each stored element lands.

    `data` is `(*batch, nse, *dense)` (batch sides may be 1, broadcast), `indices` is
    `(*batch, nse, n_sparse)` likewise; negative indices count from the end, as JAX's
    indexing reads them, and indices out of range land nowhere.
    """
    n_batch = indices.ndim - 2
    nse, n_sparse = indices.shape[-2:]
    batch = dense_shape[:n_batch]
    sparse = np.asarray(dense_shape[n_batch:n_batch + n_sparse], dtype=np.int64)
    trailing = math.prod(dense_shape[n_batch + n_sparse:])
    idx = np.broadcast_to(indices.astype(np.int64), (*batch, nse, n_sparse))
    idx = np.where(idx < 0, idx + sparse, idx)
    inside = np.all((idx >= 0) & (idx < sparse), axis=-1)
    strides = np.array([sparse[j + 1:].prod() for j in range(n_sparse)], dtype=np.int64)
    sparse_flat = (idx * strides).sum(axis=-1)
    batch_flat = np.arange(math.prod(batch), dtype=np.int64).reshape(*batch, 1)
    base = (batch_flat * int(np.prod(sparse)) + sparse_flat) * trailing
    position = base[..., None] + np.arange(trailing, dtype=np.int64)
    elements = np.arange(data.size, dtype=np.int64).reshape(*data.shape[:n_batch + 1], trailing)
    elements = np.broadcast_to(elements, (*batch, nse, trailing))
    keep = np.broadcast_to(inside[..., None], position.shape)
    mask = data.may_be_nonzero()
    if mask is not None:
        mask = mask.reshape(*data.shape[:n_batch + 1], trailing)
        keep = keep & np.broadcast_to(mask, keep.shape)
    return position[keep], elements[keep]


def _through(dense_map: DependencyMap, positions: np.ndarray, elements: np.ndarray,
             out_size: int, data_size: int, dense_size: int) -> Matrix:
    """The map of `data`: the map of the dense array composed with the scatter."""
    if isinstance(dense_map, Groups):
        groups = dense_map.operand_group[positions]
        member = groups >= 0
        per_group = sp.csr_array(
            (np.ones(int(member.sum()), bool), (groups[member], elements[member])),
            shape=(dense_map.num_groups, data_size))
        rows = np.nonzero(dense_map.output_group >= 0)[0]
        pick = sp.csr_array(
            (np.ones(rows.size, bool), (rows, dense_map.output_group[rows])),
            shape=(out_size, dense_map.num_groups))
        product = pick @ per_group
    else:
        assert isinstance(dense_map, Matrix)
        scatter = sp.csr_array((np.ones(positions.size, bool), (positions, elements)),
                               shape=(dense_size, data_size))
        product = dense_map.matrix.astype(bool) @ scatter
    product = sp.csr_array(product, dtype=bool)
    product.sum_duplicates()
    return Matrix(product)


def bcoo_dot_general_rule(eqn: Equation) -> list[Output]:
    """`bcoo_dot_general`: the `dot_general` of the dense array the BCOO operand stands for.

    Operands are `(data, indices, rhs)`; the dense shape is `lhs_spinfo.shape`.
    """
    data, indices, rhs = eqn.operands
    dense_shape = tuple(eqn.params["lhs_spinfo"].shape)
    dense_size = math.prod(dense_shape)
    out_size = eqn.out_sizes[0]

    def dense_maps(dense: Operand, partner: Operand) -> dict[int, DependencyMap]:
        equation = Equation(eqn.primitive, {"dimension_numbers": eqn.params["dimension_numbers"]},
                            (dense, partner), eqn.out_shapes, eqn.out_dtypes)
        return dict(dot_general_rule(equation)[0].maps)

    maps: list[tuple[int, DependencyMap]] = []
    if indices.value is None:
        if data.value is None:
            maps.append((0, Groups(np.zeros(out_size, np.int64),
                                   np.zeros(data.size, np.int64), 1)))
        if rhs.value is None:
            maps.append((2, dense_maps(Operand(dense_shape, data.dtype), rhs)[1]))
        return [Output(maps=tuple(maps))]
    if data.value is None:
        positions, elements = _scatter(data, np.asarray(indices.value), dense_shape)
        dense_map = dense_maps(Operand(dense_shape, data.dtype), rhs)[0]
        maps.append((0, _through(dense_map, positions, elements, out_size, data.size,
                                 dense_size)))
    if rhs.value is None:
        positions, _ = _scatter(data, np.asarray(indices.value), dense_shape)
        stored = np.zeros(dense_size, data.dtype)
        stored[positions] = 1
        known = Operand(dense_shape, data.dtype, value=stored.reshape(dense_shape))
        maps.append((2, dense_maps(known, rhs)[1]))
    return [Output(maps=tuple(maps))]


register_rule("bcoo_dot_general", bcoo_dot_general_rule, curvature=Curvature.BILINEAR)
