"""Newton minimisers with exact sparse Hessians: line-search and trust-region variants."""

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optimistix as optx
from equinox import AbstractVar
from jaxtyping import Array, PyTree, Scalar

import asdex
from asdex_opt._lineax._choice import choose_solver
from asdex_opt._lineax._ldl import SparseLDL
from asdex_opt._lineax._superlu import SparseLU
from asdex_opt._optimistix._descents import ShiftedNewtonDescent, TruncatedNewtonDescent
from asdex_opt._optimistix._searches import (
    AbstractRevisingSearch,
    Point,
    TrustRegion,
    Wolfe,
    revising,
)
from asdex_opt._optimistix._termination import (
    cauchy_termination,
    step_outcome,
    stop_when_done_or_failed,
)
from asdex_opt._optimistix._verbose import as_verbose
from asdex_opt._problem import (
    FlatFunction,
    HessianEvaluator,
    detect_hessian,
    dynamic_part,
    flatten,
    shape_struct,
    with_concrete_twin,
)

__all__ = ["AbstractSparseNewton", "SparseNewton", "SparseTrustRegionNewton"]


class _SparseNewtonState(eqx.Module):
    # Fixed for the whole solve: the flattened problem and its Hessian evaluator.
    flat_fn: FlatFunction
    hessian_fn: HessianEvaluator = eqx.field(static=True)
    descent: optx.AbstractDescent  # ``self.descent`` with the linear solver chosen at init
    # Updated every search step.
    first_step: Array
    y_eval: Array
    search_state: PyTree
    # Updated after each accepted step.
    f_info: optx.FunctionInfo.EvalGrad | optx.FunctionInfo.EvalGradHessian
    aux: PyTree
    descent_state: PyTree
    # Termination and statistics.
    terminate: Array
    result: optx.RESULTS
    num_steps: Array
    num_hessians: Array


