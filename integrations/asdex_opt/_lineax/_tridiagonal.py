"""Lineax's tridiagonal solve, reporting definiteness like the other direct solvers."""

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array

from asdex_opt._lineax._definite import (
    POSITIVE_DEFINITE,
    AbstractSparseSolver,
    claims_positive_definite,
)

__all__ = ["TridiagonalLU", "tridiagonal_positive_definite"]


class _TridiagonalState(eqx.Module):
    inner: Any  # the state of `lineax.Tridiagonal`, handed back to it unread
    bands: tuple[Array, Array] | None  # diagonal and subdiagonal, where definiteness is claimed


class TridiagonalLU(AbstractSparseSolver[_TridiagonalState]):
    """``lineax.Tridiagonal`` (LAPACK's ``gtsv``), plus definiteness where it is claimed.

    Solves exactly as ``lineax.Tridiagonal`` does. For an operator tagged symmetric and
    positive semidefinite, the solve's ``stats["positive_definite"]`` also says whether
    it really is positive definite (`tridiagonal_positive_definite` of the bands that
    ``lineax.tridiagonal`` reads), as `SparseLU`, `BlockDiagonalLU` and
    `BorderedBlockLU` report it.

    Examples:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from asdex_opt.lineax import TridiagonalLU
        >>> tags = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})
        >>> bands = jnp.full(3, 2.0), jnp.full(2, 3.0), jnp.full(2, 3.0)
        >>> A = lx.TaggedLinearOperator(lx.TridiagonalLinearOperator(*bands), tags)
        >>> solution = lx.linear_solve(A, jnp.ones(3), TridiagonalLU())
        >>> bool(solution.stats["positive_definite"])  # eigenvalues 2 ± 3√2 and 2
        False
    """

    reports_definiteness: ClassVar[bool] = True

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        """Lineax's tridiagonal state; the bands where definiteness is claimed."""
        inner = lx.Tridiagonal().init(operator, options)
        bands = None
        if claims_positive_definite(operator):
            diagonal, lower, _ = lx.tridiagonal(operator)
            bands = (diagonal, lower)
        return _TridiagonalState(inner, bands)

    def compute(
        self, state: _TridiagonalState, vector: Array, options: dict[str, Any]
    ) -> tuple[Array, lx.RESULTS, dict[str, Any]]:
        """Lineax's solve; the definiteness test for operators that claim it."""
        solution, result, stats = lx.Tridiagonal().compute(state.inner, vector, options)
        if state.bands is not None:
            stats = {**stats, POSITIVE_DEFINITE: tridiagonal_positive_definite(*state.bands)}
        return solution, result, stats

    def transpose(self, state: _TridiagonalState, options: dict[str, Any]):
        """The transposed solve (the claim is symmetric)."""
        inner, options = lx.Tridiagonal().transpose(state.inner, options)
        return _TridiagonalState(inner, state.bands), options

    def conj(self, state: _TridiagonalState, options: dict[str, Any]):
        """The conjugated solve."""
        inner, options = lx.Tridiagonal().conj(state.inner, options)
        bands = None if state.bands is None else tuple(jnp.conj(b) for b in state.bands)
        return _TridiagonalState(inner, bands), options

    def assume_full_rank(self) -> bool:
        """Only nonsingular operators are supported."""
        return True


def tridiagonal_positive_definite(diagonal: Array, off_diagonal: Array) -> Array:
    """Whether the symmetric tridiagonal matrix with these bands is positive definite.

    The leading principal minors ``pᵢ = aᵢ pᵢ₋₁ - bᵢ₋₁² pᵢ₋₂`` must all be positive
    (Sylvester's criterion); equivalently the pivots ``pᵢ / pᵢ₋₁`` of ``LDLᵀ``. Written
    as ``(pᵢ, pᵢ₋₁) = Mᵢ (pᵢ₋₁, pᵢ₋₂)`` with ``Mᵢ = [[aᵢ, -bᵢ₋₁²], [1, 0]]``, the minors
    come from the prefix products of the ``Mᵢ``, computed by recursive doubling
    (``log₂ n`` rounds of elementwise 2 x 2 products, where the recurrence is
    sequential; ``jax.lax.associative_scan`` was faster but crashed XLA:CPU's compiler
    in a long test process). Each product is divided by its largest entry: the signs,
    which are all that count, stay, and nothing overflows.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt._lineax._tridiagonal import tridiagonal_positive_definite
        >>> bool(tridiagonal_positive_definite(jnp.full(4, 2.0), jnp.full(3, -1.0)))
        True
        >>> bool(tridiagonal_positive_definite(jnp.full(4, 1.0), jnp.full(3, -1.0)))
        False
    """
    diagonal = jnp.real(diagonal)
    magnitude = jnp.abs(off_diagonal)
    padded = jnp.pad(magnitude, 1)
    # Strict diagonal dominance with a positive diagonal suffices (Gershgorin), and is
    # one cheap reduction: the minors are only needed when it fails.
    dominant = jnp.all(diagonal > padded[:-1] + padded[1:])
    return jax.lax.cond(
        dominant, lambda: jnp.array(True), lambda: _minors_positive(diagonal, magnitude)
    )


def _minors_positive(diagonal: Array, magnitude: Array) -> Array:
    """Whether all leading principal minors are positive, by recursive doubling."""
    squares = jnp.concatenate([jnp.zeros(1, diagonal.dtype), magnitude**2])
    one = jnp.ones_like(diagonal)
    zero = jnp.zeros_like(diagonal)
    products = (diagonal, -squares.astype(diagonal.dtype), one, zero)
    identity = (one, zero, zero, one)
    shift = 1
    while shift < diagonal.size:  # products[i] becomes M_i ⋯ M_max(i - 2 shift + 1, 1)
        earlier = tuple(
            jnp.concatenate([unit[:shift], entry[:-shift]])
            for unit, entry in zip(identity, products, strict=True)
        )
        products = _then(earlier, products)
        shift *= 2
    minor, _, previous, _ = products
    return jnp.all(minor * previous > 0)


def _then(
    earlier: tuple[Array, Array, Array, Array], later: tuple[Array, Array, Array, Array]
) -> tuple[Array, Array, Array, Array]:
    """The 2 x 2 product ``later @ earlier`` (entries row by row), scaled to max 1."""
    a00, a01, a10, a11 = earlier
    c00, c01, c10, c11 = later
    product = (
        c00 * a00 + c01 * a10,
        c00 * a01 + c01 * a11,
        c10 * a00 + c11 * a10,
        c10 * a01 + c11 * a11,
    )
    scale = jnp.maximum(
        jnp.maximum(jnp.abs(product[0]), jnp.abs(product[1])),
        jnp.maximum(jnp.abs(product[2]), jnp.abs(product[3])),
    )
    scale = jnp.where(scale > 0, scale, 1)
    return tuple(entry / scale for entry in product)
