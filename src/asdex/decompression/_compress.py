"""Compressed evaluation: one JVP, VJP or HVP per color, batched with `vmap` or `lax.map`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def compress(
    product: Callable[[jax.Array], jax.Array],
    num_colors: int,
    chunk_size: int | None,
    first: int = 0,
) -> jax.Array:
    """Stack `product(c)` over the colors `c = first, ..., first + num_colors - 1`.

    With `chunk_size=None` all colors run in one `vmap`; otherwise `lax.map` runs them
    `chunk_size` at a time, bounding the memory of the batched pass.

    Example:
        >>> compress(lambda c: jnp.full(3, c), 2, None).shape
        (2, 3)
    """
    colors = jnp.arange(first, first + num_colors, dtype=jnp.int32)
    if chunk_size is None or chunk_size >= num_colors:
        return jax.vmap(product)(colors)
    return jax.lax.map(product, colors, batch_size=chunk_size)


def seed_leaves(
    colors: Sequence[np.ndarray],
    shapes: Sequence[tuple[int, ...]],
    dtypes: Sequence[Any],
    color: jax.Array,
) -> list[jax.Array]:
    """The seed of one color, leaf by leaf: ones where the leaf's `colors == color`.

    `colors[k]` holds the flat colors of leaf `k`; the neutral color `-1` never matches,
    so neutral vertices are never seeded.

    Example:
        >>> [s.tolist() for s in seed_leaves([np.array([0, 1, 0])], [(3,)], [jnp.float32], 0)]
        [[1.0, 0.0, 1.0]]
    """
    return [
        (jnp.asarray(leaf_colors) == color).astype(dtype).reshape(shape)
        for leaf_colors, shape, dtype in zip(colors, shapes, dtypes, strict=True)
    ]


def ravel_leaves(leaves: Sequence[jax.Array | None], sizes: Sequence[int]) -> jax.Array:
    """Concatenate flattened leaves into one vector; a `None` leaf contributes zeros.

    Example:
        >>> ravel_leaves([jnp.ones((2, 2)), None], [4, 2]).tolist()
        [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    """
    present = [leaf for leaf in leaves if leaf is not None]
    dtype = jnp.result_type(*present) if present else jnp.float32
    parts = [
        jnp.zeros(size, dtype) if leaf is None else jnp.ravel(leaf).astype(dtype)
        for leaf, size in zip(leaves, sizes, strict=True)
    ]
    if not parts:
        return jnp.zeros(0, dtype)
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts)
