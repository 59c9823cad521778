"""Sparse Newton and Gauss-Newton directions as Optax gradient transformations.

Following ``optax.lbfgs``: `scale_by_sparse_newton` turns the gradient into the
(positive) Newton direction ``(H + τI)⁻¹ g`` using the exact sparse Hessian of the
``value_fn`` extra argument, and `sparse_newton` chains it with the sign flip (or a
learning rate) and a line search. `scale_by_sparse_gauss_newton` and
`sparse_gauss_newton` do the same with the Gauss-Newton matrix ``JᵀJ`` of a residual
function. The shift ``τ ≥ 0`` is the smallest of a Nocedal-Wright schedule that makes
``H + τI`` positive definite (with the default direct solvers, which report it) and
``p`` a descent direction; zero for a safely positive definite matrix. Indefinite
Hessians and rank-deficient Jacobians are handled.

Sparsity is detected and colored once per problem: the coloring is cached on what
determines the pattern, the traced program of ``value_fn`` (or ``residual_fn``), the
structure of ``params`` and of the extra arguments, and the values of the constants
detection reads (the arrays ``value_fn`` closes over, and integer arrays among the
extra arguments; see `asdex_opt.optimistix`). A new ``lambda`` for the same objective
at every step therefore reuses the coloring, and a jitted training step detects at
trace time only. A precomputed ``coloring=`` skips detection altogether.

Examples:
    >>> import jax, jax.numpy as jnp, optax
    >>> from asdex_opt.optax import sparse_newton
    >>> def f(x):
    ...     return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    >>> solver = sparse_newton()
    >>> params = jnp.zeros(10)
    >>> state = solver.init(params)
    >>> value_and_grad = optax.value_and_grad_from_state(f)
    >>> for _ in range(40):
    ...     value, grad = value_and_grad(params, state=state)
    ...     updates, state = solver.update(
    ...         grad, state, params, value=value, grad=grad, value_fn=f
    ...     )
    ...     params = optax.apply_updates(params, updates)
    >>> bool(f(params) < 1e-10)
    True
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import optax
from jax.flatten_util import ravel_pytree

import asdex
from asdex_opt._lineax._choice import choose_solver
from asdex_opt._lineax._newton import shifted_newton_direction
from asdex_opt._problem import (
    ColoringCache,
    FlatFunction,
    HessianEvaluator,
    JacobianEvaluator,
    detect_hessian,
    detect_jacobian,
    flatten,
    problem_key,
)

__all__ = [
    "scale_by_sparse_newton",
    "sparse_newton",
    "scale_by_sparse_gauss_newton",
    "sparse_gauss_newton",
]


class _WithAux(eqx.Module):
    """``fn(params, **kwargs)`` as Optimistix-style ``fn(y, args) -> (out, None)``."""

    fn: Callable

    def __call__(self, params: Any, kwargs: dict[str, Any]) -> tuple[Any, None]:
        return self.fn(params, **kwargs), None


def _flat_problem(
    fn: Callable, params: Any, extra_args: dict[str, Any]
) -> tuple[FlatFunction, jax.Array, Any]:
    """Closure-convert ``fn`` (its closed-over arrays become constants) and flatten it."""
    closed = eqx.filter_closure_convert(_WithAux(fn), params, extra_args)
    return flatten(closed, params, extra_args, ravel_out=True)


def _flat_updates(
    updates: optax.Updates, y_flat: jax.Array, name: str
) -> tuple[jax.Array, Callable]:
    """The flat ``updates``, checked against the flat ``params``."""
    grad, unravel = ravel_pytree(updates)
    if grad.shape != y_flat.shape:
        raise ValueError(
            f"`{name}` got `updates` with {grad.size} elements in all but `params` with "
            f"{y_flat.size}: pass the gradient of the objective with respect to "
            "`params` (the same pytree of arrays) as `updates`."
        )
    return grad.astype(jnp.result_type(grad.dtype, y_flat.dtype)), unravel


def _extra(extra_args: dict[str, Any]) -> dict[str, Any]:
    """The extra arguments meant for the objective (not Optax's line-search ones)."""
    return {k: v for k, v in extra_args.items() if k not in _LINESEARCH_ARGS}


def scale_by_sparse_newton(
    linear_solver: lx.AbstractLinearSolver | None = None,
    *,
    coloring: asdex.ColoredPattern | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Scale the gradient by the inverse of the exact sparse Hessian of ``value_fn``.

    The output is the positive direction ``p = (H + τI)⁻¹ g`` (``g`` the incoming
    updates, normally the gradient; ``H`` the sparse Hessian of ``value_fn`` at
    ``params``; ``τ ≥ 0`` the smallest shift making ``H + τI`` positive definite and
    ``p`` a descent direction). Like
    ``optax.scale_by_lbfgs`` it is meant to be followed by a sign flip and a line search,
    as `sparse_newton` does. ``update`` needs the extra argument ``value_fn``; other
    extra arguments are passed to ``value_fn`` as keyword arguments, as Optax's line
    searches do.

    Args:
        linear_solver: The Lineax solver for the (shifted) Newton systems; ``None``
            picks a direct solver from the detected pattern, as `SparseNewton` does.
        coloring: A precomputed colored Hessian pattern of ``value_fn`` with respect to
            the flattened ``params`` (``asdex.hessian_coloring``), used instead of
            detecting one.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from asdex_opt.optax import scale_by_sparse_newton
        >>> f = lambda x: jnp.sum(x**4) + jnp.sum((x[1:] - x[:-1]) ** 2)
        >>> newton = scale_by_sparse_newton()
        >>> x = jnp.ones(5)
        >>> p, _ = newton.update(jax.grad(f)(x), newton.init(x), x, value_fn=f)
        >>> bool(jnp.vdot(p, jax.grad(f)(x)) > 0)
        True
    """
    cache = ColoringCache()

    def init_fn(params: optax.Params) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update_fn(
        updates: optax.Updates,
        state: optax.EmptyState,
        params: optax.Params | None = None,
        *,
        value_fn: Callable[..., jax.Array] | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, optax.EmptyState]:
        if value_fn is None:
            raise ValueError(
                "`scale_by_sparse_newton` (and `sparse_newton`) needs the objective as the "
                "extra argument `value_fn`: call `update(grad, state, params, "
                "value_fn=f, ...)`, as for `optax.lbfgs`."
            )
        if params is None:
            raise ValueError(
                "`scale_by_sparse_newton` needs `params` in `update`: the Hessian is "
                "evaluated there."
            )
        flat_fn, y_flat, dynamic = _flat_problem(value_fn, params, _extra(extra_args))
        out = jax.eval_shape(flat_fn, y_flat, dynamic)[0]
        if out.size != 1:
            raise ValueError(
                "`scale_by_sparse_newton` needs a scalar `value_fn`, but it returns an "
                f"array of shape {out.shape}. For residuals use `sparse_gauss_newton`."
            )
        grad, unravel = _flat_updates(updates, y_flat, "scale_by_sparse_newton")

        def plan() -> tuple[HessianEvaluator, lx.AbstractLinearSolver]:
            detected = detect_hessian(flat_fn, y_flat, dynamic, coloring)
            evaluate = HessianEvaluator(flat_fn, detected, dynamic)
            solver = (
                choose_solver(evaluate.structure, symmetric=True)
                if linear_solver is None
                else linear_solver
            )
            return evaluate, solver

        evaluate, solver = cache.get(problem_key(flat_fn, y_flat, dynamic), plan)
        hessian = evaluate(y_flat, dynamic)
        hessian = eqx.tree_at(lambda h: h.data, hessian, hessian.data.astype(grad.dtype))
        direction, _, _ = shifted_newton_direction(grad, hessian, solver)
        return unravel(direction), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def scale_by_sparse_gauss_newton(
    residual_fn: Callable[..., Any],
    linear_solver: lx.AbstractLinearSolver | None = None,
    *,
    coloring: asdex.ColoredPattern | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Scale the gradient by the inverse of the sparse Gauss-Newton matrix ``JᵀJ``.

    ``J`` is the sparse Jacobian of ``residual_fn(params, **extra_args)`` (any pytree
    of residuals). The output is ``p = (JᵀJ + τI)⁻¹ g``, ``τ ≥ 0`` being the smallest
    shift of a Nocedal-Wright schedule making ``JᵀJ + τI`` positive definite (``τ > 0``
    only for a rank-deficient ``J``). With ``value_fn = ½‖residual_fn‖²`` the incoming
    gradient is ``g = Jᵀr`` and ``p`` is the Gauss-Newton (or Levenberg-Marquardt)
    direction.

    Args:
        residual_fn: The residual function, called with the same extra keyword
            arguments as ``value_fn``.
        linear_solver: The Lineax solver for the sparse systems; ``None`` picks a
            direct solver from the pattern of ``JᵀJ``, as `SparseGaussNewton` does.
        coloring: A precomputed colored Jacobian pattern of the flattened residuals
            with respect to the flattened ``params`` (``asdex.jacobian_coloring``).

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from asdex_opt.optax import scale_by_sparse_gauss_newton
        >>> r = lambda x: jnp.concatenate([x[1:] - x[:-1] ** 2, x - 2.0])
        >>> gn = scale_by_sparse_gauss_newton(r)
        >>> x = jnp.ones(4)
        >>> g = jax.grad(lambda x: 0.5 * jnp.sum(r(x) ** 2))(x)
        >>> p, _ = gn.update(g, gn.init(x), x)
        >>> bool(jnp.vdot(p, g) > 0)
        True
    """
    if not callable(residual_fn):
        raise TypeError(
            "`scale_by_sparse_gauss_newton` needs the residual function as its first "
            f"argument, got {type(residual_fn).__name__}."
        )
    cache = ColoringCache()

    def init_fn(params: optax.Params) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update_fn(
        updates: optax.Updates,
        state: optax.EmptyState,
        params: optax.Params | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, optax.EmptyState]:
        if params is None:
            raise ValueError(
                "`scale_by_sparse_gauss_newton` needs `params` in `update`: the Jacobian "
                "is evaluated there."
            )
        flat_fn, y_flat, dynamic = _flat_problem(residual_fn, params, _extra(extra_args))
        grad, unravel = _flat_updates(updates, y_flat, "scale_by_sparse_gauss_newton")

        def plan() -> tuple[JacobianEvaluator, lx.AbstractLinearSolver]:
            detected = detect_jacobian(flat_fn, y_flat, dynamic, coloring)
            evaluate = JacobianEvaluator(flat_fn, detected, dynamic, normal=True)
            solver = (
                choose_solver(evaluate.solved, symmetric=True)
                if linear_solver is None
                else linear_solver
            )
            return evaluate, solver

        evaluate, solver = cache.get(problem_key(flat_fn, y_flat, dynamic), plan)
        normal = evaluate(y_flat, dynamic).normal
        direction, _, _ = shifted_newton_direction(grad, normal, solver)
        return unravel(direction), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# Extra arguments of Optax's line searches, not meant for the residual function.
_LINESEARCH_ARGS = frozenset({"value", "grad", "value_fn"})


def _chain(
    direction: optax.GradientTransformationExtraArgs,
    learning_rate: optax.ScalarOrSchedule | None,
    linesearch: optax.GradientTransformation | None,
) -> optax.GradientTransformationExtraArgs:
    scaling = (
        optax.scale(-1.0) if learning_rate is None else optax.scale_by_learning_rate(learning_rate)
    )
    chained = optax.chain(
        direction, scaling, optax.identity() if linesearch is None else linesearch
    )

    def init_fn(params: optax.Params) -> optax.OptState:
        # Optax's zoom line search starts some counters as weakly typed scalars that
        # its update returns strongly typed: a jitted update would then compile twice.
        return jax.tree.map(_strongly_typed, chained.init(params))

    return optax.GradientTransformationExtraArgs(init_fn, chained.update)


def _strongly_typed(leaf: Any) -> Any:
    if isinstance(leaf, jax.Array):
        return jax.lax.convert_element_type(leaf, leaf.dtype)
    return leaf


def _default_linesearch() -> optax.GradientTransformationExtraArgs:
    return optax.scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one")


def sparse_newton(
    learning_rate: optax.ScalarOrSchedule | None = None,
    *,
    linear_solver: lx.AbstractLinearSolver | None = None,
    linesearch: optax.GradientTransformation | None = None,
    coloring: asdex.ColoredPattern | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Newton's method with the exact sparse Hessian, as an Optax optimizer.

    ``chain(scale_by_sparse_newton(), scale(-1) or scale_by_learning_rate, linesearch)``,
    as ``optax.lbfgs`` chains its direction. ``update`` needs the extra arguments
    ``value``, ``grad`` and ``value_fn`` (use ``optax.value_and_grad_from_state`` to
    reuse the line search's evaluations).

    Args:
        learning_rate: Optional global scaling; by default the line search sets the
            step size.
        linear_solver: The Lineax solver for the Newton systems; ``None`` picks one
            from the pattern, as `scale_by_sparse_newton` does.
        linesearch: The line search; ``None`` means
            ``optax.scale_by_zoom_linesearch(max_linesearch_steps=20,
            initial_guess_strategy="one")`` (the unit Newton step is tried first).
        coloring: A precomputed colored Hessian pattern, as for `scale_by_sparse_newton`.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Examples:
        >>> import jax, jax.numpy as jnp, optax
        >>> from asdex_opt.optax import sparse_newton
        >>> f = lambda x: jnp.sum((x - 3.0) ** 4) + jnp.sum((x[1:] - x[:-1]) ** 2)
        >>> opt, x = sparse_newton(), jnp.zeros(8)
        >>> state = opt.init(x)
        >>> for _ in range(30):
        ...     v, g = jax.value_and_grad(f)(x)
        ...     u, state = opt.update(g, state, x, value=v, grad=g, value_fn=f)
        ...     x = optax.apply_updates(x, u)
        >>> bool(jnp.allclose(x, 3.0, atol=1e-2))
        True
    """
    return _chain(
        scale_by_sparse_newton(linear_solver, coloring=coloring),
        learning_rate,
        _default_linesearch() if linesearch is None else linesearch,
    )


def sparse_gauss_newton(
    residual_fn: Callable[..., Any],
    learning_rate: optax.ScalarOrSchedule | None = None,
    *,
    linear_solver: lx.AbstractLinearSolver | None = None,
    linesearch: optax.GradientTransformation | None = None,
    coloring: asdex.ColoredPattern | None = None,
) -> optax.GradientTransformationExtraArgs:
    """Gauss-Newton with a sparse Jacobian, as an Optax optimizer.

    ``chain(scale_by_sparse_gauss_newton(residual_fn), scale(-1) or
    scale_by_learning_rate, linesearch)``. The objective passed as ``value_fn`` (for
    the line search) should be ``½‖residual_fn(params, **extra_args)‖²``.

    Args:
        residual_fn: The residual function.
        learning_rate: Optional global scaling; by default the line search sets the
            step size.
        linear_solver: The Lineax solver for the Gauss-Newton systems; ``None`` picks
            one from the pattern of ``JᵀJ``.
        linesearch: The line search; ``None`` means a zoom line search trying the
            unit step first, as in `sparse_newton`.
        coloring: A precomputed colored Jacobian pattern, as for
            `scale_by_sparse_gauss_newton`.

    Returns:
        An ``optax.GradientTransformationExtraArgs``.

    Examples:
        >>> import jax, jax.numpy as jnp, optax
        >>> from asdex_opt.optax import sparse_gauss_newton
        >>> r = lambda x: jnp.concatenate([10 * (x[1:] - x[:-1] ** 2), 1 - x])
        >>> f = lambda x: 0.5 * jnp.sum(r(x) ** 2)
        >>> opt, x = sparse_gauss_newton(r), jnp.zeros(6)
        >>> state = opt.init(x)
        >>> for _ in range(40):
        ...     v, g = jax.value_and_grad(f)(x)
        ...     u, state = opt.update(g, state, x, value=v, grad=g, value_fn=f)
        ...     x = optax.apply_updates(x, u)
        >>> bool(jnp.allclose(x, 1.0, atol=1e-4))
        True
    """
    return _chain(
        scale_by_sparse_gauss_newton(residual_fn, linear_solver, coloring=coloring),
        learning_rate,
        _default_linesearch() if linesearch is None else linesearch,
    )
