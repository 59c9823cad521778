"""Decompression: recover the nonzero values from the compressed matrix inside jit.

A decompression schedule (built on the host by `asdex.coloring`) says where each
nonzero is read in the compressed matrix `B` (shape `(N, num_colors)`), and, for
substitution, which earlier-computed nonzeros to subtract. `GatherPlan` turns it into
NumPy index constants once; applying it is one gather for direct decompression, plus one
gather-and-subtract per level for substitution.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from asdex._plan import DecompressionSchedule
from asdex.decompression._sharding import replicated_layout

MAX_UNROLLED_LEVELS = 16
"""Substitution schedules with more levels run as one `lax.scan` over padded levels."""


@dataclasses.dataclass(frozen=True)
class _Level:
    targets: np.ndarray
    reads: np.ndarray
    subtract: np.ndarray
    segments: np.ndarray


def _stack(levels: list[_Level], nnz: int, zero: int) -> _Level:
    """Pad levels to a common size and stack them along a leading axis.

    Padded targets write to a scratch value at position `nnz` and read the zero at
    `zero`; padded subtractions read the scratch (always zero) into an extra segment.
    """
    width = max(lv.targets.size for lv in levels)

    def stacked(arrays: list[np.ndarray], fill: int) -> np.ndarray:
        sizes = np.array([array.size for array in arrays])
        table = np.full((len(arrays), sizes.max()), fill, np.int64)
        rows = np.repeat(np.arange(len(arrays)), sizes)
        cols = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        table[rows, cols] = np.concatenate(arrays)
        return table

    return _Level(
        stacked([lv.targets for lv in levels], nnz),
        stacked([lv.reads for lv in levels], zero),
        stacked([lv.subtract for lv in levels], nnz),
        stacked([lv.segments for lv in levels], width),
    )


@dataclasses.dataclass(frozen=True)
class GatherPlan:
    """Index constants that map a compressed matrix to the sorted nonzero values.

    The compressed matrix is taken as `C` of shape `(num_colors, N)`, the transpose of
    the schedule's `B`, flattened: `B[i, c]` is `C.ravel()[c * N + i]`.

    Attributes:
        nnz: Number of nonzeros.
        size: `num_colors * N`, the flat size of the compressed matrix.
        initial: For each nonzero, its flat read position in `C`, or `size` (a zero)
            when it is computed later by substitution or mirroring.
        padded: Whether `initial` reads the zero at position `size`.
        levels: Substitution levels, applied in order.
        mirror_targets: Nonzeros copied at the end from `mirror_sources`.
        mirror_sources: Nonzeros they copy.
        stacked: All substitution levels padded and stacked (many levels), else `None`.
        initial_strides: `periodic_strides(initial)`, found once with the plan.
    """

    nnz: int
    size: int
    initial: np.ndarray
    padded: bool
    levels: tuple[_Level, ...]
    mirror_targets: np.ndarray
    mirror_sources: np.ndarray
    stacked: _Level | None = None
    initial_strides: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def from_schedule(cls, schedule: DecompressionSchedule) -> GatherPlan:
        """Precompute the plan of a `DecompressionSchedule`.

        Entries without anything to subtract are read directly, whatever their level,
        and mirrors of directly read entries are folded into the same gather.

        Examples:
            >>> from asdex.coloring._schedule import direct_level, make_schedule
            >>> import jax.numpy as jnp
            >>> import numpy as np
            >>> from asdex.decompression import GatherPlan
            >>> level = direct_level(np.array([0, 1]), np.array([0, 1]), np.array([0, 0]))
            >>> plan = GatherPlan.from_schedule(make_schedule([level], 2, (2, 1)))
            >>> plan(jnp.array([[3.0, 4.0]])).tolist()
            [3.0, 4.0]
        """
        nnz = schedule.nnz
        n_rows, num_colors = schedule.b_shape
        size = num_colors * n_rows
        initial = np.full(nnz, size, dtype=np.int64)
        direct = np.zeros(nnz, dtype=bool)
        levels = []
        for level in schedule.levels:
            targets = np.asarray(level.targets, dtype=np.int64)
            reads = np.asarray(level.b_cols, np.int64) * n_rows + np.asarray(level.b_rows)
            indptr = np.asarray(level.sub_indptr, dtype=np.int64)
            counts = np.diff(indptr)
            plain = counts == 0
            initial[targets[plain]] = reads[plain]
            direct[targets[plain]] = True
            if plain.all():
                continue
            keep = ~plain
            segments = np.repeat(np.arange(keep.sum()), counts[keep])
            subtract = np.asarray(level.sub_entries, dtype=np.int64)  # only kept ones have any
            levels.append(_Level(targets[keep], reads[keep], subtract, segments))
        mirror_targets = np.asarray(schedule.mirror_targets, dtype=np.int64)
        mirror_sources = np.asarray(schedule.mirror_sources, dtype=np.int64)
        folded = direct[mirror_sources]
        initial[mirror_targets[folded]] = initial[mirror_sources[folded]]
        stacked = None
        if len(levels) > MAX_UNROLLED_LEVELS:
            stacked = _stack(levels, nnz, size)
            stacked = _Level(*(_compact(a) for a in dataclasses.astuple(stacked)))
            levels = []
        return cls(
            nnz,
            size,
            _compact(initial),
            bool((initial == size).any()) or stacked is not None,
            tuple(
                _Level(_compact(lv.targets), _compact(lv.reads), _compact(lv.subtract),
                       _compact(lv.segments))
                for lv in levels
            ),
            _compact(mirror_targets[~folded]),
            _compact(mirror_sources[~folded]),
            stacked,
            periodic_strides(initial),
        )

    def __call__(self, compressed: jax.Array) -> jax.Array:
        """Return the nonzero values, shape `(nnz,)`, from `C` of shape `(k, N)`."""
        flat = compressed.reshape(-1)
        if self.padded:
            flat = jnp.pad(flat, (0, 1))
        values = self._read_initial(flat)
        for level in self.levels:
            correction = _segment_sum(values[level.subtract], level.segments,
                                      level.targets.size)
            values = values.at[level.targets].set(
                flat[level.reads] - correction, unique_indices=True
            )
        if self.stacked is not None:
            values = self._substitute_stacked(flat, values)
        if self.mirror_targets.size:
            values = values.at[self.mirror_targets].set(
                values[self.mirror_sources], unique_indices=True
            )
        return values

    def _read_initial(self, flat: jax.Array) -> jax.Array:
        """`flat[initial]`, as strided slices when the reads are periodic (see `strided_take`)."""
        if self.initial_strides is None:
            return flat[self.initial]
        starts, strides = self.initial_strides
        return read_strided(flat, starts, strides, self.nnz // starts.size)

    def _substitute_stacked(self, flat: jax.Array, values: jax.Array) -> jax.Array:
        """All substitution levels as one scan; a scratch value absorbs the padding."""
        width = self.stacked.targets.shape[1]

        def level(values: jax.Array, arrays: tuple[jax.Array, ...]) -> tuple[jax.Array, None]:
            targets, reads, subtract, segments = arrays
            correction = _segment_sum(values[subtract], segments, width + 1)
            return values.at[targets].set(flat[reads] - correction[:width]), None

        scratch = jnp.concatenate([values, jnp.zeros(1, values.dtype)])
        scratch, _ = jax.lax.scan(level, scratch, dataclasses.astuple(self.stacked))
        return scratch[:-1]


MAX_PERIOD = 16
"""Longest period of read positions that `strided_take` turns into strided slices."""


def periodic_strides(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """`(starts, strides)` such that `indices.reshape(-1, p)[r, j] == starts[j] + r * strides[j]`.

    The period `p = starts.size` is the smallest one up to `MAX_PERIOD` that fits, with
    nonnegative strides and at least two rows (one index is a period of one); `None` if
    there is none. Banded and block-structured patterns read the compressed matrix this
    way.

    Examples:
        >>> periodic_strides(np.array([0, 8, 2, 10, 4, 12]))
        (array([0, 8]), array([2, 2]))
    """
    indices = np.asarray(indices, np.int64)
    size = indices.size
    if size == 1:
        return indices.copy(), np.ones(1, np.int64)
    for period in range(1, min(MAX_PERIOD, size // 2) + 1):
        if size % period:
            continue
        table = indices.reshape(-1, period)
        starts = table[0]
        strides = table[1] - starts
        if np.any(strides < 0):
            continue
        last = table.shape[0] - 1
        if np.array_equal(table[last], starts + last * strides) and np.array_equal(
            table, starts + np.arange(last + 1)[:, None] * strides
        ):
            return starts, strides
    return None


def strided_take(flat: jax.Array, indices: np.ndarray) -> jax.Array:
    """`flat[indices]` for constant indices, as strided slices where they are periodic.

    On CPU strided slices are cheaper than a gather (and consecutive reads cheaper
    still: one slice), and a consumer that reads every `p`-th value, such as a solver
    taking the entries of 2 x 2 blocks, then reads straight from the slices. Aperiodic
    indices stay a gather.

    Examples:
        >>> strided_take(jnp.arange(10.0), np.array([0, 5, 2, 7, 4, 9])).tolist()
        [0.0, 5.0, 2.0, 7.0, 4.0, 9.0]
    """
    found = periodic_strides(indices)
    if found is None:
        return flat[indices]
    return read_strided(flat, *found, indices.size // found[0].size)


def read_strided(
    flat: jax.Array, starts: np.ndarray, strides: np.ndarray, count: int
) -> jax.Array:
    """The values at `starts[j] + r * strides[j]`, row by row (`r < count`), flattened.

    Examples:
        >>> read_strided(jnp.arange(10.0), np.array([0, 5]), np.array([2, 2]), 2).tolist()
        [0.0, 5.0, 2.0, 7.0]
    """
    columns = [
        jnp.broadcast_to(flat[start], (count,))
        if stride == 0
        else jax.lax.slice(flat, (start,), (start + stride * (count - 1) + 1,), (stride,))
        for start, stride in zip(starts.tolist(), strides.tolist(), strict=True)
    ]
    if len(columns) == 1:
        return columns[0]
    return jnp.stack(columns, axis=1).reshape(-1)


def _segment_sum(data: jax.Array, segments: jax.Array, count: int) -> jax.Array:
    """Sum `data` by sorted `segments` (`jax.ops.segment_sum`), in the layout JAX asks for.

    Under `jax.vmap` over inputs placed on a mesh with explicit axes the new sums need
    their layout spelled out; `replicated_layout` gives it.
    """
    return jnp.zeros(count, data.dtype).at[segments].add(
        data, indices_are_sorted=True, out_sharding=replicated_layout(data)
    )


def _compact(index: np.ndarray) -> np.ndarray:
    """Use int32 indices where they fit: half the size of int64 constants."""
    if index.size == 0 or index.max() < np.iinfo(np.int32).max:
        return index.astype(np.int32)
    return index
