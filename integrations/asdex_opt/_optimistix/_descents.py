"""Descents over a sparse Hessian or Gauss-Newton matrix, robust to indefiniteness.

Each solves a (shifted) Newton system with `shifted_newton_direction` (see
``asdex_opt._lineax._newton`` for the shift schedule): ``(H + τI) p = g`` with the
smallest shift ``τ ≥ 0`` that makes ``-p`` a descent direction, and ``H + τI``
positive definite where the linear solver reports definiteness.
"""

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx
from equinox import AbstractClassVar
from jaxtyping import Array, Scalar

from asdex_opt._lineax._newton import shifted_newton_direction
from asdex_opt._lineax._operator import SparseMatrixLinearOperator
from asdex_opt._lineax._superlu import SparseLU
from asdex_opt._problem import JacobianEvaluation

__all__ = [
    "AbstractGaussNewtonDescent",
    "ShiftedNewtonDescent",
    "ShiftedDampedNewtonDescent",
    "TruncatedNewtonDescent",
    "GaussNewtonDescent",
    "LevenbergMarquardtDescent",
]


def _result(finite: Array) -> optx.RESULTS:
    return optx.RESULTS.where(finite, optx.RESULTS.successful, optx.RESULTS.nonfinite)


class _DirectionState(eqx.Module):
    direction: Array
    result: optx.RESULTS


class _StretchedState(eqx.Module):
    direction: Array  # p, from (H + τI) p = g
    stretch: Array  # the multiple of p the first trial takes (see `_stretch`)
    curved: Array  # whether the model curves upwards along p (pᵀHp > 0)
    shift: Array  # τ, where the next point's shift schedule resumes
    result: optx.RESULTS


class _AbstractStretchedDescent(
    optx.AbstractDescent[Array, optx.FunctionInfo.EvalGradHessian, _StretchedState]
):
    """A shifted Newton direction per accepted point, stretched where the shift shortened it.

    Subclasses turn a step size into a step along ``-m p`` (see `_stretched_direction`).

    Attributes:
        linear_solver: The Lineax solver for the shifted systems.
    """

    linear_solver: lx.AbstractLinearSolver = eqx.field(default_factory=SparseLU)

    def init(self, y: Array, f_info_struct: optx.FunctionInfo) -> _StretchedState:
        """Return a dummy state of the right shape."""
        del f_info_struct
        one, zero = jnp.ones((), y.dtype), jnp.zeros((), y.dtype)
        return _StretchedState(
            jnp.zeros_like(y), one, jnp.array(False), zero, optx.RESULTS.successful
        )

    def query(
        self, y: Array, f_info: optx.FunctionInfo.EvalGradHessian, state: _StretchedState
    ) -> _StretchedState:
        """Compute the shifted Newton direction at the accepted point.

        The shift schedule resumes from the last accepted point's shift (see
        `shifted_newton_direction`).
        """
        del y
        return _stretched_direction(f_info, self.linear_solver, state.shift)


class ShiftedNewtonDescent(_AbstractStretchedDescent):
    """Newton direction with the smallest identity shift that makes it a descent direction.

    For backtracking line searches (e.g. ``optimistix.BacktrackingArmijo``) whose first
    trial has step size 1 and each further one ``backtrack`` times the last: ``p`` solves
    ``(H + τI) p = g`` (see `shifted_newton_direction`). When ``τ = 0`` the step of size
    ``s`` is ``-s p``. When ``τ > 0`` the first trial is ``-m p``, ``p`` stretched to
    where the unshifted quadratic model is least along it (``1 ≤ m ≤ 1000``): the shift
    made ``p`` short, and a search that only shortens steps would never recover the
    length. If that trial fails, the search goes on from the plain step: size ``s < 1``
    gives ``-(s / backtrack) p``, so the second trial is ``-p`` and the ones after it
    backtrack from there. With ``stretch=False`` the step of size ``s`` is ``-s m p``
    for every ``s``, where the model curves upwards along ``p`` (``pᵀHp > 0``), else
    ``-s p``: one line, for searches that lengthen steps themselves and interpolate
    along it (`Wolfe`), whose first trial is then the model's minimiser along the line.
    Works on flat ``y`` with a sparse Hessian, as `SparseNewton` provides.

    Attributes:
        linear_solver: The Lineax solver for the shifted systems.
        backtrack: The search's step size factor after a rejected trial, in (0, 1).
        stretch: Whether the first trial of a shifted direction is stretched.
    """

    backtrack: float = 0.5
    stretch: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if not 0 < self.backtrack < 1:
            raise ValueError(
                f"`ShiftedNewtonDescent(backtrack=...)` must be in (0, 1), got {self.backtrack}."
            )

    def step(self, step_size: Scalar, state: _StretchedState) -> tuple[Array, optx.RESULTS]:
        """``-m p`` for ``step_size ≥ 1``; below, backtracking from ``-p``."""
        if not self.stretch:
            scale = jnp.where(state.curved, state.stretch, 1)
            return -(step_size * scale) * state.direction, state.result
        stretched = state.stretch > 1
        fallback = jnp.minimum(step_size / self.backtrack, 1)
        multiple = jnp.where(
            step_size >= 1, step_size * state.stretch, jnp.where(stretched, fallback, step_size)
        )
        return -multiple * state.direction, state.result


