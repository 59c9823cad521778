"""Numeric level-scheduled scalar LDLᵀ and its solves: one loop of gathers per phase.

See `_levels` for the plan. The stored values ``v`` hold the pivots ``d`` first and
then the entries of ``L`` below the diagonal by columns; during the factorization an
entry holds ``L[i, k] d_k``, and each block of updates subtracts
``v[left] v[right] / v[pivot]`` from ``v[target]``.
"""

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from asdex_opt._lineax._ldl._levels import LevelPlan

__all__ = ["factor_levels", "solve_levels"]


def _safe(pivot: Array) -> Array:
    """Return the pivot, or one where it is zero or not finite (flagged separately)."""
    return jnp.where((pivot != 0) & jnp.isfinite(pivot), pivot, jnp.ones_like(pivot))


def _index(array) -> Array:
    """Return unsigned indices (JAX then adds no wrapping of negative ones)."""
    return jnp.asarray(array.astype("uint32" if array.max(initial=0) < 2**32 - 1 else "uint64"))


def factor_levels(plan: LevelPlan, n: int, data: Array) -> Array:
    """Return the stored values: the ``n`` pivots, then ``L`` below the diagonal."""
    source, target = (_index(a) for a in plan.assemble)
    values = jnp.zeros(plan.entries, data.dtype).at[target].add(data[source])
    updates = _index(plan.updates)

    def step(t, values):
        target, left, right, pivot = updates[t]
        change = values[left] * values[right] / _safe(values[pivot])
        return values.at[target].add(-change, mode="drop", indices_are_sorted=True)

    values = lax.fori_loop(0, updates.shape[0], step, values)
    d = values[:n]
    below = values[n:] / _safe(d)[_index(plan.columns)]
    return jnp.concatenate([d, below])


def solve_levels(plan: LevelPlan, n: int, values: Array, vector: Array, order: Array) -> Array:
    """Solve ``A x = vector`` (original numbering) with the stored values of `factor_levels`."""
    down, up = _index(plan.forward), _index(plan.backward)
    count = down.shape[0]
    x = vector[order]

    def forward(t, x):
        row, entry, column = down[t]
        gathered = x.at[column].get(mode="fill", fill_value=0)
        return x.at[row].add(-values[entry] * gathered, mode="drop", indices_are_sorted=True)

    def backward(s, x):
        row, entry, column = up[count - 1 - s]
        gathered = x.at[row].get(mode="fill", fill_value=0)
        return x.at[column].add(-values[entry] * gathered, mode="drop", indices_are_sorted=True)

    x = lax.fori_loop(0, count, forward, x)
    x = x / _safe(values[:n])
    x = lax.fori_loop(0, count, backward, x)
    return jnp.zeros_like(x).at[order].set(x)
