"""Reductions, cumulative operations and sorting: group-membership maps."""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from asdex.detection._maps import Groups, Matrix
from asdex.detection._registry import register_rule
from asdex.detection._rule import Curvature, Equation, Output, Terms


def kept_index_groups(shape: tuple[int, ...], reduced: tuple[int, ...]) -> np.ndarray:
    """For each element of an array of `shape`, its flat index once `reduced` axes are gone."""
    kept = [d for d in range(len(shape)) if d not in reduced]
    kept_shape = [shape[d] for d in kept]
    grids = np.indices(shape, sparse=True)
    group = np.zeros(shape, dtype=np.int64)
    for d, extent in zip(kept, kept_shape, strict=True):
        group = group * extent + grids[d]
    return np.broadcast_to(group, shape).reshape(-1)


def reduce_rule(eqn: Equation) -> list[Output]:
    """`reduce_*` over `axes`: each result element depends on its reduced group."""
    operand = eqn.operands[0]
    axes = tuple(eqn.params["axes"])
    out_size = eqn.out_sizes[0]
    groups = Groups(
        np.arange(out_size, dtype=np.int64), kept_index_groups(operand.shape, axes), out_size
    )
    return [Output(maps=((0, groups),))]


def arg_reduce_rule(eqn: Equation) -> list[Output]:
    """`argmax` / `argmin`: zero derivative; the result lies in `[0, extent - 1]`."""
    (axis,) = eqn.params["axes"]
    extent = eqn.operands[0].shape[axis]
    shape = eqn.out_shapes[0]
    return [Output(lower=np.zeros(shape, np.int64), upper=np.full(shape, extent - 1, np.int64))]


def cumulative_rule(eqn: Equation) -> list[Output]:
    """`cumsum` and friends: element `i` of a line depends on the elements up to `i`.

    With `reverse`, on the elements from `i` on.
    """
    shape = eqn.operands[0].shape
    axis = eqn.params["axis"]
    size = math.prod(shape)
    if size == 0:
        return [Output()]
    extent = shape[axis]
    ids = np.arange(size, dtype=np.int64).reshape(shape)
    lines = np.moveaxis(ids, axis, -1).reshape(-1, extent)
    position = np.arange(extent)
    # reaches[i, j]: line element `i` contributes to result element `j`
    reaches = position[:, None] <= position[None, :]
    if eqn.params["reverse"]:
        reaches = reaches.T
    source, target = np.nonzero(reaches)
    rows = lines[:, target].reshape(-1)
    cols = lines[:, source].reshape(-1)
    matrix = sp.csr_array((np.ones(rows.size, bool), (rows, cols)), shape=(size, size))
    return [Output(maps=((0, Matrix(matrix)),))]


def line_groups(shape: tuple[int, ...], axis: int) -> Groups:
    """Each element of an array of `shape` belongs to its line along `axis`."""
    groups = kept_index_groups(shape, (axis,))
    return Groups(groups, groups, math.prod(shape[:axis] + shape[axis + 1:]))


def sort_rule(eqn: Equation) -> list[Output]:
    """`sort` along `dimension`: result `k` holds operand `k`'s line, in some order."""
    groups = line_groups(eqn.operands[0].shape, eqn.params["dimension"])
    return [Output(maps=((k, groups),)) for k in range(len(eqn.operands))]


def top_k_rule(eqn: Equation) -> list[Output]:
    """`top_k` along `axis`: values depend on the operand's line; indices are bounded."""
    shape = eqn.operands[0].shape
    out_shape = eqn.out_shapes[0]
    axis = eqn.params.get("axis", -1) % len(shape)
    values = Groups(
        kept_index_groups(out_shape, (axis,)), kept_index_groups(shape, (axis,)),
        math.prod(shape[:axis] + shape[axis + 1:]),
    )
    indices = Output(
        lower=np.zeros(out_shape, np.int64),
        upper=np.full(out_shape, max(shape[axis] - 1, 0), np.int64),
    )
    return [Output(maps=((0, values),)), indices]


