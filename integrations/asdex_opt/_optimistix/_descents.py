"""Descents over a sparse Hessian or Gauss-Newton matrix, robust to indefiniteness.

A Newton direction ``p`` solves ``(H + τI) p = g``; the step is ``-p`` (times a step
size). For an indefinite ``H`` the plain Newton direction may point uphill, or towards
a saddle point, so the shift ``τ ≥ 0`` is raised as in Nocedal & Wright's "Cholesky
with added multiple of the identity" (Algorithm 3.3): start at ``τ = 0`` when the
diagonal of ``H`` is positive and at ``β - min(diag H)`` otherwise, and multiply by four
(starting from ``β = 10⁻³ max|diag H|``) until

* ``H + τI`` is positive definite, where the solver reports it: the direct solvers of
  `asdex_opt.lineax` (`SparseLU`, `BlockDiagonalLU`, `BorderedBlockLU`,
  `TridiagonalLU`) do, like the Cholesky factorization of the algorithm; and
* ``gᵀp > ε ‖g‖ ‖p‖``: ``p`` is a descent direction (``ε`` the machine epsilon; the test
  fails for a non-finite ``p``, e.g. from a singular matrix);

or until ``g = 0`` (a stationary point, where the zero step is the answer). With a
solver that reports definiteness ``τ = 0`` is tried first whatever the diagonal: the
solver rejects it when the diagonal is not positive, and the usual case, a positive
definite ``H``, then reads no diagonal.

For an exact solve ``gᵀp = pᵀ(H + τI)p``, so the descent test means that the (shifted)
quadratic model curves upwards along ``p``. With solvers that report no definiteness
(Krylov solvers, Lineax's own solvers) it is the only test: every step still goes
downhill, but Newton's method may then converge to a saddle point. If no shift passes
(only possible when ``H`` has non-finite entries or the solver keeps failing), the
direction falls back to the limit ``g / τ`` of shifted Newton, i.e. steepest descent.
"""

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx
from jaxtyping import Array, Scalar

from .._lineax._definite import POSITIVE_DEFINITE
from .._lineax._fold import fold_sparse
from .._lineax._operator import SparseMatrixLinearOperator
from ._common import DEFAULT_SOLVER, JacobianEvaluation, all_finite

__all__ = [
    "ShiftedNewtonDescent",
    "ShiftedDampedNewtonDescent",
    "GaussNewtonDescent",
    "LevenbergMarquardtDescent",
    "shifted_newton_direction",
]

_MAX_SHIFTS = 40
_GROWTH = 4.0


def _solve(
    operator: SparseMatrixLinearOperator,
    shift: Scalar,
    vector: Array,
    linear_solver: lx.AbstractLinearSolver,
) -> tuple[Array, Array]:
    """Solves ``(A + shift I) x = vector``; whether ``A + shift I`` is positive definite.

    Definiteness as the solver reports it (the direct solvers of `asdex_opt.lineax`
    do); true when it does not. The solver's ``result`` is not read: the descent test
    that follows rejects a non-finite ``x`` (e.g. of a singular matrix), and an inexact
    but descent direction (say, of an iterative solver that ran out of steps) is still a
    valid step.
    """
    shifted = _shifted(operator, shift)
    solution = lx.linear_solve(shifted, vector, linear_solver, throw=False)
    return solution.value, solution.stats.get(POSITIVE_DEFINITE, jnp.array(True))


def _reports_definiteness(
    operator: SparseMatrixLinearOperator, vector: Array, linear_solver: lx.AbstractLinearSolver
) -> bool:
    """Whether ``linear_solver`` reports the definiteness of shifted ``operator``s (static)."""
    shifted = _shifted(operator, jnp.zeros((), vector.dtype))
    solution = eqx.filter_eval_shape(
        lx.linear_solve, shifted, vector, linear_solver, throw=False
    )
    return POSITIVE_DEFINITE in solution.stats


