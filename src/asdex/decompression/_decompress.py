"""Public decompression: from a compressed matrix `B` to the sparse matrix or its values."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from asdex._pattern import ColoredPattern, _coloring_key, _static
from asdex._plan import SeedPass
from asdex.decompression._blocks import (
    DEVICE_FORMATS,
    OUTPUT_FORMATS,
    OutputFormat,
    assemble,
    block_layout,
)
from asdex.decompression._exchange import SplitDecompression
from asdex.decompression._gather import GatherPlan
from asdex.decompression._jacobian import stack_parts
from asdex.decompression._sharding import ColorSharding, ShardingLike, color_layout


@functools.lru_cache(maxsize=32)
def _split_plan(key: Any) -> SplitDecompression:
    plan = key.value.plan
    return SplitDecompression(GatherPlan.from_schedule(plan.schedule),
                              [p.count for p in plan.passes])


def _check_part(part: Any, rows: int, dim: int, what: str) -> jax.Array:
    part = jnp.asarray(part)
    if part.ndim != 2 or part.shape[0] < rows or part.shape[1] != dim:
        raise ValueError(
            f"decompress: {what} must have shape (num_colors, {dim}) = ({rows}, {dim}) "
            f"(more rows are allowed: the zero padding of a sharded evaluation), but got "
            f"shape {part.shape}."
        )
    return part


def _parts(compressed: Any, coloring: ColoredPattern) -> tuple[list[jax.Array], Any]:
    """The compressed matrices of the passes, checked against the coloring, and the passes."""
    if not isinstance(coloring, ColoredPattern):
        raise TypeError(
            f"decompress expects a ColoredPattern as `coloring`, got {type(coloring).__name__}."
        )
    passes = coloring.require_plan("decompress").passes
    if len(passes) > 1:
        if not (isinstance(compressed, tuple | list) and len(compressed) == len(passes)):
            raise TypeError(
                "decompress: a bidirectional coloring's compressed Jacobian is the pair "
                f"(B_fwd, B_rev), got {type(compressed).__name__}."
            )
        parts = compressed
    else:
        parts = (compressed,)
    checked = [_check_part(part, p.count, _dim(coloring, p), _what(p, len(passes)))
               for part, p in zip(parts, passes, strict=True)]
    return checked, passes


def _given_layout(sharding: ShardingLike, parts: list[jax.Array]) -> ColorSharding:
    """The layout `sharding` names, checked against the parts' color axes."""
    layout = ColorSharding.of(sharding).following(parts, inputs=False)
    for part in parts:
        if part.shape[0] % layout.shards:
            raise ValueError(
                f"decompress: `sharding` splits the color axis over {layout.shards} "
                f"devices, but B has {part.shape[0]} rows, which they do not divide; pass "
                "B as the compressed function computed it with this `sharding` (its "
                "colors padded to a multiple of the devices), or leave `sharding` out."
            )
    return layout


@functools.partial(jax.jit, static_argnums=(1, 3))
def _split_values(
    parts: list[jax.Array],
    split: SplitDecompression,
    tables: tuple[jax.Array, jax.Array],
    layout: ColorSharding,
) -> jax.Array:
    return split(parts, layout, tables)


def _dim(coloring: ColoredPattern, seed_pass: SeedPass) -> int:
    """Length of one product of the pass: `m` for a JVP, `n` for a VJP or an HVP."""
    m, n = coloring.sparsity.shape
    return m if seed_pass.kind == "jvp" else n


def _what(seed_pass: SeedPass, num_passes: int) -> str:
    if seed_pass.kind == "hvp":
        return "the compressed Hessian"
    if num_passes > 1:
        return "B_fwd (the JVPs)" if seed_pass.kind == "jvp" else "B_rev (the VJPs)"
    return "B (mode 'fwd')" if seed_pass.kind == "jvp" else "B (mode 'rev')"