MAX_PRODUCT_TERMS = 1 << 24
"""Largest number of element pairs enumerated for an exact `reduce_prod` Hessian."""


def reduce_prod_curvature(eqn: Equation) -> Curvature | list[Terms]:
    """Terms of `reduce_prod`: each pair of distinct elements of a group.

    No element couples with itself: the Hessian of `prod(x)` has a zero diagonal.
    """
    shape = eqn.operands[0].shape
    out_size = eqn.out_sizes[0]
    group_size = math.prod(shape) // out_size if out_size else 0
    if out_size * group_size**2 > MAX_PRODUCT_TERMS:
        return Curvature.NONLINEAR
    groups = kept_index_groups(shape, tuple(eqn.params["axes"]))
    members = np.argsort(groups, kind="stable").reshape(out_size, group_size)
    first, second = np.nonzero(~np.eye(group_size, dtype=bool))
    result_elements = np.repeat(np.arange(out_size, dtype=np.int64), first.size)
    return [Terms(0, result_elements, 0, members[:, first].reshape(-1),
                  0, members[:, second].reshape(-1))]


def generic_reduce_rule(eqn: Equation) -> list[Output]:
    """`reduce` with a custom computation: each result depends on its group in every operand.

    The init values, the last operands, reach every result.
    """
    num = len(eqn.operands) // 2
    shape = eqn.operands[0].shape
    out_size = eqn.out_sizes[0]
    groups = kept_index_groups(shape, tuple(eqn.params["dimensions"]))
    reduced = Groups(np.arange(out_size, dtype=np.int64), groups, out_size)
    init = Groups(np.zeros(out_size, np.int64), np.zeros(1, np.int64), 1)
    maps = tuple((k, reduced) for k in range(num)) + tuple(
        (num + k, init) for k in range(num)
    )
    return [Output(maps=maps) for _ in range(num)]


def approx_top_k_rule(eqn: Equation) -> list[Output]:
    """`approx_top_k`: values depend on the operand's line along the reduction axis."""
    shape = eqn.operands[0].shape
    axis = eqn.params["reduction_dimension"] % len(shape)
    out_shape = eqn.out_shapes[0]
    values = Groups(
        kept_index_groups(out_shape, (axis,)), kept_index_groups(shape, (axis,)),
        math.prod(shape[:axis] + shape[axis + 1:]),
    )
    indices = Output(
        lower=np.zeros(out_shape, np.int64),
        upper=np.full(out_shape, max(shape[axis] - 1, 0), np.int64),
    )
    return [Output(maps=((0, values),)), indices]


register_rule("reduce", generic_reduce_rule, curvature=Curvature.NONLINEAR)
register_rule("approx_top_k", approx_top_k_rule, curvature=Curvature.ZERO)
register_rule("reduce_sum", reduce_rule, curvature=Curvature.ZERO)
for _name in ("reduce_max", "reduce_min"):
    register_rule(_name, reduce_rule, curvature=Curvature.ZERO, trusts_zeros=True)
for _name in ("reduce_and", "reduce_or", "reduce_xor"):
    register_rule(_name, reduce_rule, curvature=Curvature.ZERO)
register_rule("reduce_prod", reduce_rule, curvature=reduce_prod_curvature)
for _name in ("argmax", "argmin"):
    register_rule(_name, arg_reduce_rule, curvature=Curvature.ZERO)
for _name in ("cumsum", "cummax", "cummin"):
    register_rule(_name, cumulative_rule, curvature=Curvature.ZERO)
for _name in ("cumprod", "cumlogsumexp"):
    register_rule(_name, cumulative_rule, curvature=Curvature.NONLINEAR)
register_rule("sort", sort_rule, curvature=Curvature.ZERO)
register_rule("top_k", top_k_rule, curvature=Curvature.ZERO)
