"""Sparse Jacobians: one JVP per column color or one VJP per row color, then decompression."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asdex._pattern import ColoredPattern
from asdex.decompression._args import check_outputs, split_args
from asdex.decompression._blocks import OutputFormat, assemble, block_layout
from asdex.decompression._compress import compress, ravel_leaves, seed_leaves
from asdex.decompression._gather import GatherPlan


def split_by_sizes(array: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Cut a flat array into consecutive pieces of the given sizes.

    Example:
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
    matrix holds one JVP per column color, in mode "rev" one VJP per row color; `f` is
    linearized (or its VJP taken) once per call and the products are batched.

    Example:
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
    forward = coloring.mode == "fwd"
    plan = GatherPlan.from_schedule(schedule)
    in_shapes = pattern.leaf_shapes
    in_sizes = pattern.leaf_sizes
    in_tree = jax.tree_util.tree_structure(pattern.example_input)
    col_colors = split_by_sizes(coloring.colors, in_sizes) if forward else []
    layouts: dict[tuple[tuple[int, ...], ...], Any] = {}

    def evaluate(*args: Any, **kwargs: Any) -> tuple[Any, Any, Any]:
        split = split_args(
            pattern, args, name=name, holomorphic=holomorphic, allow_int=allow_int
        )
        primals = split.active_leaves

        def fun(*active: jax.Array) -> Any:
            return f(*split.rebuild(active), **kwargs)

        if forward:
            _check_real_inputs(primals, holomorphic, name)
            out, linear, *aux = jax.linearize(fun, *primals, has_aux=has_aux)
            out_leaves, out_tree = check_outputs(
                out, pattern.m, name=name, holomorphic=holomorphic
            )
            out_sizes = [int(np.size(leaf)) for leaf in out_leaves]

            def product(color: jax.Array) -> jax.Array:
                tangents = seed_leaves(
                    [col_colors[i] for i in split.active],
                    [in_shapes[i] for i in split.active],
                    [leaf.dtype for leaf in primals],
                    color,
                )
                return ravel_leaves(jax.tree_util.tree_leaves(linear(*tangents)), out_sizes)

        else:
            out, pullback, *aux = jax.vjp(fun, *primals, has_aux=has_aux)
            out_leaves, out_tree = check_outputs(
                out, pattern.m, name=name, holomorphic=holomorphic
            )
            out_sizes = [int(np.size(leaf)) for leaf in out_leaves]
            row_colors = split_by_sizes(coloring.colors, out_sizes)

            def product(color: jax.Array) -> jax.Array:
                seeds = seed_leaves(
                    row_colors,
                    [np.shape(leaf) for leaf in out_leaves],
                    [jnp.result_type(leaf) for leaf in out_leaves],
                    color,
                )
                cotangents = pullback(jax.tree_util.tree_unflatten(out_tree, seeds))
                full: list[jax.Array | None] = [None] * len(split.leaves)
                for i, cotangent in zip(split.active, cotangents, strict=True):
                    full[i] = cotangent
                return ravel_leaves(full, in_sizes)

        values = plan(compress(product, coloring.num_colors, chunk_size))
        out_shapes = tuple(tuple(np.shape(leaf)) for leaf in out_leaves)
        if out_shapes not in layouts:
            layouts[out_shapes] = block_layout(pattern, out_shapes, in_shapes)
        in_dtypes = [leaf.dtype for leaf in split.leaves]
        blocks = assemble(
            values, layouts[out_shapes], [in_dtypes] * len(out_shapes), output_format
        )
        jac = jax.tree_util.tree_unflatten(
            out_tree, [jax.tree_util.tree_unflatten(in_tree, row) for row in blocks]
        )
        return out, jac, (aux[0] if has_aux else None)

    return evaluate


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