class AbstractSparseNewton(optx.AbstractMinimiser[PyTree, Any, _SparseNewtonState]):
    """Newton's method with the exact sparse Hessian, any descent and search.

    The Hessian sparsity of ``fn`` with respect to ``y`` (flattened with
    ``jax.flatten_util.ravel_pytree``) is detected and star-colored once, in ``init``
    (arrays ``fn`` closes over and concrete integer arrays of ``args`` are constants to
    detection; see `asdex_opt.optimistix`), unless a ``coloring`` is given; every
    accepted step then evaluates the gradient and the sparse Hessian (one
    Hessian-vector product per color) at the new point and queries the descent, except
    the step that meets the termination test, which ends the solve. A point whose
    gradient is exactly zero (the start included) also ends it, before any Hessian:
    every Newton step from there is zero. The structure mirrors ``optimistix.BFGS``:
    rejected search steps only evaluate ``fn``.

    Subclasses provide ``rtol``, ``atol``, ``norm``, ``descent`` (working on the flat
    ``y`` with ``FunctionInfo.EvalGradHessian`` whose ``hessian`` is a
    `SparseMatrixLinearOperator`), ``search`` (an ``optimistix.AbstractSearch`` or an
    `AbstractRevisingSearch` such as `Watchdog`), ``verbose`` (a callable, see
    ``as_verbose``), ``coloring`` and ``choose_solver``: if true, ``descent.linear_solver``
    is replaced at ``init`` by `asdex_opt.lineax.choose_solver` of the Hessian's
    structure.
    """

    rtol: AbstractVar[float]
    atol: AbstractVar[float]
    norm: AbstractVar[Callable[[PyTree], Scalar]]
    descent: AbstractVar[optx.AbstractDescent]
    search: AbstractVar[optx.AbstractSearch | AbstractRevisingSearch]
    verbose: AbstractVar[Callable[..., None]]
    coloring: AbstractVar[asdex.ColoredPattern | None]
    choose_solver: AbstractVar[bool]

    def init(
        self,
        fn: Callable,
        y: PyTree,
        args: PyTree,
        options: dict[str, Any],
        f_struct: jax.ShapeDtypeStruct,
        aux_struct: PyTree[jax.ShapeDtypeStruct],
        tags: frozenset[object],
    ) -> _SparseNewtonState:
        """Detect and color the Hessian sparsity; build the initial state."""
        del options, tags
        if getattr(f_struct, "shape", None) != () or not jnp.issubdtype(
            f_struct.dtype, jnp.floating
        ):
            raise ValueError(
                f"`{type(self).__name__}` minimises a scalar function, but `fn` returns "
                f"{f_struct}. For vector residuals use `SparseGaussNewton` or "
                "`SparseLevenbergMarquardt` with `optimistix.least_squares`."
            )
        flat_fn, y_flat, dynamic = flatten(fn, y, args, ravel_out=False)
        dynamic = with_concrete_twin(flat_fn, dynamic)
        coloring = detect_hessian(flat_fn, y_flat, dynamic, self.coloring)
        hessian_fn = HessianEvaluator(flat_fn, coloring, dynamic)
        descent = self.descent
        if self.choose_solver:
            solver = _unrefined(choose_solver(hessian_fn.structure, symmetric=True))
            descent = eqx.tree_at(lambda d: d.linear_solver, descent, solver)
        # Zeros of the evaluation's shapes, known without tracing fn and its Hessian again.
        evaluation = optx.FunctionInfo.EvalGradHessian(
            jnp.zeros((), f_struct.dtype), jnp.zeros_like(y_flat), hessian_fn.zeros(y_flat.dtype)
        )
        f_info = self._kept_info(evaluation)
        f_info_struct = shape_struct(f_info)
        aux = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), aux_struct)
        descent_state = descent.init(y_flat, shape_struct(evaluation))
        start = Point(y_flat, f_info, aux, descent_state)
        return _SparseNewtonState(
            flat_fn=flat_fn,
            hessian_fn=hessian_fn,
            descent=descent,
            first_step=jnp.array(True),
            y_eval=y_flat,
            search_state=revising(self.search).init(start, f_info_struct),
            f_info=f_info,
            aux=aux,
            descent_state=descent_state,
            terminate=jnp.array(False),
            result=optx.RESULTS.successful,
            num_steps=jnp.array(0),
            num_hessians=jnp.array(0),
        )

    def step(
        self,
        fn: Callable,
        y: PyTree,
        args: PyTree,
        options: dict[str, Any],
        state: _SparseNewtonState,
        tags: frozenset[object],
    ) -> tuple[PyTree, _SparseNewtonState, Any]:
        """One search step; at an accepted point, a new gradient, Hessian and direction."""
        del options, tags
        search = revising(self.search)
        dynamic = dynamic_part(fn, args)
        y_flat = jax.flatten_util.ravel_pytree(y)[0]
        if _needs_trial_gradient(self.search):
            (f_eval, aux_eval), grad_eval = jax.value_and_grad(state.flat_fn, has_aux=True)(
                state.y_eval, dynamic
            )
            f_eval_info = optx.FunctionInfo.EvalGrad(f_eval, grad_eval)
        else:
            f_eval, aux_eval = state.flat_fn(state.y_eval, dynamic)
            grad_eval = None
            f_eval_info = optx.FunctionInfo.Eval(f_eval)
        step_size, accept, search_result, search_state = search.judge(
            state.first_step,
            y_flat,
            state.y_eval,
            state.f_info,
            f_eval_info,
            state.search_state,
        )

        def accepted(descent_state):
            may_stop = search.may_stop(search_state)
            converged = cauchy_termination(
                self.rtol,
                self.atol,
                self.norm,
                state.y_eval,
                state.y_eval - y_flat,
                f_eval,
                f_eval - state.f_info.f,
            )
            converged = converged & jnp.invert(state.first_step)

            def final(grad, descent_state):
                # The solve stops here: no Hessian or direction is needed.
                info = eqx.tree_at(lambda i: (i.f, i.grad), state.f_info, (f_eval, grad))
                return info, aux_eval, descent_state, jnp.array(True)

            def newton(grad, aux, descent_state):
                hessian = state.hessian_fn(state.y_eval, dynamic)
                info = optx.FunctionInfo.EvalGradHessian(f_eval, grad, hessian)
                descent_state = state.descent.query(state.y_eval, info, descent_state)
                return self._kept_info(info), aux, descent_state, jnp.array(False)

            def evaluate(descent_state):
                grad, aux = jax.grad(state.flat_fn, has_aux=True)(state.y_eval, dynamic)
                return jax.lax.cond(
                    _stationary(grad) & may_stop,
                    functools.partial(final, grad),
                    functools.partial(newton, grad, aux),
                    descent_state,
                )

            if grad_eval is None:
                done = converged & may_stop
                stop, go = functools.partial(final, state.f_info.grad), evaluate
            else:
                done = (converged | _stationary(grad_eval)) & may_stop
                stop = functools.partial(final, grad_eval)
                go = functools.partial(newton, grad_eval, aux_eval)
            f_eval_info, aux, descent_state, terminate = jax.lax.cond(done, stop, go, descent_state)
            return Point(state.y_eval, f_eval_info, aux, descent_state), terminate

        def rejected(descent_state):
            return Point(y_flat, state.f_info, state.aux, descent_state), jnp.array(False)

        previous = Point(y_flat, state.f_info, state.aux, state.descent_state)
        current, terminate = jax.lax.cond(accept, accepted, rejected, state.descent_state)
        current, search_state = search.revise(previous, current, search_state)
        self.verbose(
            num_steps=("Step", state.num_steps),
            loss_this_step=("Loss on this step", f_eval),
            loss_last_accepted_step=("Loss on the last accepted step", current.f_info.f),
            step_size=("Step size", step_size),
            grad_norm=("Gradient max-norm", jnp.max(jnp.abs(current.f_info.grad), initial=0)),
            y=("y", state.y_eval),
            y_last_accepted_step=("y on the last accepted step", current.y),
        )
        y_descent, descent_result = state.descent.step(step_size, current.descent_state)
        result, prev_aux = step_outcome(search_result, descent_result, state, current.aux)
        new_state = _SparseNewtonState(
            flat_fn=state.flat_fn,
            hessian_fn=state.hessian_fn,
            descent=state.descent,
            first_step=jnp.array(False),
            y_eval=current.y + y_descent,
            search_state=search_state,
            f_info=current.f_info,
            aux=current.aux,
            descent_state=current.descent_state,
            terminate=terminate,
            result=result,
            num_steps=state.num_steps + 1,
            num_hessians=state.num_hessians + jnp.where(accept & jnp.invert(terminate), 1, 0),
        )
        return state.flat_fn.unravel(current.y), new_state, prev_aux

    def _kept_info(
        self, info: optx.FunctionInfo.EvalGradHessian
    ) -> optx.FunctionInfo.EvalGrad | optx.FunctionInfo.EvalGradHessian:
        """What the search and the solver state keep of an accepted point's evaluation.

        Trust regions (`TrustRegion`, ``optimistix.ClassicalTrustRegion``) predict the
        reduction with the Hessian; line searches read ``f`` and ``∇f`` only. Without
        the Hessian in the state, its values flow straight from the Hessian-vector
        products into the descent's solve, which XLA then fuses, instead of being
        stored and carried along.
        """
        if isinstance(self.search, (TrustRegion, optx.ClassicalTrustRegion)):
            return info
        return optx.FunctionInfo.EvalGrad(info.f, info.grad)

    def terminate(
        self,
        fn: Callable,
        y: PyTree,
        args: PyTree,
        options: dict[str, Any],
        state: _SparseNewtonState,
        tags: frozenset[object],
    ) -> tuple[Array, optx.RESULTS]:
        """Stop on Cauchy convergence or a failed step."""
        del fn, y, args, options, tags
        return stop_when_done_or_failed(state)

    def postprocess(
        self,
        fn: Callable,
        y: PyTree,
        aux: Any,
        args: PyTree,
        options: dict[str, Any],
        state: _SparseNewtonState,
        tags: frozenset[object],
        result: optx.RESULTS,
    ) -> tuple[PyTree, Any, dict[str, Any]]:
        """The search's final point (see `AbstractRevisingSearch.final`); Hessians counted.

        A `Watchdog` solve stopped on probation (by ``max_steps``) returns its last
        checkpoint.
        """
        del fn, args, options, tags, result
        y_flat = jax.flatten_util.ravel_pytree(y)[0]
        point = Point(y_flat, state.f_info, aux, state.descent_state)
        point = revising(self.search).final(point, state.search_state)
        return state.flat_fn.unravel(point.y), point.aux, {"num_hessians": state.num_hessians}