def _shifted(operator: SparseMatrixLinearOperator, shift: Scalar) -> SparseMatrixLinearOperator:
    """``A + shift I``, tagged symmetric positive semidefinite.

    With a static structure that stores the whole diagonal, the shift is added in place
    and the structure kept (solvers then reuse their plans); otherwise the diagonal is
    appended by `fold_sparse`.
    """
    tags = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})
    structure = operator.structure
    if structure is not None and structure.has_full_diagonal:
        data = operator.data
        data = data + shift * jnp.asarray(structure.diagonal_mask, data.dtype)
        return SparseMatrixLinearOperator.from_structure(data, structure, operator.tags | tags)
    identity = lx.IdentityLinearOperator(operator.in_structure())
    return fold_sparse(operator + shift * identity, tags=tags)


def shifted_newton_direction(
    grad: Array,
    hessian: SparseMatrixLinearOperator,
    linear_solver: lx.AbstractLinearSolver,
    min_shift: Scalar | None = None,
) -> tuple[Array, Scalar, optx.RESULTS]:
    """A descent direction ``p`` from ``(H + τI) p = g`` with the smallest shift tried.

    See the module docstring for the shift schedule. The step to take is ``-p``.

    Args:
        grad: The gradient ``g`` (flat).
        hessian: The sparse symmetric matrix ``H``.
        linear_solver: The Lineax solver for the shifted systems.
        min_shift: A lower bound on ``τ`` (e.g. a trust-region damping); ``None``: 0.

    Returns:
        ``(p, τ, result)``; ``result`` is ``RESULTS.nonfinite`` for a non-finite ``g``,
        or a non-finite ``H`` that spoils the first solve, ``RESULTS.successful``
        otherwise.
    """
    dtype = grad.dtype
    eps = jnp.finfo(dtype).eps
    floor = jnp.zeros((), dtype) if min_shift is None else jnp.asarray(min_shift, dtype)
    grad_norm = jnp.sqrt(jnp.vdot(grad, grad))
    stationary = grad_norm == 0

    def schedule_start() -> tuple[Array, Array]:
        """Nocedal & Wright's first shift (at least ``floor``), and their ``β``."""
        diag = lx.diagonal(hessian).astype(dtype)
        min_diag = jnp.min(diag, initial=jnp.inf)
        scale = jnp.max(jnp.where(jnp.isfinite(diag), jnp.abs(diag), 0), initial=0.0)
        beta = 1e-3 * jnp.where(scale > 0, scale, 1.0)
        return jnp.maximum(jnp.where(min_diag > 0, 0, beta - min_diag), floor), beta

    def attempt(tau):
        p, definite = _solve(hessian, tau, grad, linear_solver)
        # False for a non-finite p. At a stationary point (g = 0) the zero step is the
        # answer: no shift needed.
        descent = jnp.vdot(grad, p) > eps * grad_norm * jnp.sqrt(jnp.vdot(p, p))
        return p, (descent & definite) | stationary

    def retry(p, tau, ok):
        finite = all_finite(grad, hessian.data)
        start, beta = schedule_start()
        # Go on from the schedule's first shift, unless it was the one tried.
        tau = jnp.where(start > tau, start / _GROWTH, tau)

        def cond(carry):
            _, _, ok, tries = carry
            return finite & jnp.invert(ok) & (tries < _MAX_SHIFTS)

        def body(carry):
            _, tau, _, tries = carry
            tau = jnp.maximum(_GROWTH * tau, beta)
            p, ok = attempt(tau)
            return p, tau, ok, tries + 1

        p, tau, ok, _ = jax.lax.while_loop(cond, body, (p, tau, ok, jnp.array(0)))
        # If no shift passes, the limit of shifted Newton: steepest descent.
        p = jnp.where(ok, p, grad / jnp.maximum(tau, beta))
        return p, tau, finite

    # A solver that reports definiteness rejects too small a shift itself (a matrix
    # with a diagonal entry <= 0 is not positive definite), so the smallest shift comes
    # first and the diagonal is only read when it fails; otherwise the schedule's.
    shift = floor if _reports_definiteness(hessian, grad, linear_solver) else schedule_start()[0]
    # The common case, a descent direction at the first shift, skips the retries; it
    # also implies a finite gradient (else the descent test fails).
    p, ok = attempt(shift)
    p, shift, finite = jax.lax.cond(
        ok, lambda p, tau, ok: (p, tau, jnp.array(True)), retry, p, shift, ok
    )
    p = jnp.where(stationary, jnp.zeros_like(p), p)
    result = optx.RESULTS.where(finite, optx.RESULTS.successful, optx.RESULTS.nonfinite)
    return p, shift, result


