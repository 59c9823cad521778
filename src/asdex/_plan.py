"""The decompression plan: what a coloring hands decompression, as immutable index data.

A plan has two parts:

* the seed passes: for each batch of products (JVPs, VJPs or HVPs), the color of every
  seeded vertex within that batch;
* the schedule: for each nonzero of the pattern, where to read it in the compressed
  matrix and which already recovered nonzeros to subtract.

The schedule reads the compressed matrix `B` of shape `(N, num_colors)`: the products of
the passes, one column per color, laid out block-diagonally in pass order. A pass of
`k` JVPs fills `m` rows (`B[:, c] = J @ seed_c`), a pass of VJPs `n` rows
(`B[:, c] = J.T @ seed_c`) and a pass of HVPs `n` rows (`B[:, c] = H @ seed_c`), where
`seed_c` is the indicator vector of the vertices of color `c` (neutral vertices, color
`-1`, are in no seed). The coloring package builds plans; the decompression package
reads them and decodes nothing else.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

PassKind = Literal["jvp", "vjp", "hvp"]
"""The product of a seed pass: Jacobian-vector, vector-Jacobian or Hessian-vector."""

PASS_KINDS: tuple[PassKind, ...] = ("jvp", "vjp", "hvp")

_LEVEL_FIELDS = ("targets", "b_rows", "b_cols", "sub_indptr", "sub_entries")


def index_array(values: Any) -> NDArray[np.int32]:
    """A read-only, contiguous int32 copy (or view) of `values`.

    Examples:
        >>> index_array([1, 2]).tolist()
        [1, 2]
    """
    array = np.ascontiguousarray(values, dtype=np.int32)
    array.setflags(write=False)
    return array


@dataclasses.dataclass(frozen=True, eq=False)
class SeedPass:
    """One batch of products: which vertices each seed of the batch holds.

    Attributes:
        kind: "jvp" (seeds over columns), "vjp" (seeds over rows) or "hvp" (seeds over
            columns of a Hessian).
        colors: The color of each seeded vertex within this pass, in `[0, count)`, or
            `-1` where the pass never seeds it; shape `(n,)` for "jvp" and "hvp",
            `(m,)` for "vjp".
        count: Number of products in the pass.

    Examples:
        >>> import numpy as np
        >>> from asdex.coloring import SeedPass
        >>> SeedPass("jvp", np.array([0, 1, 0]), 2).kind
        'jvp'
    """

    kind: PassKind
    colors: NDArray[np.int32]
    count: int

    def __post_init__(self) -> None:
        """Check the kind and freeze the colors."""
        if self.kind not in PASS_KINDS:
            raise ValueError(f"A seed pass has kind one of {PASS_KINDS}, got {self.kind!r}.")
        object.__setattr__(self, "colors", index_array(self.colors))
        object.__setattr__(self, "count", int(self.count))


@dataclasses.dataclass(frozen=True, eq=False)
class Level:
    """One round of decompression: nonzeros whose inputs earlier levels computed.

    `value[targets[t]] = B[b_rows[t], b_cols[t]] - sum(value[sub_entries[sub_indptr[t]:
    sub_indptr[t + 1]]])`, where every entry of `sub_entries` was computed at an earlier
    level.

    Attributes:
        targets: Nonzero positions computed at this level, shape `(t,)`.
        b_rows: Row of `B` to read for each target, shape `(t,)`.
        b_cols: Column (color) of `B` to read for each target, shape `(t,)`.
        sub_indptr: CSR pointer over `targets` into `sub_entries`, shape `(t + 1,)`.
        sub_entries: Nonzero positions to subtract, shape `(sub_indptr[-1],)`.
    """

    targets: NDArray[np.int32]
    b_rows: NDArray[np.int32]
    b_cols: NDArray[np.int32]
    sub_indptr: NDArray[np.int32]
    sub_entries: NDArray[np.int32]

    @property
    def segment_ids(self) -> NDArray[np.int32]:
        """Target index (into `targets`) of each entry of `sub_entries`."""
        counts = np.diff(self.sub_indptr)
        return np.repeat(np.arange(self.targets.size, dtype=np.int32), counts)


@dataclasses.dataclass(frozen=True, eq=False)
class DecompressionSchedule:
    """Recipe to recover all nonzeros of a colored pattern from its compressed matrix.

    Levels run in order; then `value[mirror_targets] = value[mirror_sources]` copies each
    remaining nonzero from its symmetric counterpart. A direct (Jacobian or star)
    schedule has one level without subtractions.

    Attributes:
        levels: The rounds of gathers and subtractions, in execution order.
        mirror_targets: Nonzero positions copied at the end, shape `(r,)`.
        mirror_sources: Position each one is copied from, shape `(r,)`.
        nnz: Number of nonzeros of the pattern (length of the value vector).
        b_shape: Shape `(N, num_colors)` of the compressed matrix `B` read by the levels.

    Examples:
        >>> import numpy as np
        >>> from asdex.coloring import DecompressionSchedule, Level
        >>> level = Level(*(np.asarray(a, np.int32) for a in ([0], [1], [0], [0, 0], [])))
        >>> empty = np.zeros(0, np.int32)
        >>> schedule = DecompressionSchedule((level,), empty, empty, 1, (2, 1))
        >>> schedule.apply(np.array([[3.0], [4.0]])).tolist()
        [4.0]
    """

    levels: tuple[Level, ...]
    mirror_targets: NDArray[np.int32]
    mirror_sources: NDArray[np.int32]
    nnz: int
    b_shape: tuple[int, int]

    @property
    def num_levels(self) -> int:
        """Number of levels (1 for direct decompression)."""
        return len(self.levels)

    def apply(self, compressed: NDArray[np.floating]) -> NDArray[np.floating]:
        """Run the schedule in NumPy: the reference semantics for the evaluation stage.

        Args:
            compressed: The compressed matrix `B`, shape `b_shape`.

        Returns:
            The nonzero values in the pattern's sorted order, shape `(nnz,)`.
        """
        compressed = np.asarray(compressed)
        if compressed.shape != self.b_shape:
            raise ValueError(
                f"Expected a compressed matrix of shape {self.b_shape}, got {compressed.shape}."
            )
        values = np.zeros(self.nnz, dtype=compressed.dtype)
        for level in self.levels:
            read = compressed[level.b_rows, level.b_cols]
            sums = np.zeros(level.targets.size, dtype=compressed.dtype)
            np.add.at(sums, level.segment_ids, values[level.sub_entries])
            values[level.targets] = read - sums
        values[self.mirror_targets] = values[self.mirror_sources]
        return values


@dataclasses.dataclass(frozen=True, eq=False)
class DecompressionPlan:
    """The seed passes of a coloring and the schedule that decompresses their products.

    Attributes:
        passes: The batches of products, in the order their compressed blocks are laid
            out (block-diagonally) in the matrix the schedule reads.
        schedule: How every nonzero is recovered from that matrix.

    Examples:
        >>> import numpy as np
        >>> from asdex.coloring import DecompressionPlan, DecompressionSchedule, Level, SeedPass
        >>> level = Level(
        ...     *(np.asarray(a, np.int32) for a in ([0, 1], [0, 1], [0, 0], [0, 0, 0], [])))
        >>> empty = np.zeros(0, np.int32)
        >>> schedule = DecompressionSchedule((level,), empty, empty, 2, (2, 1))
        >>> DecompressionPlan((SeedPass("jvp", np.array([0, 0]), 1),), schedule).num_colors
        1
    """

    passes: tuple[SeedPass, ...]
    schedule: DecompressionSchedule

    @property
    def num_colors(self) -> int:
        """Number of products over all passes."""
        return sum(p.count for p in self.passes)

    def to_arrays(self) -> tuple[dict[str, Any], dict[str, NDArray[np.int32]]]:
        """Split the plan into JSON-ready metadata and named index arrays (for saving).

        Examples:
            >>> import numpy as np
            >>> from asdex.coloring import DecompressionPlan, DecompressionSchedule, Level, SeedPass
            >>> level = Level(*(np.asarray(a, np.int32) for a in ([0], [0], [0], [0, 0], [])))
            >>> empty = np.zeros(0, np.int32)
            >>> schedule = DecompressionSchedule((level,), empty, empty, 1, (1, 1))
            >>> plan = DecompressionPlan((SeedPass("hvp", [0], 1),), schedule)
            >>> DecompressionPlan.from_arrays(*plan.to_arrays()).schedule.num_levels
            1
        """
        schedule = self.schedule
        meta = {
            "passes": [[p.kind, p.count] for p in self.passes],
            "num_levels": schedule.num_levels,
            "nnz": schedule.nnz,
            "b_shape": list(schedule.b_shape),
        }
        arrays = {f"pass{i}_colors": p.colors for i, p in enumerate(self.passes)}
        for i, level in enumerate(schedule.levels):
            for name in _LEVEL_FIELDS:
                arrays[f"level{i}_{name}"] = getattr(level, name)
        arrays["mirror_targets"] = schedule.mirror_targets
        arrays["mirror_sources"] = schedule.mirror_sources
        return meta, arrays

    @classmethod
    def from_arrays(cls, meta: dict[str, Any], arrays: dict[str, Any]) -> DecompressionPlan:
        """Rebuild a plan from the output of `to_arrays`.

        Raises:
            KeyError: If an array or a metadata entry is missing.
        """
        passes = tuple(SeedPass(kind, arrays[f"pass{i}_colors"], count)
                       for i, (kind, count) in enumerate(meta["passes"]))
        levels = tuple(
            Level(*(index_array(arrays[f"level{i}_{name}"]) for name in _LEVEL_FIELDS))
            for i in range(int(meta["num_levels"]))
        )
        rows, cols = meta["b_shape"]
        schedule = DecompressionSchedule(
            levels, index_array(arrays["mirror_targets"]), index_array(arrays["mirror_sources"]),
            int(meta["nnz"]), (int(rows), int(cols)),
        )
        return cls(passes, schedule)
