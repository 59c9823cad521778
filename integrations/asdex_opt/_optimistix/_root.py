"""Newton's method for root finding with a sparse Jacobian."""

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
from asdex_opt._optimistix._termination import cauchy_termination, check_finite_result
from asdex_opt._optimistix._verbose import as_verbose
from asdex_opt._problem import (
    FlatFunction,
    JacobianEvaluator,
    detect_jacobian,
    dynamic_part,
    flatten,
)

__all__ = ["SparseNewtonRootFinder"]


class _RootState(eqx.Module):
    flat_fn: FlatFunction
    jacobian_fn: JacobianEvaluator = eqx.field(static=True)
    linear_solver: lx.AbstractLinearSolver
    f: Array
    diff: Array
    result: optx.RESULTS
    num_steps: Array


class SparseNewtonRootFinder(optx.AbstractRootFinder[PyTree, PyTree, Any, _RootState]):
    """Newton's method for ``fn(y, args) = 0`` with a sparse Jacobian.

    The sparse counterpart of ``optimistix.Newton``: the Jacobian sparsity of the
    flattened ``fn`` with respect to the flattened ``y`` is detected and colored once,
    at ``init``; each step evaluates ``f`` and the sparse ``J`` (one JVP or VJP per
    color) and solves ``J Δ = f`` with ``linear_solver`` (``None``: chosen from the pattern
    at ``init``, as in `SparseNewton`). ``fn`` must return as many
    elements as ``y`` has. Terminates like ``optimistix.Newton`` (Cauchy criterion on
    ``y`` and on ``f`` against zero); a failed linear solve (singular ``J``) or a
    non-finite ``f`` or ``J`` is a ``RESULTS`` failure. Supports the ``lower`` and
    ``upper`` options of ``optimistix.Newton`` (iterates clipped to a box).

    Attributes:
        rtol: Relative tolerance.
        atol: Absolute tolerance.
        norm: The norm of the convergence criteria.
        linear_solver: The Lineax solver for ``J Δ = f``; ``None`` picks one from the
            pattern (`asdex_opt.lineax.choose_solver`).
        verbose: What to report at every step (a bool, a frozenset of entry names or a
            callable, as Optimistix solvers take it).
        coloring: A precomputed colored Jacobian pattern of the flattened ``fn`` with
            respect to the flattened ``y`` (``asdex.jacobian_coloring``), used instead
            of detecting one at ``init``.

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
        dtype = jnp.result_type(*jax.tree.leaves(f_struct))
        return _RootState(
            flat_fn=flat_fn,
            jacobian_fn=jacobian_fn,
            linear_solver=linear_solver,
            f=jnp.full(num_out, jnp.inf, dtype),
            diff=jnp.full_like(y_flat, jnp.inf),
            result=optx.RESULTS.successful,
            num_steps=jnp.array(0),
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
        """One Newton step ``y ← y - J⁻¹ f``."""
        del tags
        y_flat = jax.flatten_util.ravel_pytree(y)[0]
        evaluation = state.jacobian_fn(y_flat, dynamic_part(fn, args))
        solution = lx.linear_solve(
            evaluation.jac, evaluation.residual, state.linear_solver, throw=False
        )
        new_y = state.flat_fn.unravel(y_flat - solution.value)
        lower, upper = options.get("lower"), options.get("upper")
        if lower is not None:
            new_y = jax.tree.map(lambda a, b: jnp.clip(a, min=b), new_y, lower)
        if upper is not None:
            new_y = jax.tree.map(lambda a, b: jnp.clip(a, max=b), new_y, upper)
        result = check_finite_result(
            optx.RESULTS.promote(solution.result),
            evaluation.residual,
            evaluation.jac.data,
        )
        self.verbose(
            num_steps=("Step", state.num_steps),
            loss_this_step=("Max |f| on this step", jnp.max(jnp.abs(evaluation.residual))),
            step_size=("Newton step max-norm", jnp.max(jnp.abs(solution.value), initial=0)),
            y=("y", y_flat),
        )
        new_state = _RootState(
            flat_fn=state.flat_fn,
            jacobian_fn=state.jacobian_fn,
            linear_solver=state.linear_solver,
            f=evaluation.residual,
            diff=y_flat - jax.flatten_util.ravel_pytree(new_y)[0],
            result=result,
            num_steps=state.num_steps + 1,
        )
        return new_y, new_state, evaluation.aux

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
        """Nothing to do."""
        del fn, args, options, state, tags, result
        return y, aux, {}