class _DirectionState(eqx.Module):
    direction: Array
    result: optx.RESULTS


class ShiftedNewtonDescent(
    optx.AbstractDescent[Array, optx.FunctionInfo.EvalGradHessian, _DirectionState]
):
    """Newton direction with the smallest identity shift that makes it a descent direction.

    For line searches (e.g. ``optimistix.BacktrackingArmijo``): the step of size ``s`` is
    ``-s p`` with ``(H + τI) p = g`` (see `shifted_newton_direction`). Works on flat
    ``y`` with a sparse Hessian, as `SparseNewton` provides.

    Attributes:
        linear_solver: The Lineax solver for the shifted systems.
    """

    linear_solver: lx.AbstractLinearSolver = DEFAULT_SOLVER

    def init(self, y: Array, f_info_struct: optx.FunctionInfo) -> _DirectionState:
        """Dummy state of the right shape."""
        del f_info_struct
        return _DirectionState(jnp.zeros_like(y), optx.RESULTS.successful)

    def query(
        self, y: Array, f_info: optx.FunctionInfo.EvalGradHessian, state: _DirectionState
    ) -> _DirectionState:
        """Computes the shifted Newton direction at the accepted point."""
        del y, state
        p, _, result = shifted_newton_direction(f_info.grad, f_info.hessian, self.linear_solver)
        return _DirectionState(p, result)

    def step(self, step_size: Scalar, state: _DirectionState) -> tuple[Array, optx.RESULTS]:
        """``-step_size * p``."""
        return -step_size * state.direction, state.result


class _DampedState(eqx.Module):
    grad: Array
    matrix: SparseMatrixLinearOperator


class ShiftedDampedNewtonDescent(
    optx.AbstractDescent[Array, optx.FunctionInfo.EvalGradHessian, _DampedState]
):
    """Damped (Levenberg-Marquardt style) Newton steps for trust-region searches.

    A step size ``s`` means damping ``λ = 1/s``: the step is ``-p`` with
    ``(H + τI) p = g`` and ``τ ≥ λ`` raised further, if ``H`` is indefinite, until ``p``
    is a descent direction. The predicted reduction ``gᵀd + ½dᵀHd`` of the step ``d = -p``
    is then ``-½(gᵀp + τ‖p‖²) < 0``, so ``optimistix.ClassicalTrustRegion`` accepts only
    steps that really decrease the objective.

    Attributes:
        linear_solver: The Lineax solver for the shifted systems.
    """

    linear_solver: lx.AbstractLinearSolver = DEFAULT_SOLVER

    def init(self, y: Array, f_info_struct: optx.FunctionInfo) -> _DampedState:
        """Dummy state of the right shape."""
        del y
        info = jax.tree.map(
            lambda s: jnp.zeros(s.shape, s.dtype), f_info_struct, is_leaf=_is_struct
        )
        return _DampedState(info.grad, info.hessian)

    def query(
        self, y: Array, f_info: optx.FunctionInfo.EvalGradHessian, state: _DampedState
    ) -> _DampedState:
        """Stores the gradient and Hessian of the accepted point."""
        del y, state
        return _DampedState(f_info.grad, f_info.hessian)

    def step(self, step_size: Scalar, state: _DampedState) -> tuple[Array, optx.RESULTS]:
        """The damped step for damping ``1 / step_size``."""
        damping = _damping(step_size)
        p, _, result = shifted_newton_direction(
            state.grad, state.matrix, self.linear_solver, min_shift=damping
        )
        return -p, result


def _is_struct(x: object) -> bool:
    return isinstance(x, jax.ShapeDtypeStruct)


def _damping(step_size: Scalar) -> Array:
    """``1 / step_size``, or the largest float for a vanishing step size."""
    tiny = step_size <= jnp.finfo(step_size.dtype).eps
    return jnp.where(tiny, jnp.finfo(step_size.dtype).max, 1 / jnp.where(tiny, 1, step_size))


