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
from asdex.decompression._args import check_outputs, split_args
from asdex.decompression._blocks import DEVICE_FORMATS, OutputFormat, assemble, block_layout
from asdex.decompression._compress import cast_seeds, compress, one_hot_seeds, ravel_leaves
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
        parts: The compressed matrices by pass: "jvp" holds `(colors, m)` (one JVP per
            column color), "vjp" holds `(colors, n)` (one VJP per row color). With a
            sharding the color axis is padded with zero rows.
        aux: `f`'s auxiliary output, or `None`.
        out_shapes: Shapes of the output leaves.
        in_dtypes: Dtypes of the differentiated input leaves.
    """

    value: Any
    parts: dict[str, jax.Array]
    aux: Any
    out_shapes: tuple[tuple[int, ...], ...]
    in_dtypes: tuple[Any, ...]


def jacobian_passes(coloring: ColoredPattern) -> dict[str, tuple[int, int]]:
    """The passes of a Jacobian coloring: kind ("jvp", "vjp") -> (first color, count).

    Examples:
        >>> from asdex import SparsityPattern
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> jacobian_passes(ColoredPattern(p, np.array([0, 0]), 1, False, "fwd"))
        {'jvp': (0, 1)}
    """
    if is_bidirectional(coloring):
        col_colors = np.asarray(coloring.colors)[coloring.sparsity.m :]
        num_col = int(col_colors.max(initial=-1)) + 1
        return {"jvp": (0, num_col), "vjp": (num_col, coloring.num_colors - num_col)}
    if coloring.mode == "fwd":
        return {"jvp": (0, coloring.num_colors)}
    return {"vjp": (0, coloring.num_colors)}


def check_jacobian_coloring(coloring: ColoredPattern, name: str) -> None:
    """Raise a `ValueError` unless the coloring is a Jacobian coloring."""
    if coloring.mode not in ("fwd", "rev"):
        raise ValueError(
            f"{name} needs a Jacobian coloring (mode 'fwd' or 'rev'), got mode "
            f"{coloring.mode!r}; use `jacobian_coloring_from_sparsity`."
        )


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

    In mode "fwd" the compressed matrix holds one JVP per column color, in mode "rev"
    one VJP per row color, and a bicoloring (method "bidirectional...") holds both, the
    VJPs transposed from the same linearization. `f` is linearized (or its VJP taken)
    once per call and the products are batched.

    Examples:
        >>> from asdex.coloring import jacobian_coloring_from_sparsity
        >>> from asdex import SparsityPattern
        >>> c = jacobian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(3)))
        >>> compress = jacobian_compressor(jnp.sin, c, has_aux=False, holomorphic=False,
        ...     allow_int=False, chunk_size=None, name="jacobian")
        >>> compress(jnp.zeros(3)).parts["jvp"].tolist()
        [[1.0, 1.0, 1.0]]
    """
    check_jacobian_coloring(coloring, name)
    pattern = coloring.sparsity
    m = pattern.m
    colors = np.asarray(coloring.colors)
    passes = jacobian_passes(coloring)
    if is_bidirectional(coloring):
        row_colors, col_colors = colors[:m], colors[m:]
    elif coloring.mode == "fwd":
        row_colors, col_colors = None, colors
    else:
        row_colors, col_colors = colors, None
    in_shapes = pattern.leaf_shapes
    in_sizes = pattern.leaf_sizes
    col_leaf_colors = split_by_sizes(col_colors, in_sizes) if col_colors is not None else []

    def compress_call(*args: Any, **kwargs: Any) -> CompressedJacobian:
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
        layout = None if sharding is None else sharding.following(primals)
        parts = {}
        for kind, (first, count) in passes.items():
            padded = count if layout is None else layout.padded(count)
            parts[kind] = compress(
                products[kind], seeds_of(kind, first, padded), chunk_size, padded, layout
            )
        return CompressedJacobian(
            out, parts, aux[0] if has_aux else None, out_shapes,
            tuple(leaf.dtype for leaf in split.leaves),
        )

    return compress_call


def stack_parts(parts: dict[str, jax.Array], passes: dict[str, tuple[int, int]]) -> jax.Array:
    """The compressed matrix the decompression plan reads, without sharding padding.

    One pass gives its own matrix; a bicoloring gives `block_diag(B_jvp, B_vjp)`, of
    shape `(k, m + n)`: JVP colors first, then VJP colors.

    Examples:
        >>> stack_parts({"jvp": jnp.ones((2, 3))}, {"jvp": (0, 1)}).shape
        (1, 3)
    """
    blocks = [replicated(parts[kind])[:count] for kind, (_, count) in passes.items()]
    return _block_diag(*blocks) if len(blocks) == 2 else blocks[0]


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
    sharding: ColorSharding | None = None,
) -> Callable[..., tuple[Any, Any, Any]]:
    """Build `evaluate(*args, **kwargs) -> (value, jacobian, aux)` for a Jacobian coloring.

    `schedule` is the coloring's `DecompressionSchedule`. The compressed evaluation
    (`jacobian_compressor`) and the decompression run as one compiled program
    (`filter_jit`); host output formats are built from its result.

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
    compress_call = jacobian_compressor(
        f, coloring, has_aux=has_aux, holomorphic=holomorphic, allow_int=allow_int,
        chunk_size=chunk_size, name=name, sharding=sharding,
    )
    passes = jacobian_passes(coloring)
    plan = GatherPlan.from_schedule(schedule)
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

    @filter_jit
    def device(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        result = compress_call(*args, **kwargs)
        values = plan(stack_parts(result.parts, passes))
        if on_device:
            out_tree = jax.tree_util.tree_structure(result.value)
            values = blocks_of(values, result.out_shapes, result.in_dtypes, out_tree)
        return result.value, values, result.aux, result.out_shapes, result.in_dtypes

    def evaluate(*args: Any, **kwargs: Any) -> tuple[Any, Any, Any]:
        value, jac, aux, out_shapes, in_dtypes = device(*args, **kwargs)
        if not on_device:
            jac = blocks_of(jac, out_shapes, in_dtypes, jax.tree_util.tree_structure(value))
        return value, jac, aux

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

