"""Tridiagonal solves: ``LDLᵀ`` where definiteness is claimed, else ``lineax.Tridiagonal``."""

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jax.flatten_util import ravel_pytree
from jaxtyping import Array

from asdex_opt._lineax._definite import (
    POSITIVE_DEFINITE,
    AbstractSparseSolver,
    claims_positive_definite,
)

__all__ = ["TridiagonalLU", "tridiagonal_pivots", "tridiagonal_positive_definite"]


class _TridiagonalState(eqx.Module):
    inner: Any  # the state of `lineax.Tridiagonal`, handed back to it unread; None if bands
    bands: tuple[Array, Array] | None  # diagonal and subdiagonal, where definiteness is claimed


class TridiagonalLU(AbstractSparseSolver[_TridiagonalState]):
    """A tridiagonal solve that reports definiteness where it is claimed.

    For an operator tagged symmetric and positive semidefinite, the solve is the
    unpivoted ``LDLᵀ`` (Hermitian: ``LDLᴴ``) factorization of the bands that
    ``lineax.tridiagonal`` reads, and its pivots give ``stats["positive_definite"]``
    (all positive), as `SparseLU`, `BlockDiagonalLU` and `BorderedBlockLU` report it.
    The factorization is exact for any matrix whose pivots are nonzero, and stable for
    a positive definite one. Other operators are solved by ``lineax.Tridiagonal``
    (LAPACK's ``gtsv``: Gaussian elimination with partial pivoting).

    Examples:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from asdex_opt.lineax import TridiagonalLU
        >>> tags = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})
        >>> bands = jnp.full(3, 2.0), jnp.full(2, 3.0), jnp.full(2, 3.0)
        >>> A = lx.TaggedLinearOperator(lx.TridiagonalLinearOperator(*bands), tags)
        >>> solution = lx.linear_solve(A, jnp.ones(3), TridiagonalLU())
        >>> bool(solution.stats["positive_definite"])  # eigenvalues 2 ± 3√2 and 2
        False
        >>> bool(jnp.allclose(A.mv(solution.value), 1.0))  # nonzero pivots: still solved
        True
    """

    reports_definiteness: ClassVar[bool] = True

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        """Return the bands where definiteness is claimed, else Lineax's state."""
        if claims_positive_definite(operator):
            if not lx.is_tridiagonal(operator):
                raise ValueError(
                    "`TridiagonalLU` needs a tridiagonal operator: tag it with "
                    "`lineax.tridiagonal_tag` or pick another solver."
                )
            diagonal, lower, _ = lx.tridiagonal(operator)
            return _TridiagonalState(None, (diagonal, lower))
        return _TridiagonalState(lx.Tridiagonal().init(operator, options), None)

    def compute(
        self, state: _TridiagonalState, vector: Any, options: dict[str, Any]
    ) -> tuple[Any, lx.RESULTS, dict[str, Any]]:
        """Solve by ``LDLᵀ`` with its pivots' verdict, or by Lineax's solve."""
        if state.bands is None:
            return lx.Tridiagonal().compute(state.inner, vector, options)
        flat, unravel = ravel_pytree(vector)
        solution, pivots = _ldl_solve(*state.bands, flat)
        return unravel(solution), lx.RESULTS.successful, {POSITIVE_DEFINITE: jnp.all(pivots > 0)}

    def transpose(self, state: _TridiagonalState, options: dict[str, Any]):
        """Return the transposed solve (of a Hermitian claim: the conjugate)."""
        if state.bands is None:
            inner, options = lx.Tridiagonal().transpose(state.inner, options)
            return _TridiagonalState(inner, None), options
        return self.conj(state, options)

    def conj(self, state: _TridiagonalState, options: dict[str, Any]):
        """Return the conjugated solve."""
        if state.bands is None:
            inner, options = lx.Tridiagonal().conj(state.inner, options)
            return _TridiagonalState(inner, None), options
        return _TridiagonalState(None, tuple(jnp.conj(band) for band in state.bands)), options

    def assume_full_rank(self) -> bool:
        """Return True: only nonsingular operators are supported."""
        return True


def _ldl_solve(diagonal: Array, lower: Array, vector: Array) -> tuple[Array, Array]:
    """Solve ``T x = vector`` by ``T = L D Lᴴ``; return ``x`` and the pivots ``D``.

    One sequential pass computes the pivots and the forward substitution, a second the
    backward substitution: on a CPU, XLA's loop over scalars beats ``gtsv``.
    """
    dtype = jnp.result_type(diagonal, lower, vector)
    pivot_dtype = jnp.real(diagonal).dtype
    coupling = jnp.concatenate([jnp.zeros(1, lower.dtype), lower]).astype(dtype)

    def forward(carry, entry):
        pivot, y = carry
        a, b, r = entry
        multiplier = b / pivot  # b = 0 before the first row, and 0 / inf = 0
        pivot = jnp.real(a) - jnp.real(multiplier * jnp.conj(b))
        y = r - multiplier * y
        return (pivot, y), (pivot, y, multiplier)

    start = (jnp.array(jnp.inf, pivot_dtype), jnp.zeros((), dtype))
    _, (pivots, y, multipliers) = jax.lax.scan(
        forward, start, (diagonal, coupling, vector.astype(dtype))
    )
    above = jnp.concatenate([jnp.conj(multipliers[1:]), jnp.zeros(1, dtype)])

    def backward(x_next, entry):
        m, z = entry
        x = z - m * x_next
        return x, x

    _, solution = jax.lax.scan(backward, jnp.zeros((), dtype), (above, y / pivots), reverse=True)
    return solution, pivots


def tridiagonal_pivots(diagonal: Array, off_diagonal: Array) -> Array:
    """Return the pivots of ``LDLᴴ`` of the Hermitian tridiagonal matrix with these bands.

    ``d₁ = a₁``, ``dᵢ = aᵢ - |bᵢ₋₁|² / dᵢ₋₁``: the pivots the solve computes. The matrix is
    positive definite exactly when every pivot is positive (Sylvester's criterion, the
    pivots being ratios of leading principal minors).

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt._lineax._tridiagonal import tridiagonal_pivots
        >>> tridiagonal_pivots(jnp.array([1.0, 2.0, 0.5]), jnp.array([1.0, -1.0])).tolist()
        [1.0, 1.0, -0.5]
    """
    return _ldl_solve(diagonal, off_diagonal, jnp.zeros_like(diagonal))[1]


def tridiagonal_positive_definite(diagonal: Array, off_diagonal: Array) -> Array:
    """Return whether the Hermitian tridiagonal matrix with these bands is positive definite.

    Every pivot of `tridiagonal_pivots` must be positive. A zero pivot makes the next
    one infinite or not a number, which is not positive either.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt._lineax._tridiagonal import tridiagonal_positive_definite
        >>> bool(tridiagonal_positive_definite(jnp.full(4, 2.0), jnp.full(3, -1.0)))
        True
        >>> bool(tridiagonal_positive_definite(jnp.full(4, 1.0), jnp.full(3, -1.0)))
        False
    """
    return jnp.all(tridiagonal_pivots(diagonal, off_diagonal) > 0)
