"""Numeric LDLᵀ factorization and solves, as batched dense operations inside ``jit``.

Each batch of fronts (see `_symbolic`) is assembled by one scatter of the matrix
entries and one scatter per batch of children's update matrices, then partially
factored: ``F = [[F11, F21ᵀ], [F21, F22]]`` gives ``F11 = L11 D L11ᵀ`` (symmetric
elimination without pivoting, blocked and recursive), ``L21 = F21 L11⁻ᵀ D⁻¹`` and the
update matrix ``F22 - L21 D L21ᵀ`` for the parent. Without pivoting this is stable
for positive definite and, as Vanderbei (1995) shows, for quasi-definite matrices
``[[H, Aᵀ], [A, -G]]`` (``H``, ``G`` positive definite) in any symmetric order.
"""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array

from ._symbolic import Analysis

__all__ = ["Factor", "factorize", "solve"]

_BLOCK = 32
"""Pivots are eliminated in blocks of at most this many."""


class Factor(eqx.Module):
    """The numeric factors of every batch, and what the pivots say.

    Attributes:
        solves: Per batch, ``(B, m, k)``: ``[L11⁻¹; -L21 L11⁻¹]`` of each front, so that
            both triangular solves are one product each.
        pivots: Per batch, ``(B, k)``: the diagonal of ``D`` (one on padding).
        inertia: Numbers of positive, negative and zero pivots (``int32`` scalars).
        singular: Whether a pivot was zero (relative to the largest one) or not finite.
    """

    solves: tuple[Array, ...]
    pivots: tuple[Array, ...]
    inertia: tuple[Array, Array, Array]
    singular: Array


def _index(array: np.ndarray) -> np.ndarray:
    """Unsigned indices: JAX then adds no wrapping of negative ones to the program."""
    if array.size == 0 or array.max() < 2**32 - 1:
        return array.astype(np.uint32)
    return array.astype(np.uint64)


def _safe(pivot: Array) -> Array:
    """The pivot, or one where it is zero or not finite (flagged separately)."""
    return jnp.where((pivot != 0) & jnp.isfinite(pivot), pivot, jnp.ones_like(pivot))


def _eliminate(front: Array, k: int) -> tuple[Array, Array, Array]:
    """Eliminates the first ``k`` pivots of a batch of fronts ``(B, m, m)``, one at a time.

    Pivot ``j`` with column ``l_j`` below it applies ``E_j⁻¹ = I - l_j e_jᵀ`` to the
    front (a rank-one update) and to ``H``, which starts as the first ``k`` columns of
    the identity and ends as ``E_{k-1}⁻¹ ... E_0⁻¹`` restricted to them:
    ``[L11⁻¹; -L21 L11⁻¹]``.

    Returns:
        ``(H, d, update)`` with ``update = F22 - L21 D L21ᵀ``.
    """
    count, m, _ = front.shape
    index = jnp.arange(m)

    def step(j, carry):
        a, h, d = carry
        column = lax.dynamic_index_in_dim(a, j, axis=2, keepdims=False)
        pivot = lax.dynamic_index_in_dim(column, j, axis=1, keepdims=False)
        below = jnp.where(index > j, column, 0)
        factor = below / _safe(pivot)[:, None]
        a = a - factor[:, :, None] * below[:, None, :]
        row = lax.dynamic_index_in_dim(h, j, axis=1, keepdims=False)
        h = h - factor[:, :, None] * row[:, None, :]
        d = lax.dynamic_update_index_in_dim(d, pivot, j, axis=1)
        return a, h, d

    eye = jnp.broadcast_to(jnp.eye(m, k, dtype=front.dtype), (count, m, k))
    init = (front, eye, jnp.zeros((count, k), front.dtype))
    a, h, d = lax.fori_loop(0, k, step, init)
    return h, d, a[:, k:, k:]


def _block_size(k: int) -> int:
    """The largest divisor of ``k`` that is at most `_BLOCK`."""
    return max(b for b in range(1, min(k, _BLOCK) + 1) if k % b == 0)


