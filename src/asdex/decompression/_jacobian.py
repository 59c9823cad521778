"""Sparse Jacobians: one JVP per column color or one VJP per row color, then decompression."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asdex._pattern import ColoredPattern
from asdex.decompression._args import check_outputs, split_args
from asdex.decompression._blocks import OutputFormat, assemble, block_layout
from asdex.decompression._compress import cast_seeds, compress, one_hot_seeds, ravel_leaves
from asdex.decompression._gather import GatherPlan


def split_by_sizes(array: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Cut a flat array into consecutive pieces of the given sizes.

    Examples:
        >>> [p.tolist() for p in split_by_sizes(np.arange(5), [2, 3])]
        [[0, 1], [2, 3, 4]]
    """
    return np.split(np.asarray(array), np.cumsum(sizes)[:-1]) if sizes else []


def sparse_jacobian(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    schedule: Any,
    *,
    output_format: OutputFormat,
    has_aux: bool,
    holomorphic: bool,
    allow_int: bool,
    chunk_size: int | None,
    name: str,
) -> Callable[..., tuple[Any, Any, Any]]:
    """Build `evaluate(*args, **kwargs) -> (value, jacobian, aux)` for a Jacobian coloring.

    `schedule` is the coloring's `DecompressionSchedule`. In mode "fwd" the compressed
    matrix holds one JVP per column color, in mode "rev" one VJP per row color, and a
    bicoloring (method "bidirectional...") holds both, the VJPs transposed from the same
    linearization. `f` is linearized (or its VJP taken) once per call and the products
    are batched.

    Examples:
        >>> from asdex.coloring import jacobian_coloring_from_sparsity
        >>> from asdex.coloring._schedule import schedule
        >>> from asdex import SparsityPattern
        >>> c = jacobian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(3)))
        >>> evaluate = sparse_jacobian(jnp.sin, c, schedule(c), output_format="dense",
        ...     has_aux=False, holomorphic=False, allow_int=False, chunk_size=None,
        ...     name="jacobian")
        >>> evaluate(jnp.zeros(3))[1].tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    pattern = coloring.sparsity
    if coloring.mode not in ("fwd", "rev"):
        raise ValueError(
            f"{name} needs a Jacobian coloring (mode 'fwd' or 'rev'), got mode "
            f"{coloring.mode!r}; use `jacobian_coloring_from_sparsity`."
        )
    m = pattern.m
    colors = np.asarray(coloring.colors)
    if is_bidirectional(coloring):
        row_colors, col_colors = colors[:m], colors[m:]
        num_col = int(col_colors.max(initial=-1)) + 1
        passes = {"jvp": (0, num_col), "vjp": (num_col, coloring.num_colors - num_col)}
    elif coloring.mode == "fwd":
        row_colors, col_colors = None, colors
        passes = {"jvp": (0, coloring.num_colors)}
    else:
        row_colors, col_colors = colors, None
        passes = {"vjp": (0, coloring.num_colors)}
    plan = GatherPlan.from_schedule(schedule)
    in_shapes = pattern.leaf_shapes
    in_sizes = pattern.leaf_sizes
    in_tree = jax.tree_util.tree_structure(pattern.example_input)
    col_leaf_colors = split_by_sizes(col_colors, in_sizes) if col_colors is not None else []
    layouts: dict[tuple[tuple[int, ...], ...], Any] = {}

    def evaluate(*args: Any, **kwargs: Any) -> tuple[Any, Any, Any]:
        split = split_args(
            pattern, args, name=name, holomorphic=holomorphic, allow_int=allow_int
        )
        primals = split.active_leaves

        def fun(*active: jax.Array) -> Any:
            return f(*split.rebuild(active), **kwargs)

        if "jvp" in passes:
            _check_real_inputs(primals, holomorphic, name)
            out, linear, *aux = jax.linearize(fun, *primals, has_aux=has_aux)
            if "vjp" in passes:
                pullback = jax.linear_transpose(linear, *primals)
        else:
            out, pullback, *aux = jax.vjp(fun, *primals, has_aux=has_aux)
        out_leaves, out_tree = check_outputs(out, m, name=name, holomorphic=holomorphic)
        out_shapes = tuple(tuple(np.shape(leaf)) for leaf in out_leaves)
        out_sizes = [math.prod(shape) for shape in out_shapes]

        def jvp_product(seeds: list[jax.Array]) -> jax.Array:
            tangents = cast_seeds(seeds, [leaf.dtype for leaf in primals])
            return ravel_leaves(jax.tree_util.tree_leaves(linear(*tangents)), out_sizes)

        def vjp_product(seeds: list[jax.Array]) -> jax.Array:
            seeds = cast_seeds(seeds, [jnp.result_type(leaf) for leaf in out_leaves])
            cotangents = pullback(jax.tree_util.tree_unflatten(out_tree, seeds))
            full: list[jax.Array | None] = [None] * len(split.leaves)
            for i, cotangent in zip(split.active, cotangents, strict=True):
                full[i] = cotangent
            return ravel_leaves(full, in_sizes)

        def seeds_of(kind: str, first: int, count: int) -> list[Any]:
            if kind == "jvp":
                active = split.active
                return one_hot_seeds([col_leaf_colors[i] for i in active],
                                     [in_shapes[i] for i in active], first, count)
            return one_hot_seeds(split_by_sizes(row_colors, out_sizes), out_shapes, first, count)

        products = {"jvp": jvp_product, "vjp": vjp_product}
        blocks = [
            compress(products[kind], seeds_of(kind, first, count), chunk_size, count)
            for kind, (first, count) in passes.items()
        ]
        compressed = _block_diag(*blocks) if len(blocks) == 2 else blocks[0]
        values = plan(compressed)
        if out_shapes not in layouts:
            layouts[out_shapes] = block_layout(pattern, out_shapes, in_shapes)
        in_dtypes = [leaf.dtype for leaf in split.leaves]
        jac_blocks = assemble(
            values, layouts[out_shapes], [in_dtypes] * len(out_shapes), output_format
        )
        jac = jax.tree_util.tree_unflatten(
            out_tree, [jax.tree_util.tree_unflatten(in_tree, row) for row in jac_blocks]
        )
        return out, jac, (aux[0] if has_aux else None)

    return evaluate


def is_bidirectional(coloring: ColoredPattern) -> bool:
    """Whether the coloring colors rows and columns (a bicoloring, colors `(m + n,)`).

    Examples:
        >>> from asdex import SparsityPattern
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> is_bidirectional(ColoredPattern(p, np.array([0, 0]), 1, False, "fwd"))
        False
    """
    return str(coloring.method or "").startswith("bidirectional")


def _block_diag(jvps: jax.Array, vjps: jax.Array) -> jax.Array:
    """Compressed matrix of a bicoloring, `(k, m + n)`: JVP colors first, then VJP colors."""
    dtype = jnp.result_type(jvps, vjps)
    top = jnp.zeros((jvps.shape[0], vjps.shape[1]), dtype)
    bottom = jnp.zeros((vjps.shape[0], jvps.shape[1]), dtype)
    return jnp.concatenate(
        [jnp.concatenate([jvps.astype(dtype), top], axis=1),
         jnp.concatenate([bottom, vjps.astype(dtype)], axis=1)],
        axis=0,
    )


def _check_real_inputs(primals: Sequence[jax.Array], holomorphic: bool, name: str) -> None:
    if holomorphic:
        return
    for leaf in primals:
        if jnp.issubdtype(leaf.dtype, jnp.complexfloating):
            raise TypeError(
                f"{name} in mode 'fwd' requires real-valued inputs, but got "
                f"{leaf.dtype.name}. Pass holomorphic=True if f is holomorphic, or use a "
                "row coloring (mode='rev') to differentiate a non-holomorphic function "
                "of complex inputs."
            )

