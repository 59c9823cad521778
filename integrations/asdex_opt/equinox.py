"""Sparse Jacobians and Hessians as Equinox-style transforms.

``asdex_opt.filter_hessian(fun)`` is used like ``equinox.filter_hessian(fun)``: it
returns a function with the same arguments as ``fun`` that differentiates with respect
to the floating-point array leaves of the first argument (or the leaves that
``filter_spec`` selects, as in ``eqx.partition``); every other leaf and argument is
held fixed. Sparsity is detected and colored on the first call, and again only when
the inputs change structure: the tree structure, the shapes and dtypes of the array
leaves (``eqx.is_array``), the non-array leaves, or the values of the integer and
boolean arrays detection reads (index arrays, masks). Each structure's evaluation is
compiled with ``eqx.filter_jit``.

**The result is one sparse matrix, not a pytree of blocks.** Where
``equinox.filter_hessian`` returns a pytree with one dense block per pair of leaves,
these return one ``jax.experimental.sparse.BCOO`` matrix (``output_format="dense"``:
one dense array) whose columns are the differentiated leaves flattened in
`filter_ravel_pytree` order, and whose rows are the same (Hessian) or the output
flattened in ``jax.flatten_util.ravel_pytree`` order (Jacobian). A sparse derivative
is used to solve linear systems (Newton steps): sparse solvers, ``SparseLDL``,
``SparseLU`` and the Lineax operators of `asdex_opt.lineax` take one matrix, and
splitting it into leaf-by-leaf blocks would give mostly empty blocks that must be
reassembled for every solve. `filter_ravel_pytree` maps between that flat order and
the pytree, e.g. to apply a Newton step with ``eqx.apply_updates``.

Examples:
    >>> import equinox as eqx, jax, jax.numpy as jnp
    >>> from asdex_opt.equinox import filter_hessian, filter_ravel_pytree
    >>> model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
    >>> def loss(model, x, y):
    ...     return jnp.sum((jax.vmap(model)(x) - y) ** 2)
    >>> x, y = jnp.ones((5, 3)), jnp.zeros((5, 2))
    >>> H = filter_hessian(loss)(model, x, y)  # BCOO, (8, 8)
    >>> flat, unravel = filter_ravel_pytree(model)
    >>> model = eqx.apply_updates(model, unravel(-0.1 * flat))
"""

import functools
import hashlib
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax.flatten_util as jfu
import jax.tree_util as jtu
import numpy as np
from jaxtyping import Array, PyTree

import asdex
from asdex_opt._problem import (
    ColoringCache,
    WithConstants,
    constant_mask,
    detect_hessian,
    detect_jacobian,
    dynamic_part,
    flatten,
)

__all__ = [
    "filter_ravel_pytree",
    "filter_jacobian",
    "filter_jacfwd",
    "filter_jacrev",
    "filter_value_and_jacobian",
    "filter_hessian",
    "filter_value_and_hessian",
]

_Kind = Literal["jacobian", "value_and_jacobian", "hessian", "value_and_hessian"]


def filter_ravel_pytree(
    pytree: PyTree[Any], filter_spec: PyTree[Any] = eqx.is_inexact_array
) -> tuple[Array, Callable[[Array], PyTree[Any]]]:
    """Flatten the filtered leaves of a pytree into one vector.

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
        >>> from asdex_opt.equinox import filter_ravel_pytree
        >>> model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
        >>> flat, unravel = filter_ravel_pytree(model)
        >>> flat.shape
        (8,)
        >>> model = eqx.apply_updates(model, unravel(-0.1 * flat))
    """
    selected, _ = eqx.partition(pytree, filter_spec)
    return jfu.ravel_pytree(selected)


class _Filtered(eqx.Module):
    """``fun(x, *args, **kwargs)`` as ``(selected, (rest, args, kwargs)) -> (out, aux)``."""

    fun: Callable
    has_aux: bool = eqx.field(static=True)

    def __call__(self, selected: PyTree, rest_args_kwargs: tuple) -> tuple[Any, Any]:
        rest, args, kwargs = rest_args_kwargs
        out = self.fun(eqx.combine(selected, rest), *args, **kwargs)
        return out if self.has_aux else (out, None)


def _digest(x: Any) -> tuple:
    value = np.asarray(x)
    return value.shape, str(value.dtype), hashlib.blake2b(value.tobytes()).digest()


