"""Newton's method for root finding with a sparse Jacobian, globalised by a line search."""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx
from jaxtyping import Array, PyTree, Scalar

import asdex
from asdex_opt._lineax._choice import choose_solver
from asdex_opt._lineax._finite import all_finite
from asdex_opt._lineax._newton import shifted_newton_direction
from asdex_opt._lineax._normal import NormalProduct
from asdex_opt._optimistix._dense import damped_direction
from asdex_opt._optimistix._termination import cauchy_termination, check_finite_result
from asdex_opt._optimistix._verbose import as_verbose
from asdex_opt._problem import (
    FlatFunction,
    JacobianEvaluator,
    detect_jacobian,
    dynamic_part,
    flatten,
    no_sparsity_gain,
)

__all__ = ["SparseNewtonRootFinder"]

# Armijo's sufficient decrease of the merit ½‖F‖², and how many step sizes (1, 1/2,
# 1/4, ...) each direction gets.
_ARMIJO = 1e-4
_NEWTON_TRIALS = 30
_DAMPED_TRIALS = 40


class _RootState(eqx.Module):
    flat_fn: FlatFunction
    jacobian_fn: JacobianEvaluator = eqx.field(static=True)
    normal: NormalProduct | None = eqx.field(static=True)
    linear_solver: lx.AbstractLinearSolver
    normal_solver: lx.AbstractLinearSolver | None
    f: Array
    diff: Array
    result: optx.RESULTS
    num_steps: Array
    num_damped_steps: Array


class _Trial(eqx.Module):
    step_size: Array
    y: Array
    f: Array
    accepted: Array
    tries: Array


