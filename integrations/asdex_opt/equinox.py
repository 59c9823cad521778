"""Sparse Jacobians and Hessians with respect to the filtered leaves of a pytree.

Equinox-style front ends over asdex_opt's sparse problem: the leaves of ``pytree``
selected by ``filter_spec`` (as in ``eqx.partition``; by default every inexact array)
are flattened into one vector in ``jax.flatten_util.ravel_pytree`` order and
differentiated; everything else is held fixed. Sparsity is detected once, when
``filter_*`` is called; the returned function of ``(pytree, *args)`` only evaluates.

Examples:
    >>> import equinox as eqx, jax, jax.numpy as jnp
    >>> model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
    >>> def loss(model, x, y):
    ...     return jnp.sum((jax.vmap(model)(x) - y) ** 2)
    >>> x, y = jnp.ones((5, 3)), jnp.zeros((5, 2))
    >>> H = filter_hessian(loss, model, x, y)(model, x, y)  # BCOO, (8, 8)
    >>> flat, unravel = filter_ravel_pytree(model)
    >>> model = eqx.apply_updates(model, unravel(-0.1 * flat))
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.flatten_util as jfu
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, PyTree

import asdex

from ._problem import (
    WithConstants,
    constant_mask,
    detect_hessian,
    detect_jacobian,
    dynamic_part,
    flatten,
    shape_struct,
)

__all__ = [
    "filter_ravel_pytree",
    "filter_jacobian",
    "filter_value_and_jacobian",
    "filter_hessian",
    "filter_value_and_hessian",
]


def filter_ravel_pytree(
    pytree: PyTree[Any], filter_spec: PyTree[Any] = eqx.is_inexact_array
) -> tuple[Array, Callable[[Array], PyTree[Any]]]:
    """Flattens the filtered leaves of a pytree into one vector.

    Args:
        pytree: Any pytree, e.g. an ``eqx.Module``.
        filter_spec: As in ``eqx.partition``: a predicate, or a pytree (prefix) of
            bools or predicates.

    Returns:
        ``(flat, unravel)``: the filtered leaves in ``ravel_pytree`` order (the order of
        the columns of `filter_jacobian` and `filter_hessian`), and a function mapping
        such a vector back to a pytree shaped like ``pytree`` with ``None`` at the
        other leaves, ready for ``eqx.apply_updates``.

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
        >>> x, y = jnp.ones((5, 3)), jnp.zeros((5, 2))
        >>> flat, unravel = filter_ravel_pytree(model)
        >>> flat.shape
        (8,)
        >>> model = eqx.apply_updates(model, unravel(-0.1 * flat))
    """
    selected, _ = eqx.partition(pytree, filter_spec)
    return jfu.ravel_pytree(selected)


class _Filtered(eqx.Module):
    """``fn(pytree, *args)`` as a problem ``(selected, (rest, args)) -> (out, aux)``."""

    fn: Callable
    has_aux: bool = eqx.field(static=True)

    def __call__(self, selected: PyTree, rest_and_args: tuple) -> tuple[Any, Any]:
        rest, args = rest_and_args
        out = self.fn(eqx.combine(selected, rest), *args)
        return out if self.has_aux else (out, None)


class _Prepared:
    """The flat problem of ``fn(pytree, *args)``, detected once; checks later inputs."""

    def __init__(self, fn, pytree, args, filter_spec, has_aux: bool, ravel_out: bool):
        self.filter_spec, self.has_aux = filter_spec, has_aux
        self.problem = _Filtered(fn, has_aux)
        selected, rest = eqx.partition(pytree, filter_spec)
        self.flat_fn, self.flat, self.dynamic = flatten(
            self.problem, selected, (rest, args), ravel_out=ravel_out
        )
        self.signature = self._signature(selected, rest, args)
        self.mask = constant_mask(self.dynamic)
        self.constants, _ = eqx.partition(self.dynamic, self.mask)
        self.evaluated = WithConstants(self.flat_fn)  # called as detection saw it

    def _signature(self, selected, rest, args):
        dynamic, static = eqx.partition((selected, rest, args), eqx.is_array)
        return jtu.tree_structure(dynamic), shape_struct(jtu.tree_leaves(dynamic)), static

    def split(self, pytree: PyTree[Any], args: tuple) -> tuple[Array, PyTree]:
        """The flat selected leaves and the dynamic part, checked against detection's."""
        selected, rest = eqx.partition(pytree, self.filter_spec)
        structure, shapes, static = self._signature(selected, rest, args)
        same = (
            structure == self.signature[0]
            and eqx.tree_equal(shapes, self.signature[1]) is True
            and eqx.tree_equal(static, self.signature[2]) is True
        )
        if not same:
            raise ValueError(
                "The pytree (or the arguments) passed to the function returned by "
                "`asdex_opt.filter_*` differs from the one its sparsity was detected on "
                "(tree structure, shapes, dtypes, or non-array leaves). Call `filter_*` "
                "again for the new inputs."
            )
        flat, _ = jfu.ravel_pytree(selected)
        dynamic = dynamic_part(self.problem, (rest, args))
        return flat, jtu.tree_map(_same_constant, self.constants, dynamic, is_leaf=_is_none)


