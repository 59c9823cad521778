"""Gauss-Newton and Levenberg-Marquardt with sparse Jacobians and a sparse ``JᵀJ``."""

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
from asdex_opt._lineax._superlu import SparseLU
from asdex_opt._optimistix._dense import DenseGaussNewtonDescent, DenseLevenbergMarquardtDescent
from asdex_opt._optimistix._descents import (
    AbstractGaussNewtonDescent,
    GaussNewtonDescent,
    LevenbergMarquardtDescent,
    ResidualJacNormal,
    residual_jac_info,
)
from asdex_opt._optimistix._termination import (
    cauchy_termination,
    step_outcome,
    stop_when_done_or_failed,
)
from asdex_opt._optimistix._verbose import as_verbose
from asdex_opt._problem import (
    DenseJacobianEvaluator,
    FlatFunction,
    JacobianEvaluator,
    detect_jacobian,
    dynamic_part,
    flatten,
    no_sparsity_gain,
)
from asdex_opt._warnings import warn_at_user

__all__ = ["AbstractSparseGaussNewton", "SparseGaussNewton", "SparseLevenbergMarquardt"]

# ``½‖r‖²`` above this many times its value at the start, and growing, for this many
# steps in a row: the (undamped) iteration diverges. A far step that comes back is not.
_DIVERGENCE = 1e8
_DIVERGENT_STEPS = 10


class _SparseGaussNewtonState(eqx.Module):
    # Fixed for the whole solve: the flattened problem and its Jacobian evaluator.
    flat_fn: FlatFunction
    jacobian_fn: JacobianEvaluator | DenseJacobianEvaluator = eqx.field(static=True)
    descent: optx.AbstractDescent  # ``self.descent`` with the linear solver chosen at init
    # Updated every search step.
    first_step: Array
    y_eval: Array
    search_state: PyTree
    # Updated after each accepted step.
    f_info: ResidualJacNormal
    aux: PyTree
    descent_state: PyTree
    # Termination and statistics.
    start_loss: Array
    divergent_steps: Array
    terminate: Array
    result: optx.RESULTS
    num_steps: Array
    num_accepted_steps: Array