class SparseNewtonRootFinder(optx.AbstractRootFinder[PyTree, PyTree, Any, _RootState]):
    """Newton's method for ``fn(y, args) = 0`` with a sparse Jacobian, globalised.

    The sparse counterpart of ``optimistix.Newton``: the Jacobian sparsity of the
    flattened ``fn`` with respect to the flattened ``y`` is detected and colored once,
    at ``init``; each step evaluates ``f`` and the sparse ``J`` (one JVP or VJP per
    color) and solves ``J Δ = f`` with ``linear_solver`` (``None``: chosen from the pattern
    at ``init``, as in `SparseNewton`). ``fn`` must return as many elements as ``y`` has.

    With ``globalise=True`` (the default) the step is found by a backtracking (Armijo) line
    search on the merit ``½‖f‖²`` along the Newton direction ``-Δ``; where ``J`` is
    singular, the direction is not finite, or no step size down to 2⁻²⁹ decreases the merit
    enough, a Levenberg-Marquardt direction ``-(JᵀJ + λI)⁻¹ Jᵀf`` with ``λ = ‖f‖₂`` (``JᵀJ``
    formed sparsely, chosen solver) is searched instead. Far from a root this converges
    where full Newton steps diverge, and near one the full step is taken (quadratic
    convergence). A point where neither direction decreases the merit (a local minimum of
    ``½‖f‖²`` that is not a root) ends with ``RESULTS.nonlinear_divergence``. With
    ``globalise=False`` every step is the full Newton step, as in ``optimistix.Newton`` (a
    singular ``J`` is a ``RESULTS`` failure).

    Terminates like ``optimistix.Newton`` (Cauchy criterion on ``y`` and on ``f``
    against zero, ``f`` at the new iterate); a non-finite ``f`` or ``J`` at an iterate
    is a ``RESULTS.nonfinite`` failure, and a failed solve returns the last finite
    iterate. Supports the ``lower`` and ``upper`` options of ``optimistix.Newton``
    (iterates clipped to a box).

    Attributes:
        rtol: Relative tolerance.
        atol: Absolute tolerance.
        norm: The norm of the convergence criteria.
        linear_solver: The Lineax solver for ``J Δ = f`` (and, when globalised, for
            ``JᵀJ + λI``); ``None`` picks them from the patterns
            (`asdex_opt.lineax.choose_solver`).
        verbose: What to report at every step (a bool, a frozenset of entry names or a
            callable, as Optimistix solvers take it).
        coloring: A precomputed colored Jacobian pattern of the flattened ``fn`` with
            respect to the flattened ``y`` (``asdex.jacobian_coloring``), used instead
            of detecting one at ``init``.
        globalise: Whether to search along the Newton direction (falling back to the
            damped one); ``False`` takes full Newton steps.

    Examples:
        >>> import jax.numpy as jnp, optimistix as optx
        >>> from asdex_opt.optimistix import SparseNewtonRootFinder
        >>> fn = lambda y, _: y**3 + jnp.roll(y, 1) - 2.0
        >>> sol = optx.root_find(fn, SparseNewtonRootFinder(1e-8, 1e-8), jnp.ones(5) * 2)
        >>> bool(jnp.allclose(sol.value, 1.0))
        True
    """

    rtol: float
    atol: float
    norm: Callable[[PyTree], Scalar] = optx.max_norm
    linear_solver: lx.AbstractLinearSolver | None = None
    verbose: Callable[..., None] = eqx.field(default=False, converter=as_verbose)
    coloring: asdex.ColoredPattern | None = None
    globalise: bool = True

    def init(
        self,
        fn: Callable,
        y: PyTree,
        args: PyTree,
        options: dict[str, Any],
        f_struct: PyTree[jax.ShapeDtypeStruct],
        aux_struct: PyTree[jax.ShapeDtypeStruct],
        tags: frozenset[object],
    ) -> _RootState:
        """Detect and color the Jacobian sparsity; build the initial state."""
        del options, aux_struct, tags
        flat_fn, y_flat, dynamic = flatten(fn, y, args, ravel_out=True)
        num_out = sum(s.size for s in jax.tree.leaves(f_struct))
        if num_out != y_flat.size:
            raise ValueError(
                f"`SparseNewtonRootFinder` needs as many equations as unknowns, but `fn` "
                f"returns {num_out} elements for {y_flat.size} unknowns (`fn` returns "
                f"{f_struct}). Use `optimistix.least_squares` with `SparseGaussNewton` "
                "or `SparseLevenbergMarquardt` for over- or under-determined systems."
            )
        coloring = detect_jacobian(flat_fn, y_flat, dynamic, self.coloring)
        jacobian_fn = JacobianEvaluator(flat_fn, coloring, dynamic, normal=False)
        linear_solver = self.linear_solver
        if linear_solver is None:
            linear_solver = choose_solver(jacobian_fn.structure)
        normal, normal_solver = None, None
        if self.globalise and not no_sparsity_gain(coloring):
            normal = NormalProduct(jacobian_fn.structure)
            normal_solver = self.linear_solver
            if normal_solver is None:
                normal_solver = choose_solver(normal.structure, symmetric=True)
        dtype = jnp.result_type(*jax.tree.leaves(f_struct))
        return _RootState(
            flat_fn=flat_fn,
            jacobian_fn=jacobian_fn,
            normal=normal,
            linear_solver=linear_solver,
            normal_solver=normal_solver,
            f=jnp.full(num_out, jnp.inf, dtype),
            diff=jnp.full_like(y_flat, jnp.inf),
            result=optx.RESULTS.successful,
            num_steps=jnp.array(0),
            num_damped_steps=jnp.array(0),
        )

    def step(
        self,
        fn: Callable,
        y: PyTree,
        args: PyTree,
        options: dict[str, Any],
        state: _RootState,
        tags: frozenset[object],
    ) -> tuple[PyTree, _RootState, Any]:
        """One Newton step ``y ← y - s J⁻¹ f``, ``s`` from the line search (or a damped step)."""
        del tags
        dynamic = dynamic_part(fn, args)
        y_flat = jax.flatten_util.ravel_pytree(y)[0]
        evaluation = state.jacobian_fn(y_flat, dynamic)
        f, jac = evaluation.residual, evaluation.jac
        solution = lx.linear_solve(jac, f, state.linear_solver, throw=False)
        newton = -solution.value
        solved = (solution.result == lx.RESULTS.successful) & all_finite(newton)
        lower, upper = options.get("lower"), options.get("upper")

        def evaluate(step: Array) -> tuple[Array, Array]:
            new_y = state.flat_fn.unravel(y_flat + step)
            if lower is not None:
                new_y = jax.tree.map(lambda a, b: jnp.clip(a, min=b), new_y, lower)
            if upper is not None:
                new_y = jax.tree.map(lambda a, b: jnp.clip(a, max=b), new_y, upper)
            new_y_flat = jax.flatten_util.ravel_pytree(new_y)[0]
            return new_y_flat, state.flat_fn(new_y_flat, dynamic)[0]

        merit = 0.5 * jnp.vdot(f, f)
        if self.globalise:
            trial = _search(evaluate, newton, merit, -2 * merit, _NEWTON_TRIALS, solved)

            def damped(_: None) -> _Trial:
                grad = jac.transpose().mv(f)
                direction = _damped_direction(grad, jac, jnp.sqrt(2 * merit), state)
                slope = -jnp.vdot(grad, direction)
                return _search(
                    evaluate, -direction, merit, slope, _DAMPED_TRIALS, all_finite(direction)
                )

            use_damped = jnp.invert(trial.accepted)
            trial = jax.lax.cond(trial.accepted, lambda _: trial, damped, None)
            converged_here = self.norm(f) < self.atol
            result = optx.RESULTS.where(
                trial.accepted | converged_here,
                optx.RESULTS.successful,
                optx.RESULTS.nonlinear_divergence,
            )
        else:
            new_y_flat, new_f = evaluate(newton)
            trial = _Trial(jnp.ones((), f.dtype), new_y_flat, new_f, solved, 1)
            use_damped = jnp.array(False)
            result = check_finite_result(optx.RESULTS.promote(solution.result), new_f)
        result = check_finite_result(result, f, jac.data)
        ok = result == optx.RESULTS.successful
        new_y_flat = jnp.where(ok & trial.accepted, trial.y, y_flat)
        self.verbose(
            num_steps=("Step", state.num_steps),
            loss_this_step=("Max |f| on this step", jnp.max(jnp.abs(f))),
            step_size=("Step size", trial.step_size),
            y=("y", y_flat),
        )
        new_state = _RootState(
            flat_fn=state.flat_fn,
            jacobian_fn=state.jacobian_fn,
            normal=state.normal,
            linear_solver=state.linear_solver,
            normal_solver=state.normal_solver,
            f=jnp.where(ok & trial.accepted, trial.f, f),
            diff=y_flat - new_y_flat,
            result=result,
            num_steps=state.num_steps + 1,
            num_damped_steps=state.num_damped_steps + jnp.where(use_damped, 1, 0),
        )
        return state.flat_fn.unravel(new_y_flat), new_state, evaluation.aux

    def terminate(
        self,
        fn: Callable,
        y: PyTree,
        args: PyTree,
        options: dict[str, Any],
        state: _RootState,
        tags: frozenset[object],
    ) -> tuple[Array, optx.RESULTS]:
        """Cauchy convergence (``f`` against zero), or a failed step."""
        del fn, args, options, tags
        y_flat = jax.flatten_util.ravel_pytree(y)[0]
        converged = cauchy_termination(
            self.rtol, self.atol, self.norm, y_flat, state.diff, jnp.zeros_like(state.f), state.f
        )
        failed = state.result != optx.RESULTS.successful
        return converged | failed, state.result

    def postprocess(
        self,
        fn: Callable,
        y: PyTree,
        aux: Any,
        args: PyTree,
        options: dict[str, Any],
        state: _RootState,
        tags: frozenset[object],
        result: optx.RESULTS,
    ) -> tuple[PyTree, Any, dict[str, Any]]:
        """Report how many steps took the damped direction in ``stats``."""
        del fn, args, options, tags, result
        return y, aux, {"num_damped_steps": state.num_damped_steps}