def _is_none(x: Any) -> bool:
    return x is None


def _same_constant(constant: Any, value: Any) -> Any:
    """``value``, checked to equal the ``constant`` detection read (if there was one)."""
    if constant is None:
        return value
    message = (
        "An integer or boolean array that sparsity detection read as a constant (an "
        "index array, a mask: the pattern depends on its values) has changed since "
        "`asdex_opt.filter_*` was called. Call `filter_*` again with the new values."
    )
    if isinstance(value, jax.core.Tracer):
        return eqx.error_if(value, jnp.any(value != constant), message)
    if not np.array_equal(np.asarray(value), np.asarray(constant)):
        raise ValueError(message)
    return value


def _evaluator(prepared: _Prepared, derivative_fn: Callable, value: bool) -> Callable:
    """A function of ``(pytree, *args)`` calling ``derivative_fn(flat, unknowns, constants)``."""

    def evaluate(pytree, *args):
        flat, dynamic = prepared.split(pytree, args)
        constants, unknowns = eqx.partition(dynamic, prepared.mask)
        out = derivative_fn(flat, unknowns, constants)
        if value:  # ((value, aux), derivative)
            (val, aux), derivative = out
            return ((val, aux) if prepared.has_aux else val), derivative
        derivative, aux = out
        return (derivative, aux) if prepared.has_aux else derivative

    return evaluate


def filter_jacobian(
    fn: Callable[..., PyTree[Array]],
    pytree: PyTree[Any],
    *args: Any,
    filter_spec: PyTree[Any] = eqx.is_inexact_array,
    has_aux: bool = False,
    mode: asdex.JacobianMode | None = None,
    output_format: str = "bcoo",
    coloring: asdex.ColoredPattern | None = None,
) -> Callable[..., Any]:
    """Detects sparsity once; returns a function computing sparse Jacobians.

    The Jacobian of ``fn(pytree, *args)`` (any pytree of arrays, flattened in
    ``ravel_pytree`` order into the rows) with respect to the leaves of ``pytree``
    selected by ``filter_spec`` (flattened in the order of `filter_ravel_pytree` into
    the columns). Unselected array leaves and ``args`` are passed through at call time,
    not differentiated; the non-array part of ``pytree`` must stay the same. Arrays
    ``fn`` closes over, and the integer and boolean arrays among the unselected leaves
    and ``args`` (index arrays, masks), are constants to detection, which reads their
    values (so ``y[idx]`` gets its exact pattern); the returned function checks that
    they have not changed. Floating-point leaves may change freely.

    Args:
        fn: The function, called as ``fn(pytree, *args)``.
        pytree: A sample pytree (e.g. an ``eqx.Module``); structure, shapes and dtypes
            are used for detection, and the values of its integer leaves.
        *args: Sample further arguments of ``fn``.
        filter_spec: As in ``eqx.partition`` (a predicate or a pytree of bools), e.g.
            to freeze a submodule.
        has_aux: Whether ``fn`` returns ``(output, aux)``.
        mode: ``"fwd"``, ``"rev"`` or ``None`` (fewer colors), as in ``asdex.jacobian``.
        output_format: ``"bcoo"`` (sparse) or ``"dense"``.
        coloring: A precomputed colored Jacobian pattern (``asdex.jacobian_coloring``
            of the flattened problem), used instead of detecting one.

    Returns:
        A function of ``(pytree, *args)`` returning the ``(m, n)`` Jacobian (and
        ``aux`` as ``(jac, aux)`` when ``has_aux``).

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
        >>> x, y = jnp.ones((5, 3)), jnp.zeros((5, 2))
        >>> jac_fn = filter_jacobian(lambda m, x: jax.vmap(m)(x), model, x)
        >>> jac_fn(model, x).shape
        (10, 8)
    """
    prepared = _Prepared(fn, pytree, args, filter_spec, has_aux, ravel_out=True)
    coloring = detect_jacobian(prepared.flat_fn, prepared.flat, prepared.dynamic, coloring, mode)
    jac = asdex.jacobian_from_coloring(
        prepared.evaluated, coloring, output_format=output_format, has_aux=True
    )
    return _evaluator(prepared, jac, value=False)


