"""Sparse Jacobians and Hessians with respect to the filtered leaves of a pytree.

Equinox-style wrappers around ``asdex.jacobian`` / ``asdex.hessian``: the leaves of
``pytree`` selected by ``filter_spec`` (as in ``eqx.partition``; by default every
inexact array) are flattened into one vector in ``jax.flatten_util.ravel_pytree`` order
and differentiated; everything else is held fixed. Sparsity is detected once, when
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
from jaxtyping import Array, PyTree

import asdex

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


def _struct(tree: PyTree[Any]) -> PyTree[jax.ShapeDtypeStruct]:
    return jtu.tree_map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), tree)


class _Split:
    """Splits a pytree into (flat selected leaves, other array leaves, static rest)."""

    def __init__(self, pytree: PyTree[Any], filter_spec: PyTree[Any]):
        self.filter_spec = filter_spec
        selected, others, static = self._partition(pytree)
        self.flat, self.unravel = jfu.ravel_pytree(selected)
        self.selected_struct = _struct(selected)
        self.others, self.others_treedef = jtu.tree_flatten(others)
        self.others_struct = _struct(self.others)
        self.static = static

    def _partition(self, pytree):
        selected, rest = eqx.partition(pytree, self.filter_spec)
        others, static = eqx.partition(rest, eqx.is_array)
        return selected, others, static

    def split(self, pytree: PyTree[Any]) -> tuple[Array, list[Array]]:
        """Flat selected leaves and the other array leaves, checking the structure."""
        selected, others, static = self._partition(pytree)
        others = jtu.tree_leaves(others)
        same = (
            eqx.tree_equal(_struct(selected), self.selected_struct) is True
            and eqx.tree_equal(_struct(others), self.others_struct) is True
            and eqx.tree_equal(static, self.static) is True
        )
        if not same:
            raise ValueError(
                "The pytree passed to the function returned by `asdex_opt.filter_*` differs "
                "from the one its sparsity was detected on (tree structure, shapes, dtypes, "
                "or non-array leaves). Call `filter_*` again for the new pytree."
            )
        flat, _ = jfu.ravel_pytree(selected)
        return flat, others

    def combine(self, flat: Array, others: list[Array]) -> PyTree[Any]:
        rest = jtu.tree_unflatten(self.others_treedef, others)
        return eqx.combine(self.unravel(flat), rest, self.static)


def _prepare(fn, pytree, filter_spec, has_aux, flatten_output):
    """The split of ``pytree`` and the flat function ``(flat, others, *args)``."""
    split = _Split(pytree, filter_spec)

    def flat_fn(flat, others, *args):
        out = fn(split.combine(flat, others), *args)
        value, aux = out if has_aux else (out, None)
        if flatten_output:
            value, _ = jfu.ravel_pytree(value)
        return (value, aux) if has_aux else value

    return split, flat_fn


def _wrap(split, derivative_fn):
    def evaluate(pytree, *args):
        flat, others = split.split(pytree)
        return derivative_fn(flat, others, *args)

    return evaluate


def filter_jacobian(
    fn: Callable[..., PyTree[Array]],
    pytree: PyTree[Any],
    *args: Any,
    filter_spec: PyTree[Any] = eqx.is_inexact_array,
    has_aux: bool = False,
    mode: asdex.JacobianMode | None = None,
    output_format: str = "bcoo",
) -> Callable[..., Any]:
    """Detects sparsity once; returns a function computing sparse Jacobians.

    The Jacobian of ``fn(pytree, *args)`` (any pytree of arrays, flattened in
    ``ravel_pytree`` order into the rows) with respect to the leaves of ``pytree``
    selected by ``filter_spec`` (flattened in the order of `filter_ravel_pytree` into
    the columns). Unselected array leaves and ``args`` are passed through at call time,
    not differentiated; the non-array part of ``pytree`` must stay the same.

    Args:
        fn: The function, called as ``fn(pytree, *args)``.
        pytree: A sample pytree (e.g. an ``eqx.Module``); only structure, shapes and
            dtypes are used for detection.
        *args: Sample further arguments of ``fn``.
        filter_spec: As in ``eqx.partition`` (a predicate or a pytree of bools), e.g.
            to freeze a submodule.
        has_aux: Whether ``fn`` returns ``(output, aux)``.
        mode: ``"fwd"``, ``"rev"`` or ``None`` (fewer colors), as in ``asdex.jacobian``.
        output_format: ``"bcoo"`` (sparse) or ``"dense"``.

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
    split, flat_fn = _prepare(fn, pytree, filter_spec, has_aux, flatten_output=True)
    jac = asdex.jacobian(
        flat_fn,
        split.flat,
        split.others,
        *args,
        has_aux=has_aux,
        mode=mode,
        output_format=output_format,
    )
    return _wrap(split, jac)


def filter_value_and_jacobian(
    fn: Callable[..., PyTree[Array]],
    pytree: PyTree[Any],
    *args: Any,
    filter_spec: PyTree[Any] = eqx.is_inexact_array,
    has_aux: bool = False,
    mode: asdex.JacobianMode | None = None,
    output_format: str = "bcoo",
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
    split, flat_fn = _prepare(fn, pytree, filter_spec, has_aux, flatten_output=True)
    out_struct = eqx.filter_eval_shape(fn, pytree, *args)
    _, unravel_out = eqx.filter_eval_shape(
        jfu.ravel_pytree, out_struct[0] if has_aux else out_struct
    )
    value_and_jac = asdex.value_and_jacobian(
        flat_fn,
        split.flat,
        split.others,
        *args,
        has_aux=has_aux,
        mode=mode,
        output_format=output_format,
    )
    evaluate = _wrap(split, value_and_jac)

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
    split, flat_fn = _prepare(fn, pytree, filter_spec, has_aux, flatten_output=False)
    hess = asdex.hessian(
        flat_fn,
        split.flat,
        split.others,
        *args,
        has_aux=has_aux,
        mode=mode,
        output_format=output_format,
    )
    return _wrap(split, hess)


def filter_value_and_hessian(
    fn: Callable[..., Array],
    pytree: PyTree[Any],
    *args: Any,
    filter_spec: PyTree[Any] = eqx.is_inexact_array,
    has_aux: bool = False,
    mode: asdex.HessianMode | None = None,
    output_format: str = "bcoo",
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
    split, flat_fn = _prepare(fn, pytree, filter_spec, has_aux, flatten_output=False)
    value_and_hess = asdex.value_and_hessian(
        flat_fn,
        split.flat,
        split.others,
        *args,
        has_aux=has_aux,
        mode=mode,
        output_format=output_format,
    )
    return _wrap(split, value_and_hess)
