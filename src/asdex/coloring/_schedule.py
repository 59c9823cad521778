"""Schedule builders: levels, and the direct schedules of column and row colorings.

A `DecompressionSchedule` (see `asdex._plan`) says, for each nonzero of the colored
pattern (indexed by its position `k` in the pattern's sorted nonzero order), where to
read it in the compressed matrix `B` and which already recovered nonzeros to subtract.
The symmetric schedules are built next to their colorings (`_star`, `_acyclic`), the
bidirectional one in `_bidirectional`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from asdex._pattern import ColoredPattern, SparsityPattern
from asdex._plan import DecompressionSchedule, Level, index_array


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
    return Level(index_array(targets), index_array(b_rows), index_array(b_cols),
                 index_array(sub_indptr), index_array(sub_entries))


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
        mirror_targets=index_array(empty if mirror_targets is None else mirror_targets),
        mirror_sources=index_array(empty if mirror_sources is None else mirror_sources),
        nnz=int(nnz),
        b_shape=(int(b_shape[0]), int(b_shape[1])),
    )


def column_schedule(
    sparsity: SparsityPattern, colors: NDArray[np.integer], num_colors: int
) -> DecompressionSchedule:
    """Direct schedule of a column coloring: `J[i, j] = B[i, colors[j]]`, `B = J @ S`.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import column_schedule
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> column_schedule(p, np.array([0, 0]), 1).b_shape
        (2, 1)
    """
    colors = np.asarray(colors)
    if colors.shape != (sparsity.n,):
        raise ValueError("`column_schedule` needs one color per column.")
    level = direct_level(np.arange(sparsity.nnz), sparsity.rows, colors[sparsity.cols])
    return make_schedule([level], sparsity.nnz, (sparsity.m, num_colors))


def row_schedule(
    sparsity: SparsityPattern, colors: NDArray[np.integer], num_colors: int
) -> DecompressionSchedule:
    """Direct schedule of a row coloring: `J[i, j] = B[j, colors[i]]`, `B = J.T @ S`.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import row_schedule
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> row_schedule(p, np.array([0, 0]), 1).b_shape
        (2, 1)
    """
    colors = np.asarray(colors)
    if colors.shape != (sparsity.m,):
        raise ValueError("`row_schedule` needs one color per row.")
    level = direct_level(np.arange(sparsity.nnz), sparsity.cols, colors[sparsity.rows])
    return make_schedule([level], sparsity.nnz, (sparsity.n, num_colors))


def schedule(colored: ColoredPattern) -> DecompressionSchedule:
    """The decompression schedule a `ColoredPattern` carries in its plan.

    Raises:
        ValueError: If the coloring carries no plan (it was built by hand).

    Examples:
        >>> from asdex.coloring import jacobian_coloring_from_sparsity
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import schedule
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> schedule(jacobian_coloring_from_sparsity(p)).num_levels
        1
    """
    return colored.require_plan("schedule").schedule
