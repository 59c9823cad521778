"""Public decompression: from a compressed matrix `B` to the sparse matrix or its values."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

from asdex._pattern import ColoredPattern, _coloring_key, _static
from asdex._plan import SeedPass
from asdex.decompression._blocks import OUTPUT_FORMATS, OutputFormat, assemble, block_layout
from asdex.decompression._gather import GatherPlan
from asdex.decompression._jacobian import stack_parts


@functools.lru_cache(maxsize=32)
def _gather_plan(key: Any) -> GatherPlan:
    return GatherPlan.from_schedule(key.value.plan.schedule)


def _check_part(part: Any, rows: int, dim: int, what: str) -> jax.Array:
    part = jnp.asarray(part)
    if part.ndim != 2 or part.shape[0] < rows or part.shape[1] != dim:
        raise ValueError(
            f"decompress: {what} must have shape (num_colors, {dim}) = ({rows}, {dim}) "
            f"(more rows are allowed: the zero padding of a sharded evaluation), but got "
            f"shape {part.shape}."
        )
    return part


def _stacked(compressed: Any, coloring: ColoredPattern) -> jax.Array:
    """The compressed matrix the plan reads, after checking it against the coloring."""
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
    return stack_parts(
        [_check_part(part, p.count, _dim(coloring, p), _what(p, len(passes)))
         for part, p in zip(parts, passes, strict=True)],
        passes,
    )


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


def decompress_data(compressed: Any, coloring: ColoredPattern) -> jax.Array:
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

    Returns:
        The `nnz` values, shape `(nnz,)`, with `B`'s dtype.

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
    stacked = _stacked(compressed, coloring)
    return _gather_plan(_static(coloring, _coloring_key))(stacked)


def decompress(
    compressed: Any, coloring: ColoredPattern, output_format: OutputFormat = "bcoo"
) -> Any:
    """The flat `(m, n)` matrix from its compressed form.

    Args:
        compressed: The compressed matrix `B` (see `decompress_data`).
        coloring: The coloring `B` was computed with.
        output_format: Any of the output formats: "bcoo" (default) and "dense" are
            traceable; "numpy_dense" and the SciPy formats are built on the host and
            raise a `TypeError` inside `jax.jit`.

    Returns:
        The `(m, n)` matrix, whatever the shapes of `f`'s arguments and outputs (rows
        run over the flattened outputs, columns over the flattened differentiated
        inputs).

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
    values = decompress_data(compressed, coloring)
    m, n = coloring.sparsity.shape
    layout = block_layout(coloring.sparsity, [(m,)], [(n,)])
    return assemble(values, layout, [[values.dtype]], output_format)[0][0]
