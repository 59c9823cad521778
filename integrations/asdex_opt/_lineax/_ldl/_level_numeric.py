"""Numeric level-scheduled scalar LDLᵀ and its solves: a few runs of batches per phase.

See `_levels` for the plan. The stored values ``v`` hold the pivots ``d`` first and
then the entries of ``L`` below the diagonal by columns; during the factorization an
entry holds ``L[i, k] d_k``, and each batch of updates subtracts
``v[left] v[right] / v[pivot]`` from ``v[target]``. Every index is in range (padding
points at scratch places past the values), so gathers and scatters skip their checks.
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


def _run(
    runs: tuple[Run, ...], items: Array, body: Callable[[Array, Array], Array], x: Array,
    reverse: bool = False,
) -> Array:
    """Apply ``body(batch, x)`` to the batches of ``items`` ``(F, N)`` run by run.

    A run of one batch is a static slice; a longer one, a loop of dynamic slices.
    ``reverse`` goes through the runs and their batches backwards.
    """
    for start, steps, size in reversed(runs) if reverse else runs:
        if steps == 1:
            x = body(items[:, start : start + size], x)
            continue

        def step(t, x, start=start, steps=steps, size=size):
            block = steps - 1 - t if reverse else t
            batch = lax.dynamic_slice_in_dim(items, start + block * size, size, axis=1)
            return body(batch, x)

        x = lax.fori_loop(0, steps, step, x)
    return x


def factor_levels(plan: LevelPlan, arrays: dict[str, Array], n: int, data: Array) -> Array:
    """Return the stored values: the ``n`` pivots, then ``L`` below the diagonal.

    ``arrays``: the plan's index arrays (`operands`).
    """
    source, target = arrays["assemble"]
    values = jnp.zeros(plan.entries + plan.scratch[0], data.dtype)
    values = values.at[target].add(data[source], mode=_IN)

    def batch(updates, values):
        target, left, right, pivot = updates
        get = values.at
        change = get[left].get(mode=_IN) * get[right].get(mode=_IN)
        change = change / safe_pivot(get[pivot].get(mode=_IN))
        return values.at[target].add(-change, mode=_IN)

    values = _run(plan.update_runs, arrays["updates"], batch, values)
    d = values[:n]
    below = values[n : plan.entries] / safe_pivot(d)[arrays["columns"]]
    return jnp.concatenate([d, below])


def solve_levels(
    plan: LevelPlan, arrays: dict[str, Array], n: int, values: Array, vector: Array
) -> Array:
    """Solve ``A x = vector`` (original numbering) with the stored values of `factor_levels`."""
    order = arrays["order"]
    x = jnp.zeros(n + plan.scratch[1], vector.dtype).at[: n].set(vector[order])

    def forward(items, x):
        row, entry, column = items
        change = values.at[entry].get(mode=_IN) * x.at[column].get(mode=_IN)
        return x.at[row].add(-change, mode=_IN, indices_are_sorted=True)

    def backward(items, x):
        row, entry, column = items
        change = values.at[entry].get(mode=_IN) * x.at[row].get(mode=_IN)
        return x.at[column].add(-change, mode=_IN, indices_are_sorted=True)

    x = _run(plan.solve_runs, arrays["forward"], forward, x)
    x = x.at[:n].divide(safe_pivot(values[:n]))
    x = _run(plan.solve_runs, arrays["backward"], backward, x, reverse=True)
    return jnp.zeros(n, x.dtype).at[order].set(x[:n])
