"""Call-time arguments: check them against the pattern and split off what is differentiated."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asdex._pattern import SparsityPattern


def _is_inexact(dtype: Any) -> bool:
    return bool(jnp.issubdtype(dtype, jnp.inexact))


def check_input_dtype(name: str, dtype: Any, *, holomorphic: bool, allow_int: bool) -> None:
    """Apply `jax.jacrev`'s input checks to one differentiated leaf.

    Examples:
        >>> check_input_dtype("jacobian", jnp.float32, holomorphic=False, allow_int=False)
    """
    if holomorphic and not jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(
            f"{name} with holomorphic=True requires inputs with complex dtype, "
            f"but got {np.dtype(dtype).name}."
        )
    if jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.bool_):
        if not allow_int:
            raise TypeError(
                f"{name} requires real- or complex-valued inputs (input dtype that is a "
                f"sub-dtype of np.inexact), but got {np.dtype(dtype).name}. If you want to "
                "use Boolean- or integer-valued inputs, set allow_int to True."
            )
    elif not _is_inexact(dtype):
        raise TypeError(
            f"{name} requires numerical-valued inputs, but got {np.dtype(dtype).name}."
        )


def check_output_dtype(name: str, dtype: Any, *, holomorphic: bool) -> None:
    """Apply `jax.jacrev`'s output checks to one output leaf.

    Examples:
        >>> check_output_dtype("jacobian", jnp.float32, holomorphic=False)
    """
    if holomorphic:
        if not jnp.issubdtype(dtype, jnp.complexfloating):
            raise TypeError(
                f"{name} with holomorphic=True requires outputs with complex dtype, "
                f"but got {np.dtype(dtype).name}."
            )
    elif jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(
            f"{name} requires real-valued outputs (output dtype that is a sub-dtype of "
            f"np.floating), but got {np.dtype(dtype).name}. For holomorphic "
            "differentiation, pass holomorphic=True."
        )
    elif not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"{name} requires real-valued outputs (output dtype that is a sub-dtype of "
            f"np.floating), but got {np.dtype(dtype).name}."
        )


@dataclasses.dataclass(frozen=True)
class SplitArgs:
    """The differentiated leaves of a call, and how to put the call back together.

    Attributes:
        leaves: Every leaf of the differentiated arguments, in pattern column order.
        active: Positions in `leaves` of the inexact leaves, the ones AD sees.
            Integer leaves (allowed by `allow_int`) are held constant.
        rebuild: Maps the active leaves back to the full positional-argument tuple.
    """

    leaves: tuple[jax.Array, ...]
    active: tuple[int, ...]
    rebuild: Callable[[Sequence[jax.Array]], tuple[Any, ...]]

    @property
    def active_leaves(self) -> tuple[jax.Array, ...]:
        """The leaves that AD differentiates."""
        return tuple(self.leaves[i] for i in self.active)


def split_args(
    pattern: SparsityPattern,
    args: tuple[Any, ...],
    *,
    name: str,
    holomorphic: bool,
    allow_int: bool,
) -> SplitArgs:
    """Check `args` against the structure the pattern was built for, then split them.

    Raises a `ValueError` naming the argument and leaf on a structure or shape mismatch,
    and a `TypeError` (as `jax.jacrev` does) on a dtype that cannot be differentiated.

    Examples:
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> split = split_args(p, (jnp.ones(2),), name="jacobian", holomorphic=False,
        ...                    allow_int=False)
        >>> split.active
        (0,)
    """
    argnums = pattern.argnums_tuple
    if len(args) <= max(argnums):
        raise TypeError(
            f"{name}: the pattern differentiates positional argument {max(argnums)}, but "
            f"only {len(args)} positional argument(s) were given."
        )
    leaves: list[jax.Array] = []
    treedefs = []
    for position, aval in zip(argnums, pattern.dyn_avals, strict=True):
        arg_leaves, treedef = jax.tree_util.tree_flatten(args[position])
        aval_leaves, aval_treedef = jax.tree_util.tree_flatten(aval)
        if treedef != aval_treedef:
            raise ValueError(
                f"{name}: positional argument {position} has structure {treedef}, but the "
                f"pattern was built for structure {aval_treedef}."
            )
        for k, (leaf, expected) in enumerate(zip(arg_leaves, aval_leaves, strict=True)):
            leaf = jnp.asarray(leaf)
            where = f"positional argument {position}" + (
                f" (leaf {k})" if len(aval_leaves) > 1 else ""
            )
            if leaf.shape != tuple(expected.shape):
                raise ValueError(
                    f"{name}: {where} has shape {leaf.shape}, but the pattern was built "
                    f"for shape {tuple(expected.shape)}."
                )
            if _is_inexact(leaf.dtype) != _is_inexact(expected.dtype):
                raise TypeError(
                    f"{name}: {where} has dtype {leaf.dtype.name}, but the pattern was "
                    f"built for dtype {np.dtype(expected.dtype).name}; integer and "
                    "inexact inputs have different sparsity patterns."
                )
            check_input_dtype(name, leaf.dtype, holomorphic=holomorphic, allow_int=allow_int)
            leaves.append(leaf)
        treedefs.append((position, treedef, len(arg_leaves)))

    active = tuple(i for i, leaf in enumerate(leaves) if _is_inexact(leaf.dtype))
    frozen = tuple(leaves)

    def rebuild(active_leaves: Sequence[jax.Array]) -> tuple[Any, ...]:
        merged = list(frozen)
        for i, leaf in zip(active, active_leaves, strict=True):
            merged[i] = leaf
        full = list(args)
        start = 0
        for position, treedef, count in treedefs:
            full[position] = jax.tree_util.tree_unflatten(
                treedef, merged[start : start + count]
            )
            start += count
        return tuple(full)

    return SplitArgs(frozen, active, rebuild)


def check_outputs(out: Any, m: int, *, name: str, holomorphic: bool) -> tuple[list, Any]:
    """Check `f`'s output against the pattern's row count; return its leaves and treedef.

    Examples:
        >>> leaves, _ = check_outputs((jnp.ones(2), jnp.ones(())), 3, name="jacobian",
        ...                           holomorphic=False)
        >>> len(leaves)
        2
    """
    leaves, treedef = jax.tree_util.tree_flatten(out)
    for leaf in leaves:
        check_output_dtype(name, jnp.result_type(leaf), holomorphic=holomorphic)
    size = sum(int(np.size(leaf)) for leaf in leaves)
    if size != m:
        raise ValueError(
            f"{name}: f returned {size} output element(s), but the pattern has {m} rows; "
            "was the pattern detected for a different function or input shape?"
        )
    return leaves, treedef