def _unrefined(solver: lx.AbstractLinearSolver) -> lx.AbstractLinearSolver:
    """Return the chosen solver without iterative refinement (`SparseLDL`'s), as Newton needs it.

    The shift loop accepts a direction only where ``H + τI`` is positive definite, whose
    ``LDLᵀ`` factorization without pivoting is backward stable: refinement would only
    add a residual product per solve. Other solvers are returned as they are.
    """
    if isinstance(solver, SparseLDL):
        return dataclasses.replace(solver, refinement_steps=0)
    return solver


def _needs_trial_gradient(search: optx.AbstractSearch | AbstractRevisingSearch) -> bool:
    """Whether ``search`` reads the gradient at every trial point, not only accepted ones."""
    return isinstance(search, Wolfe)


def _stationary(grad: Array) -> Array:
    """Whether ``grad`` is exactly zero: any Newton step is then zero and the solve is done."""
    return jnp.all(grad == 0)


_INIT_DOC = """
        Args:
            rtol: Relative tolerance for terminating the solve.
            atol: Absolute tolerance for terminating the solve.
            norm: The norm for the convergence criteria (``optimistix.max_norm``,
                ``rms_norm`` or ``two_norm``).
            linear_solver: The Lineax solver for the (shifted) Newton systems. The
                default ``None`` picks a direct solve from the detected pattern:
                `BlockDiagonalLU` (in JAX) when the Hessian splits into blocks of at most
                16 variables, `BorderedBlockLU` (in JAX) when it does so once at most 16
                densely coupled variables are set aside, `TridiagonalLU` for a
                chain, else `SparseLU` (SuperLU through a host callback). For
                very large problems ``Preconditioned(lineax.CG(...))`` is an iterative
                alternative.
            verbose: What to report at every step, as Optimistix solvers take it:
                ``True`` prints the step, the loss (trial and last accepted), the step
                size and the gradient's max-norm; a frozenset of entry names prints
                those; a callable gets every entry as ``name=(label, value)``.
            coloring: A precomputed colored Hessian pattern of ``fn`` with respect to
                the flattened ``y`` (``asdex.hessian_coloring``), used instead of
                detecting one at ``init``: for patterns that depend on the values of
                traced ``args`` (``optimistix.minimise`` is jitted), or to detect once
                across solves.
"""

