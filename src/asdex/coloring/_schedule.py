"""Decompression schedules: how to recover every nonzero from the compressed matrix.

The evaluation stage computes a compressed matrix `B` of shape `(N, num_colors)`, one
column per color. A `DecompressionSchedule` says, for each nonzero of the colored pattern
(indexed by its position `k` in the pattern's sorted nonzero order), where to read it in
`B` and which already recovered nonzeros to subtract. It is pure index data (NumPy), so
the evaluation stage can turn it into precomputed gathers and segment sums.

What `B` holds:

* column coloring (mode "fwd"): `B[:, c] = J @ seed_c`, shape `(m, num_colors)`;
* row coloring (mode "rev"): `B[:, c] = J.T @ seed_c`, shape `(n, num_colors)`;
* symmetric coloring (star or acyclic): `B[:, c] = H @ seed_c`, shape `(n, num_colors)`;
* bidirectional coloring: `B = block_diag(J @ S_cols, J.T @ S_rows)`, shape
  `(m + n, num_col_colors + num_row_colors)` (see `asdex.coloring.color_bidirectional`).

Here `seed_c` is the indicator vector of the vertices of color `c` (neutral vertices,
color `-1`, are in no seed).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from asdex._pattern import ColoredPattern


@dataclasses.dataclass(frozen=True, eq=False)
class Level:
    """One round of decompression: nonzeros whose inputs are all known by now.

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
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import jacobian_coloring_from_sparsity, column_schedule
        >>> colored = jacobian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(3)))
        >>> column_schedule(colored).apply(np.ones((3, 1))).tolist()
        [1.0, 1.0, 1.0]
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


def _index(values: NDArray[np.integer]) -> NDArray[np.int32]:
    array = np.ascontiguousarray(values, dtype=np.int32)
    array.setflags(write=False)
    return array


def direct_level(
    targets: NDArray[np.integer], b_rows: NDArray[np.integer], b_cols: NDArray[np.integer]
) -> Level:
    """A level without subtractions: each target is read straight from `B`.

    Examples:
        >>> direct_level(np.array([0]), np.array([2]), np.array([1])).b_rows.tolist()
        [2]
    """
    return make_level(targets, b_rows, b_cols, np.zeros(len(targets) + 1, dtype=np.int32),
                      np.zeros(0, dtype=np.int32))


def make_level(
    targets: NDArray[np.integer],
    b_rows: NDArray[np.integer],
    b_cols: NDArray[np.integer],
    sub_indptr: NDArray[np.integer],
    sub_entries: NDArray[np.integer],
) -> Level:
    """Build a `Level` with read-only int32 arrays.

    Examples:
        >>> make_level([1], [0], [0], [0, 1], [0]).sub_entries.tolist()
        [0]
    """
    return Level(_index(targets), _index(b_rows), _index(b_cols), _index(sub_indptr),
                 _index(sub_entries))


def make_schedule(
    levels: list[Level],
    nnz: int,
    b_shape: tuple[int, int],
    mirror_targets: NDArray[np.integer] | None = None,
    mirror_sources: NDArray[np.integer] | None = None,
) -> DecompressionSchedule:
    """Assemble a `DecompressionSchedule`, dropping empty levels.

    Examples:
        >>> make_schedule([], 0, (0, 0)).num_levels
        0
    """
    empty = np.zeros(0, dtype=np.int32)
    return DecompressionSchedule(
        levels=tuple(level for level in levels if level.targets.size),
        mirror_targets=_index(empty if mirror_targets is None else mirror_targets),
        mirror_sources=_index(empty if mirror_sources is None else mirror_sources),
        nnz=int(nnz),
        b_shape=(int(b_shape[0]), int(b_shape[1])),
    )


def column_schedule(colored: ColoredPattern) -> DecompressionSchedule:
    """Direct schedule of a column coloring: `J[i, j] = B[i, colors[j]]`, `B = J @ S`.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import jacobian_coloring_from_sparsity
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> column_schedule(jacobian_coloring_from_sparsity(p, mode="fwd")).b_shape
        (2, 1)
    """
    sparsity = colored.sparsity
    if colored.colors.shape != (sparsity.n,):
        raise ValueError("`column_schedule` needs one color per column.")
    level = direct_level(np.arange(sparsity.nnz), sparsity.rows, colored.colors[sparsity.cols])
    return make_schedule([level], sparsity.nnz, (sparsity.m, colored.num_colors))


def row_schedule(colored: ColoredPattern) -> DecompressionSchedule:
    """Direct schedule of a row coloring: `J[i, j] = B[j, colors[i]]`, `B = J.T @ S`.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import jacobian_coloring_from_sparsity
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> row_schedule(jacobian_coloring_from_sparsity(p, mode="rev")).b_shape
        (2, 1)
    """
    sparsity = colored.sparsity
    if colored.colors.shape != (sparsity.m,):
        raise ValueError("`row_schedule` needs one color per row.")
    level = direct_level(np.arange(sparsity.nnz), sparsity.cols, colored.colors[sparsity.rows])
    return make_schedule([level], sparsity.nnz, (sparsity.n, colored.num_colors))


def symmetric_schedule(colored: ColoredPattern) -> DecompressionSchedule:
    """Schedule of a symmetric coloring: direct for star, substitution for acyclic.

    Star: one level; each off-diagonal nonzero is read from the column of its star's hub
    color, in the row of the spoke. Acyclic: one level per round of leaf peeling of the
    two-colored trees; each nonzero is read in the row of the vertex that is a leaf at
    that round, minus the nonzeros of its other tree edges found before.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import hessian_coloring_from_sparsity
        >>> p = SparsityPattern.from_dense(np.ones((2, 2)))
        >>> symmetric_schedule(hessian_coloring_from_sparsity(p)).num_levels
        1
    """
    from asdex.coloring._acyclic import acyclic_schedule
    from asdex.coloring._star import star_schedule

    if not colored.symmetric:
        raise ValueError("`symmetric_schedule` needs a symmetric coloring.")
    if getattr(colored, "method", None) == "acyclic":
        return acyclic_schedule(colored.sparsity, colored.colors, colored.num_colors)
    return star_schedule(colored.sparsity, colored.colors, colored.num_colors)


def schedule(colored: ColoredPattern) -> DecompressionSchedule:
    """The decompression schedule of any `ColoredPattern`.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import jacobian_coloring_from_sparsity
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> schedule(jacobian_coloring_from_sparsity(p)).num_levels
        1
    """
    method = getattr(colored, "method", None) or ""
    if method.startswith("bidirectional"):
        from asdex.coloring._bidirectional import bidirectional_schedule

        return bidirectional_schedule(colored)
    if colored.symmetric:
        return symmetric_schedule(colored)
    if colored.mode == "rev":
        return row_schedule(colored)
    return column_schedule(colored)