def filter_value_and_jacobian(
    fn: Callable[..., PyTree[Array]],
    pytree: PyTree[Any],
    *args: Any,
    filter_spec: PyTree[Any] = eqx.is_inexact_array,
    has_aux: bool = False,
    mode: asdex.JacobianMode | None = None,
    output_format: str = "bcoo",
    coloring: asdex.ColoredPattern | None = None,
) -> Callable[..., Any]:
    """Like `filter_jacobian`, also returning the value ``fn(pytree, *args)``.

    Returns:
        A function of ``(pytree, *args)`` returning ``(value, jac)``, or
        ``((value, aux), jac)`` when ``has_aux``; ``value`` has ``fn``'s output structure.

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
        >>> x, y = jnp.ones((5, 3)), jnp.zeros((5, 2))
        >>> residual_fn = lambda m, x: jax.vmap(m)(x) - 1.0
        >>> residuals, J = filter_value_and_jacobian(residual_fn, model, x)(model, x)
        >>> residuals.shape, J.shape
        ((5, 2), (10, 8))
    """
    prepared = _Prepared(fn, pytree, args, filter_spec, has_aux, ravel_out=True)
    out_struct = eqx.filter_eval_shape(fn, pytree, *args)
    _, unravel_out = eqx.filter_eval_shape(
        jfu.ravel_pytree, out_struct[0] if has_aux else out_struct
    )
    coloring = detect_jacobian(prepared.flat_fn, prepared.flat, prepared.dynamic, coloring, mode)
    value_and_jac = asdex.value_and_jacobian_from_coloring(
        prepared.evaluated, coloring, output_format=output_format, has_aux=True
    )
    evaluate = _evaluator(prepared, value_and_jac, value=True)

    def value_and_jacobian(pytree, *args):
        value, jac = evaluate(pytree, *args)
        if has_aux:
            value, aux = value
            return (unravel_out(value), aux), jac
        return unravel_out(value), jac

    return value_and_jacobian


def filter_hessian(
    fn: Callable[..., Array],
    pytree: PyTree[Any],
    *args: Any,
    filter_spec: PyTree[Any] = eqx.is_inexact_array,
    has_aux: bool = False,
    mode: asdex.HessianMode | None = None,
    output_format: str = "bcoo",
    coloring: asdex.ColoredPattern | None = None,
) -> Callable[..., Any]:
    """Detects sparsity once; returns a function computing sparse Hessians.

    The Hessian of the scalar ``fn(pytree, *args)`` with respect to the leaves of
    ``pytree`` selected by ``filter_spec``, flattened in the order of
    `filter_ravel_pytree`; everything else is held fixed (see `filter_jacobian`).

    Args:
        fn: Scalar function, called as ``fn(pytree, *args)``.
        pytree: A sample pytree (e.g. an ``eqx.Module``).
        *args: Sample further arguments of ``fn``.
        filter_spec: As in ``eqx.partition``.
        has_aux: Whether ``fn`` returns ``(value, aux)``.
        mode: Hessian-vector product mode, as in ``asdex.hessian``.
        output_format: ``"bcoo"`` (sparse) or ``"dense"``.
        coloring: A precomputed colored Hessian pattern (``asdex.hessian_coloring`` of
            the flattened problem), used instead of detecting one.

    Returns:
        A function of ``(pytree, *args)`` returning the ``(n, n)`` Hessian (and ``aux``
        as ``(hess, aux)`` when ``has_aux``).

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
        >>> x, y = jnp.ones((5, 3)), jnp.zeros((5, 2))
        >>> def loss(model, x, y):
        ...     return jnp.sum((jax.vmap(model)(x) - y) ** 2)
        >>> filter_hessian(loss, model, x, y)(model, x, y).shape
        (8, 8)
    """
    prepared = _Prepared(fn, pytree, args, filter_spec, has_aux, ravel_out=False)
    coloring = detect_hessian(prepared.flat_fn, prepared.flat, prepared.dynamic, coloring, mode)
    hess = asdex.hessian_from_coloring(
        prepared.evaluated, coloring, output_format=output_format, has_aux=True
    )
    return _evaluator(prepared, hess, value=False)


def filter_value_and_hessian(
    fn: Callable[..., Array],
    pytree: PyTree[Any],
    *args: Any,
    filter_spec: PyTree[Any] = eqx.is_inexact_array,
    has_aux: bool = False,
    mode: asdex.HessianMode | None = None,
    output_format: str = "bcoo",
    coloring: asdex.ColoredPattern | None = None,
) -> Callable[..., Any]:
    """Like `filter_hessian`, also returning the value ``fn(pytree, *args)``.

    Returns:
        A function of ``(pytree, *args)`` returning ``(value, hess)``, or
        ``((value, aux), hess)`` when ``has_aux``.

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
        >>> x, y = jnp.ones((5, 3)), jnp.zeros((5, 2))
        >>> def loss(model, x, y):
        ...     return jnp.sum((jax.vmap(model)(x) - y) ** 2)
        >>> value, H = filter_value_and_hessian(loss, model, x, y)(model, x, y)
        >>> value.shape, H.shape
        ((), (8, 8))
    """
    prepared = _Prepared(fn, pytree, args, filter_spec, has_aux, ravel_out=False)
    coloring = detect_hessian(prepared.flat_fn, prepared.flat, prepared.dynamic, coloring, mode)
    value_and_hess = asdex.value_and_hessian_from_coloring(
        prepared.evaluated, coloring, output_format=output_format, has_aux=True
    )
    return _evaluator(prepared, value_and_hess, value=True)