def _input_key(problem: _Filtered, selected: PyTree, inputs: tuple) -> tuple:
    """What determines the detected sparsity of ``problem`` at these inputs.

    The tree structure, the shapes and dtypes of the array leaves, the non-array leaves,
    which leaves detection reads as constants, and the values of the constants among
    the arguments (the arrays ``fun`` holds belong to the transform and are fixed).
    """
    arrays, static = eqx.partition((selected, inputs), eqx.is_array)
    leaves = jtu.tree_leaves(arrays)
    static_leaves, static_structure = jtu.tree_flatten(static)
    mask = constant_mask(dynamic_part(problem, inputs))
    is_constant = jtu.tree_leaves(mask)
    constants = jtu.tree_leaves(eqx.filter(dynamic_part(problem, inputs)[1], mask[1]))
    key = (
        jtu.tree_structure(arrays),
        tuple((x.shape, str(x.dtype)) for x in leaves),
        static_structure,
        tuple(static_leaves),
        tuple(is_constant),
        tuple(_digest(c) for c in constants),
    )
    try:
        hash(key)
    except TypeError as error:
        raise TypeError(
            "The non-array leaves of the arguments of a function returned by "
            "`asdex_opt.filter_*` must be hashable, as for `eqx.filter_jit` (they are part "
            "of what the detected sparsity depends on). Make the unhashable leaf an array, "
            f"or close over it in `fun`: {error}"
        ) from None
    return key


class _Transform:
    """A function of ``(x, *args, **kwargs)`` returning a sparse derivative of ``fun``."""

    def __init__(
        self,
        fun: Callable,
        kind: _Kind,
        has_aux: bool,
        filter_spec: PyTree[Any],
        mode: str | None,
        output_format: str,
        coloring: asdex.ColoredPattern | None,
    ):
        self.__wrapped__ = fun
        self._problem = _Filtered(fun, has_aux)
        self._kind, self._has_aux, self._filter_spec = kind, has_aux, filter_spec
        self._mode, self._output_format, self._coloring = mode, output_format, coloring
        self._cache = ColoringCache()

    def __call__(self, x: PyTree[Any], /, *args: Any, **kwargs: Any) -> Any:
        selected, rest = eqx.partition(x, self._filter_spec)
        inputs = (rest, args, kwargs)
        key = _input_key(self._problem, selected, inputs)
        evaluate = self._cache.get(key, lambda: self._prepare(selected, inputs))
        return evaluate(x, args, kwargs)

    def _prepare(self, selected: PyTree, inputs: tuple) -> Callable:
        """Detect and color the sparsity at these inputs; the compiled evaluation."""
        jacobian = self._kind.endswith("jacobian")
        flat_fn, y_flat, dynamic = flatten(self._problem, selected, inputs, ravel_out=jacobian)
        if jacobian:
            coloring = detect_jacobian(flat_fn, y_flat, dynamic, self._coloring, self._mode)
        else:
            coloring = detect_hessian(flat_fn, y_flat, dynamic, self._coloring, self._mode)
        make = {
            "jacobian": asdex.jacobian_from_coloring,
            "value_and_jacobian": asdex.value_and_jacobian_from_coloring,
            "hessian": asdex.hessian_from_coloring,
            "value_and_hessian": asdex.value_and_hessian_from_coloring,
        }[self._kind]
        derivative = make(
            WithConstants(flat_fn), coloring, output_format=self._output_format, has_aux=True
        )
        unravel_out = None
        if self._kind == "value_and_jacobian":
            out_struct = eqx.filter_eval_shape(self._problem, selected, inputs)[0]
            unravel_out = eqx.filter_eval_shape(jfu.ravel_pytree, out_struct)[1]
        return eqx.filter_jit(
            functools.partial(self._evaluate, derivative, constant_mask(dynamic), unravel_out)
        )

    def _evaluate(
        self,
        derivative: Callable,
        mask: PyTree[bool],
        unravel_out: Callable | None,
        x: PyTree[Any],
        args: tuple,
        kwargs: dict[str, Any],
    ) -> Any:
        selected, rest = eqx.partition(x, self._filter_spec)
        flat, _ = jfu.ravel_pytree(selected)
        constants, unknowns = eqx.partition(dynamic_part(self._problem, (rest, args, kwargs)), mask)
        if self._kind.startswith("value_and"):
            (value, aux), result = derivative(flat, unknowns, constants)
            if unravel_out is not None:
                value = unravel_out(value)
            return ((value, aux) if self._has_aux else value), result
        result, aux = derivative(flat, unknowns, constants)
        return (result, aux) if self._has_aux else result


