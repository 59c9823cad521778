"""Boxes: the operand positions that an indexed element may touch.

Gather, scatter and the dynamic slices move windows whose start positions come from
index operands. For each moved element (a gather result element, a scatter update
element) this module computes the box of operand positions it may touch: one interval
per operand dimension. A known index gives a one-position box; bounds on the index give
the union of the positions over every start within the bounds; an unknown index gives
every start the mode allows. The boxes then become dependency maps, exact where the
boxes are small, group maps (a superset) where they are too large to enumerate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from jax import lax

from asdex.detection._maps import Broadcast, DependencyMap, Groups, Identity, Matrix
from asdex.detection._rule import Operand

MAX_BOX_ENTRIES = 1 << 23
"""Boxes are enumerated exactly up to this many (element, position) pairs in total."""

Mode = lax.GatherScatterMode


@dataclasses.dataclass(frozen=True)
class Starts:
    """What is known of the start positions along the indexed operand dimensions.

    Attributes:
        dims: The operand dimension of each index component.
        lower: For each component, the lowest possible start, broadcastable to the
            elements' shape.
        upper: Likewise, the highest possible start.
        limits: For each component, the highest in-bounds start (`size - window`).
        clamps: Whether an out-of-bounds start may be clamped into range.
        drops: Whether an out-of-bounds start may drop the whole window.
    """

    dims: tuple[int, ...]
    lower: tuple[np.ndarray, ...]
    upper: tuple[np.ndarray, ...]
    limits: tuple[int, ...]
    clamps: bool = True
    drops: bool = False


def index_starts(
    indices: Operand,
    dims: Sequence[int],
    limits: Sequence[int],
    mode: tuple[bool, bool],
    window_axes: Sequence[int],
) -> Starts:
    """`Starts` from an index operand whose last axis is the index vector.

    Args:
        indices: The index operand, shape `batch + (len(dims),)`.
        dims: The operand dimension of each index component.
        limits: The highest in-bounds start of each component.
        mode: `(clamps, drops)` of the primitive's mode (see `out_of_bounds`).
        window_axes: Axes of the elements' shape that are not batch axes; they are
            inserted into the bounds so that these broadcast against the elements.
    """
    bounds = indices.bounds()
    lower, upper = [], []
    for k, limit in enumerate(limits):
        if bounds is None:  # unknown: below and above every in-bounds start
            lo, hi = np.int64(-1), np.int64(limit + 1)
        else:
            lo, hi = (np.expand_dims(b[..., k].astype(np.int64), tuple(window_axes))
                      for b in bounds)
        lower.append(lo)
        upper.append(hi)
    return Starts(tuple(dims), tuple(lower), tuple(upper), tuple(limits), *mode)


def scalar_starts(operands: Sequence[Operand], limits: Sequence[int], ndim: int) -> Starts:
    """`Starts` of `dynamic_slice` / `dynamic_update_slice`: one scalar per dimension, clamped."""
    lower, upper = [], []
    for operand, limit in zip(operands, limits, strict=True):
        bounds = operand.bounds()
        lo, hi = (-1, limit + 1) if bounds is None else bounds
        lower.append(np.full((1,) * ndim, lo, np.int64))
        upper.append(np.full((1,) * ndim, hi, np.int64))
    return Starts(tuple(range(ndim)), tuple(lower), tuple(upper), tuple(limits))


def out_of_bounds(mode: Mode, *, gather: bool) -> tuple[bool, bool]:
    """`(clamps, drops)`: what a gather/scatter `mode` does with an out-of-bounds start.

    `CLIP` clamps it into range; `FILL_OR_DROP` drops the whole window; with
    `PROMISE_IN_BOUNDS`, XLA gathers clamp and scatters drop. Any other mode is
    assumed to do either.
    """
    if mode == Mode.CLIP or (gather and mode == Mode.PROMISE_IN_BOUNDS):
        return True, False
    if mode in (Mode.FILL_OR_DROP, Mode.PROMISE_IN_BOUNDS):
        return False, True
    return True, True


@dataclasses.dataclass(frozen=True)
class Boxes:
    """For each of `m` elements, the box of operand positions it may touch.

    Attributes:
        shape: The operand's shape.
        lower: `(ndim, m)` first position of each box along each dimension.
        upper: `(ndim, m)` last position (inclusive).
        valid: `(m,)` whether the element may touch the operand at all.
        sure: `(m,)` whether its window covers the position `upper` whatever the
            indices (with a known index: whether it touches `upper`, not dropped).
        dropped: `(m,)` whether its window may be dropped.
    """

    shape: tuple[int, ...]
    lower: np.ndarray
    upper: np.ndarray
    valid: np.ndarray
    sure: np.ndarray
    dropped: np.ndarray

    @property
    def size(self) -> int:
        """Number of boxes."""
        return self.valid.size


def window_boxes(
    shape: tuple[int, ...],
    element_shape: tuple[int, ...],
    starts: Starts,
    windows: Sequence[tuple[int, int]],
    batching: Sequence[tuple[int, int]],
) -> Boxes:
    """Boxes of the elements of an array of `element_shape` moved by windows into `shape`.

    Element `e` touches, along operand dimension `d`, `start_d + offset_d`: the start is
    read from `starts` (indexed dimensions), equals `e`'s coordinate along an element
    axis (batching dimensions) or is 0; the offset is `e`'s coordinate along the window
    axis of `d`, or 0.

    Args:
        shape: The operand's shape.
        element_shape: The shape of the moved elements.
        starts: The start positions along the indexed dimensions.
        windows: `(operand_dim, element_axis)` pairs of the window dimensions.
        batching: `(operand_dim, element_axis)` pairs of the batching dimensions.
    """
    ndim = len(element_shape)
    m = math.prod(element_shape)
    lower = np.zeros((len(shape), m), np.int64)
    upper = np.zeros((len(shape), m), np.int64)
    valid = np.ones(element_shape, bool)
    sure = np.ones(element_shape, bool)
    dropped = np.zeros(element_shape, bool)

    def along(axis: int) -> np.ndarray:
        return np.arange(element_shape[axis], dtype=np.int64).reshape(
            [-1 if a == axis else 1 for a in range(ndim)]
        )

    def put(d: int, lo: np.ndarray, hi: np.ndarray) -> None:
        lower[d] += np.broadcast_to(lo, element_shape).reshape(-1)
        upper[d] += np.broadcast_to(hi, element_shape).reshape(-1)

    window_axis = dict(windows)
    for d, lo, hi, limit in zip(starts.dims, starts.lower, starts.upper, starts.limits,
                                strict=True):
        if starts.clamps:
            a, b = np.clip(lo, 0, limit), np.clip(hi, 0, limit)
        else:
            a, b = np.maximum(lo, 0), np.minimum(hi, limit)
            valid = valid & (a <= b)
        # position `b + offset` lies in the window of every start in [a, b] iff
        # offset + (b - a) < window size
        if d in window_axis:
            axis = window_axis[d]
            sure = sure & (along(axis) + (b - a) < element_shape[axis])
        else:
            sure = sure & (a == b)
        if starts.drops:
            inside = (lo >= 0) & (hi <= limit)
            sure = sure & inside
            dropped = dropped | ~inside
        put(d, a, b)
    for d, axis in [*windows, *batching]:
        put(d, along(axis), along(axis))
    valid = np.broadcast_to(valid, element_shape).reshape(-1)
    sure = np.broadcast_to(sure, element_shape).reshape(-1) & valid
    dropped = np.broadcast_to(dropped, element_shape).reshape(-1)
    return Boxes(tuple(shape), lower, upper, valid, sure, dropped)


def _strides(shape: tuple[int, ...]) -> np.ndarray:
    return np.array([math.prod(shape[d + 1:]) for d in range(len(shape))], np.int64)


def _spread_dims(boxes: Boxes) -> list[int]:
    extent = boxes.upper[:, boxes.valid] - boxes.lower[:, boxes.valid]
    return [d for d in range(len(boxes.shape)) if (extent[d] > 0).any()]


def _groups(boxes: Boxes, spread: list[int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Group ids of the elements and of the operand positions, and the number of groups.

    A group is a set of coordinates along the dimensions outside `spread`.
    """
    kept = [d for d in range(len(boxes.shape)) if d not in spread]
    element_group = np.zeros(boxes.size, np.int64)
    position = np.arange(math.prod(boxes.shape), dtype=np.int64)
    position_group = np.zeros(position.size, np.int64)
    strides = _strides(boxes.shape)
    for d in kept:
        element_group = element_group * boxes.shape[d] + boxes.lower[d]
        position_group = position_group * boxes.shape[d] + position // strides[d] % boxes.shape[d]
    element_group[~boxes.valid] = -1
    return element_group, position_group, math.prod(boxes.shape[d] for d in kept)


