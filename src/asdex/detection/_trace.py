"""From a function and sample arguments to a jaxpr and its column layout."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from asdex.detection._interpreter import State, unknown_state
from asdex.detection._maps import empty_pattern, identity_pattern


@dataclasses.dataclass(frozen=True)
class Traced:
    """A traced function with the layout of its differentiated inputs.

    Attributes:
        closed_jaxpr: The function's closed jaxpr (flat inputs, flat outputs).
        input_avals: One pytree of `jax.ShapeDtypeStruct` per positional argument.
        argnums: The differentiated positions, as given (int or tuple).
        in_columns: For each flat jaxpr input, its column offset, or `None` when it
            is not differentiated.
        n: Total number of differentiated elements (columns).
        out_avals: Avals of the flat outputs.
        out_tree: Pytree structure of the output.
    """

    closed_jaxpr: Any
    input_avals: tuple[Any, ...]
    argnums: int | tuple[int, ...]
    in_columns: tuple[int | None, ...]
    n: int
    out_avals: tuple[Any, ...]
    out_tree: Any

    def input_states(self) -> list[State]:
        """Identity patterns for differentiated inputs, empty ones for the rest."""
        states = []
        for var, offset in zip(self.closed_jaxpr.jaxpr.invars, self.in_columns, strict=True):
            size = math.prod(var.aval.shape)
            pattern = (
                empty_pattern(size, self.n)
                if offset is None
                else identity_pattern(offset, size, self.n)
            )
            states.append(unknown_state(var.aval, pattern))
        return states


def normalize_argnums(argnums: int | Sequence[int], num_args: int) -> int | tuple[int, ...]:
    """Validate `argnums` against the number of positional arguments."""
    as_tuple = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not as_tuple:
        raise ValueError("`argnums` must name at least one positional argument.")
    for a in as_tuple:
        if not isinstance(a, int | np.integer) or isinstance(a, bool):
            raise TypeError(f"`argnums` must hold ints, got {a!r}.")
        if not -num_args <= a < num_args:
            raise ValueError(
                f"`argnums` {a} is out of range: the function was given {num_args} "
                "positional argument(s)."
            )
    normalized = tuple(int(a) % num_args for a in as_tuple)
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"`argnums` {argnums!r} names the same argument twice.")
    return normalized[0] if isinstance(argnums, int) else normalized


def _abstract_leaf(leaf: Any, position: int, differentiated: bool) -> Any:
    if isinstance(leaf, jax.ShapeDtypeStruct):
        return leaf
    if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
        return jax.ShapeDtypeStruct(np.shape(leaf), leaf.dtype)
    if isinstance(leaf, bool | int | float | complex) and not isinstance(leaf, np.ndarray):
        return jax.ShapeDtypeStruct((), jax.numpy.asarray(leaf).dtype)
    if differentiated:
        raise TypeError(
            f"Positional argument {position} is differentiated (it is in `argnums`), so "
            f"every leaf of it must be an array, but one leaf is {type(leaf).__name__}: "
            f"{leaf!r}."
        )
    return leaf


def trace(
    f: Callable[..., Any], args: Sequence[Any], argnums: int | Sequence[int], has_aux: bool
) -> Traced:
    """Trace `f` on abstract versions of `args`, laying out the columns by `argnums`."""
    if not callable(f):
        raise TypeError(f"Expected a callable, got {type(f).__name__}.")
    if not args:
        raise ValueError("Give sample arguments: `f` must be traced on inputs of some shape.")
    argnums = normalize_argnums(argnums, len(args))
    dyn = (argnums,) if isinstance(argnums, int) else argnums
    input_avals = tuple(
        jax.tree_util.tree_map(lambda leaf, i=i: _abstract_leaf(leaf, i, i in dyn), arg)
        for i, arg in enumerate(args)
    )
    is_array = [
        [isinstance(leaf, jax.ShapeDtypeStruct) for leaf in jax.tree_util.tree_leaves(a)]
        for a in input_avals
    ]

    def flat_fun(*array_leaves: Any) -> Any:
        it = iter(array_leaves)
        rebuilt = []
        for aval, mask in zip(input_avals, is_array, strict=True):
            leaves, treedef = jax.tree_util.tree_flatten(aval)
            leaves = [next(it) if m else leaf for leaf, m in zip(leaves, mask, strict=True)]
            rebuilt.append(jax.tree_util.tree_unflatten(treedef, leaves))
        out = f(*rebuilt)
        if has_aux:
            if not (isinstance(out, tuple | list) and len(out) == 2):
                raise TypeError(
                    "With `has_aux=True`, `f` must return a pair (output, aux), got "
                    f"{type(out).__name__}."
                )
            out = out[0]
        return out

    array_avals = [
        leaf
        for aval, mask in zip(input_avals, is_array, strict=True)
        for leaf, m in zip(jax.tree_util.tree_leaves(aval), mask, strict=True)
        if m
    ]
    closed, out_shape = jax.make_jaxpr(flat_fun, return_shape=True)(*array_avals)
    out_leaves, out_tree = jax.tree_util.tree_flatten(out_shape)
    for leaf in out_leaves:
        if not isinstance(leaf, jax.ShapeDtypeStruct):
            raise TypeError(f"Every output leaf of `f` must be an array, got {leaf!r}.")

    offsets: dict[tuple[int, int], int] = {}
    column = 0
    for position in dyn:
        for k, leaf in enumerate(jax.tree_util.tree_leaves(input_avals[position])):
            offsets[(position, k)] = column
            column += math.prod(leaf.shape)
    in_columns = [
        offsets.get((position, k))
        for position, aval in enumerate(input_avals)
        for k, m in enumerate(is_array[position])
        if m
    ]
    return Traced(
        closed_jaxpr=closed,
        input_avals=input_avals,
        argnums=argnums,
        in_columns=tuple(in_columns),
        n=column,
        out_avals=tuple(out_leaves),
        out_tree=out_tree,
    )
