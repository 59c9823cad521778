"""Inertia correction of the KKT matrix (Wächter and Biegler 2006, section 3.1).

The search direction is a descent direction for the barrier problem when the KKT
matrix has inertia ``(n + mi, me + mi, 0)``. Otherwise ``δ_w I`` is added to the primal
block (and ``δ_c I`` subtracted from the constraint block when the matrix is singular),
``δ_w`` growing from IPOPT's heuristic start until the inertia is right. A solver
that factors without pivoting gets ``δ_c > 0`` from the first attempt, and an attempt
whose solution leaves a large residual counts as failed too.
"""

import equinox as eqx
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from ._kkt import KKTStructure
from ._linear import Factorization, KKTSolver

__all__ = ["CorrectedFactorization", "factor_with_inertia"]

DELTA_W_INIT = 1e-4
DELTA_W_MIN = 1e-20
DELTA_W_MAX = 1e40
DELTA_C = 1e-8
KAPPA_C = 0.25
KAPPA_W_MINUS = 1 / 3
KAPPA_W_PLUS = 8.0
KAPPA_W_PLUS_FIRST = 100.0


class CorrectedFactorization(eqx.Module):
    """A factorization with the right inertia, or the last attempt.

    Attributes:
        factor: The factorization.
        data: The stored entries of the factored matrix.
        delta_w: The primal regularisation used (zero if none).
        delta_c: The constraint regularisation used (zero if none).
        ok: Whether the inertia is right.
        solution: The solution for the right-hand side given.
    """

    factor: Factorization
    data: Array
    delta_w: Array
    delta_c: Array
    ok: Array
    solution: Array


def refined_solve(factor: Factorization, kkt: KKTStructure, data: Array, rhs: Array) -> Array:
    """The solution with one step of iterative refinement."""
    solution = factor.solve(rhs)
    return solution + factor.solve(rhs - kkt.matvec(data, solution))


def _right(factor: Factorization, kkt: KKTStructure, data: Array, rhs: Array):
    pos, neg, zero = factor.inertia
    solution = refined_solve(factor, kkt, data, rhs)
    residual = jnp.max(jnp.abs(kkt.matvec(data, solution) - rhs))
    scale = jnp.max(jnp.abs(data)) * jnp.max(jnp.abs(solution)) + jnp.max(jnp.abs(rhs))
    accurate = residual <= jnp.sqrt(jnp.finfo(data.dtype).eps) * scale
    right = (pos == kkt.num_primal) & (neg == kkt.num_dual) & (zero == 0)
    return right & accurate & jnp.all(jnp.isfinite(solution)), solution


def factor_with_inertia(
    solver: KKTSolver,
    kkt: KKTStructure,
    hess: Array,
    diag: Array,
    jac: Array,
    mu: Array,
    delta_w_last: Array,
    rhs: Array,
) -> CorrectedFactorization:
    """Factors ``[[W + Σ + δ_w I, Aᵀ], [A, -δ_c I]]`` with the smallest ``δ_w`` tried that works.

    Args:
        solver: The KKT solver.
        kkt: The KKT structure.
        hess: Lower-triangle Lagrangian Hessian nonzeros.
        diag: ``Σ``, the primal-dual barrier diagonal.
        jac: Jacobian nonzeros.
        mu: The barrier parameter (for ``δ_c = 10⁻⁸ μ^{1/4}``).
        delta_w_last: The last nonzero ``δ_w`` used (zero if none yet).
        rhs: The right-hand side to solve for.
    """
    dtype = diag.dtype
    zero = jnp.zeros((), dtype)
    regularised = jnp.asarray(DELTA_C * mu**KAPPA_C, dtype)
    delta_c_first = regularised if solver.regularise else zero
    data = kkt.assemble(hess, diag, jac, delta_c_first)
    first = solver.factor(data)
    first_ok, solution = _right(first, kkt, data, rhs)
    delta_c = jnp.where(first.inertia[2] > 0, regularised, delta_c_first)
    start = jnp.where(
        delta_w_last == 0,
        DELTA_W_INIT,
        jnp.maximum(DELTA_W_MIN, KAPPA_W_MINUS * delta_w_last),
    ).astype(dtype)
    growth = jnp.where(delta_w_last == 0, KAPPA_W_PLUS_FIRST, KAPPA_W_PLUS)

    def attempt(delta_w):
        data = kkt.assemble(hess, diag + delta_w, jac, delta_c)
        factor = solver.factor(data)
        return factor, data

    def cond(carry):
        _, _, delta_w, ok, _ = carry
        return ~ok & (delta_w <= DELTA_W_MAX)

    def body(carry):
        _, _, delta_w, _, _ = carry
        factor, data = attempt(delta_w)
        ok, solution = _right(factor, kkt, data, rhs)
        return factor, data, jnp.where(ok, delta_w, growth * delta_w), ok, solution

    factor, data, delta_w, ok, solution = lax.while_loop(
        cond, body, (first, data, jnp.where(first_ok, zero, start), first_ok, solution)
    )
    delta_c = jnp.where(first_ok, delta_c_first, delta_c)
    return CorrectedFactorization(factor, data, delta_w, delta_c, ok, solution)
