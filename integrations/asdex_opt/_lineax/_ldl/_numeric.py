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

_BASE = 16
"""Blocks up to this size are factored column by column; larger ones recursively."""


class Factor(eqx.Module):
    """The numeric factors of every batch, and what the pivots say.

    Attributes:
        blocks: Per batch, ``(B, m, k)``: each front's unit lower ``L11`` stacked on
            ``L21``.
        pivots: Per batch, ``(B, k)``: the diagonal of ``D`` (one on padding).
        inertia: Numbers of positive, negative and zero pivots (``int32`` scalars).
        singular: Whether a pivot was zero (relative to the largest one) or not finite.
    """

    blocks: tuple[Array, ...]
    pivots: tuple[Array, ...]
    inertia: tuple[Array, Array, Array]
    singular: Array


def _index(array: np.ndarray) -> np.ndarray:
    return array.astype(np.int32) if array.size == 0 or array.max() < 2**31 - 1 else array


def _safe(pivot: Array) -> Array:
    """The pivot, or one where it is zero or not finite (flagged separately)."""
    return jnp.where((pivot != 0) & jnp.isfinite(pivot), pivot, jnp.ones_like(pivot))


def _ldl_small(a: Array) -> tuple[Array, Array]:
    """``a = L diag(d) Lᵀ`` for a batch ``(B, s, s)``, one column at a time."""
    size = a.shape[-1]
    index = jnp.arange(size)

    def step(j, carry):
        a, lower, d = carry
        column = lax.dynamic_index_in_dim(a, j, axis=2, keepdims=False)
        pivot = lax.dynamic_index_in_dim(column, j, axis=1, keepdims=False)
        below = jnp.where(index > j, column, 0)
        factor = below / _safe(pivot)[:, None]
        a = a - factor[:, :, None] * below[:, None, :]
        lower = lax.dynamic_update_index_in_dim(
            lower, factor + (index == j).astype(a.dtype), j, axis=2
        )
        d = lax.dynamic_update_index_in_dim(d, pivot, j, axis=1)
        return a, lower, d

    init = (a, jnp.zeros_like(a), jnp.zeros(a.shape[:2], a.dtype))
    _, lower, d = lax.fori_loop(0, size, step, init)
    return lower, d


def _eliminate(a11: Array, a21: Array, a22: Array) -> tuple[Array, Array, Array, Array]:
    """Factors ``a11`` and returns ``(L11, d, L21, a22 - L21 D L21ᵀ)``."""
    lower, d = _ldl(a11)
    scaled = lax.linalg.triangular_solve(
        lower, a21, left_side=False, lower=True, transpose_a=True, unit_diagonal=True
    )
    l21 = scaled / _safe(d)[:, None, :]
    schur = a22 - jnp.einsum("bik,bjk->bij", scaled, l21)
    return lower, d, l21, schur


def _ldl(a: Array) -> tuple[Array, Array]:
    """``a = L diag(d) Lᵀ`` for a batch ``(B, s, s)`` of symmetric matrices."""
    size = a.shape[-1]
    if size <= _BASE:
        return _ldl_small(a)
    half = (size // 2 + _BASE - 1) // _BASE * _BASE
    l11, d1, l21, schur = _eliminate(a[:, :half, :half], a[:, half:, :half], a[:, half:, half:])
    l22, d2 = _ldl(schur)
    top = jnp.concatenate([l11, jnp.zeros((a.shape[0], half, size - half), a.dtype)], axis=2)
    bottom = jnp.concatenate([l21, l22], axis=2)
    return jnp.concatenate([top, bottom], axis=1), jnp.concatenate([d1, d2], axis=1)


def factorize(analysis: Analysis, data: Array, pivot_rtol: float) -> Factor:
    """The LDLᵀ factorization of the matrix with stored values ``data``.

    Args:
        analysis: The symbolic factorization of the pattern of ``data``.
        data: The stored values, one per entry of the analysed pattern.
        pivot_rtol: Pivots at most this times the largest in magnitude count as zero.

    Returns:
        The factors.
    """
    updates, blocks, pivots = [], [], []
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
        if batch.r:
            l11, d, l21, schur = _eliminate(
                front[:, :k, :k], front[:, k:, :k], front[:, k:, k:]
            )
            blocks.append(jnp.concatenate([l11, l21], axis=1))
        else:
            l11, d = _ldl(front)
            schur = None
            blocks.append(l11)
        updates.append(schur)
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
    return Factor(tuple(blocks), tuple(pivots), (positive, negative, zero), zero > 0)


def _triangular(lower: Array, rhs: Array, transpose: bool) -> Array:
    return lax.linalg.triangular_solve(
        lower, rhs[:, :, None], left_side=True, lower=True, transpose_a=transpose,
        unit_diagonal=True,
    )[:, :, 0]


def solve(analysis: Analysis, factor: Factor, vector: Array) -> Array:
    """Solves ``A x = vector`` with the factorization of ``A``."""
    x = vector
    plans = [(_index(b.cols), _index(b.rows), b.k) for b in analysis.batches]
    for (cols, rows, k), lower, d in zip(plans, factor.blocks, factor.pivots, strict=True):
        y = _triangular(lower[:, :k], x.at[cols].get(mode="fill", fill_value=0), False)
        x = x.at[cols].set(y / _safe(d), mode="drop")
        if rows.shape[1]:
            x = x.at[rows].add(-jnp.einsum("brk,bk->br", lower[:, k:], y), mode="drop")
    for (cols, rows, k), lower in zip(plans[::-1], factor.blocks[::-1], strict=True):
        z = x.at[cols].get(mode="fill", fill_value=0)
        if rows.shape[1]:
            below = x.at[rows].get(mode="fill", fill_value=0)
            z = z - jnp.einsum("brk,br->bk", lower[:, k:], below)
        x = x.at[cols].set(_triangular(lower[:, :k], z, True), mode="drop")
    return x