class ResidualJacNormal(optx.FunctionInfo.ResidualJac):
    """``FunctionInfo.ResidualJac`` with the sparse Gauss-Newton matrix ``JᵀJ`` alongside."""

    normal: SparseMatrixLinearOperator | None


def residual_jac_info(evaluation: JacobianEvaluation) -> ResidualJacNormal:
    """Wraps a Jacobian evaluation as Optimistix function information."""
    return ResidualJacNormal(evaluation.residual, evaluation.jac, evaluation.normal)


class GaussNewtonDescent(optx.AbstractDescent[Array, ResidualJacNormal, _DirectionState]):
    """The Gauss-Newton direction from a sparse Jacobian.

    A square Jacobian is solved directly (``J p = r``, the Newton step for the
    equations ``r = 0``; a singular ``J`` is a Lineax ``RESULTS`` failure). Otherwise
    the normal equations ``(JᵀJ + τI) p = Jᵀr`` are solved with the sparse ``JᵀJ`` and
    the smallest shift ``τ ≥ 0`` of `shifted_newton_direction` (zero unless ``JᵀJ`` is
    numerically singular, e.g. for a rank-deficient ``J``).

    Attributes:
        linear_solver: The Lineax solver.
    """

    linear_solver: lx.AbstractLinearSolver = DEFAULT_SOLVER
    needs_normal: ClassVar[str] = "unless_square"

    def init(self, y: Array, f_info_struct: optx.FunctionInfo) -> _DirectionState:
        """Dummy state of the right shape."""
        del f_info_struct
        return _DirectionState(jnp.zeros_like(y), optx.RESULTS.successful)

    def query(self, y: Array, f_info: ResidualJacNormal, state: _DirectionState) -> _DirectionState:
        """Solves for the Gauss-Newton direction."""
        del y, state
        if f_info.normal is None:
            solution = lx.linear_solve(f_info.jac, f_info.residual, self.linear_solver, throw=False)
            return _DirectionState(solution.value, optx.RESULTS.promote(solution.result))
        p, _, result = shifted_newton_direction(
            f_info.compute_grad(), f_info.normal, self.linear_solver
        )
        return _DirectionState(p, result)

    def step(self, step_size: Scalar, state: _DirectionState) -> tuple[Array, optx.RESULTS]:
        """``-step_size * p``."""
        return -step_size * state.direction, state.result


class LevenbergMarquardtDescent(optx.AbstractDescent[Array, ResidualJacNormal, _DampedState]):
    """Levenberg-Marquardt steps ``(JᵀJ + λI) p = Jᵀr`` with ``λ = 1 / step_size``.

    ``JᵀJ + λI`` keeps the sparse structure of ``JᵀJ``; it is positive definite for
    ``λ > 0``, so every step is a descent direction. Where the solve fails numerically
    the damping is raised further (see `shifted_newton_direction`).

    Attributes:
        linear_solver: The Lineax solver.
    """

    linear_solver: lx.AbstractLinearSolver = DEFAULT_SOLVER
    needs_normal: ClassVar[str] = "always"

    def init(self, y: Array, f_info_struct: optx.FunctionInfo) -> _DampedState:
        """Dummy state of the right shape."""
        info = jax.tree.map(
            lambda s: jnp.zeros(s.shape, s.dtype), f_info_struct.normal, is_leaf=_is_struct
        )
        return _DampedState(jnp.zeros_like(y), info)

    def query(self, y: Array, f_info: ResidualJacNormal, state: _DampedState) -> _DampedState:
        """Stores ``Jᵀr`` and ``JᵀJ`` of the accepted point."""
        del y, state
        return _DampedState(f_info.compute_grad(), f_info.normal)

    def step(self, step_size: Scalar, state: _DampedState) -> tuple[Array, optx.RESULTS]:
        """The damped step for damping ``1 / step_size``.

        A damping so small that the solve fails (``JᵀJ`` numerically singular, e.g. at a
        singular solution) is raised as in `shifted_newton_direction`, not reported as a
        failure.
        """
        p, _, result = shifted_newton_direction(
            state.grad, state.matrix, self.linear_solver, min_shift=_damping(step_size)
        )
        return -p, result
