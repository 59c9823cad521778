"""Gauss-Newton and Levenberg-Marquardt descents on a dense Jacobian.

The sparse least-squares solvers switch to these when the coloring of the Jacobian
brings no gain (e.g. a neural network, whose every residual depends on every
parameter): ``J`` and ``JᵀJ`` are then dense matrices and the damped normal equations
``(JᵀJ + λI) p = Jᵀr`` are solved by a dense Cholesky factorization. A damping too
small for the factorization (``JᵀJ`` numerically singular) is raised fourfold, from
``10⁻³ max diag(JᵀJ)`` on, until it gives a descent direction, as the sparse descents
do.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx
from jaxtyping import Array, Scalar

from asdex_opt._lineax._newton import search_shift
from asdex_opt._optimistix._descents import ResidualJacNormal, _damping, _result

__all__ = ["DenseGaussNewtonDescent", "DenseLevenbergMarquardtDescent", "damped_direction"]


def damped_direction(grad: Array, normal: Array, damping: Scalar) -> tuple[Array, Array]:
    """``p`` from ``(A + τI) p = g`` with the smallest ``τ ≥ damping`` of the schedule.

    ``A + τI`` is factored by Cholesky; a ``τ`` is accepted when every pivot exceeds
    ``n ε`` times the largest (``A + τI`` numerically positive definite: a smaller
    pivot makes the solve meaningless) and ``p`` is a descent direction.

    Args:
        grad: ``g = Jᵀr``.
        normal: The dense symmetric positive semidefinite ``A = JᵀJ``.
        damping: The smallest ``τ`` to try.

    Returns:
        ``(p, finite)``: the direction (the step is ``-p``), and whether ``g`` and ``A``
        are finite.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt._optimistix._dense import damped_direction
        >>> A = jnp.array([[1.0, 1.0], [1.0, 1.0]])  # singular: τ = 0 fails
        >>> p, finite = damped_direction(jnp.array([1.0, 0.0]), A, 0.0)
        >>> bool(jnp.all(jnp.isfinite(p))), bool(p[0] > 0)
        (True, True)
    """
    eps = jnp.finfo(grad.dtype).eps
    grad_norm = jnp.sqrt(jnp.vdot(grad, grad))
    stationary = grad_norm == 0
    eye = jnp.eye(grad.size, dtype=normal.dtype)
    scale = jnp.max(jnp.abs(jnp.diagonal(normal)), initial=0.0)
    beta = 1e-3 * jnp.where(scale > 0, scale, 1.0)

    def attempt(tau: Array) -> tuple[Array, Array]:
        factor = jax.scipy.linalg.cho_factor(normal + tau * eye, lower=True)
        pivots = jnp.diagonal(factor[0]) ** 2  # NaN where the factorization broke down
        definite = jnp.min(pivots) > grad.size * eps * jnp.max(pivots)
        p = jax.scipy.linalg.cho_solve(factor, grad)
        descent = jnp.vdot(grad, p) > eps * grad_norm * jnp.sqrt(jnp.vdot(p, p))
        return p, (definite & descent) | stationary

    finite = jnp.all(jnp.isfinite(grad)) & jnp.all(jnp.isfinite(normal))
    tau = jnp.asarray(damping, grad.dtype)
    p, _, _ = search_shift(attempt, grad, tau, tau, beta, finite)
    return jnp.where(stationary, jnp.zeros_like(p), p), finite


class _Direction(eqx.Module):
    direction: Array
    result: optx.RESULTS


class DenseGaussNewtonDescent(optx.AbstractDescent[Array, ResidualJacNormal, _Direction]):
    """The Gauss-Newton direction from a dense Jacobian.

    A square ``J`` is solved directly (``J p = r``, by ``lineax.LU``); otherwise the
    normal equations ``(JᵀJ + τI) p = Jᵀr`` with the smallest shift of
    `damped_direction` (zero unless ``JᵀJ`` is numerically singular).
    """

    def init(self, y: Array, f_info_struct: optx.FunctionInfo) -> _Direction:
        """Dummy state of the right shape."""
        del f_info_struct
        return _Direction(jnp.zeros_like(y), optx.RESULTS.successful)

    def query(self, y: Array, f_info: ResidualJacNormal, state: _Direction) -> _Direction:
        """Solve for the Gauss-Newton direction."""
        del y, state
        if f_info.normal is None:
            solution = lx.linear_solve(f_info.jac, f_info.residual, lx.LU(), throw=False)
            return _Direction(solution.value, optx.RESULTS.promote(solution.result))
        p, finite = damped_direction(f_info.compute_grad(), f_info.normal.as_matrix(), 0.0)
        return _Direction(p, _result(finite))

    def step(self, step_size: Scalar, state: _Direction) -> tuple[Array, optx.RESULTS]:
        """``-step_size * p``."""
        return -step_size * state.direction, state.result


class _Damped(eqx.Module):
    grad: Array
    normal: Array


class DenseLevenbergMarquardtDescent(optx.AbstractDescent[Array, ResidualJacNormal, _Damped]):
    """Levenberg-Marquardt steps ``(JᵀJ + λI) p = Jᵀr``, ``λ = 1 / step_size``, dense."""

    def init(self, y: Array, f_info_struct: optx.FunctionInfo) -> _Damped:
        """Dummy state of the right shape."""
        del f_info_struct
        return _Damped(jnp.zeros_like(y), jnp.zeros((y.size, y.size), y.dtype))

    def query(self, y: Array, f_info: ResidualJacNormal, state: _Damped) -> _Damped:
        """Store ``Jᵀr`` and ``JᵀJ`` of the accepted point."""
        del y, state
        return _Damped(f_info.compute_grad(), f_info.normal.as_matrix())

    def step(self, step_size: Scalar, state: _Damped) -> tuple[Array, optx.RESULTS]:
        """The damped step for damping ``1 / step_size``."""
        p, finite = damped_direction(state.grad, state.normal, _damping(step_size))
        return -p, _result(finite)
