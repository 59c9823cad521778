"""Indexing by constant (NumPy) indices, as a slice where the indices allow."""

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

__all__ = ["gather_entries", "pad_take", "take"]


def take(values: Array, indices: np.ndarray) -> Array:
    """``values[indices]`` along the first axis, for indices known when tracing.

    Consecutive indices become a slice, which is several times faster than a gather
    on CPU; structured operators often index in order (e.g. a pattern that already
    stores its whole diagonal, or blocks stored block by block).

    Examples:
        >>> import jax.numpy as jnp, numpy as np
        >>> take(jnp.arange(5.0), np.array([1, 2, 3])).tolist()
        [1.0, 2.0, 3.0]
    """
    indices = np.asarray(indices)
    if indices.ndim == 1 and indices.size:
        start = int(indices[0])
        if np.array_equal(indices, np.arange(start, start + indices.size)):
            return jax.lax.slice_in_dim(values, start, start + indices.size)
    return values[indices]


def pad_take(values: Array, indices: np.ndarray) -> Array:
    """``values`` with a zero appended, at ``indices`` (the zero only where indexed)."""
    if indices.size and indices.max() >= values.shape[0]:
        values = jnp.concatenate([values, jnp.zeros(1, values.dtype)])
    return take(values, indices)


def gather_entries(data: Array, plan: np.ndarray) -> Array:
    """The outputs of a `gather_plan` from the stored entries ``data``."""
    if plan.shape[1] == 1:
        return pad_take(data, plan[:, 0])
    return pad_take(data, plan.reshape(-1)).reshape(plan.shape).sum(axis=1)