class TruncatedNewtonDescent(_AbstractStretchedDescent):
    """The stretched direction of `ShiftedNewtonDescent`, cut to a trust radius.

    For trust-region searches whose step size is a radius (`TrustRegion`): with ``m p``
    the stretched direction, the step is ``-m p`` if ``‖m p‖₂`` is within the radius,
    else ``-m p`` scaled down to it. One sparse solve per accepted point, none per
    rejected trial. Along ``-t p`` the quadratic model ``gᵀd + ½dᵀHd`` decreases for
    every ``0 < t ≤ m``, since ``pᵀHp = gᵀp - τ‖p‖² ≤ gᵀp`` and ``m`` is at most the
    model's minimiser along ``-p`` (where it has one), so the trust region's predicted
    reduction is negative.

    Attributes:
        linear_solver: The Lineax solver for the shifted systems.
    """

    def step(self, step_size: Scalar, state: _StretchedState) -> tuple[Array, optx.RESULTS]:
        """``-m p``, scaled down to length ``step_size`` if longer."""
        direction = state.stretch * state.direction
        length = jnp.sqrt(jnp.vdot(direction, direction))
        inside = length <= step_size
        scale = jnp.where(inside, 1, step_size / jnp.where(inside, 1, length))
        return -scale * direction, state.result


# How far beyond ``p`` a shifted direction may be stretched (`_stretch`): where the
# model has no minimum along it, the search (or the trust region) bounds the step.
_MAX_STRETCH = 1e3


def _stretched_direction(
    f_info: optx.FunctionInfo.EvalGradHessian,
    linear_solver: lx.AbstractLinearSolver,
    previous_shift: Array,
) -> _StretchedState:
    """Return the shifted Newton direction and how far the shift shortened it."""
    p, shift, finite = shifted_newton_direction(
        f_info.grad, f_info.hessian, linear_solver, previous_shift=previous_shift
    )
    stretch, curved = _stretch(f_info.grad, p, shift)
    stretch = stretch.astype(p.dtype)
    return _StretchedState(p, stretch, curved, shift.astype(p.dtype), _result(finite))


def _stretch(grad: Array, p: Array, shift: Array) -> tuple[Array, Array]:
    """Return the unshifted quadratic model's minimiser along ``-p`` as a multiple of ``p``.

    A shift ``τ > 0`` (``H`` indefinite, or nearly singular) shortens the Newton step:
    ``p`` solves ``(H + τI) p = g`` and the model ``gᵀd + ½dᵀHd`` keeps decreasing
    beyond ``-p``, down to ``-(gᵀp / pᵀHp) p``, or without end where ``pᵀHp ≤ 0``
    (negative curvature). Far from a minimum of a nonconvex function the shift alone
    keeps every step short, and a search that only shortens steps never recovers the
    length (as a zoom line search, which also lengthens them, does). The multiple is
    ``gᵀp / pᵀHp`` clipped to ``[1, 1000]`` (``1000`` for ``pᵀHp ≤ 0``),
    and 1 for ``τ = 0``, where ``p`` is the model's minimiser already. The curvature
    comes from the solve, ``pᵀHp = gᵀp - τ‖p‖²``, not from a product with ``H``:
    a sparse matrix-vector product would cost as much as the rest of the step.

    Returns:
        ``(m, curved)``: the multiple, and whether ``pᵀHp > 0``.
    """
    slope = jnp.vdot(grad, p)
    curvature = slope - shift * jnp.vdot(p, p)
    positive = curvature > 0
    multiple = jnp.where(positive, slope / jnp.where(positive, curvature, 1), _MAX_STRETCH)
    return jnp.where(shift > 0, jnp.clip(multiple, 1, _MAX_STRETCH), 1), positive


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

    linear_solver: lx.AbstractLinearSolver = eqx.field(default_factory=SparseLU)

    def init(self, y: Array, f_info_struct: optx.FunctionInfo) -> _DampedState:
        """Return a dummy state of the right shape."""
        del y
        info = jax.tree.map(
            lambda s: jnp.zeros(s.shape, s.dtype), f_info_struct, is_leaf=_is_struct
        )
        return _DampedState(info.grad, info.hessian)

    def query(
        self, y: Array, f_info: optx.FunctionInfo.EvalGradHessian, state: _DampedState
    ) -> _DampedState:
        """Store the gradient and Hessian of the accepted point."""
        del y, state
        return _DampedState(f_info.grad, f_info.hessian)

    def step(self, step_size: Scalar, state: _DampedState) -> tuple[Array, optx.RESULTS]:
        """The damped step for damping ``1 / step_size``."""
        damping = _damping(step_size)
        p, _, finite = shifted_newton_direction(
            state.grad, state.matrix, self.linear_solver, min_shift=damping
        )
        return -p, _result(finite)


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
    """Wrap a Jacobian evaluation as Optimistix function information."""
    return ResidualJacNormal(evaluation.residual, evaluation.jac, evaluation.normal)