def _partial_ldl(front: Array, k: int) -> tuple[Array, Array, Array]:
    """Eliminates the first ``k`` pivots of a batch of fronts ``(B, m, m)``.

    Fronts with few pivots go through `_eliminate`; others are blocked and
    right-looking: each block of pivots is eliminated by `_eliminate`, the columns
    below it by one product with the block's inverse, and the rest of the front is
    updated by one product (rows and columns already eliminated are masked out).

    Returns:
        ``([L11⁻¹; -L21 L11⁻¹], d, update)`` with ``update = F22 - L21 D L21ᵀ``.
    """
    if k <= 2 * _BLOCK:
        return _eliminate(front, k)
    count, m, _ = front.shape
    size = _block_size(k)
    rows = jnp.arange(m)[None, :, None]

    def step(t, carry):
        a, lower, inverse, d = carry
        start = t * size
        block = lax.dynamic_slice(a, (0, start, start), (count, size, size))
        inv_block, d_block, _ = _eliminate(block, size)
        panel = lax.dynamic_slice(a, (0, 0, start), (count, m, size))
        panel = jnp.where(rows >= start + size, panel, 0)
        scaled = jnp.einsum("bij,bkj->bik", panel, inv_block)
        l_panel = scaled / _safe(d_block)[:, None, :]
        a = a - jnp.einsum("bik,bjk->bij", scaled, l_panel)
        row = lax.dynamic_slice(lower, (0, start, 0), (count, size, k))
        inv_row = -jnp.einsum("bij,bjl,blk->bik", inv_block, row, inverse)
        inv_row = lax.dynamic_update_slice(inv_row, inv_block, (0, 0, start))
        inverse = lax.dynamic_update_slice(inverse, inv_row, (0, start, 0))
        lower = lax.dynamic_update_slice(lower, l_panel, (0, 0, start))
        d = lax.dynamic_update_slice(d, d_block, (0, start))
        return a, lower, inverse, d

    init = (
        front,
        jnp.zeros((count, m, k), front.dtype),
        jnp.zeros((count, k, k), front.dtype),
        jnp.zeros((count, k), front.dtype),
    )
    a, lower, inverse, d = lax.fori_loop(0, k // size, step, init)
    below = -jnp.einsum("bij,bjk->bik", lower[:, k:], inverse)
    return jnp.concatenate([inverse, below], axis=1), d, a[:, k:, k:]


def factorize(analysis: Analysis, data: Array, pivot_rtol: float) -> Factor:
    """The LDLᵀ factorization of the matrix with stored values ``data``.

    Args:
        analysis: The symbolic factorization of the pattern of ``data``.
        data: The stored values, one per entry of the analysed pattern.
        pivot_rtol: Pivots at most this times the largest in magnitude count as zero.

    Returns:
        The factors.
    """
    updates, solves, pivots = [], [], []
    dtype = data.dtype
    for batch in analysis.batches:
        count, k, m = batch.size, batch.k, batch.m
        front = jnp.zeros(count * m * m, dtype)
        front = front.at[_index(batch.entry_target)].add(data[_index(batch.entry_source)])
        front = front.reshape(count, m, m)
        for extend in batch.extends:
            update = updates[extend.child][_index(extend.take)]
            position = _index(extend.position)
            front = front.at[
                _index(extend.slot)[:, None, None], position[:, :, None], position[:, None, :]
            ].add(update, mode="drop")
        diagonal = np.arange(k)
        front = front.at[:, diagonal, diagonal].add(jnp.asarray(batch.pad, dtype))
        solve_matrix, d, update = _partial_ldl(front, k)
        updates.append(update)
        solves.append(solve_matrix)
        pivots.append(d)
    real = [jnp.asarray(batch.pad == 0) for batch in analysis.batches]
    largest = jnp.max(jnp.stack([jnp.max(jnp.where(r, jnp.abs(d), 0)) for r, d in
                                 zip(real, pivots, strict=True)]))
    tolerance = pivot_rtol * largest
    positive = sum(jnp.sum(r & (d > tolerance), dtype=jnp.int32) for r, d in
                   zip(real, pivots, strict=True))
    negative = sum(jnp.sum(r & (d < -tolerance), dtype=jnp.int32) for r, d in
                   zip(real, pivots, strict=True))
    zero = analysis.n - positive - negative
    inertia = (positive, negative, zero)
    return Factor(tuple(solves), tuple(pivots), inertia, zero > 0)


def solve(analysis: Analysis, factor: Factor, vector: Array) -> Array:
    """Solves ``A x = vector`` with the factorization of ``A``.

    Per batch, front by front, one gather, one product and one scatter each way:
    forward ``y = L11⁻¹ x_c`` with ``x_r -= L21 y`` and ``x_c = D⁻¹ y``; backward
    ``x_c = L11⁻ᵀ (x_c - L21ᵀ x_r)``.
    """
    x = vector
    plans = [
        (_index(np.concatenate([b.cols, b.rows], axis=1)), b.k) for b in analysis.batches
    ]
    factors = list(zip(plans, factor.solves, factor.pivots, strict=True))
    for (front, k), matrix, d in factors:
        old = x.at[front[:, :k]].get(mode="fill", fill_value=0)
        new = jnp.einsum("bmk,bk->bm", matrix, old)
        change = jnp.concatenate([new[:, :k] / _safe(d) - old, new[:, k:]], axis=1)
        x = x.at[front].add(change, mode="drop")
    for (front, k), matrix, _ in factors[::-1]:
        values = x.at[front].get(mode="fill", fill_value=0)
        new = jnp.einsum("bmk,bm->bk", matrix, values)
        x = x.at[front[:, :k]].add(new - values[:, :k], mode="drop")
    return x
