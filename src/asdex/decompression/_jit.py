"""`jax.jit` for functions whose arguments and results may hold non-array leaves.

Array leaves (and Python numbers, which detection also traces) are traced; every other
leaf (a string, a callable, an enum, ...) is static: it is part of the compilation key,
compared by equality where it is hashable and by identity otherwise. The result's
`jax.Array` leaves come out of the compiled program; its other leaves come back as they
were when the function was traced.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

_TRACED_TYPES = (jax.Array, np.ndarray, np.generic, bool, int, float, complex)


def is_traced_leaf(leaf: Any) -> bool:
    """Whether `filter_jit` traces this leaf (arrays and Python numbers).

    Examples:
        >>> is_traced_leaf(1.5), is_traced_leaf("mode")
        (True, False)
    """
    return isinstance(leaf, _TRACED_TYPES)


class _Static:
    """A non-array leaf as part of a compilation key."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Static) or type(self.value) is not type(other.value):
            return False
        if self.value is other.value:
            return True
        try:
            return bool(self.value == other.value) and _hashable(self.value)
        except Exception:
            return False

    def __hash__(self) -> int:
        try:
            return hash((type(self.value), self.value))
        except TypeError:
            return id(self.value)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@jax.tree_util.register_static
class _Result:
    """The non-array part of a result: no leaves, carried through `jax.jit` as aux data."""

    def __init__(self, treedef: Any, static: tuple[Any, ...]) -> None:
        self.treedef = treedef
        self.static = static

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Result) and self.treedef == other.treedef and all(
            _Static(a) == _Static(b) for a, b in zip(self.static, other.static, strict=True)
        )

    def __hash__(self) -> int:
        return hash(self.treedef)


def _partition(tree: Any, traced_leaf: Callable[[Any], bool]) -> tuple[list[Any], tuple, Any]:
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    traced = [leaf for leaf in leaves if traced_leaf(leaf)]
    static = tuple(None if traced_leaf(leaf) else leaf for leaf in leaves)
    return traced, static, treedef


def _is_array(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array)


def _combine(traced: list[Any], static: tuple[Any, ...], treedef: Any) -> Any:
    it = iter(traced)
    leaves = [next(it) if leaf is None else leaf for leaf in static]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def filter_jit(fun: Callable[..., Any]) -> Callable[..., Any]:
    """Compile `fun` with `jax.jit`, tracing its array leaves and keeping the rest static.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex.decompression import filter_jit
        >>> scale = filter_jit(lambda x, how: 2 * x if how == "double" else x)
        >>> scale(jnp.ones(2), "double").tolist()
        [2.0, 2.0]
    """

    @functools.partial(jax.jit, static_argnums=(1, 2))
    def compiled(traced: list[Any], static: tuple[_Static | None, ...], treedef: Any) -> Any:
        plain = tuple(None if leaf is None else leaf.value for leaf in static)
        args, kwargs = _combine(traced, plain, treedef)
        out_traced, out_static, out_treedef = _partition(fun(*args, **kwargs), _is_array)
        return out_traced, _Result(out_treedef, out_static)

    @functools.wraps(fun)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        traced, static, treedef = _partition((args, kwargs), is_traced_leaf)
        keyed = tuple(None if leaf is None else _Static(leaf) for leaf in static)
        out_traced, result = compiled(traced, keyed, treedef)
        return _combine(out_traced, result.static, result.treedef)

    return wrapper
