"""Compressed evaluation: one JVP, VJP or HVP per color, batched with `vmap` or `lax.map`."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asdex.decompression._sharding import ColorSharding

SEED_CONSTANT_LIMIT = 2**22
"""Up to this many seed entries, seeds are NumPy constants that XLA can fold into the
passes; beyond it they are built inside the program."""


def one_hot_seeds(
    colors: Sequence[np.ndarray], shapes: Sequence[tuple[int, ...]], first: int, count: int
) -> list[Any]:
    """Boolean seeds of colors `first, ..., first + count - 1`, leaf by leaf.

    `colors[k]` holds the flat colors of leaf `k`; the result's leaf `k` has shape
    `(count, *shapes[k])` and is true where the vertex has that color. The neutral color
    `-1` matches nothing, so neutral vertices are never seeded.

    Examples:
        >>> one_hot_seeds([np.array([0, 1, 0])], [(3,)], 0, 2)[0].tolist()
        [[True, False, True], [False, True, False]]
    """
    if count * sum(math.prod(shape) for shape in shapes) <= SEED_CONSTANT_LIMIT:
        wanted = np.arange(first, first + count)[:, None]
        return [
            (np.asarray(leaf)[None, :] == wanted).reshape(count, *shape)
            for leaf, shape in zip(colors, shapes, strict=True)
        ]
    wanted = jnp.arange(first, first + count)[:, None]
    return [
        (jnp.asarray(leaf)[None, :] == wanted).reshape(count, *shape)
        for leaf, shape in zip(colors, shapes, strict=True)
    ]


def cast_seeds(seeds: Sequence[jax.Array], dtypes: Sequence[Any]) -> list[jax.Array]:
    """Cast boolean seed leaves to the tangent (or cotangent) dtypes.

    Examples:
        >>> cast_seeds([np.array([True, False])], [jnp.float32])[0].tolist()
        [1.0, 0.0]
    """
    return [jnp.asarray(seed).astype(dtype) for seed, dtype in zip(seeds, dtypes, strict=True)]


def compress(
    product: Callable[[Any], Any],
    seeds: Any,
    chunk_size: int | None,
    count: int,
    sharding: ColorSharding | None = None,
) -> Any:
    """Map `product` over the `count` seeds (leading axis of every leaf of `seeds`).

    With `chunk_size=None` all seeds run in one `vmap`; otherwise `lax.map` runs them
    `chunk_size` at a time, bounding the memory of the batched pass. With a `sharding`,
    the seeds and the result are split along the color axis across its devices.

    Examples:
        >>> compress(lambda s: s[0] * 2.0, [np.eye(2)], None, 2).tolist()
        [[2.0, 0.0], [0.0, 2.0]]
    """
    if sharding is not None:
        seeds = sharding.constrain(seeds)
    if chunk_size is None or chunk_size >= count:
        result = jax.vmap(product)(seeds)
    else:
        result = jax.lax.map(product, seeds, batch_size=chunk_size)
    return result if sharding is None else sharding.constrain(result, rest=True)


def ravel_leaves(leaves: Sequence[jax.Array | None], sizes: Sequence[int]) -> jax.Array:
    """Concatenate flattened leaves into one vector; a `None` leaf contributes zeros.

    Examples:
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