class AbstractSparseGaussNewton(
    optx.AbstractLeastSquaresSolver[PyTree, PyTree, Any, _SparseGaussNewtonState]
):
    """Gauss-Newton type least-squares solvers with a sparse Jacobian.

    The Jacobian sparsity of the residuals (flattened with ``ravel_pytree``) with
    respect to ``y`` (likewise flattened) is detected and colored once, at ``init``;
    each accepted point evaluates the residuals and the sparse Jacobian ``J`` (one JVP
    or VJP per color) and, when the descent needs it, the sparse ``JᵀJ`` (pattern and
    product schedule precomputed at ``init``). Mirrors ``optimistix.AbstractGaussNewton``.

    Subclasses provide ``rtol``, ``atol``, ``norm``, ``descent`` (an
    `AbstractGaussNewtonDescent`, which declares whether it needs ``JᵀJ``), ``search``,
    ``verbose`` (a callable), ``coloring`` (a precomputed colored Jacobian pattern, or
    ``None`` to detect one) and ``choose_solver``: if true, ``descent.linear_solver`` is
    replaced at ``init`` by `asdex_opt.lineax.choose_solver` of the structure of the
    matrix solved (``JᵀJ``, or ``J``).
    """

    rtol: AbstractVar[float]
    atol: AbstractVar[float]
    norm: AbstractVar[Callable[[PyTree], Scalar]]
    descent: AbstractVar[AbstractGaussNewtonDescent]
    search: AbstractVar[optx.AbstractSearch]
    verbose: AbstractVar[Callable[..., None]]
    coloring: AbstractVar[asdex.ColoredPattern | None]
    choose_solver: AbstractVar[bool]

    def init(
        self,
        fn: Callable,
        y: PyTree,
        args: PyTree,
        options: dict[str, Any],
        f_struct: PyTree[jax.ShapeDtypeStruct],
        aux_struct: PyTree[jax.ShapeDtypeStruct],
        tags: frozenset[object],
    ) -> _SparseGaussNewtonState:
        """Detect and color the Jacobian sparsity; build the initial state."""
        del options, tags
        flat_fn, y_flat, dynamic = flatten(fn, y, args, ravel_out=True)
        num_residuals = sum(s.size for s in jax.tree.leaves(f_struct))
        normal = self.descent.needs_normal(square=num_residuals == y_flat.size)
        coloring = detect_jacobian(flat_fn, y_flat, dynamic, self.coloring)
        descent = self.descent
        if self.choose_solver and no_sparsity_gain(coloring):
            jacobian_fn, descent = _dense(flat_fn, coloring, descent, normal)
        else:
            jacobian_fn = JacobianEvaluator(flat_fn, coloring, dynamic, normal=normal)
            if self.choose_solver:
                solver = choose_solver(jacobian_fn.solved, symmetric=normal)
                descent = eqx.tree_at(lambda d: d.linear_solver, descent, solver)
        f_info_struct = eqx.filter_eval_shape(_evaluate, jacobian_fn, y_flat, dynamic)[0]
        zeros = lambda s: jnp.zeros(s.shape, s.dtype)  # noqa: E731
        is_struct = lambda x: isinstance(x, jax.ShapeDtypeStruct)  # noqa: E731
        return _SparseGaussNewtonState(
            flat_fn=flat_fn,
            jacobian_fn=jacobian_fn,
            descent=descent,
            first_step=jnp.array(True),
            y_eval=y_flat,
            search_state=self.search.init(y_flat, f_info_struct),
            f_info=jax.tree.map(zeros, f_info_struct, is_leaf=is_struct),
            aux=jax.tree.map(zeros, aux_struct),
            descent_state=descent.init(y_flat, f_info_struct),
            start_loss=jnp.zeros((), y_flat.dtype),
            divergent_steps=jnp.array(0),
            terminate=jnp.array(False),
            result=optx.RESULTS.successful,
            num_steps=jnp.array(0),
            num_accepted_steps=jnp.array(0),
        )

    def step(
        self,
        fn: Callable,
        y: PyTree,
        args: PyTree,
        options: dict[str, Any],
        state: _SparseGaussNewtonState,
        tags: frozenset[object],
    ) -> tuple[PyTree, _SparseGaussNewtonState, Any]:
        """One search step; at an accepted point, a new Jacobian and direction."""
        del options, tags
        dynamic = dynamic_part(fn, args)
        y_flat = jax.flatten_util.ravel_pytree(y)[0]
        residual, _ = state.flat_fn(state.y_eval, dynamic)
        step_size, accept, search_result, search_state = self.search.step(
            state.first_step,
            y_flat,
            state.y_eval,
            state.f_info,
            optx.FunctionInfo.Residual(residual),
            state.search_state,
        )

        def accepted(descent_state):
            f_eval_info, aux = _evaluate(state.jacobian_fn, state.y_eval, dynamic)
            descent_state = state.descent.query(state.y_eval, f_eval_info, descent_state)
            terminate = cauchy_termination(
                self.rtol,
                self.atol,
                self.norm,
                state.y_eval,
                state.y_eval - y_flat,
                f_eval_info.residual,
                f_eval_info.residual - state.f_info.residual,
            )
            return state.y_eval, f_eval_info, aux, descent_state, terminate

        def rejected(descent_state):
            return y_flat, state.f_info, state.aux, descent_state, jnp.array(False)

        y_flat, f_info, aux, descent_state, terminate = jax.lax.cond(
            accept, accepted, rejected, state.descent_state
        )
        self.verbose(
            num_steps=("Step", state.num_steps),
            loss_this_step=("Loss on this step", 0.5 * jnp.sum(residual**2)),
            loss_last_accepted_step=("Loss on the last accepted step", f_info.as_min()),
            step_size=("Step size", step_size),
            grad_norm=("Gradient max-norm", jnp.max(jnp.abs(f_info.compute_grad()), initial=0)),
            y=("y", state.y_eval),
            y_last_accepted_step=("y on the last accepted step", y_flat),
        )
        y_descent, descent_result = state.descent.step(step_size, descent_state)
        result, prev_aux = step_outcome(search_result, descent_result, state, aux)
        loss = f_info.as_min()
        start_loss = jnp.where(state.first_step, loss, state.start_loss)
        tiny = jnp.finfo(start_loss.dtype).tiny
        growing = loss >= state.f_info.as_min()
        divergent = growing & (loss > _DIVERGENCE * jnp.maximum(start_loss, tiny))
        divergent_steps = jnp.where(divergent, state.divergent_steps + 1, 0)
        diverged = divergent_steps >= _DIVERGENT_STEPS
        result = optx.RESULTS.where(diverged, optx.RESULTS.nonlinear_divergence, result)
        new_state = _SparseGaussNewtonState(
            flat_fn=state.flat_fn,
            jacobian_fn=state.jacobian_fn,
            descent=state.descent,
            first_step=jnp.array(False),
            y_eval=y_flat + y_descent,
            search_state=search_state,
            f_info=f_info,
            aux=aux,
            descent_state=descent_state,
            start_loss=start_loss,
            divergent_steps=divergent_steps,
            terminate=terminate,
            result=result,
            num_steps=state.num_steps + 1,
            num_accepted_steps=state.num_accepted_steps + jnp.where(accept, 1, 0),
        )
        return state.flat_fn.unravel(y_flat), new_state, prev_aux

    def terminate(
        self,
        fn: Callable,
        y: PyTree,
        args: PyTree,
        options: dict[str, Any],
        state: _SparseGaussNewtonState,
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
        state: _SparseGaussNewtonState,
        tags: frozenset[object],
        result: optx.RESULTS,
    ) -> tuple[PyTree, Any, dict[str, Any]]:
        """Report the number of Jacobian evaluations in ``stats``."""
        del fn, args, options, tags, result
        return y, aux, {"num_jacobians": state.num_accepted_steps}