class AbstractGaussNewtonDescent(optx.AbstractDescent[Array, ResidualJacNormal, Any]):
    """A descent from a sparse Jacobian and, where it needs it, the sparse ``JᵀJ``.

    Class variables:
        solves_square_jacobian: Whether a square Jacobian is solved directly
            (``J p = r``), so that ``JᵀJ`` is needed only for non-square ones; if
            false, ``JᵀJ`` is always needed.

    Attributes:
        linear_solver: The Lineax solver.
    """

    linear_solver: eqx.AbstractVar[lx.AbstractLinearSolver]
    solves_square_jacobian: AbstractClassVar[bool]

    def needs_normal(self, square: bool) -> bool:
        """Whether the solver must form ``JᵀJ`` for a square (or not) Jacobian."""
        return not (square and self.solves_square_jacobian)


class GaussNewtonDescent(AbstractGaussNewtonDescent):
    """The Gauss-Newton direction from a sparse Jacobian.

    A square Jacobian is solved directly (``J p = r``, the Newton step for the
    equations ``r = 0``; a singular ``J`` is a Lineax ``RESULTS`` failure). Otherwise
    the normal equations ``(JᵀJ + τI) p = Jᵀr`` are solved with the sparse ``JᵀJ`` and
    the smallest shift ``τ ≥ 0`` of `shifted_newton_direction` (zero unless ``JᵀJ`` is
    numerically singular, e.g. for a rank-deficient ``J``).

    Attributes:
        linear_solver: The Lineax solver.
    """

    linear_solver: lx.AbstractLinearSolver = eqx.field(default_factory=SparseLU)
    solves_square_jacobian: ClassVar[bool] = True

    def init(self, y: Array, f_info_struct: optx.FunctionInfo) -> _DirectionState:
        """Return a dummy state of the right shape."""
        del f_info_struct
        return _DirectionState(jnp.zeros_like(y), optx.RESULTS.successful)

    def query(self, y: Array, f_info: ResidualJacNormal, state: _DirectionState) -> _DirectionState:
        """Solve for the Gauss-Newton direction."""
        del y, state
        if f_info.normal is None:
            solution = lx.linear_solve(f_info.jac, f_info.residual, self.linear_solver, throw=False)
            return _DirectionState(solution.value, optx.RESULTS.promote(solution.result))
        p, _, finite = shifted_newton_direction(
            f_info.compute_grad(), f_info.normal, self.linear_solver
        )
        return _DirectionState(p, _result(finite))

    def step(self, step_size: Scalar, state: _DirectionState) -> tuple[Array, optx.RESULTS]:
        """``-step_size * p``."""
        return -step_size * state.direction, state.result


class LevenbergMarquardtDescent(AbstractGaussNewtonDescent):
    """Levenberg-Marquardt steps ``(JᵀJ + λI) p = Jᵀr`` with ``λ = 1 / step_size``.

    ``JᵀJ + λI`` keeps the sparse structure of ``JᵀJ``; it is positive definite for
    ``λ > 0``, so every step is a descent direction. Where the solve fails numerically
    the damping is raised further (see `shifted_newton_direction`).

    Attributes:
        linear_solver: The Lineax solver.
    """

    linear_solver: lx.AbstractLinearSolver = eqx.field(default_factory=SparseLU)
    solves_square_jacobian: ClassVar[bool] = False

    def init(self, y: Array, f_info_struct: optx.FunctionInfo) -> _DampedState:
        """Return a dummy state of the right shape."""
        info = jax.tree.map(
            lambda s: jnp.zeros(s.shape, s.dtype), f_info_struct.normal, is_leaf=_is_struct
        )
        return _DampedState(jnp.zeros_like(y), info)

    def query(self, y: Array, f_info: ResidualJacNormal, state: _DampedState) -> _DampedState:
        """Store ``Jᵀr`` and ``JᵀJ`` of the accepted point."""
        del y, state
        return _DampedState(f_info.compute_grad(), f_info.normal)

    def step(self, step_size: Scalar, state: _DampedState) -> tuple[Array, optx.RESULTS]:
        """The damped step for damping ``1 / step_size``.

        A damping so small that the solve fails (``JᵀJ`` numerically singular, e.g. at a
        singular solution) is raised as in `shifted_newton_direction`, not reported as a
        failure.
        """
        p, _, finite = shifted_newton_direction(
            state.grad, state.matrix, self.linear_solver, min_shift=_damping(step_size)
        )
        return -p, _result(finite)
