"""Shared checks for detection tests."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from asdex.detection import jacobian_sparsity


def _perturb(key, x):
    """A random point near the sample `x` (tests choose samples inside the domain)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        return x
    u = jax.random.uniform(key, x.shape, minval=0.0, maxval=1.0).astype(x.dtype)
    return x * (1.0 + 0.2 * u) + 0.05 * u


def numeric_jacobian_pattern(f, *args, argnums=0, num_points: int = 2, seed: int = 0):
    """Nonzero pattern of the dense Jacobian at random points (union over points)."""
    argnums_t = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    key = jax.random.key(seed)
    jacobian = jax.jit(jax.jacfwd(f, argnums=argnums_t))
    found = None
    for _ in range(num_points):
        points = list(args)
        for a in argnums_t:
            key, sub = jax.random.split(key)
            leaves, tree = jax.tree_util.tree_flatten(args[a])
            subs = jax.random.split(sub, len(leaves))
            leaves = [_perturb(k, x) for k, x in zip(subs, leaves, strict=True)]
            points[a] = jax.tree_util.tree_unflatten(tree, leaves)
        jac = jacobian(*points)
        out_leaves = jax.tree_util.tree_leaves(jac)
        # jacobian leaves: one per (output leaf, input leaf); rebuild (m, n) blocks
        out_struct = jax.eval_shape(f, *points)
        m_leaves = jax.tree_util.tree_leaves(out_struct)
        in_leaves = [
            leaf for a in argnums_t for leaf in jax.tree_util.tree_leaves(points[a])
        ]
        rows = []
        it = iter(out_leaves)
        for o in m_leaves:
            blocks = [
                np.asarray(next(it)).reshape(int(np.prod(o.shape)), int(np.prod(jnp.shape(i))))
                for i in in_leaves
            ]
            rows.append(np.concatenate(blocks, axis=1))
        dense = np.concatenate(rows, axis=0)
        nonzero = (dense != 0) & ~np.isnan(dense)
        found = nonzero if found is None else found | nonzero
    return found


def assert_sound(f, *args, argnums=0, exact: bool = False, **kwargs):
    """Detected pattern contains the numeric one (and equals it when `exact`)."""
    detected = jacobian_sparsity(f, *args, argnums=argnums).todense().astype(bool)
    numeric = numeric_jacobian_pattern(f, *args, argnums=argnums, **kwargs)
    assert detected.shape == numeric.shape
    missed = numeric & ~detected
    assert not missed.any(), f"missed nonzeros at {np.argwhere(missed)[:10].tolist()}"
    if exact:
        extra = detected & ~numeric
        assert not extra.any(), f"spurious nonzeros at {np.argwhere(extra)[:10].tolist()}"
    return detected


def assert_pattern(f, *args, expected, argnums=0):
    """Detected pattern equals `expected` exactly, and is sound."""
    detected = assert_sound(f, *args, argnums=argnums)
    np.testing.assert_array_equal(detected.astype(int), np.asarray(expected, dtype=int))