def _box_matrix(boxes: Boxes, spread: list[int]) -> sp.csr_array | None:
    """The `(m, operand.size)` boolean matrix of the boxes, or `None` when too large."""
    extent = boxes.upper[spread] - boxes.lower[spread] + 1
    volume = np.where(boxes.valid, np.prod(extent, axis=0), 0)
    total = int(volume.sum())
    if total > MAX_BOX_ENTRIES:
        return None
    strides = _strides(boxes.shape)
    indptr = np.zeros(boxes.size + 1, np.int64)
    np.cumsum(volume, out=indptr[1:])
    owner = np.repeat(np.arange(boxes.size), volume)
    rest = np.arange(total, dtype=np.int64) - indptr[owner]
    columns = (strides @ boxes.lower)[owner]
    for row, d in reversed(list(enumerate(spread))):
        ext = extent[row][owner]
        columns += rest % ext * strides[d]
        rest //= ext
    return sp.csr_array(
        (np.ones(total, bool), columns, indptr), shape=(boxes.size, math.prod(boxes.shape))
    )


def _is_full(boxes: Boxes, spread: list[int]) -> bool:
    """Whether every valid box spans the whole operand along the `spread` dimensions."""
    full = np.array([boxes.shape[d] - 1 for d in spread], np.int64)[:, None]
    lower, upper = boxes.lower[spread][:, boxes.valid], boxes.upper[spread][:, boxes.valid]
    return bool((lower == 0).all() and (upper == full).all())


