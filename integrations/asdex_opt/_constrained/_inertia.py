"""Inertia correction of the KKT matrix (Wächter and Biegler 2006, section 3.1).

The search direction is a descent direction for the barrier problem when the KKT
matrix has inertia ``(n + mi, me + mi, 0)``. Otherwise ``δ_w I`` is added to the primal
block (and ``δ_c I`` subtracted from the constraint block when the matrix is singular),
``δ_w`` growing from IPOPT's heuristic start until the inertia is right. As in IPOPT,
the first attempt has ``δ_c = 0`` unless the last iteration needed it: a ``δ_c > 0``
that refinement cannot remove leaves ``A d = -c`` violated by about ``δ_c |Δy|``,
which with many active inequalities (huge slack entries of ``Σ``) stops the iterates
short of feasibility. A factorization without pivoting may meet an exactly zero pivot
where the unperturbed matrix is not singular (a constraint eliminated before its
variables); it then gets ``δ_c`` like a singular matrix. An attempt whose solution
leaves a large residual counts as failed too.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from asdex_opt._constrained._kkt import KKTStructure
from asdex_opt._constrained._linear import Factorization, KKTSolver

__all__ = ["CorrectedFactorization", "factor_with_inertia"]

DELTA_W_INIT = 1e-4
DELTA_W_MIN = 1e-20
DELTA_W_MAX = 1e40
DELTA_C = 1e-8
KAPPA_C = 0.25
KAPPA_W_MINUS = 1 / 3
KAPPA_W_PLUS = 8.0
KAPPA_W_PLUS_FIRST = 100.0
MIN_REFINEMENT = 1
MAX_REFINEMENT = 10
RESIDUAL_RATIO = 1e-10
_TINY = 1e-300


class CorrectedFactorization(eqx.Module):
    """A factorization with the right inertia, or the last attempt.

    Attributes:
        factor: The factorization.
        data: The stored entries of the factored matrix.
        exact: The same without ``δ_c`` (solutions are refined against it).
        delta_w: The primal regularisation used (zero if none).
        delta_c: The constraint regularisation used (zero if none).
        ok: Whether the inertia is right.
        solution: The solution for the right-hand side given.
    """

    factor: Factorization
    data: Array
    exact: Array
    delta_w: Array
    delta_c: Array
    ok: Array
    solution: Array


def refined_solve(
    factor: Factorization,
    kkt: KKTStructure,
    data: Array,
    rhs: Array,
    exact: Array | None = None,
) -> Array:
    """Return the solution of the factored system after iterative refinement.

    Refinement as IPOPT refines: at least ``MIN_REFINEMENT`` and at most
    ``MAX_REFINEMENT`` steps, until the residual ratio ``‖K x - rhs‖ / (‖K‖ ‖x‖ +
    ‖rhs‖)`` (max norms) is at most ``RESIDUAL_RATIO`` or a step no longer reduces it.
    With ``exact`` (the matrix without the ``δ_c`` that a factorization without
    pivoting needs), the solution is then refined against that matrix, the factored one
    serving as preconditioner, and kept where this converges: ``δ_c`` then perturbs
    nothing, and remains only where the unregularised matrix is singular.

    The first solve, both refinements and the switch between them are one loop, so
    that the factorization's solve is traced once.
    """
    matrices = jnp.stack([data, data if exact is None else exact])
    last_phase = 0 if exact is None else 1
    norm_rhs = jnp.max(jnp.abs(rhs), initial=0.0)

    def ratio(matrix, solution):
        residual = rhs - kkt.matvec(matrix, solution)
        size = jnp.max(jnp.abs(matrix), initial=0.0) * jnp.max(jnp.abs(solution), initial=0.0)
        value = jnp.max(jnp.abs(residual), initial=0.0) / jnp.maximum(size + norm_rhs, _TINY)
        return jnp.where(jnp.isfinite(value), value, jnp.inf), residual

    def more(k, value, improved):
        return (k < MIN_REFINEMENT) | ((k < MAX_REFINEMENT) & (value > RESIDUAL_RATIO) & improved)

    def body(carry):
        phase, k, solution, value, residual, _, first = carry
        # k = -1: the first solve, from zero (the residual is then rhs).
        candidate = solution + factor.solve(residual)
        new_value, new_residual = ratio(matrices[phase], candidate)
        better = (k < 0) | (new_value < value)
        solution = jnp.where(better, candidate, solution)
        value = jnp.where(better, new_value, value)
        residual = jnp.where(better, new_residual, residual)
        k = jnp.maximum(k + 1, 0)
        improved = better | (k < MIN_REFINEMENT)
        switch = (phase < last_phase) & ~more(k, value, improved)
        exact_value, exact_residual = ratio(matrices[last_phase], solution)
        return (
            jnp.where(switch, last_phase, phase),
            jnp.where(switch, 0, k),
            solution,
            jnp.where(switch, exact_value, value),
            jnp.where(switch, exact_residual, residual),
            improved | switch,
            jnp.where(switch, solution, first),
        )

    init = (
        jnp.array(0),
        jnp.array(-1),
        jnp.zeros_like(rhs),
        jnp.asarray(jnp.inf, rhs.dtype),
        rhs,
        jnp.array(True),
        jnp.zeros_like(rhs),
    )
    _, _, solution, value, _, _, first = lax.while_loop(
        lambda carry: more(carry[1], carry[3], carry[5]), body, init
    )
    if exact is None:
        return solution
    return jnp.where(value <= RESIDUAL_RATIO, solution, first)


def _right(factor: Factorization, kkt: KKTStructure, data: Array, exact: Array, rhs: Array):
    pos, neg, zero = factor.inertia
    solution = refined_solve(factor, kkt, data, rhs, exact)
    residual = jnp.minimum(
        jnp.max(jnp.abs(kkt.matvec(data, solution) - rhs)),
        jnp.max(jnp.abs(kkt.matvec(exact, solution) - rhs)),
    )
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
    floor: Array | float = 0.0,
    delta_c_last: Array | float = 0.0,
) -> CorrectedFactorization:
    """Factor ``[[W + Σ + δ_w I, Aᵀ], [A, -δ_c I]]`` with the smallest ``δ_w`` tried that works.

    The constraint block is ``-max(floor, δ_c) I``: ``floor`` belongs to the system
    (the restoration's and the multiplier estimate's quasi-definite matrices), ``δ_c``
    is regularisation, and solutions are refined against the matrix with ``-floor I``.

    Args:
        solver: The KKT solver.
        kkt: The KKT structure.
        hess: Lower-triangle Lagrangian Hessian nonzeros.
        diag: ``Σ``, the primal-dual barrier diagonal.
        jac: Jacobian nonzeros.
        mu: The barrier parameter (for ``δ_c = max(10⁻⁸ μ^{1/4}, eps^{2/3})``).
        delta_w_last: The last nonzero ``δ_w`` used (zero if none yet).
        rhs: The right-hand side to solve for.
        floor: The system's own constraint block ``-floor I`` (zero for the KKT matrix).
        delta_c_last: The ``δ_c`` of the last iteration: when positive, the first
            attempt takes ``δ_c`` at once rather than finding the matrix singular again.
    """
    dtype = diag.dtype
    zero = jnp.zeros((), dtype)
    eps = float(jnp.finfo(dtype).eps)
    regularised = jnp.maximum(DELTA_C * mu**KAPPA_C, eps ** (2 / 3)).astype(dtype)
    delta_w_max = min(DELTA_W_MAX, float(jnp.finfo(dtype).max) * 1e-8)
    start = jnp.where(
        delta_w_last == 0,
        DELTA_W_INIT,
        jnp.maximum(DELTA_W_MIN, KAPPA_W_MINUS * delta_w_last),
    ).astype(dtype)
    growth = jnp.where(delta_w_last == 0, KAPPA_W_PLUS_FIRST, KAPPA_W_PLUS)

    floor = jnp.asarray(floor, dtype)

    def attempt(delta_w, delta_c):
        data = kkt.assemble(hess, diag + delta_w, jac, jnp.maximum(floor, delta_c))
        exact = kkt.assemble(hess, diag + delta_w, jac, floor)
        factor = solver.factor(data)
        ok, solution = _right(factor, kkt, data, exact, rhs)
        return factor, data, exact, ok, solution

    def cond(carry):
        k, delta_w, _, *_, ok, _ = carry
        return (k == 0) | (~ok & (delta_w <= delta_w_max))

    def body(carry):
        k, delta_w, delta_c, *_ = carry
        factor, data, exact, ok, solution = attempt(delta_w, delta_c)
        # After a singular first attempt, δ_c alone; then δ_w from `start`, growing.
        singular = (k == 0) & (factor.inertia[2] > 0) & (delta_c == 0)
        next_delta_c = jnp.where(singular, regularised, delta_c)
        next_delta_w = jnp.where(
            singular, zero, jnp.where(delta_w == 0, start, growth * delta_w)
        )
        return (
            k + 1,
            jnp.where(ok, delta_w, next_delta_w),
            jnp.where(ok, delta_c, next_delta_c),
            factor,
            data,
            exact,
            ok,
            solution,
        )

    delta_c_first = jnp.where(jnp.asarray(delta_c_last) > 0, regularised, zero)
    shapes = jax.eval_shape(attempt, zero, delta_c_first)
    blank = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    init = (jnp.array(0), zero, delta_c_first, *blank)
    _, delta_w, delta_c, factor, data, exact, ok, solution = lax.while_loop(cond, body, init)
    return CorrectedFactorization(factor, data, exact, delta_w, delta_c, ok, solution)