def decompress_data(
    compressed: Any, coloring: ColoredPattern, *, sharding: ShardingLike | None = None
) -> jax.Array:
    """The nonzero values of the matrix, in the pattern's order, from its compressed form.

    `values[k]` is the entry at `(coloring.sparsity.rows[k], coloring.sparsity.cols[k])`.
    Jittable: the decompression plan is built on the host from the coloring (which is
    static under `jax.jit`) and applied as precomputed gathers and, for substitution
    (acyclic) colorings, subtractions.

    Args:
        compressed: The compressed matrix `B` from a `compressed_*` function: shape
            `(num_colors, m)` for a column coloring (mode "fwd"), `(num_colors, n)` for a
            row coloring (mode "rev") or a Hessian coloring, and the pair
            `(B_fwd, B_rev)` for a bidirectional coloring.
        coloring: The coloring `B` was computed with.
        sharding: How `B`'s color axis is split over devices: the `sharding=` it was
            computed with. Needed only inside `jax.jit` on meshes with `Auto` axes;
            otherwise it is read from `B` (a `NamedSharding` whose spec names mesh
            axes first, or, inside `jax.jit`, the type of `B` on `Explicit` axes).

    Returns:
        The `nnz` values, shape `(nnz,)`, with `B`'s dtype. Where `B`'s color axis is
        split over devices, the values are split over the same axes (where they divide
        `nnz`): each device receives only the entries of `B` that its values read (one
        `all_to_all`), and, for substitution (acyclic) colorings, the solved values
        they subtract (one `all_to_all` per level). Inside `jax.jit` on `Auto` axes
        without `sharding=`, the split of `B` cannot be seen: XLA then gathers `B`
        onto every device for the reads; pass `sharding=` to keep it split.

    Examples:
        >>> import jax.numpy as jnp
        >>> import asdex
        >>> from asdex import decompress_data
        >>> coloring = asdex.jacobian_coloring(lambda x: x[1:] * x[:-1], jnp.zeros(4))
        >>> B = asdex.compressed_jacobian_from_coloring(lambda x: x[1:] * x[:-1],
        ...                                             coloring)(jnp.arange(4.0))
        >>> decompress_data(B, coloring).tolist()
        [1.0, 0.0, 2.0, 1.0, 3.0, 2.0]
    """
    return _values(compressed, coloring, sharding)[0]


def _values(
    compressed: Any, coloring: ColoredPattern, sharding: ShardingLike | None
) -> tuple[jax.Array, ColorSharding | None]:
    """The nonzero values, and the layout that splits `B`'s colors (which they keep)."""
    parts, passes = _parts(compressed, coloring)
    split = _split_plan(_static(coloring, _coloring_key))
    layout = color_layout(parts) if sharding is None else _given_layout(sharding, parts)
    if split.applies(layout):
        tables = split.tables([part.shape for part in parts], layout)
        return _split_values(parts, split, tables, layout), layout
    values = split.plan(stack_parts(parts, passes))
    return (values, None) if layout is None else (layout.spread(values), layout)


def decompress(
    compressed: Any,
    coloring: ColoredPattern,
    output_format: OutputFormat = "bcoo",
    *,
    sharding: ShardingLike | None = None,
) -> Any:
    """The flat `(m, n)` matrix from its compressed form.

    Args:
        compressed: The compressed matrix `B` (see `decompress_data`).
        coloring: The coloring `B` was computed with.
        output_format: Any of the output formats: "bcoo" (default) and "dense" are
            traceable; "numpy_dense" and the SciPy formats are built on the host and
            raise a `TypeError` inside `jax.jit`.
        sharding: How `B`'s color axis is split (see `decompress_data`).

    Returns:
        The `(m, n)` matrix, whatever the shapes of `f`'s arguments and outputs (rows
        run over the flattened outputs, columns over the flattened differentiated
        inputs). From a `B` whose color axis is split over devices, the BCOO data and
        indices (or the dense rows) are split over the same axes, as in
        `decompress_data`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import asdex
        >>> from asdex import decompress
        >>> coloring = asdex.hessian_coloring(lambda x: (x**3).sum(), jnp.zeros(3))
        >>> B = asdex.compressed_hessian_from_coloring(lambda x: (x**3).sum(),
        ...                                            coloring)(jnp.ones(3))
        >>> decompress(B, coloring, "dense").tolist()
        [[6.0, 0.0, 0.0], [0.0, 6.0, 0.0], [0.0, 0.0, 6.0]]
    """
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(
            f"`output_format` must be one of {OUTPUT_FORMATS}, got {output_format!r}."
        )
    values, split = _values(compressed, coloring, sharding)
    m, n = coloring.sparsity.shape
    layout = block_layout(coloring.sparsity, [(m,)], [(n,)])
    matrix = assemble(values, layout, [[values.dtype]], output_format)[0][0]
    if split is None or output_format not in DEVICE_FORMATS:
        return matrix
    return split.spread(matrix)