def _transform(name: str, equinox_name: str | None) -> Callable[[Callable], Callable]:
    """Reject the former call form ``name(fun, sample_pytree, *sample_args)``."""

    def decorate(make: Callable) -> Callable:
        @functools.wraps(make)
        def checked(fun: Callable, *args: Any, **kwargs: Any) -> Callable:
            has_aux = args[0] if args else kwargs.get("has_aux", False)
            if len(args) > 1 or not isinstance(has_aux, bool | np.bool_):
                like = f", like `equinox.{equinox_name}`" if equinox_name else ""
                raise TypeError(
                    f"`asdex_opt.{name}` is a transform of `fun`{like}: write "
                    f"`asdex_opt.{name}(fun)(pytree, *args)`, or "
                    f"`asdex_opt.{name}(fun, has_aux, filter_spec=...)(pytree, *args)`. "
                    "It no longer takes sample inputs: sparsity is detected on the first "
                    "call. Its second argument is `has_aux` (a bool), got "
                    f"{type(has_aux).__name__}."
                )
            return make(fun, *args, **kwargs)

        return checked

    return decorate


@_transform("filter_jacobian", None)
def filter_jacobian(
    fun: Callable[..., PyTree[Array]],
    has_aux: bool = False,
    *,
    filter_spec: PyTree[Any] = eqx.is_inexact_array,
    mode: asdex.JacobianMode | None = None,
    output_format: str = "bcoo",
    coloring: asdex.ColoredPattern | None = None,
) -> Callable[..., Any]:
    """The sparse Jacobian of ``fun`` with respect to its first argument.

    Like `filter_jacfwd` and `filter_jacrev`, with the mode that needs fewer colors
    (``mode=None``). ``fun(x, *args, **kwargs)`` may return any pytree of arrays: its
    leaves, flattened in ``ravel_pytree`` order, are the rows; the leaves of ``x`` that
    ``filter_spec`` selects, flattened in `filter_ravel_pytree` order, are the columns.
    The other leaves of ``x`` and the other arguments are not differentiated and may be
    traced. Arrays ``fun`` closes over, and the concrete integer and boolean arrays
    among the other leaves and arguments (index arrays, masks), are constants to
    detection, which reads their values (so ``y[idx]`` gets its exact pattern); new
    values of them mean a new detection. Floating-point leaves may change freely.

    Args:
        fun: The function, called as ``fun(x, *args, **kwargs)``.
        has_aux: Whether ``fun`` returns ``(output, aux)``.
        filter_spec: Which leaves of ``x`` to differentiate, as in ``eqx.partition`` (a
            predicate or a pytree of bools), e.g. to freeze a submodule.
        mode: ``"fwd"``, ``"rev"`` or ``None`` (fewer colors), as in ``asdex.jacobian``.
        output_format: ``"bcoo"`` (sparse) or ``"dense"``.
        coloring: A precomputed colored Jacobian pattern (``asdex.jacobian_coloring``
            of the flattened problem), used instead of detecting one.

    Returns:
        A function with the same arguments as ``fun``, returning the ``(m, n)`` Jacobian
        (one matrix: see the module docstring), or ``(jac, aux)`` when ``has_aux``.

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> from asdex_opt.equinox import filter_jacobian
        >>> model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
        >>> x = jnp.ones((5, 3))
        >>> jac_fn = filter_jacobian(lambda m, x: jax.vmap(m)(x))
        >>> jac_fn(model, x).shape
        (10, 8)
    """
    return _Transform(fun, "jacobian", has_aux, filter_spec, mode, output_format, coloring)


@_transform("filter_jacfwd", "filter_jacfwd")
def filter_jacfwd(
    fun: Callable[..., PyTree[Array]],
    has_aux: bool = False,
    *,
    filter_spec: PyTree[Any] = eqx.is_inexact_array,
    output_format: str = "bcoo",
    coloring: asdex.ColoredPattern | None = None,
) -> Callable[..., Any]:
    """The sparse Jacobian of ``fun``, one JVP per color (`filter_jacobian` in forward mode).

    The sparse counterpart of ``equinox.filter_jacfwd``; see `filter_jacobian` for
    the arguments and the layout of the result.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt.equinox import filter_jacfwd
        >>> jac = filter_jacfwd(lambda x: jnp.sin(x) * x[0])(jnp.arange(3.0))
        >>> jac.todense().shape
        (3, 3)
    """
    return _Transform(fun, "jacobian", has_aux, filter_spec, "fwd", output_format, coloring)


@_transform("filter_jacrev", "filter_jacrev")
def filter_jacrev(
    fun: Callable[..., PyTree[Array]],
    has_aux: bool = False,
    *,
    filter_spec: PyTree[Any] = eqx.is_inexact_array,
    output_format: str = "bcoo",
    coloring: asdex.ColoredPattern | None = None,
) -> Callable[..., Any]:
    """The sparse Jacobian of ``fun``, one VJP per color (`filter_jacobian` in reverse mode).

    The sparse counterpart of ``equinox.filter_jacrev``; see `filter_jacobian` for
    the arguments and the layout of the result.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt.equinox import filter_jacrev
        >>> jac = filter_jacrev(lambda x: {"a": x[1:] - x[:-1], "b": x[0]})(jnp.ones(4))
        >>> jac.shape
        (4, 4)
    """
    return _Transform(fun, "jacobian", has_aux, filter_spec, "rev", output_format, coloring)


