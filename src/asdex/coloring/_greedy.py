"""Partial distance-2 greedy coloring of rows or columns (Jacobians).

Gebremedhin, Manne, Pothen (SIAM Review 2005), Section 3: two columns conflict when they
share a row. Each vertex takes the smallest color not used by a vertex it conflicts
with, found by walking `vertex → nets → vertices` with a forbidden-color marker.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
from numpy.typing import NDArray

from asdex._pattern import SparsityPattern
from asdex.coloring._graph import Bipartite, column_bipartite, row_bipartite
from asdex.coloring._orders import order_names, vertex_order

Order = str | Sequence[int] | NDArray[np.integer]
"""A vertex order: a name from `asdex.coloring.ORDERS`, "best", or a permutation."""


@numba.njit(cache=True, nogil=True)
def _greedy_distance2(v_indptr, v_nets, n_indptr, n_vertices, order):  # pragma: no cover
    num = v_indptr.size - 1
    colors = np.full(num, -1, dtype=np.int32)
    forbidden = np.full(num + 1, -1, dtype=np.int64)
    for v in order:
        for p in range(v_indptr[v], v_indptr[v + 1]):
            net = v_nets[p]
            for q in range(n_indptr[net], n_indptr[net + 1]):
                c = colors[n_vertices[q]]
                if c >= 0:
                    forbidden[c] = v
        c = 0
        while forbidden[c] == v:
            c += 1
        colors[v] = c
    return colors


def greedy_coloring(
    graph: Bipartite, order: Order = "largest_first", seed: int | None = None
) -> tuple[NDArray[np.int32], int]:
    """Color the vertices of a bipartite view greedily; "best" keeps the fewest colors.

    Examples:
        >>> import numpy as np
        >>> from asdex.coloring._graph import column_bipartite
        >>> greedy_coloring(column_bipartite(SparsityPattern.from_dense(np.eye(3))))[1]
        1
    """
    best: tuple[NDArray[np.int32], int] | None = None
    for name in order_names(order):
        perm = vertex_order(graph, name, seed)
        colors = _greedy_distance2(graph.v_indptr, graph.v_nets, graph.n_indptr,
                                   graph.n_vertices, perm)
        num_colors = int(colors.max()) + 1 if colors.size else 0
        if best is None or num_colors < best[1]:
            best = (colors, num_colors)
    assert best is not None
    return best


def color_cols(
    sparsity: SparsityPattern, *, order: Order = "largest_first", seed: int | None = None
) -> tuple[NDArray[np.int32], int]:
    """Greedy column coloring for sparse Jacobians (one JVP per color).

    No two columns that share a nonzero row get the same color, so each color's columns
    are recovered together from one JVP with their summed seed.

    Args:
        sparsity: Jacobian pattern of shape `(m, n)`.
        order: Vertex order: "largest_first" (default), "natural", "smallest_last",
            "incidence_degree", "dynamic_largest_first", "random", "best" (fewest colors
            among several orders, never more than "largest_first"), or a permutation.
        seed: Seed for `order="random"`.

    Returns:
        `(colors, num_colors)`: int32 colors of shape `(n,)` and how many there are.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern, color_cols
        >>> colors, k = color_cols(SparsityPattern.from_dense(np.eye(3)))
        >>> colors.tolist(), k
        ([0, 0, 0], 1)
    """
    return greedy_coloring(column_bipartite(sparsity), order, seed)


def color_rows(
    sparsity: SparsityPattern, *, order: Order = "largest_first", seed: int | None = None
) -> tuple[NDArray[np.int32], int]:
    """Greedy row coloring for sparse Jacobians (one VJP per color).

    No two rows that share a nonzero column get the same color.

    Args:
        sparsity: Jacobian pattern of shape `(m, n)`.
        order: Vertex order, as for `color_cols`.
        seed: Seed for `order="random"`.

    Returns:
        `(colors, num_colors)`: int32 colors of shape `(m,)` and how many there are.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern, color_rows
        >>> color_rows(SparsityPattern.from_dense(np.ones((2, 3))))[1]
        2
    """
    return greedy_coloring(row_bipartite(sparsity), order, seed)


def color_one_sided(
    sparsity: SparsityPattern, *, order: Order = "largest_first", seed: int | None = None
) -> tuple[NDArray[np.int32], int, str]:
    """Color columns or rows, whichever needs fewer colors (ties go to columns).

    The rows that share a column are pairwise adjacent in the row coloring's graph, so a
    row coloring needs at least as many colors as the fullest column has nonzeros (and a
    column coloring as many as the fullest row). A side whose bound already loses is not
    colored: a dense column no longer makes the row coloring quadratic in the rows.

    Args:
        sparsity: Jacobian pattern of shape `(m, n)`.
        order: Vertex order, as for `color_cols`.
        seed: Seed for `order="random"`.

    Returns:
        `(colors, num_colors, mode)`: the colors of the columns (`mode` "fwd") or of the
        rows ("rev"), and how many there are.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring._greedy import color_one_sided
        >>> wide = np.zeros((2, 50)); wide[0, :25] = 1; wide[1, 25:] = 1
        >>> color_one_sided(SparsityPattern.from_dense(wide))[1:]
        (1, 'rev')
    """
    row_bound = int(np.bincount(sparsity.cols, minlength=sparsity.n).max(initial=0))
    col_bound = int(np.bincount(sparsity.rows, minlength=sparsity.m).max(initial=0))
    if col_bound <= row_bound:
        colors, num_colors = color_cols(sparsity, order=order, seed=seed)
        if row_bound < num_colors:
            row_colors, num_row = color_rows(sparsity, order=order, seed=seed)
            if num_row < num_colors:
                return row_colors, num_row, "rev"
        return colors, num_colors, "fwd"
    row_colors, num_row = color_rows(sparsity, order=order, seed=seed)
    if col_bound <= num_row:
        colors, num_colors = color_cols(sparsity, order=order, seed=seed)
        if num_colors <= num_row:
            return colors, num_colors, "fwd"
    return row_colors, num_row, "rev"