_SEARCH_DOC = """            search: The line search. ``None``: `Wolfe()`, which tries the Newton
                step first (a shifted step: the quadratic model's minimiser along
                it), lengthens it while ``f`` keeps falling steeply and otherwise
                zooms in by cubic interpolation;
                each trial evaluates ``f`` and ``∇f``, never the Hessian.
                ``NonmonotoneArmijo(memory=1)`` is monotone backtracking Armijo on
                ``f`` alone (halving, slope 1e-4, a few ulps of slack for the rounding
                error of ``f``), whose first trial of a shifted direction is stretched
                to the quadratic model's minimiser along it. ``NonmonotoneArmijo()``
                (memory 10) lets full Newton steps through along curved valleys, at
                the price of accepted steps that may raise ``f`` for a while.
                `Watchdog()` follows pure Newton steps further and goes back to its
                last checkpoint when they do not pay off; the solve returns a
                checkpoint.
"""


class SparseNewton(AbstractSparseNewton):
    """Newton's method with the exact sparse Hessian and a Wolfe line search.

    Each accepted point evaluates the gradient and the sparse Hessian (sparsity
    detected and colored once, at ``init``) and solves ``(H + τI) p = g`` with the
    smallest shift ``τ ≥ 0`` of a Nocedal-Wright schedule that makes ``-p`` a descent
    direction (``τ = 0`` whenever ``H`` is safely positive definite, giving pure Newton
    steps and quadratic convergence). The default `Wolfe` search then accepts a step
    along ``-p`` that decreases ``f`` enough and has flattened its slope, lengthening
    or shortening the Newton step with ``f`` and ``∇f`` alone; it never accepts a step
    that raises ``f`` (beyond its rounding error). ``search=Watchdog()`` and
    ``search=NonmonotoneArmijo()`` trade that for fewer Newton steps along curved
    valleys. See `SparseTrustRegionNewton` for the trust-region variant.

    Works with ``optimistix.minimise`` like any minimiser: pytree ``y0``, ``has_aux``,
    ``max_steps``, ``throw``, ``jit``. ``sol.stats["num_hessians"]`` counts Hessians.

    Examples:
        >>> import jax.numpy as jnp, optimistix as optx
        >>> from asdex_opt.optimistix import SparseNewton
        >>> def rosenbrock(x, _):
        ...     return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
        >>> sol = optx.minimise(rosenbrock, SparseNewton(1e-6, 1e-6), jnp.zeros(100))
        >>> bool(jnp.allclose(sol.value, 1.0, atol=1e-3))
        True
    """

    rtol: float
    atol: float
    norm: Callable[[PyTree], Scalar]
    descent: ShiftedNewtonDescent
    choose_solver: bool
    search: optx.AbstractSearch | AbstractRevisingSearch
    verbose: Callable[..., None]
    coloring: asdex.ColoredPattern | None

    def __init__(
        self,
        rtol: float,
        atol: float,
        norm: Callable[[PyTree], Scalar] = optx.max_norm,
        linear_solver: lx.AbstractLinearSolver | None = None,
        verbose: bool | frozenset[str] | Callable[..., None] = False,
        search: optx.AbstractSearch | AbstractRevisingSearch | None = None,
        coloring: asdex.ColoredPattern | None = None,
    ):
        self.rtol = rtol
        self.atol = atol
        self.norm = norm
        if search is None:
            search = Wolfe()
        self.descent = ShiftedNewtonDescent(
            SparseLU() if linear_solver is None else linear_solver,
            backtrack=getattr(search, "decrease_factor", 0.5),
            stretch=not isinstance(search, Wolfe),
        )
        self.choose_solver = linear_solver is None
        self.search = search
        self.verbose = as_verbose(verbose)
        self.coloring = coloring


