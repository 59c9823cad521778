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

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from asdex_opt._lineax._ldl._levels import LevelPlan, Run

__all__ = ["factor_levels", "safe_pivot", "solve_levels"]

_IN = "promise_in_bounds"


def safe_pivot(pivot: Array) -> Array:
    """Return the pivot, or one where it is zero or not finite (flagged separately)."""
    return jnp.where((pivot != 0) & jnp.isfinite(pivot), pivot, jnp.ones_like(pivot))


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


def factor_levels(plan: LevelPlan, arrays: dict[str, Array], n: int, data: Array) -> Array:
    """Return the stored values: the ``n`` pivots, ``L`` below the diagonal, `slack` zeros.

    ``arrays``: the plan's index arrays (`operands`).
    """
    source, target = arrays["assemble"]
    columns = arrays["columns"]
    values = jnp.zeros(plan.entries + plan.scratch[0], data.dtype)
    values = _add(values, target, _get(data, source))

    def finalise(carry: tuple[Array, Array], start: Array, width: int) -> tuple[Array, Array]:
        """Divide ``width`` entries from ``start`` (below the diagonal) by their pivots."""
        values, scaled = carry
        below = lax.dynamic_slice_in_dim(values, n + start, width)
        pivots = _get(values, lax.dynamic_slice_in_dim(columns, start, width))
        scaled = lax.dynamic_update_slice_in_dim(scaled, below / safe_pivot(pivots), n + start, 0)
        return values, scaled

    carry = (values, jnp.zeros_like(values))
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
            values, scaled = carry
            values = _add(values, target, -_get(values, left) * _get(scaled, right))
            return values, scaled

        carry = _run((run,), arrays["updates"], batch, carry)
    values, scaled = carry
    return jnp.concatenate(
        [values[:n], scaled[n : plan.entries], jnp.zeros(plan.slack, data.dtype)]
    )


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