@_transform("filter_value_and_jacobian", None)
def filter_value_and_jacobian(
    fun: Callable[..., PyTree[Array]],
    has_aux: bool = False,
    *,
    filter_spec: PyTree[Any] = eqx.is_inexact_array,
    mode: asdex.JacobianMode | None = None,
    output_format: str = "bcoo",
    coloring: asdex.ColoredPattern | None = None,
) -> Callable[..., Any]:
    """Like `filter_jacobian`, also returning the value of ``fun``.

    Returns:
        A function with the same arguments as ``fun``, returning ``(value, jac)``, or
        ``((value, aux), jac)`` when ``has_aux``; ``value`` has ``fun``'s output
        structure.

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> from asdex_opt.equinox import filter_value_and_jacobian
        >>> model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
        >>> residual_fn = lambda m, x: jax.vmap(m)(x) - 1.0
        >>> residuals, J = filter_value_and_jacobian(residual_fn)(model, jnp.ones((5, 3)))
        >>> residuals.shape, J.shape
        ((5, 2), (10, 8))
    """
    return _Transform(
        fun, "value_and_jacobian", has_aux, filter_spec, mode, output_format, coloring
    )


@_transform("filter_hessian", "filter_hessian")
def filter_hessian(
    fun: Callable[..., Array],
    has_aux: bool = False,
    *,
    filter_spec: PyTree[Any] = eqx.is_inexact_array,
    mode: asdex.HessianMode | None = None,
    output_format: str = "bcoo",
    coloring: asdex.ColoredPattern | None = None,
) -> Callable[..., Any]:
    """The sparse Hessian of the scalar ``fun`` with respect to its first argument.

    The sparse counterpart of ``equinox.filter_hessian``: the second derivatives with
    respect to the leaves of ``x`` that ``filter_spec`` selects, flattened in
    `filter_ravel_pytree` order into the rows and the columns; everything else is held
    fixed (see `filter_jacobian` for what detection reads as constants).

    Args:
        fun: Scalar function, called as ``fun(x, *args, **kwargs)``.
        has_aux: Whether ``fun`` returns ``(value, aux)``.
        filter_spec: Which leaves of ``x`` to differentiate, as in ``eqx.partition``.
        mode: Hessian-vector product mode, as in ``asdex.hessian``.
        output_format: ``"bcoo"`` (sparse) or ``"dense"``.
        coloring: A precomputed colored Hessian pattern (``asdex.hessian_coloring`` of
            the flattened problem), used instead of detecting one.

    Returns:
        A function with the same arguments as ``fun``, returning the ``(n, n)`` Hessian
        (one matrix: see the module docstring), or ``(hess, aux)`` when ``has_aux``.

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> from asdex_opt.equinox import filter_hessian
        >>> model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
        >>> x, y = jnp.ones((5, 3)), jnp.zeros((5, 2))
        >>> def loss(model, x, y):
        ...     return jnp.sum((jax.vmap(model)(x) - y) ** 2)
        >>> filter_hessian(loss)(model, x, y).shape
        (8, 8)
    """
    return _Transform(fun, "hessian", has_aux, filter_spec, mode, output_format, coloring)


@_transform("filter_value_and_hessian", None)
def filter_value_and_hessian(
    fun: Callable[..., Array],
    has_aux: bool = False,
    *,
    filter_spec: PyTree[Any] = eqx.is_inexact_array,
    mode: asdex.HessianMode | None = None,
    output_format: str = "bcoo",
    coloring: asdex.ColoredPattern | None = None,
) -> Callable[..., Any]:
    """Like `filter_hessian`, also returning the value of ``fun``.

    Returns:
        A function with the same arguments as ``fun``, returning ``(value, hess)``, or
        ``((value, aux), hess)`` when ``has_aux``.

    Examples:
        >>> import equinox as eqx, jax, jax.numpy as jnp
        >>> from asdex_opt.equinox import filter_value_and_hessian
        >>> model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
        >>> x, y = jnp.ones((5, 3)), jnp.zeros((5, 2))
        >>> def loss(model, x, y):
        ...     return jnp.sum((jax.vmap(model)(x) - y) ** 2)
        >>> value, H = filter_value_and_hessian(loss)(model, x, y)
        >>> value.shape, H.shape
        ((), (8, 8))
    """
    return _Transform(fun, "value_and_hessian", has_aux, filter_spec, mode, output_format, coloring)