class SparseTrustRegionNewton(AbstractSparseNewton):
    """Newton's method with the exact sparse Hessian in a trust region.

    Each accepted point solves ``(H + τI) p = g`` once, with the shift ``τ`` and the
    stretch along negative curvature of `SparseNewton`'s direction; every trial then
    cuts ``-p`` to the radius of a `TrustRegion` (Nocedal & Wright's updates: the
    radius shrinks to a fraction of the step taken when the quadratic model predicts
    poorly, grows when a step at the radius does well). A rejected trial costs one
    function evaluation and no solve.

    Examples:
        >>> import jax.numpy as jnp, optimistix as optx
        >>> from asdex_opt.optimistix import SparseTrustRegionNewton
        >>> fn = lambda x, _: jnp.sum((x[1:] - x[:-1] ** 2) ** 2) + 0.1 * jnp.sum((x - 2.0) ** 2)
        >>> sol = optx.minimise(fn, SparseTrustRegionNewton(1e-8, 1e-8), jnp.zeros(50))
        >>> bool(sol.result == optx.RESULTS.successful)
        True
    """

    rtol: float
    atol: float
    norm: Callable[[PyTree], Scalar]
    descent: TruncatedNewtonDescent
    choose_solver: bool
    search: TrustRegion
    verbose: Callable[..., None]
    coloring: asdex.ColoredPattern | None

    def __init__(
        self,
        rtol: float,
        atol: float,
        norm: Callable[[PyTree], Scalar] = optx.max_norm,
        linear_solver: lx.AbstractLinearSolver | None = None,
        verbose: bool | frozenset[str] | Callable[..., None] = False,
        coloring: asdex.ColoredPattern | None = None,
    ):
        self.rtol = rtol
        self.atol = atol
        self.norm = norm
        self.descent = TruncatedNewtonDescent(
            SparseLU() if linear_solver is None else linear_solver
        )
        self.choose_solver = linear_solver is None
        self.search = TrustRegion()
        self.verbose = as_verbose(verbose)
        self.coloring = coloring


SparseNewton.__init__.__doc__ = "Builds the solver." + _INIT_DOC + _SEARCH_DOC
SparseTrustRegionNewton.__init__.__doc__ = "Builds the solver." + _INIT_DOC
