"""Sparse Hessians: one Hessian-vector product per color, then decompression."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from asdex._pattern import ColoredPattern
from asdex._plan import SeedPass
from asdex.decompression._args import check_output_dtype, split_args
from asdex.decompression._blocks import DEVICE_FORMATS, OutputFormat, assemble, block_layout
from asdex.decompression._compress import cast_seeds, compress, one_hot_seeds, ravel_leaves
from asdex.decompression._exchange import SplitDecompression
from asdex.decompression._gather import GatherPlan
from asdex.decompression._jacobian import split_by_sizes
from asdex.decompression._jit import filter_jit
from asdex.decompression._sharding import ColorSharding, on_inputs_mesh, replicated

HVP_MODES = ("fwd_over_rev", "rev_over_fwd", "rev_over_rev")


def check_hessian_coloring(coloring: ColoredPattern, name: str) -> SeedPass:
    """The one seed pass of a Hessian coloring; a `ValueError` for any other coloring.

    Examples:
        >>> from asdex.coloring import hessian_coloring_from_sparsity
        >>> from asdex import SparsityPattern
        >>> c = hessian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(2)))
        >>> check_hessian_coloring(c, "hessian").kind
        'hvp'
    """
    passes = coloring.require_plan(name).passes
    if coloring.mode not in HVP_MODES or [p.kind for p in passes] != ["hvp"]:
        raise ValueError(
            f"{name} needs a Hessian coloring (mode one of {HVP_MODES}), got mode "
            f"{coloring.mode!r}; use `hessian_coloring_from_sparsity`."
        )
    if coloring.sparsity.m != coloring.sparsity.n:
        raise ValueError(f"{name} needs a square pattern, got shape {coloring.sparsity.shape}.")
    return passes[0]


def hessian_compressor(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    *,
    has_aux: bool,
    holomorphic: bool,
    allow_int: bool,
    chunk_size: int | None,
    name: str,
    sharding: ColorSharding | None = None,
) -> Callable[..., tuple[Any, jax.Array, Any, tuple[Any, ...]]]:
    """Build `compress(*args, **kwargs) -> (value, B, aux, in_dtypes)` for a Hessian coloring.

    `B` has shape `(num_colors, n)`, one Hessian-vector product per color (padded with
    zero rows to a multiple of the shards with a `sharding`). The coloring's mode picks
    the product: "fwd_over_rev" linearizes the gradient once and batches its JVPs;
    "rev_over_rev" takes the gradient's VJP once; "rev_over_fwd" differentiates a
    batched directional derivative. The primal value comes out of the same passes.

    Examples:
        >>> from asdex.coloring import hessian_coloring_from_sparsity
        >>> from asdex import SparsityPattern
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> from asdex.decompression import hessian_compressor
        >>> c = hessian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(2)))
        >>> compress = hessian_compressor(lambda x: (x**3).sum(), c, has_aux=False,
        ...     holomorphic=False, allow_int=False, chunk_size=None, name="hessian")
        >>> compress(jnp.ones(2))[1].tolist()
        [[6.0, 6.0]]
    """
    seed_pass = check_hessian_coloring(coloring, name)
    pattern = coloring.sparsity
    mode = coloring.mode
    shapes = pattern.leaf_shapes
    sizes = pattern.leaf_sizes
    colors = split_by_sizes(seed_pass.colors, sizes)
    num_colors = seed_pass.count
    count = num_colors if sharding is None else sharding.padded(num_colors)

    def compress_call(*args: Any, **kwargs: Any) -> tuple[Any, jax.Array, Any, tuple]:
        split = split_args(
            pattern, args, name=name, holomorphic=holomorphic, allow_int=allow_int
        )
        primals = split.active_leaves
        if not holomorphic:
            _check_real_inputs(primals, name)
        layout = None if sharding is None else sharding.following(primals)
        argnums = tuple(range(len(primals)))

        def scalar(*active: jax.Array) -> tuple[jax.Array, tuple[Any, Any]]:
            out = f(*split.rebuild(active), **kwargs)
            value, aux = out if has_aux else (out, None)
            return _squeeze(value, name, holomorphic), (value, aux)

        def gradient(*active: jax.Array) -> tuple[Any, tuple[Any, Any]]:
            return jax.grad(scalar, argnums, has_aux=True, holomorphic=holomorphic)(*active)

        def cast(seeds: list[jax.Array]) -> tuple[jax.Array, ...]:
            return tuple(cast_seeds(seeds, [leaf.dtype for leaf in primals]))

        def flat(products: Sequence[jax.Array]) -> jax.Array:
            full: list[jax.Array | None] = [None] * len(split.leaves)
            for i, product in zip(split.active, products, strict=True):
                full[i] = product
            return ravel_leaves(full, sizes)

        seeds = one_hot_seeds([colors[i] for i in split.active],
                              [shapes[i] for i in split.active], 0, count)
        if not primals or num_colors == 0:
            _, (value, aux) = scalar(*primals)
            compressed = jnp.zeros((count, pattern.n), _values_dtype(primals))
        elif mode == "fwd_over_rev":
            _, linear, (value, aux) = jax.linearize(gradient, *primals, has_aux=True)
            compressed = compress(lambda s: flat(linear(*cast(s))), seeds, chunk_size, count,
                                  layout)
        elif mode == "rev_over_rev":
            _, pullback, (value, aux) = jax.vjp(gradient, *primals, has_aux=True)
            if layout is None:
                seeds = on_inputs_mesh(seeds, primals)
            compressed = compress(lambda s: flat(pullback(cast(s))), seeds, chunk_size, count,
                                  layout)
        else:

            def hvp(seed: list[jax.Array]) -> tuple[jax.Array, tuple[Any, Any]]:
                def directional(*active: jax.Array) -> tuple[jax.Array, tuple[Any, Any]]:
                    _, tangent, extra = jax.jvp(scalar, active, cast(seed), has_aux=True)
                    return tangent, extra

                grads, extra = jax.grad(
                    directional, argnums, has_aux=True, holomorphic=holomorphic
                )(*primals)
                return flat(grads), extra

            if layout is not None:
                seeds = layout.constrain(seeds)
            compressed, (value, aux) = _compress_with_extra(hvp, seeds, count, chunk_size)
            if layout is not None:
                compressed = layout.constrain(compressed, rest=True)
        return value, compressed, aux, tuple(leaf.dtype for leaf in split.leaves)

    return compress_call


def sparse_hessian(
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
    """Build `evaluate(*args, **kwargs) -> (value, hessian, aux)` for a Hessian coloring.

    The compressed evaluation (`hessian_compressor`) and the decompression (direct, or
    by substitution for acyclic colorings) run as one compiled program (`filter_jit`);
    host output formats are built from its result.

    Examples:
        >>> from asdex.coloring import hessian_coloring_from_sparsity
        >>> from asdex import SparsityPattern
        >>> import jax.numpy as jnp
        >>> import numpy as np
        >>> from asdex.decompression import sparse_hessian
        >>> c = hessian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(2)))
        >>> evaluate = sparse_hessian(lambda x: (x**3).sum(), c,
        ...     output_format="dense", has_aux=False, holomorphic=False,
        ...     allow_int=False, chunk_size=None, name="hessian")
        >>> evaluate(jnp.ones(2))[1].tolist()
        [[6.0, 0.0], [0.0, 6.0]]
    """
    pattern = coloring.sparsity
    compress_call = hessian_compressor(
        f, coloring, has_aux=has_aux, holomorphic=holomorphic, allow_int=allow_int,
        chunk_size=chunk_size, name=name, sharding=sharding,
    )
    plan = GatherPlan.from_schedule(coloring.require_plan(name).schedule)
    split_plan = SplitDecompression(plan, [coloring.num_colors])
    shapes = pattern.leaf_shapes
    in_tree = jax.tree_util.tree_structure(pattern.example_input)
    layout = block_layout(pattern, shapes, shapes)
    num_colors = coloring.num_colors
    on_device = output_format in DEVICE_FORMATS

    def blocks_of(values: Any, in_dtypes: tuple[Any, ...]) -> Any:
        dtypes = [[dtype] * len(in_dtypes) for dtype in in_dtypes]
        blocks = assemble(values, layout, dtypes, output_format)
        return jax.tree_util.tree_unflatten(
            in_tree, [jax.tree_util.tree_unflatten(in_tree, row) for row in blocks]
        )

    part_shapes = None if sharding is None else [
        (sharding.padded(num_colors), pattern.n)
    ]

    @filter_jit
    def device(tables: Any, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        value, compressed, aux, in_dtypes = compress_call(*args, **kwargs)
        layout = None if sharding is None else sharding.following([compressed], inputs=False)
        if split_plan.applies(layout):
            values = split_plan([compressed], layout, tables)
        else:
            values = plan(replicated(compressed)[:num_colors])
        if on_device:
            values = blocks_of(values, in_dtypes)
        if layout is not None:
            values = layout.spread(values)
        return value, values, aux, in_dtypes

    def evaluate(*args: Any, **kwargs: Any) -> tuple[Any, Any, Any]:
        tables = (split_plan.tables(part_shapes, sharding) if split_plan.applies(sharding)
                  else None)
        value, hess, aux, in_dtypes = device(tables, *args, **kwargs)
        if not on_device:
            hess = blocks_of(hess, in_dtypes)
        return value, hess, aux

    return evaluate


def _compress_with_extra(
    product: Callable[[Any], tuple[jax.Array, Any]],
    seeds: Any,
    num_colors: int,
    chunk_size: int | None,
) -> tuple[jax.Array, Any]:
    """Like `compress`, for products that also return seed-independent extras."""
    if chunk_size is None or chunk_size >= num_colors:
        return jax.vmap(product, out_axes=(0, None))(seeds)
    stacked, extra = jax.lax.map(product, seeds, batch_size=chunk_size)
    return stacked, jax.tree_util.tree_map(lambda leaf: leaf[0], extra)


def _squeeze(value: Any, name: str, holomorphic: bool) -> jax.Array:
    """Turn `f`'s output into a scalar, accepting squeezable shapes like `(1,)`."""
    leaves = jax.tree_util.tree_leaves(value)
    if len(leaves) != 1 or np.size(leaves[0]) != 1:
        shapes = [np.shape(leaf) for leaf in leaves]
        raise ValueError(
            f"{name} requires f to return a scalar (or an array of size 1, such as shape "
            f"(1,)), but got output leaf shapes {shapes}."
        )
    check_output_dtype(name, jnp.result_type(leaves[0]), holomorphic=holomorphic)
    return jnp.reshape(leaves[0], ())


def _check_real_inputs(primals: Sequence[jax.Array], name: str) -> None:
    for leaf in primals:
        if jnp.issubdtype(leaf.dtype, jnp.complexfloating):
            raise TypeError(
                f"{name} requires real-valued inputs, but got {leaf.dtype.name}. "
                "Pass holomorphic=True if f is holomorphic."
            )


def _values_dtype(primals: Sequence[jax.Array]) -> Any:
    return jnp.result_type(*primals) if primals else jnp.float32
