"""`dynamic_slice` and `dynamic_update_slice`: one window at clamped scalar starts."""

from __future__ import annotations

import numpy as np

from asdex.detection._registry import register_rule
from asdex.detection._rule import Curvature, Equation, Evaluation, Output
from asdex.detection._rules.indexing.boxes import (
    gather_map,
    scalar_starts,
    scatter_map,
    surviving_map,
    window_boxes,
)
from asdex.detection._rules.indexing.gather import with_value_bounds
from asdex.detection._rules.structural import movement_rule

_known_slice = movement_rule(moved=(0,))
_known_update = movement_rule(moved=(0, 1))


def dynamic_slice_rule(eqn: Equation) -> list[Output]:
    """`dynamic_slice(operand, *starts)`.

    Exact for known starts, else the union of the windows at every start that the
    bounds of the (clamped) starts allow.
    """
    operand, *starts = eqn.operands
    if all(s.value is not None for s in starts):
        return _known_slice(eqn)
    sizes = tuple(eqn.params["slice_sizes"])
    ndim = len(operand.shape)
    boxes = window_boxes(
        operand.shape,
        sizes,
        scalar_starts(starts, [s - w for s, w in zip(operand.shape, sizes, strict=True)], ndim),
        [(d, d) for d in range(ndim)],
        [],
    )
    dependency = gather_map(boxes)
    output = Output(maps=() if dependency is None else ((0, dependency),))
    return [with_value_bounds(eqn, output, np.zeros(boxes.size, bool))]


def dynamic_update_slice_rule(eqn: Equation) -> list[Output]:
    """`dynamic_update_slice(operand, update, *starts)`.

    The update may land in every window that the (clamped) starts allow; the operand
    elements that every such window covers are lost.
    """
    operand, update, *starts = eqn.operands
    if all(s.value is not None for s in starts):
        return _known_update(eqn)
    ndim = len(operand.shape)
    limits = [s - w for s, w in zip(operand.shape, update.shape, strict=True)]
    boxes = window_boxes(
        operand.shape, update.shape, scalar_starts(starts, limits, ndim),
        [(d, d) for d in range(ndim)], [],
    )
    maps = []
    for k, dependency in ((0, surviving_map(boxes)), (1, scatter_map(boxes))):
        if dependency is not None:
            maps.append((k, dependency))
    return [Output(maps=tuple(maps))]


register_rule("dynamic_slice", dynamic_slice_rule, curvature=Curvature.ZERO,
              evaluation=Evaluation.MOVED)
register_rule("dynamic_update_slice", dynamic_update_slice_rule, curvature=Curvature.ZERO,
              evaluation=Evaluation.MOVED)
