"""Constrained minimisation with exact sparse second derivatives.

``constrained_minimise(fn, solver, y0, args, equality=..., inequality=..., bounds=...)``
solves

    min fn(y, args)  s.t.  equality(y, args) = 0,  inequality(y, args) ≥ 0,
                           lower ≤ y ≤ upper

with `SparseInteriorPoint`, a primal-dual interior-point method with a filter line
search (the algorithm of IPOPT, Wächter and Biegler 2006). The sparsity of the
constraint Jacobian and of the Hessian of the Lagrangian ``f + λᵀc`` (``λ`` not
differentiated: one pattern and one coloring serve every multiplier) are detected and
colored once per problem; every iteration evaluates them exactly at the cost of their
colors and assembles the KKT matrix in a structure built once. The whole solve runs
inside ``jax.jit`` (one ``lax.while_loop``), so it also composes with ``jax.vmap`` over
problems of one structure.

``y0`` may be any pytree (an ``eqx.Module`` too): its floating-point array leaves are
optimised (flattened with ``ravel_pytree``), the other leaves held fixed. Constraint
functions return pytrees of arrays; ``bounds = (lower, upper)`` are pytrees like ``y0``
(or ``None`` for a side without bounds), with ``±inf`` for unbounded entries.

The multipliers in ``stats["multipliers"]`` follow the convention
``∇f(y) = Σ λ_E ∇c_E(y) + Σ λ_I ∇c_I(y) + z_lower - z_upper`` with ``λ_I, z_lower,
z_upper ≥ 0`` (the Lagrangian ``f - λᵀc - z_lᵀ(y - l) - z_uᵀ(u - y)``).

Examples:
    >>> import jax.numpy as jnp
    >>> from asdex_opt.constrained import SparseInteriorPoint, constrained_minimise
    >>> fn = lambda y, _: y[0] * y[3] * (y[0] + y[1] + y[2]) + y[2]  # HS071
    >>> sol = constrained_minimise(
    ...     fn, SparseInteriorPoint(), jnp.array([1.0, 5.0, 5.0, 1.0]),
    ...     equality=lambda y, _: jnp.sum(y**2) - 40.0,
    ...     inequality=lambda y, _: jnp.prod(y) - 25.0,
    ...     bounds=(jnp.ones(4), jnp.full(4, 5.0)))
    >>> round(float(sol.stats["objective"]), 4)
    17.014
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array, PyTree

from asdex_opt._constrained._problem import ConstrainedProblem
from asdex_opt._constrained._solver import Run, SparseInteriorPoint
from asdex_opt._constrained._status import MESSAGES, Status, to_result

__all__ = ["SparseInteriorPoint", "constrained_minimise", "MESSAGES"]


def constrained_minimise(
    fn: Callable[[PyTree, Any], Any],
    solver: SparseInteriorPoint,
    y0: PyTree,
    args: PyTree = None,
    *,
    equality: Callable[[PyTree, Any], PyTree] | None = None,
    inequality: Callable[[PyTree, Any], PyTree] | None = None,
    bounds: tuple[PyTree, PyTree] | None = None,
    has_aux: bool = False,
    max_steps: int = 3000,
    throw: bool = True,
) -> optx.Solution:
    """Minimise ``fn(y, args)`` subject to equality, inequality and bound constraints.

    Args:
        fn: The scalar objective ``fn(y, args)`` (``(value, aux)`` with ``has_aux``).
        solver: A `SparseInteriorPoint`.
        y0: The starting point, any pytree; it is moved inside the bounds first.
        args: Passed to ``fn`` and the constraint functions.
        equality: ``equality(y, args)``, a pytree of arrays that must be zero.
        inequality: ``inequality(y, args)``, a pytree of arrays that must be ≥ 0.
        bounds: ``(lower, upper)``, pytrees like ``y0`` (or ``None`` for a side),
            ``±inf`` where unbounded.
        has_aux: Whether ``fn`` returns ``(value, aux)``.
        max_steps: Most interior-point iterations.
        throw: Raise an error naming the failure when the solve fails (else report it
            in ``result`` and ``stats["status"]``; ``MESSAGES[status]`` explains it).

    Returns:
        An ``optx.Solution``: ``value`` (the solution, shaped like ``y0``), ``result``,
        ``aux`` (at the solution), ``stats`` with ``num_steps``, ``objective``,
        ``multipliers`` (``equality``, ``inequality``: pytrees like the constraint
        outputs; ``lower``, ``upper``: like ``y0``), ``kkt_residuals``
        (``stationarity``, ``feasibility``, ``complementarity``: unscaled, max norms),
        ``kkt_error`` (the scaled error the solver tests against ``tol``),
        ``status`` and ``restoration_steps``; and ``state``, the solver's final state.

    Raises:
        ValueError: For a non-scalar objective, bounds not shaped like ``y0`` or with
            ``lower > upper``, constraints that depend on no variable, or a ``y0``
            without floating-point leaves.
    """
    if not isinstance(solver, SparseInteriorPoint):
        raise TypeError(f"`solver` must be a SparseInteriorPoint, got {type(solver).__name__}.")
    if max_steps < 1:
        raise ValueError(f"`max_steps` must be at least 1, got {max_steps}.")
    problem = ConstrainedProblem(fn, y0, args, equality, inequality, bounds, has_aux)

    def solve(x0: Array, dynamic: PyTree) -> tuple:
        run = Run(problem, solver, dynamic, max_steps)
        state, scale = run.run(x0)
        return state, _report(problem, state, scale, dynamic)

    state, (x, aux, stats) = jax.jit(solve)(problem.flatten(y0), problem.dynamic)
    status = stats["status"]
    value = problem.unflatten(x)
    if throw:
        value, aux, stats = eqx.branched_error_if(
            (value, aux, stats), status != Status.SOLVED, status, MESSAGES
        )
    return optx.Solution(value=value, result=to_result(status), aux=aux, stats=stats, state=state)


def _report(problem: ConstrainedProblem, state, scale, dynamic) -> tuple:
    """The solution in the original bounds, its aux, and the unscaled statistics."""
    obj_scale, con_scale = scale
    n, me = problem.n, problem.num_equality
    lower, upper = problem.lower, problem.upper
    x = jnp.clip(state.w[:n], lower, upper)
    f, aux = problem.objective(x, dynamic)
    _, g = problem.gradient(x, dynamic)
    c, jac = problem.jacobian(x, dynamic)
    y = con_scale * state.y / obj_scale
    zl, zu = state.zl[:n] / obj_scale, state.zu[:n] / obj_scale
    jty = jax.ops.segment_sum(jac * y[problem.jac_rows], problem.jac_cols, num_segments=n)
    stationarity = jnp.max(jnp.abs(g + jty - zl + zu))
    violation = jnp.maximum(jnp.max(jnp.abs(c[:me]), initial=0.0), jnp.max(-c[me:], initial=0.0))
    lam = -y
    compl = jnp.max(jnp.abs(lam[me:] * c[me:]), initial=0.0)
    compl = jnp.maximum(compl, jnp.max(jnp.where(jnp.isfinite(lower), zl * (x - lower), 0)))
    compl = jnp.maximum(compl, jnp.max(jnp.where(jnp.isfinite(upper), zu * (upper - x), 0)))
    stats = {
        "num_steps": state.steps,
        "status": state.status,
        "objective": f,
        "multipliers": {
            "equality": problem.unravel_equality(lam[:me]),
            "inequality": problem.unravel_inequality(lam[me:]),
            "lower": problem.unravel_x(zl),
            "upper": problem.unravel_x(zu),
        },
        "kkt_residuals": {
            "stationarity": stationarity,
            "feasibility": violation,
            "complementarity": compl,
        },
        "kkt_error": state.error,
        "restoration_steps": state.restoration_steps,
    }
    return x, aux, stats
