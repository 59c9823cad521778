"""Sparse Jacobians: one JVP per column color or one VJP per row color, then decompression."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asdex._pattern import ColoredPattern
from asdex._plan import SeedPass
from asdex.decompression._args import check_outputs, split_args
from asdex.decompression._blocks import DEVICE_FORMATS, OutputFormat, assemble, block_layout
from asdex.decompression._compress import cast_seeds, compress, one_hot_seeds, ravel_leaves
from asdex.decompression._exchange import SplitDecompression
from asdex.decompression._gather import GatherPlan
from asdex.decompression._jit import filter_jit
from asdex.decompression._sharding import ColorSharding, replicated


def split_by_sizes(array: np.ndarray, sizes: Sequence[int]) -> list[np.ndarray]:
    """Cut a flat array into consecutive pieces of the given sizes.

    Examples:
        >>> [p.tolist() for p in split_by_sizes(np.arange(5), [2, 3])]
        [[0, 1], [2, 3, 4]]
    """
    return np.split(np.asarray(array), np.cumsum(sizes)[:-1]) if sizes else []


@dataclasses.dataclass(frozen=True)
class CompressedJacobian:
    """What one compressed evaluation of a Jacobian coloring returns.

    Attributes:
        value: `f`'s output.
        parts: The compressed matrix of each seed pass of the coloring's plan, in pass
            order: `(count, m)` for JVPs, `(count, n)` for VJPs. With a sharding the
            color axis is padded with zero rows.
        aux: `f`'s auxiliary output, or `None`.
        out_shapes: Shapes of the output leaves.
        in_dtypes: Dtypes of the differentiated input leaves.
    """

    value: Any
    parts: tuple[jax.Array, ...]
    aux: Any
    out_shapes: tuple[tuple[int, ...], ...]
    in_dtypes: tuple[Any, ...]


def check_jacobian_coloring(coloring: ColoredPattern, name: str) -> tuple[SeedPass, ...]:
    """The seed passes of a Jacobian coloring; a `ValueError` for any other coloring.

    Examples:
        >>> from asdex.coloring import jacobian_coloring_from_sparsity
        >>> from asdex import SparsityPattern
        >>> c = jacobian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(2)))
        >>> [p.kind for p in check_jacobian_coloring(c, "jacobian")]
        ['jvp']
    """
    passes = coloring.require_plan(name).passes
    if any(p.kind == "hvp" for p in passes):
        raise ValueError(
            f"{name} needs a Jacobian coloring (mode 'fwd' or 'rev'), got mode "
            f"{coloring.mode!r}; use `jacobian_coloring_from_sparsity`."
        )
    return passes


def jacobian_compressor(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    *,
    has_aux: bool,
    holomorphic: bool,
    allow_int: bool,
    chunk_size: int | None,
    name: str,
    sharding: ColorSharding | None = None,
) -> Callable[..., CompressedJacobian]:
    """Build `compress(*args, **kwargs) -> CompressedJacobian` for a Jacobian coloring.

    Each seed pass of the coloring's plan gives one compressed matrix: one JVP per
    column color, or one VJP per row color. A bicoloring has one pass of each, its VJPs
    transposed from the same linearization. `f` is linearized (or its VJP taken)
    once per call and the products are batched.

    Examples:
        >>> from asdex.coloring import jacobian_coloring_from_sparsity
        >>> from asdex import SparsityPattern
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> from asdex.decompression import jacobian_compressor
        >>> c = jacobian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(3)))
        >>> compress = jacobian_compressor(jnp.sin, c, has_aux=False, holomorphic=False,
        ...     allow_int=False, chunk_size=None, name="jacobian")
        >>> compress(jnp.zeros(3)).parts[0].tolist()
        [[1.0, 1.0, 1.0]]
    """
    passes = check_jacobian_coloring(coloring, name)
    pattern = coloring.sparsity
    m = pattern.m
    in_shapes = pattern.leaf_shapes
    in_sizes = pattern.leaf_sizes
    kinds = {p.kind for p in passes}

    def compress_call(*args: Any, **kwargs: Any) -> CompressedJacobian:
        split = split_args(
            pattern, args, name=name, holomorphic=holomorphic, allow_int=allow_int
        )
        primals = split.active_leaves
        layout = None if sharding is None else sharding.following(primals)

        def fun(*active: jax.Array) -> Any:
            return f(*split.rebuild(active), **kwargs)

        if "jvp" in kinds:
            _check_real_inputs(primals, holomorphic, name)
            out, linear, *aux = jax.linearize(fun, *primals, has_aux=has_aux)
            if "vjp" in kinds:
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

        def seeds_of(seed_pass: SeedPass, count: int) -> list[Any]:
            if seed_pass.kind == "jvp":
                leaf_colors = split_by_sizes(seed_pass.colors, in_sizes)
                return one_hot_seeds([leaf_colors[i] for i in split.active],
                                     [in_shapes[i] for i in split.active], 0, count)
            return one_hot_seeds(split_by_sizes(seed_pass.colors, out_sizes), out_shapes, 0,
                                 count)

        products = {"jvp": jvp_product, "vjp": vjp_product}
        parts = []
        for seed_pass in passes:
            count = seed_pass.count if layout is None else layout.padded(seed_pass.count)
            parts.append(compress(products[seed_pass.kind], seeds_of(seed_pass, count),
                                  chunk_size, count, layout))
        return CompressedJacobian(
            out, tuple(parts), aux[0] if has_aux else None, out_shapes,
            tuple(leaf.dtype for leaf in split.leaves),
        )

    return compress_call


def stack_parts(parts: Sequence[jax.Array], passes: Sequence[SeedPass]) -> jax.Array:
    """The compressed matrix the schedule reads, without sharding padding.

    One pass gives its own matrix; several give their block diagonal, in pass order
    (a bicoloring: `block_diag(B_jvp, B_vjp)`, of shape `(k, m + n)`).

    Examples:
        >>> stack_parts([jnp.ones((2, 3))], [SeedPass("jvp", np.zeros(3), 1)]).shape
        (1, 3)
    """
    blocks = [replicated(part)[: p.count] for part, p in zip(parts, passes, strict=True)]
    return blocks[0] if len(blocks) == 1 else _block_diag(blocks)


def sparse_jacobian(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    *,
    output_format: OutputFormat,
    has_aux: bool,
    holomorphic: bool,
    allow_int: bool,
    chunk_size: int | None,
    name: str,
    sharding: ColorSharding | None = None,
) -> Callable[..., tuple[Any, Any, Any]]:
    """Build `evaluate(*args, **kwargs) -> (value, jacobian, aux)` for a Jacobian coloring.

    The compressed evaluation (`jacobian_compressor`) and the decompression by the
    coloring's schedule run as one compiled program (`filter_jit`); host output formats
    are built from its result.

    Examples:
        >>> from asdex.coloring import jacobian_coloring_from_sparsity
        >>> from asdex import SparsityPattern
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> from asdex.decompression import sparse_jacobian
        >>> c = jacobian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(3)))
        >>> evaluate = sparse_jacobian(jnp.sin, c, output_format="dense",
        ...     has_aux=False, holomorphic=False, allow_int=False, chunk_size=None,
        ...     name="jacobian")
        >>> evaluate(jnp.zeros(3))[1].tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    pattern = coloring.sparsity
    compress_call = jacobian_compressor(
        f, coloring, has_aux=has_aux, holomorphic=holomorphic, allow_int=allow_int,
        chunk_size=chunk_size, name=name, sharding=sharding,
    )
    passes = coloring.require_plan(name).passes
    plan = GatherPlan.from_schedule(coloring.plan.schedule)
    split_plan = SplitDecompression(plan, [p.count for p in passes])
    in_tree = jax.tree_util.tree_structure(pattern.example_input)
    layouts: dict[tuple[tuple[int, ...], ...], Any] = {}
    on_device = output_format in DEVICE_FORMATS

    def blocks_of(values: Any, out_shapes: Any, in_dtypes: Any, out_tree: Any) -> Any:
        if out_shapes not in layouts:
            layouts[out_shapes] = block_layout(pattern, out_shapes, pattern.leaf_shapes)
        jac_blocks = assemble(
            values, layouts[out_shapes], [list(in_dtypes)] * len(out_shapes), output_format
        )
        return jax.tree_util.tree_unflatten(
            out_tree, [jax.tree_util.tree_unflatten(in_tree, row) for row in jac_blocks]
        )

    m, n = pattern.shape
    part_shapes = None if sharding is None else [
        (sharding.padded(p.count), m if p.kind == "jvp" else n) for p in passes
    ]

    @filter_jit
    def device(tables: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        result = compress_call(*args, **kwargs)
        layout = None if sharding is None else sharding.following(result.parts, inputs=False)
        if split_plan.applies(layout):
            values = split_plan(result.parts, layout, tables)
        else:
            values = plan(stack_parts(result.parts, passes))
        if on_device:
            out_tree = jax.tree_util.tree_structure(result.value)
            values = blocks_of(values, result.out_shapes, result.in_dtypes, out_tree)
        if layout is not None:
            values = layout.spread(values)
        return result.value, values, result.aux, result.out_shapes, result.in_dtypes

    def evaluate(*args: Any, **kwargs: Any) -> tuple[Any, Any, Any]:
        tables = (split_plan.tables(part_shapes, sharding) if split_plan.applies(sharding)
                  else None)
        value, jac, aux, out_shapes, in_dtypes = device(tables, *args, **kwargs)
        if not on_device:
            jac = blocks_of(jac, out_shapes, in_dtypes, jax.tree_util.tree_structure(value))
        return value, jac, aux

    return evaluate


def _block_diag(blocks: Sequence[jax.Array]) -> jax.Array:
    dtype = jnp.result_type(*blocks)
    width = sum(block.shape[1] for block in blocks)
    rows, start = [], 0
    for block in blocks:
        end = start + block.shape[1]
        rows.append(jnp.pad(block.astype(dtype), ((0, 0), (start, width - end))))
        start = end
    return jnp.concatenate(rows, axis=0)


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