def _search(
    evaluate: Callable[[Array], tuple[Array, Array]],
    direction: Array,
    merit: Array,
    slope: Array,
    max_trials: int,
    usable: Array,
) -> _Trial:
    """Backtrack from the full step along ``direction`` to Armijo's decrease of ``½‖f‖²``.

    ``slope`` is the merit's directional derivative along ``direction``; a trial point
    with a non-finite ``f`` counts as no decrease. Nothing is tried unless ``usable``.
    """

    def cond(trial: _Trial) -> Array:
        return usable & jnp.invert(trial.accepted) & (trial.tries < max_trials)

    def body(trial: _Trial) -> _Trial:
        step_size = jnp.where(trial.tries == 0, 1, trial.step_size / 2)
        new_y, new_f = evaluate(step_size * direction)
        new_merit = 0.5 * jnp.vdot(new_f, new_f)
        accepted = jnp.isfinite(new_merit) & (new_merit <= merit + _ARMIJO * step_size * slope)
        return _Trial(step_size, new_y, new_f, accepted, trial.tries + 1)

    zero = jnp.zeros((), direction.dtype)
    start = _Trial(zero, jnp.zeros_like(direction), jnp.zeros_like(direction), jnp.array(False), 0)
    return jax.lax.while_loop(cond, body, start)


def _damped_direction(grad: Array, jac: Any, damping: Array, state: _RootState) -> Array:
    """``p`` of ``(JᵀJ + λI) p = Jᵀf`` with ``λ ≥ damping``: the step is ``-p``.

    ``JᵀJ`` is sparse unless the coloring brings no gain, where it is dense
    (`damped_direction`).
    """
    if state.normal is not None:
        direction, _, _ = shifted_newton_direction(
            grad, state.normal(jac), state.normal_solver, min_shift=damping
        )
        return direction
    matrix = jac.as_matrix()
    return damped_direction(grad, matrix.T @ matrix, damping)[0]