def gather_map(boxes: Boxes) -> DependencyMap | None:
    """Map of a result whose element `i` depends on the operand positions of box `i`."""
    if not boxes.valid.any() or math.prod(boxes.shape) == 0:
        return None
    spread = _spread_dims(boxes)
    if not spread:
        return Broadcast(np.where(boxes.valid, _strides(boxes.shape) @ boxes.lower, -1))
    matrix = None if _is_full(boxes, spread) else _box_matrix(boxes, spread)
    if matrix is not None:
        return Matrix(matrix)
    element_group, position_group, num_groups = _groups(boxes, spread)
    return Groups(element_group, position_group, num_groups)


def scatter_map(boxes: Boxes) -> DependencyMap | None:
    """Map of a result whose position `j` depends on every element whose box holds `j`."""
    size = math.prod(boxes.shape)
    if not boxes.valid.any() or size == 0:
        return None
    spread = _spread_dims(boxes)
    if not spread:
        element = np.nonzero(boxes.valid)[0]
        position = (_strides(boxes.shape) @ boxes.lower)[element]
        if np.bincount(position, minlength=size).max(initial=0) <= 1:
            source = np.full(size, -1, np.int64)
            source[position] = element
            return Broadcast(source)
        matrix = sp.csr_array(
            (np.ones(element.size, bool), (position, element)), shape=(size, boxes.size)
        )
        return Matrix(matrix)
    matrix = None if _is_full(boxes, spread) else _box_matrix(boxes, spread)
    if matrix is not None:
        return Matrix(sp.csr_array(matrix.T))
    element_group, position_group, num_groups = _groups(boxes, spread)
    return Groups(position_group, element_group, num_groups)


def surviving_map(boxes: Boxes) -> DependencyMap | None:
    """Map of the operand through an overwriting scatter.

    The positions that every possible window covers lose their operand dependency.
    """
    if not boxes.sure.any():
        return Identity()
    size = math.prod(boxes.shape)
    source = np.arange(size, dtype=np.int64)
    source[_strides(boxes.shape) @ boxes.upper[:, boxes.sure]] = -1
    if (source < 0).all():
        return None
    return Broadcast(source)


def gathered_bounds(
    dependency: DependencyMap | None,
    bounds: tuple[np.ndarray, np.ndarray],
    dropped: np.ndarray,
    fill: int | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Integer bounds of a result read from a bounded operand through `dependency`.

    Element `i` of the result is one of the operand elements of row `i` of
    `dependency`, or `fill` where `dropped[i]`.

    Args:
        dependency: The result's map (`None`: no element reads the operand).
        bounds: `(lower, upper)` of the operand.
        dropped: Whether each result element may be the fill value instead.
        fill: The fill value; `None` when unknown.

    Returns:
        Flat `(lower, upper)`, or `None` when a dropped element's fill value is unknown.
    """
    if dropped.any() and fill is None:
        return None
    lo, hi = (np.asarray(b, np.int64).reshape(-1) for b in bounds)
    size = dropped.size
    big = np.iinfo(np.int64).max
    lower, upper = np.full(size, big), np.full(size, -big)
    if isinstance(dependency, Identity):
        lower, upper = lo.copy(), hi.copy()
    elif isinstance(dependency, Broadcast):
        read = dependency.source >= 0
        lower[read], upper[read] = lo[dependency.source[read]], hi[dependency.source[read]]
    elif isinstance(dependency, Matrix):
        matrix = sp.csr_array(dependency.matrix)
        read = np.diff(matrix.indptr) > 0
        starts = matrix.indptr[:-1][read]
        lower[read] = np.minimum.reduceat(lo[matrix.indices], starts)
        upper[read] = np.maximum.reduceat(hi[matrix.indices], starts)
    elif isinstance(dependency, Groups):
        group_lower = np.full(dependency.num_groups, big)
        group_upper = np.full(dependency.num_groups, -big)
        member = dependency.operand_group >= 0
        np.minimum.at(group_lower, dependency.operand_group[member], lo[member])
        np.maximum.at(group_upper, dependency.operand_group[member], hi[member])
        read = dependency.output_group >= 0
        lower[read] = group_lower[dependency.output_group[read]]
        upper[read] = group_upper[dependency.output_group[read]]
    if fill is not None:
        lower = np.where(dropped | (lower > upper), np.minimum(lower, fill), lower)
        upper = np.where(dropped | (upper < lower), np.maximum(upper, fill), upper)
    return lower, upper
