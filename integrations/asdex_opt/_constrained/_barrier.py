"""The barrier parameter, the fraction-to-the-boundary rule and the optimality error.

Formulas and constants of Wächter and Biegler (2006), sections 2.1 and 3.6, and
IPOPT's defaults.
"""

import jax.numpy as jnp
from jaxtyping import Array

__all__ = [
    "KAPPA_EPSILON",
    "fraction_to_boundary",
    "next_barrier",
    "optimality_error",
    "push_inside",
]

KAPPA_EPSILON = 10.0
"""The barrier problem is solved to ``E_μ ≤ κ_ε μ`` before ``μ`` decreases."""
KAPPA_MU = 0.2
THETA_MU = 1.5
TAU_MIN = 0.99
S_MAX = 100.0


def next_barrier(mu: Array, tol: float) -> tuple[Array, Array]:
    """The monotone (Fiacco-McCormick) update: ``μ⁺ = max(tol/10, min(κ_μ μ, μ^θ_μ))``.

    Returns:
        ``(μ⁺, τ)`` with the fraction-to-the-boundary parameter ``τ = max(τ_min, 1 - μ⁺)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> mu, tau = next_barrier(jnp.array(0.1), 1e-8)
        >>> round(float(mu), 6), round(float(tau), 6)
        (0.02, 0.99)
    """
    mu = jnp.maximum(tol / 10, jnp.minimum(KAPPA_MU * mu, mu**THETA_MU))
    return mu, jnp.maximum(TAU_MIN, 1 - mu)


def fraction_to_boundary(distance: Array, step: Array, tau: Array, mask: Array) -> Array:
    """The largest ``alpha ∈ (0, 1]`` with ``distance + alpha step ≥ (1 - τ) distance`` on ``mask``.

    Examples:
        >>> import jax.numpy as jnp
        >>> d, s = jnp.array([1.0, 2.0]), jnp.array([-2.0, 1.0])
        >>> round(float(fraction_to_boundary(d, s, jnp.array(0.99), jnp.array([True, True]))), 6)
        0.495
    """
    limited = mask & (step < 0)
    ratios = jnp.where(limited, -tau * distance / jnp.where(limited, step, -1.0), 1.0)
    return jnp.minimum(1.0, jnp.min(ratios, initial=1.0))


def push_inside(x: Array, lower: Array, upper: Array) -> Array:
    """IPOPT's initial point: ``x`` moved strictly inside its bounds.

    By ``p = min(κ₁ max(1, |bound|), κ₂ (upper - lower))`` with ``κ₁ = κ₂ = 10⁻²``.

    Examples:
        >>> import jax.numpy as jnp
        >>> x = push_inside(jnp.array([0.0, 5.0]), jnp.array([0.0, -jnp.inf]),
        ...                 jnp.array([1.0, 4.0]))
        >>> [round(float(v), 6) for v in x]
        [0.01, 3.96]
    """
    gap = upper - lower
    push_lower = jnp.minimum(1e-2 * jnp.maximum(1.0, jnp.abs(lower)), 1e-2 * gap)
    push_upper = jnp.minimum(1e-2 * jnp.maximum(1.0, jnp.abs(upper)), 1e-2 * gap)
    x = jnp.where(jnp.isfinite(lower), jnp.maximum(x, lower + push_lower), x)
    return jnp.where(jnp.isfinite(upper), jnp.minimum(x, upper - push_upper), x)


def optimality_error(
    dual: Array,
    primal: Array,
    complementarity: Array,
    multipliers: Array,
    bound_multipliers: Array,
    bounded: Array,
) -> Array:
    """Return ``E_μ``: the scaled maximum of dual infeasibility, violation and complementarity.

    ``s_c`` is IPOPT's: the mean bound multiplier over the finite bounds (entries
    without a bound have no multiplier and do not count), so that the complementarity
    test ends a solve where IPOPT's does. ``s_d`` averages the constraint and bound
    multipliers over the constraints and all primal entries, a smaller scale than
    IPOPT's (which counts the bounded entries only) that decreases ``μ`` less eagerly
    far from feasibility.

    Args:
        dual: The gradient of the Lagrangian.
        primal: The constraint residuals.
        complementarity: ``z (distance to the bound) - μ`` on the bounded entries
            (zero elsewhere); ``μ = 0`` for the error of the original problem.
        multipliers: The constraint multipliers ``y``.
        bound_multipliers: ``[z_L; z_U]`` (zero where there is no bound).
        bounded: Where ``[z_L; z_U]`` belongs to a finite bound.

    Examples:
        >>> import jax.numpy as jnp
        >>> e = optimality_error(jnp.array([1e-3]), jnp.array([2e-3]), jnp.zeros(2),
        ...                      jnp.ones(1), jnp.zeros(2), jnp.array([True, False]))
        >>> round(float(e), 6)
        0.002
    """
    num_bounds = jnp.sum(bounded)
    z_norm = jnp.sum(jnp.abs(bound_multipliers))
    y_norm = jnp.sum(jnp.abs(multipliers))
    s_d = jnp.maximum(S_MAX, (y_norm + z_norm) / max(multipliers.size + dual.size, 1))
    s_c = jnp.maximum(S_MAX, z_norm / jnp.maximum(num_bounds, 1))
    return jnp.maximum(
        jnp.maximum(_max_abs(dual) / (s_d / S_MAX), _max_abs(primal)),
        _max_abs(complementarity) / (s_c / S_MAX),
    )


def _max_abs(array: Array) -> Array:
    return jnp.max(jnp.abs(array), initial=0.0)