def _dense(
    flat_fn: FlatFunction,
    coloring: asdex.ColoredPattern,
    descent: AbstractGaussNewtonDescent,
    normal: bool,
) -> tuple[DenseJacobianEvaluator, optx.AbstractDescent]:
    """The dense evaluator and descent for a Jacobian whose coloring brings no gain."""
    m, n = coloring.sparsity.shape
    warn_at_user(
        f"The coloring needs {coloring.num_colors} colors for this {m}x{n} Jacobian, no "
        f"fewer than the {min(m, n)} passes of dense differentiation: sparsity brings no "
        "gain here, so the solver uses the dense Jacobian (and a dense JᵀJ, Cholesky) "
        "instead. "
        "Pass `linear_solver=` to keep the sparse path.",
        asdex.DenseColoringWarning,
    )
    dense_descent = {
        GaussNewtonDescent: DenseGaussNewtonDescent,
        LevenbergMarquardtDescent: DenseLevenbergMarquardtDescent,
    }[type(descent)]()
    return DenseJacobianEvaluator(flat_fn, (m, n), normal), dense_descent


def _evaluate(
    jacobian_fn: JacobianEvaluator | DenseJacobianEvaluator, y: Array, dynamic: PyTree
) -> tuple[ResidualJacNormal, Any]:
    evaluation = jacobian_fn(y, dynamic)
    return residual_jac_info(evaluation), evaluation.aux


