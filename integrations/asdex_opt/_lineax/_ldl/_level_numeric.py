"""Numeric level-scheduled scalar LDLᵀ and its solves: one loop of gathers per phase.

See `_levels` for the plan. The stored values ``v`` hold the pivots ``d`` first and
then the entries of ``L`` below the diagonal by columns; during the factorization an
entry holds ``L[i, k] d_k``, and each block of updates subtracts
``v[left] v[right] / v[pivot]`` from ``v[target]``.
"""

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

__all__ = ["factor_levels", "solve_levels"]


def _safe(pivot: Array) -> Array:
    """Return the pivot, or one where it is zero or not finite (flagged separately)."""
    return jnp.where((pivot != 0) & jnp.isfinite(pivot), pivot, jnp.ones_like(pivot))


def factor_levels(arrays: dict[str, Array], n: int, data: Array) -> Array:
    """Return the stored values: the ``n`` pivots, then ``L`` below the diagonal.

    ``arrays``: the plan's index arrays (`operands`).
    """
    source, target = arrays["assemble"]
    entries = n + arrays["columns"].shape[0]
    values = jnp.zeros(entries, data.dtype).at[target].add(data[source])
    updates = arrays["updates"]

    def step(t, values):
        target, left, right, pivot = updates[t]
        change = values[left] * values[right] / _safe(values[pivot])
        return values.at[target].add(-change, mode="drop")

    values = lax.fori_loop(0, updates.shape[0], step, values)
    d = values[:n]
    below = values[n:] / _safe(d)[arrays["columns"]]
    return jnp.concatenate([d, below])


def solve_levels(arrays: dict[str, Array], n: int, values: Array, vector: Array) -> Array:
    """Solve ``A x = vector`` (original numbering) with the stored values of `factor_levels`."""
    down, up, order = arrays["forward"], arrays["backward"], arrays["order"]
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
