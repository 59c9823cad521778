"""`gather`: each result element reads one operand position per value of its indices."""

from __future__ import annotations

import dataclasses

import numpy as np

from asdex.detection import _jax
from asdex.detection._registry import register_rule
from asdex.detection._rule import Curvature, Equation, Evaluation, Output
from asdex.detection._rules.indexing.boxes import (
    Boxes,
    gather_map,
    gathered_bounds,
    index_starts,
    out_of_bounds,
    window_boxes,
)
from asdex.detection._rules.structural import evaluate_on_ids, split_sources


def gather_boxes(eqn: Equation) -> Boxes:
    """The operand positions each result element of a `gather` may read."""
    operand, indices = eqn.operands
    dn = eqn.params["dimension_numbers"]
    sizes = eqn.params["slice_sizes"]
    out_shape = eqn.out_shapes[0]
    offset_axes = [int(a) for a in dn.offset_dims]
    batch_axes = [a for a in range(len(out_shape)) if a not in offset_axes]
    skipped = {int(d) for d in (*dn.collapsed_slice_dims, *dn.operand_batching_dims)}
    window_dims = [d for d in range(len(operand.shape)) if d not in skipped]
    index_dims = [int(d) for d in dn.start_index_map]
    starts = index_starts(
        indices,
        index_dims,
        [operand.shape[d] - sizes[d] for d in index_dims],
        out_of_bounds(eqn.params["mode"], gather=True),
        offset_axes,
    )
    batching = [
        (int(d), batch_axes[int(t)])
        for d, t in zip(dn.operand_batching_dims, dn.start_indices_batching_dims, strict=True)
    ]
    return window_boxes(
        operand.shape, out_shape, starts, list(zip(window_dims, offset_axes, strict=True)),
        batching,
    )


def with_value_bounds(eqn: Equation, output: Output, dropped: np.ndarray) -> Output:
    """`output` with the bounds of an integer result read from a bounded operand.

    Dropped elements hold the equation's `fill_value`.
    """
    bounds = eqn.operands[0].bounds()
    if bounds is None or not _jax.is_integer(eqn.out_dtypes[0]):
        return output
    fill = eqn.params.get("fill_value")
    fill = None if fill is None else int(fill)
    moved = gathered_bounds(dict(output.maps).get(0), bounds, dropped, fill)
    if moved is None:
        return output
    shape = eqn.out_shapes[0]
    return dataclasses.replace(output, lower=moved[0].reshape(shape), upper=moved[1].reshape(shape))


def gather_rule(eqn: Equation) -> list[Output]:
    """`gather`: the boxes of the possible starts (one position each for known indices).

    Filled (dropped) elements depend on nothing. Known indices under a mode that may
    either clamp or drop are resolved by JAX itself, on element ids.
    """
    either = out_of_bounds(eqn.params["mode"], gather=True) == (True, True)
    if eqn.operands[1].value is not None and either:
        ids = evaluate_on_ids(eqn, (0,), fill_value=-1)[0]
        output, dropped = split_sources(eqn, (0,), ids), ids < 0
    else:
        boxes = gather_boxes(eqn)
        dependency = gather_map(boxes)
        output = Output(maps=() if dependency is None else ((0, dependency),))
        dropped = boxes.dropped
    return [with_value_bounds(eqn, output, dropped)]


register_rule("gather", gather_rule, curvature=Curvature.ZERO, evaluation=Evaluation.MOVED)
