"""Assemble nonzero values into the pytree of blocks that `jax.jacobian` would return.

The pattern's rows run over the flattened output leaves and its columns over the
flattened differentiated input leaves. Block `(o, l)` holds the entries of output leaf
`o` and input leaf `l`, shaped `(*out_shape_o, *in_shape_l)`. Because the nonzeros are
sorted by row then column, each block's entries stay sorted, so a BCOO block is built
from precomputed indices, never with `BCOO.fromdense`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse

from asdex._pattern import SparsityPattern
from asdex.decompression._host import check_concrete, host_block, host_cast
from asdex.decompression._sharding import replicated_layout

OutputFormat = Literal["bcoo", "dense", "numpy_dense", "scipy_coo", "scipy_csr", "scipy_csc"]
"""Type of the returned derivative blocks.

On the device, traceable: "bcoo" (`jax.experimental.sparse.BCOO`, the default) and
"dense" (`jax.Array`). On the host, not traceable (not inside `jax.jit`, `vmap` or
`grad`): "numpy_dense" (`numpy.ndarray`) and "scipy_coo", "scipy_csr", "scipy_csc"
(`scipy.sparse` arrays, each block flattened to 2-D `(output size, input size)`)."""

DEVICE_FORMATS = ("bcoo", "dense")
HOST_FORMATS = ("numpy_dense", "scipy_coo", "scipy_csr", "scipy_csc")
OUTPUT_FORMATS = DEVICE_FORMATS + HOST_FORMATS


@dataclasses.dataclass(frozen=True)
class Block:
    """Where one block's entries lie among the sorted nonzeros, and where in the block.

    Attributes:
        positions: Positions of the block's entries in the nonzero vector, as a slice
            when they are contiguous.
        rows: Flat row of each entry within the block's output leaf.
        cols: Flat column of each entry within the block's input leaf.
        indices: BCOO indices, shape `(nse, ndim)`: the unravelled `(rows, cols)`.
        out_shape: Shape of the output (row) leaf.
        in_shape: Shape of the input (column) leaf.
    """

    positions: slice | np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    indices: np.ndarray
    out_shape: tuple[int, ...]
    in_shape: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        """The block's shape `(*out_shape, *in_shape)`."""
        return (*self.out_shape, *self.in_shape)

    def values(self, values: jax.Array) -> jax.Array:
        """Select this block's entries from the full nonzero vector."""
        if isinstance(self.positions, slice) and self.positions == slice(0, values.shape[0]):
            return values
        return values[self.positions]

    def build(self, data: jax.Array, output_format: OutputFormat) -> Any:
        """Make the block from its entries, in any of the `OUTPUT_FORMATS`."""
        if output_format in HOST_FORMATS:
            return host_block(np.asarray(data), self.rows, self.cols,
                              math.prod(self.out_shape), math.prod(self.in_shape),
                              self.shape, output_format)
        if output_format == "bcoo":
            return sparse.BCOO(
                (data, jnp.asarray(self.indices)),
                shape=self.shape,
                indices_sorted=True,
                unique_indices=True,
            )
        dense = jnp.zeros((math.prod(self.out_shape), math.prod(self.in_shape)), data.dtype)
        dense = dense.at[self.rows, self.cols].set(
            data, unique_indices=True, out_sharding=replicated_layout(data)
        )
        return dense.reshape(self.shape)


def block_layout(
    pattern: SparsityPattern,
    row_shapes: Sequence[tuple[int, ...]],
    col_shapes: Sequence[tuple[int, ...]],
) -> list[list[Block]]:
    """Split the pattern into blocks, one per (row leaf, column leaf) pair.

    Examples:
        >>> p = SparsityPattern.from_dense(np.eye(3))
        >>> [[b.shape for b in r] for r in block_layout(p, [(1,), (2,)], [(3,)])]
        [[(1, 3)], [(2, 3)]]
    """
    row_offsets = np.cumsum([0, *(math.prod(s) for s in row_shapes)])
    col_offsets = np.cumsum([0, *(math.prod(s) for s in col_shapes)])
    rows, cols = pattern.rows, pattern.cols
    layout = []
    for o, out_shape in enumerate(row_shapes):
        lo, hi = np.searchsorted(rows, row_offsets[o : o + 2])
        layout_row = []
        for leaf, in_shape in enumerate(col_shapes):
            sub_cols = cols[lo:hi]
            mask = (sub_cols >= col_offsets[leaf]) & (sub_cols < col_offsets[leaf + 1])
            positions = np.flatnonzero(mask) + lo
            local_rows = rows[positions] - row_offsets[o]
            local_cols = cols[positions] - col_offsets[leaf]
            coords = [*_unravel(local_rows, out_shape), *_unravel(local_cols, in_shape)]
            indices = np.zeros((positions.size, len(coords)), dtype=np.int32)
            for axis, coord in enumerate(coords):
                indices[:, axis] = coord
            layout_row.append(
                Block(
                    _as_slice(positions),
                    local_rows.astype(np.int32),
                    local_cols.astype(np.int32),
                    indices,
                    tuple(out_shape),
                    tuple(in_shape),
                )
            )
        layout.append(layout_row)
    return layout


def _unravel(flat: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    return np.unravel_index(flat, shape) if shape else ()


def _as_slice(positions: np.ndarray) -> slice | np.ndarray:
    if positions.size == 0:
        return slice(0, 0)
    if positions[-1] - positions[0] + 1 == positions.size:
        return slice(int(positions[0]), int(positions[-1]) + 1)
    return positions.astype(np.int32)


def cast_like(values: jax.Array, dtype: Any) -> jax.Array:
    """Cast values to a block's dtype, dropping the imaginary part for a real dtype."""
    if jnp.iscomplexobj(values) and not jnp.issubdtype(dtype, jnp.complexfloating):
        values = values.real
    return values.astype(dtype)


def assemble(
    values: jax.Array,
    layout: list[list[Block]],
    dtypes: list[list[Any]],
    output_format: OutputFormat,
) -> list[list[Any]]:
    """Build every block of `layout` from the nonzero values, cast to `dtypes`.

    Host formats need concrete values: under a JAX transformation they raise a
    `TypeError` naming the traceable formats.

    Examples:
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> blocks = assemble(jnp.array([1.0, 2.0]), block_layout(p, [(2,)], [(2,)]),
        ...                   [[jnp.float32]], "dense")
        >>> blocks[0][0].tolist()
        [[1.0, 0.0], [0.0, 2.0]]
    """
    cast = cast_like
    if output_format in HOST_FORMATS:
        check_concrete(values, output_format)
        values, cast = np.asarray(values), host_cast
    return [
        [
            block.build(cast(block.values(values), dtype), output_format)
            for block, dtype in zip(row, dtype_row, strict=True)
        ]
        for row, dtype_row in zip(layout, dtypes, strict=True)
    ]
