"""Numeric level-scheduled scalar LDLᵀ and its solves: a few runs of batches per phase.

See `_levels` for the plan. The stored values ``v`` hold the pivots ``d`` first and
then the entries of ``L`` below the diagonal; during the factorization an entry holds
``L[i, k] d_k``. A level's first batch divides its columns' entries by their pivots
into ``u`` (one slice), and each batch of updates subtracts ``v[left] u[right]`` from
``v[target]``. Every index is in range (padding points at scratch places past the
values), so gathers and scatters skip their checks; the indices are ``int32`` (or
``int64``) and never negative, so they are not wrapped.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array

from asdex_opt._lineax._ldl._levels import LevelPlan, Run

__all__ = [
    "PivotBound",
    "bounded_pivot",
    "factor_levels",
    "pivot_bound",
    "safe_pivot",
    "solve_levels",
]

_IN = "promise_in_bounds"


def safe_pivot(pivot: Array) -> Array:
    """Return the pivot, or one where it is zero or not finite (flagged separately)."""
    return jnp.where((pivot != 0) & jnp.isfinite(pivot), pivot, jnp.ones_like(pivot))


class PivotBound(NamedTuple):
    """The bounds of a modified factorization (Gill, Murray & Wright 1981, §4.4.2.2).

    Attributes:
        active: Whether to bound the pivots (a boolean scalar, may be traced).
        beta2: ``β²``, the bound on ``l_ij² d_j`` (so ``|l_ij| √d_j ≤ β``).
        delta: ``δ > 0``, the smallest pivot.
    """

    active: Array
    beta2: Array
    delta: Array


def pivot_bound(data: Array, diagonal: Array, n: int, active: Array, relative: float) -> PivotBound:
    """Return the bounds for the matrix of stored values ``data``.

    ``β² = max(g, ξ / √(n² - 1), ε)`` with ``g`` the largest diagonal entry and ``ξ``
    the largest entry off the diagonal in magnitude (``diagonal`` marks the stored
    diagonal entries; each may be stored twice), ``δ = relative · max(g + ξ, ε)``.
    """
    magnitude = jnp.where(jnp.isfinite(data), jnp.abs(data), 0)
    gamma = jnp.max(jnp.where(diagonal, magnitude, 0), initial=0.0)
    xi = jnp.max(jnp.where(diagonal, 0, magnitude), initial=0.0)
    eps = jnp.finfo(data.dtype).eps
    beta2 = jnp.maximum(jnp.maximum(gamma, xi / max(float(np.sqrt(n * n - 1.0)), 1.0)), eps)
    delta = relative * jnp.maximum(gamma + xi, eps)
    return PivotBound(jnp.asarray(active), beta2, delta.astype(data.dtype))


def bounded_pivot(pivot: Array, largest: Array, bound: PivotBound) -> Array:
    """``max(|d|, θ² / β², δ)`` where ``bound.active``, else ``d``.

    ``pivot`` is ``d_j`` and ``largest`` is ``θ_j = max_i |l_ij d_j|`` over the
    column's entries below the diagonal: then ``|l_ij| √d̃_j ≤ β`` for the bounded
    pivot ``d̃_j``, and ``d̃_j = d_j`` where ``d_j ≥ max(θ_j² / β², δ)`` (a
    sufficiently positive definite matrix is factored unchanged).
    """
    bounded = jnp.maximum(jnp.maximum(jnp.abs(pivot), largest * largest / bound.beta2), bound.delta)
    return jnp.where(bound.active & jnp.isfinite(pivot), bounded, pivot)


def _get(array: Array, index: Array) -> Array:
    return array.at[index].get(mode=_IN, wrap_negative_indices=False)


def _add(array: Array, index: Array, change: Array, indices_are_sorted: bool = False) -> Array:
    return array.at[index].add(
        change, mode=_IN, wrap_negative_indices=False, indices_are_sorted=indices_are_sorted
    )


def _run(
    runs: tuple[Run, ...],
    items: Array,
    body: Callable[[Array, Array, Array], Array],
    x: Array,
    reverse: bool = False,
) -> Array:
    """Apply ``body(batch, block, x)`` to the batches of ``items`` ``(F, N)`` run by run.

    ``block`` is the batch's number over all runs (an ``int32`` scalar). A run of one
    batch is a static slice; a longer one, a loop of dynamic slices. ``reverse`` goes
    through the runs and their batches backwards.
    """
    first = [0]
    for _, steps, _ in runs:
        first.append(first[-1] + steps)
    pieces = list(zip(runs, first[:-1], strict=True))
    for (start, steps, size), before in reversed(pieces) if reverse else pieces:
        if steps == 1:
            x = body(items[:, start : start + size], jnp.int32(before), x)
            continue

        def step(t, x, start=start, steps=steps, size=size, before=before):
            block = steps - 1 - t if reverse else t
            batch = lax.dynamic_slice_in_dim(items, start + block * size, size, axis=1)
            return body(batch, before + block, x)

        x = lax.fori_loop(0, steps, step, x)
    return x


def factor_levels(
    plan: LevelPlan,
    arrays: dict[str, Array],
    n: int,
    data: Array,
    bound: PivotBound | None = None,
) -> tuple[Array, Array | None]:
    """Return the stored values (the ``n`` pivots, ``L`` below the diagonal, `slack` zeros).

    ``arrays``: the plan's index arrays (`operands`). With ``bound`` the pivots are
    bounded (`bounded_pivot`) where its flag is set, and the second value is the
    diagonal ``e`` added, ``L D Lᵀ = A + diag(e)`` (in the order); else ``None``.

    A column's bounded pivot needs the largest of its entries, which are final when
    its level is finalised: that level's slice holds all of them, and possibly
    entries of later levels' columns. The largest entries are scattered into a fresh
    vector of ``n + 1`` (the last place for the slice's padding past the stored
    entries) and the bounded pivots into one kept over the levels; a later level's
    column gets a provisional pivot there that its own finalisation overwrites.
    """
    source, target = arrays["assemble"]
    columns = arrays["columns"]
    values = jnp.zeros(plan.entries + plan.scratch[0], data.dtype)
    values = _add(values, target, _get(data, source))
    real = plan.entries - n

    def finalise(carry: tuple, start: Array, width: int) -> tuple:
        """Divide ``width`` entries from ``start`` (below the diagonal) by their pivots."""
        values, scaled, *bounded = carry
        below = lax.dynamic_slice_in_dim(values, n + start, width)
        column = lax.dynamic_slice_in_dim(columns, start, width)
        pivots = _get(values, column)
        if bound is not None:
            (chosen,) = bounded
            column = jnp.where(start + jnp.arange(width) < real, column, n)
            largest = jnp.zeros(n + 1, data.dtype).at[column].max(jnp.abs(below), mode=_IN)
            pivots = bounded_pivot(pivots, _get(largest, column), bound)
            bounded = [chosen.at[column].set(pivots, mode=_IN)]
        scaled = lax.dynamic_update_slice_in_dim(scaled, below / safe_pivot(pivots), n + start, 0)
        return (values, scaled, *bounded)

    carry = (values, jnp.zeros_like(values))
    if bound is not None:
        carry = (*carry, jnp.zeros(n + 1, data.dtype))
    for run, width in zip(plan.update_runs, plan.widths, strict=True):

        def batch(updates, block, carry, width=width, alone=run[1] == 1):
            del block
            target, left, right, first = updates
            start = first[0] - 1
            if alone:
                carry = finalise(carry, start, width)
            else:
                carry = lax.cond(
                    start >= 0, lambda carry: finalise(carry, start, width), lambda c: c, carry
                )
            values, scaled, *bounded = carry
            values = _add(values, target, -_get(values, left) * _get(scaled, right))
            return (values, scaled, *bounded)

        carry = _run((run,), arrays["updates"], batch, carry)
    values, scaled, *bounded = carry
    pivots, added = values[:n], None
    if bound is not None:
        # A column without entries below the diagonal has no finalisation.
        chosen = bounded[0][:n]
        finalised = jnp.where(chosen > 0, chosen, bounded_pivot(pivots, 0, bound))
        added = finalised - pivots
        pivots = finalised
    stored = jnp.concatenate([pivots, scaled[n : plan.entries], jnp.zeros(plan.slack, data.dtype)])
    return stored, added


def solve_levels(
    plan: LevelPlan, arrays: dict[str, Array], n: int, values: Array, vector: Array
) -> Array:
    """Solve ``A x = vector`` (original numbering) with the stored values of `factor_levels`.

    Each batch reads its entries of ``L`` as one slice of the stored values.
    """
    order = arrays["order"]
    offsets = arrays["offsets"]
    x = jnp.zeros(n + plan.scratch[1], vector.dtype).at[:n].set(_get(vector, order))

    def entries(block: Array, size: int) -> Array:
        return lax.dynamic_slice_in_dim(values, n + _get(offsets, block), size)

    def forward(items, block, x):
        row, column = items
        change = entries(block, row.shape[0]) * _get(x, column)
        return _add(x, row, -change, indices_are_sorted=True)

    def backward(items, block, x):
        row, column = items
        change = entries(block, row.shape[0]) * _get(x, row)
        return _add(x, column, -change)

    x = _run(plan.solve_runs, arrays["forward"], forward, x)
    x = x.at[:n].divide(safe_pivot(values[:n]))
    x = _run(plan.solve_runs, arrays["forward"], backward, x, reverse=True)
    return jnp.zeros(n, x.dtype).at[order].set(x[:n], mode=_IN, wrap_negative_indices=False)