class SparseGaussNewton(AbstractSparseGaussNewton):
    """Gauss-Newton with a sparse Jacobian: full steps ``J p = r`` or ``JᵀJ p = Jᵀr``.

    A square system (as many residuals as unknowns) is solved with ``J`` itself, so
    this is also a sparse Newton root finder for ``r(y) = 0`` (a singular ``J`` is a
    ``RESULTS`` failure); otherwise with the normal equations, ``JᵀJ`` being formed
    sparsely and shifted by the smallest ``τI`` that makes it solvable when ``J`` is
    rank-deficient. Like ``optimistix.GaussNewton`` there is no globalisation: prefer
    `SparseLevenbergMarquardt` far from a solution (and `SparseNewtonRootFinder`, whose
    line search globalises Newton's method, for square systems). Where the iteration
    diverges, ``½‖r‖²`` growing for ten steps in a row while above 10⁸ times its
    starting value, the solve ends with ``RESULTS.nonlinear_divergence``; a singular
    square ``J`` ends with a ``RESULTS`` failure too.

    Examples:
        >>> import jax.numpy as jnp, optimistix as optx
        >>> from asdex_opt.optimistix import SparseGaussNewton
        >>> residuals = lambda y, _: jnp.concatenate([y[1:] - y[:-1] ** 2, y - 0.5])
        >>> sol = optx.least_squares(residuals, SparseGaussNewton(1e-8, 1e-8), jnp.ones(4))
        >>> bool(sol.result == optx.RESULTS.successful)
        True
    """

    rtol: float
    atol: float
    norm: Callable[[PyTree], Scalar]
    descent: GaussNewtonDescent
    search: optx.LearningRate
    verbose: Callable[..., None]
    coloring: asdex.ColoredPattern | None
    choose_solver: bool

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
        self.descent = GaussNewtonDescent(SparseLU() if linear_solver is None else linear_solver)
        self.choose_solver = linear_solver is None
        self.search = optx.LearningRate(1.0)
        self.verbose = as_verbose(verbose)
        self.coloring = coloring


class SparseLevenbergMarquardt(AbstractSparseGaussNewton):
    """Levenberg-Marquardt with a sparse Jacobian: steps ``(JᵀJ + λI) p = Jᵀr``.

    ``JᵀJ + λI`` is formed as one sparse matrix (``λ = 1/s`` from the step size ``s``
    of ``optimistix.ClassicalTrustRegion``, as in ``optimistix.LevenbergMarquardt``) and
    solved with ``linear_solver``; every step is a descent step and only steps that
    decrease ``½‖r‖²`` are accepted.

    Examples:
        >>> import jax.numpy as jnp, optimistix as optx
        >>> from asdex_opt.optimistix import SparseLevenbergMarquardt
        >>> residuals = lambda y, _: jnp.concatenate([10 * (y[1:] - y[:-1] ** 2), 1 - y])
        >>> solver = SparseLevenbergMarquardt(1e-8, 1e-8)
        >>> sol = optx.least_squares(residuals, solver, jnp.full(6, -1.0), max_steps=500)
        >>> bool(jnp.allclose(sol.value, 1.0, atol=1e-4))
        True
    """

    rtol: float
    atol: float
    norm: Callable[[PyTree], Scalar]
    descent: LevenbergMarquardtDescent
    search: optx.ClassicalTrustRegion
    verbose: Callable[..., None]
    coloring: asdex.ColoredPattern | None
    choose_solver: bool

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
        self.descent = LevenbergMarquardtDescent(
            SparseLU() if linear_solver is None else linear_solver
        )
        self.choose_solver = linear_solver is None
        self.search = optx.ClassicalTrustRegion()
        self.verbose = as_verbose(verbose)
        self.coloring = coloring


_INIT_DOC = """Builds the solver.

        Args:
            rtol: Relative tolerance for terminating the solve.
            atol: Absolute tolerance for terminating the solve.
            norm: The norm for the convergence criteria.
            linear_solver: The Lineax solver for the sparse systems. ``None`` picks a
                direct solver from the pattern at ``init`` (see `choose_solver`):
                in JAX for block, arrowhead and tridiagonal patterns, else `SparseLU`;
                and where the coloring brings no gain (as many colors as a dense
                Jacobian has columns or rows: an ``asdex.DenseColoringWarning``, e.g.
                a neural network), the dense ``J`` and ``JᵀJ`` with a dense Cholesky
                factorization instead of sparse ones.
                ``Preconditioned(lineax.CG(...))`` suits the symmetric positive
                definite normal equations of large problems.
            verbose: What to report at every step, as Optimistix solvers take it: a
                bool, a frozenset of entry names, or a callable (see `SparseNewton`).
            coloring: A precomputed colored Jacobian pattern of the flattened residuals
                with respect to the flattened ``y`` (``asdex.jacobian_coloring``),
                used instead of detecting one at ``init``.
"""
SparseGaussNewton.__init__.__doc__ = _INIT_DOC
SparseLevenbergMarquardt.__init__.__doc__ = _INIT_DOC
