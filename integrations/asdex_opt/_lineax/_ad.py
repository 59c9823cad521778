"""Sparse Lineax operators built from asdex's sparse Jacobians and Hessians."""

from collections.abc import Callable
from typing import Any

import jax
import lineax as lx
from jaxtyping import Array, PyTree

import asdex

from ._operator import SparseMatrixLinearOperator

__all__ = ["sparse_hessian_operator", "sparse_jacobian_operator"]


def _check_vector(fn: Callable, x: Array, args: PyTree[Any], what: str, out_ndim: int) -> None:
    if getattr(x, "ndim", None) != 1:
        raise ValueError(
            f"`{what}` expects `x` to be a 1-D array, got {jax.typeof(x)}. Flatten a "
            "pytree with `jax.flatten_util.ravel_pytree` (or use `asdex_opt.filter_*`)."
        )
    out = jax.eval_shape(fn, x, args)
    if getattr(out, "ndim", None) != out_ndim:
        kind = "a 1-D array" if out_ndim == 1 else "a scalar"
        raise ValueError(f"`{what}` expects `fn(x, args)` to return {kind}, got {out}.")


def _bind_args(fn: Callable, args: PyTree[Any]) -> tuple[Callable, tuple]:
    """``fn(x, args)`` as a function of positional arrays, without a ``None`` argument."""
    if args is None:
        return lambda x: fn(x, None), ()
    return fn, (args,)


def sparse_jacobian_operator(
    fn: Callable[[Array, PyTree[Any]], Array],
    x: Array,
    args: PyTree[Any] = None,
    *,
    tags: object = (),
) -> SparseMatrixLinearOperator:
    """The sparse Jacobian ``d fn(x, args) / dx`` as a Lineax operator.

    The sparse counterpart of ``lineax.JacobianLinearOperator(fn, x, args)``, but
    materialised: sparsity is detected and colored with ``asdex.jacobian`` and the
    matrix computed with one JVP or VJP per color. To evaluate many Jacobians of the
    same function, call ``asdex.jacobian`` once yourself and wrap each result in a
    `SparseMatrixLinearOperator`, so that detection is not repeated.

    Args:
        fn: A function ``(x, args) -> y`` with 1-D ``x`` and ``y``.
        x: The point, a 1-D array.
        args: Other (non-differentiated) arguments of ``fn``.
        tags: Lineax tags for the operator.

    Returns:
        A `SparseMatrixLinearOperator` of shape ``(y.size, x.size)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> op = sparse_jacobian_operator(lambda x, a: a * x**2, jnp.arange(3.0), 2.0)
        >>> op.as_matrix()[1, 1]
        Array(4., dtype=float32)
    """
    _check_vector(fn, x, args, "sparse_jacobian_operator", out_ndim=1)
    fn, rest = _bind_args(fn, args)
    matrix = asdex.jacobian(fn, x, *rest, output_format="bcoo")(x, *rest)
    return SparseMatrixLinearOperator(matrix, tags)


def sparse_hessian_operator(
    fn: Callable[[Array, PyTree[Any]], Array],
    x: Array,
    args: PyTree[Any] = None,
    *,
    tags: object = (),
) -> SparseMatrixLinearOperator:
    """The sparse Hessian of a scalar ``fn(x, args)`` w.r.t. ``x`` as a Lineax operator.

    Computed with ``asdex.hessian`` (star coloring, one Hessian-vector product per
    color) and tagged ``lineax.symmetric_tag`` (plus ``tags``, e.g.
    ``lineax.positive_semidefinite_tag`` for a convex ``fn``).

    Args:
        fn: A scalar function ``(x, args) -> f`` with 1-D ``x``.
        x: The point, a 1-D array.
        args: Other (non-differentiated) arguments of ``fn``.
        tags: Extra Lineax tags for the operator.

    Returns:
        A symmetric `SparseMatrixLinearOperator` of shape ``(x.size, x.size)``.

    Examples:
        >>> import jax.numpy as jnp, lineax as lx
        >>> op = sparse_hessian_operator(lambda x, _: jnp.sum(x**3), jnp.arange(3.0))
        >>> lx.diagonal(op)
        Array([ 0.,  6., 12.], dtype=float32)
    """
    _check_vector(fn, x, args, "sparse_hessian_operator", out_ndim=0)
    fn, rest = _bind_args(fn, args)
    matrix = asdex.hessian(fn, x, *rest, output_format="bcoo")(x, *rest)
    tags = {lx.symmetric_tag} | set(SparseMatrixLinearOperator(matrix, tags).tags)
    return SparseMatrixLinearOperator(matrix, tags)
