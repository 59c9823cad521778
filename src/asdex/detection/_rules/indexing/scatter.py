"""The scatter family: `scatter`, `scatter-add`, `-sub`, `-mul`, `-min`, `-max`.

A result position depends on every update element that may land on it, and on the
operand element there unless a plain `scatter` surely overwrites it. Repeated indices
make several updates land on one position; for plain `scatter` which of them wins is
up to the backend, so all of them count.

XLA departs from those semantics when the index vector is empty and several updates
land on the one window: on CPU it may keep only one of them, or lay the updates out
elementwise over the operand. There every update element counts for every position.
"""

from __future__ import annotations

import math

import numpy as np

from asdex.detection._maps import DependencyMap, Groups, Identity
from asdex.detection._registry import register_rule
from asdex.detection._rule import Curvature, Equation, Evaluation, Output
from asdex.detection._rules.indexing.boxes import (
    Boxes,
    index_starts,
    out_of_bounds,
    scatter_map,
    surviving_map,
    window_boxes,
)


def scatter_boxes(eqn: Equation) -> Boxes:
    """The operand positions each update element of a scatter may land on."""
    operand, indices, updates = eqn.operands
    dn = eqn.params["dimension_numbers"]
    window_axes = [int(a) for a in dn.update_window_dims]
    scatter_axes = [a for a in range(len(updates.shape)) if a not in window_axes]
    skipped = {int(d) for d in (*dn.inserted_window_dims, *dn.operand_batching_dims)}
    window_dims = [d for d in range(len(operand.shape)) if d not in skipped]
    window = dict.fromkeys(range(len(operand.shape)), 1)
    window.update({d: updates.shape[a] for d, a in zip(window_dims, window_axes, strict=True)})
    index_dims = [int(d) for d in dn.scatter_dims_to_operand_dims]
    starts = index_starts(
        indices,
        index_dims,
        [operand.shape[d] - window[d] for d in index_dims],
        out_of_bounds(eqn.params["mode"], gather=False),
        window_axes,
    )
    batching = [
        (int(d), scatter_axes[int(t)])
        for d, t in zip(dn.operand_batching_dims, dn.scatter_indices_batching_dims, strict=True)
    ]
    return window_boxes(
        operand.shape, updates.shape, starts, list(zip(window_dims, window_axes, strict=True)),
        batching,
    )


def scatter_outputs(
    boxes: Boxes, operand_map: DependencyMap | None, updates_index: int
) -> list[Output]:
    """The output of a scatter-like primitive, given the operand's map."""
    maps = []
    if operand_map is not None:
        maps.append((0, operand_map))
    updates_map = scatter_map(boxes)
    if updates_map is not None:
        maps.append((updates_index, updates_map))
    return [Output(maps=tuple(maps))]


def _collides_without_indices(eqn: Equation) -> bool:
    """Whether several updates land on one window through an empty index vector."""
    _, _, updates = eqn.operands
    dn = eqn.params["dimension_numbers"]
    window_axes = set(dn.update_window_dims)
    scatter_sizes = [side for a, side in enumerate(updates.shape) if a not in window_axes]
    return not dn.scatter_dims_to_operand_dims and math.prod(scatter_sizes) > 1


def _anywhere_outputs(eqn: Equation) -> list[Output]:
    """Every result position may depend on its operand element and on every update."""
    operand, _, updates = eqn.operands
    if not math.prod(operand.shape):
        return [Output(maps=())]
    everywhere = Groups(
        np.zeros(math.prod(operand.shape), np.int64),
        np.zeros(math.prod(updates.shape), np.int64),
        1,
    )
    return [Output(maps=((0, Identity()), (2, everywhere)))]


def combining_rule(eqn: Equation) -> list[Output]:
    """`scatter-add` and friends: every operand element is kept and combined."""
    if _collides_without_indices(eqn):
        return _anywhere_outputs(eqn)
    return scatter_outputs(scatter_boxes(eqn), Identity(), 2)


def scatter_rule(eqn: Equation) -> list[Output]:
    """`scatter`: surely overwritten operand elements are lost.

    With an `update_jaxpr` (`lax.scatter_apply`) the positions hit are functions of the
    operand's elements, which are then kept.
    """
    if _collides_without_indices(eqn):
        return _anywhere_outputs(eqn)
    boxes = scatter_boxes(eqn)
    overwrites = eqn.params["update_jaxpr"] is None
    return scatter_outputs(boxes, surviving_map(boxes) if overwrites else Identity(), 2)


def _scatter_curvature(eqn: Equation) -> Curvature:
    return Curvature.ZERO if eqn.params["update_jaxpr"] is None else Curvature.NONLINEAR


def _scatter_mul_curvature(eqn: Equation) -> Curvature:
    """Bilinear for unique indices; repeated ones multiply updates with each other too."""
    return Curvature.BILINEAR if eqn.params["unique_indices"] else Curvature.NONLINEAR


register_rule("scatter", scatter_rule, curvature=_scatter_curvature, evaluation=Evaluation.MOVED)
for _name in ("scatter-add", "scatter-sub", "scatter-min", "scatter-max"):
    register_rule(_name, combining_rule, curvature=Curvature.ZERO)
register_rule("scatter-mul", combining_rule, curvature=_scatter_mul_curvature)
