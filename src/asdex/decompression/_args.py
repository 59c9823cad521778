"""Call-time arguments: check them against the pattern and split off what is differentiated."""

from __future__ import annotations

import dataclasses
import enum
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


def _dtype_kind(dtype: Any) -> str:
    """The dtype's family: a sparsity pattern may differ between families, not within."""
    for kind, label in ((jnp.bool_, "boolean"), (jnp.integer, "integer"),
                        (jnp.floating, "floating"), (jnp.complexfloating, "complex")):
        if jnp.issubdtype(dtype, kind):
            return label
    return np.dtype(dtype).name


def _where(position: int, k: int, count: int) -> str:
    return f"positional argument {position}" + (f" (leaf {k})" if count > 1 else "")


def check_args(pattern: SparsityPattern, args: tuple[Any, ...], *, name: str) -> None:
    """Check every positional argument against what detection saw, differentiated or not.

    The pattern records one pytree of avals per positional argument (`input_avals`).
    Each recorded argument must have the same pytree structure, every array leaf the
    same shape and dtype family (boolean, integer, floating, complex; the precision may
    differ), and every string or enum leaf the same value: any of them may change the
    pattern. Positions recorded as `None` (patterns built by hand) and positions beyond
    the recorded ones are not checked.

    Examples:
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> try:
        ...     check_args(p, (jnp.ones(3),), name="jacobian")
        ... except ValueError as error:
        ...     print(str(error)[:50])
        jacobian: positional argument 0 has shape (3,), bu
    """
    avals = pattern.input_avals
    if len(args) < len(avals):
        raise TypeError(
            f"{name}: the sparsity was detected for {len(avals)} positional argument(s), "
            f"but only {len(args)} were given."
        )
    differentiated = set(pattern.argnums_tuple)
    for position, (arg, aval) in enumerate(zip(args, avals, strict=False)):
        if aval is None:
            continue
        arg_leaves, treedef = jax.tree_util.tree_flatten(arg)
        aval_leaves, aval_treedef = jax.tree_util.tree_flatten(aval)
        if treedef != aval_treedef:
            raise ValueError(
                f"{name}: positional argument {position} has structure {treedef}, but the "
                f"sparsity was detected for structure {aval_treedef}. Detect again (call "
                "asdex.jacobian/hessian or *_coloring) with arguments of the new structure."
            )
        for k, (leaf, expected) in enumerate(zip(arg_leaves, aval_leaves, strict=True)):
            where = _where(position, k, len(aval_leaves))
            if isinstance(expected, jax.ShapeDtypeStruct):
                shape = tuple(np.shape(leaf))
                if shape != tuple(expected.shape):
                    raise ValueError(
                        f"{name}: {where} has shape {shape}, but the sparsity was detected "
                        f"for shape {tuple(expected.shape)}. The pattern may depend on it: "
                        "detect again (call asdex.jacobian/hessian or *_coloring) with "
                        "arguments of the new shape."
                    )
                kind = _dtype_kind(jnp.result_type(leaf))
                expected_kind = _dtype_kind(expected.dtype)
                if kind != expected_kind:
                    inexact = "; integer and inexact inputs have different sparsity patterns"
                    raise TypeError(
                        f"{name}: {where} has dtype {jnp.result_type(leaf).name} ({kind}), "
                        f"but the sparsity was detected for dtype "
                        f"{np.dtype(expected.dtype).name} ({expected_kind})"
                        f"{inexact if position in differentiated else ''}. Detect again "
                        "with arguments of the new dtype."
                    )
            elif isinstance(expected, str | bytes | enum.Enum) and not (
                type(leaf) is type(expected) and leaf == expected
            ):
                raise ValueError(
                    f"{name}: {where} is {leaf!r}, but the sparsity was detected with "
                    f"{expected!r}. Detect again with the new value."
                )


def split_args(
    pattern: SparsityPattern,
    args: tuple[Any, ...],
    *,
    name: str,
    holomorphic: bool,
    allow_int: bool,
) -> SplitArgs:
    """Check `args` against what the pattern was detected for, then split them.

    Every argument is checked by `check_args` (a `ValueError` naming the argument and
    leaf on a structure or shape mismatch); a dtype that cannot be differentiated raises
    a `TypeError`, as in `jax.jacrev`.

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
    check_args(pattern, args, name=name)
    leaves: list[jax.Array] = []
    treedefs = []
    for position in argnums:
        arg_leaves, treedef = jax.tree_util.tree_flatten(args[position])
        for leaf in arg_leaves:
            leaf = jnp.asarray(leaf)
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
