"""Bidirectional coloring (bicoloring): some rows by VJPs, some columns by JVPs.

Following Montoison, Dalle, Gebremedhin ("Revisiting sparse matrix coloring and
bicoloring", 2025), a Jacobian `J` of shape `(m, n)` is bicolored through its augmented
symmetric matrix `[[0, J], [J.T, 0]]` (rows first, then columns): a star (direct) or
acyclic (substitution) coloring of it, postprocessed with neutral colors, gives colors
to rows and columns. Row colors cost one VJP each, column colors one JVP each. A pattern
with a few dense rows and a few dense columns, which defeats both one-sided colorings,
needs only a handful of passes. The plain row and column colorings are candidates too, so
a bicoloring never needs more passes than the better of them.

Column colors are numbered `0 .. num_col_colors - 1` and row colors follow them, so the
compressed matrix is `B = block_diag(J @ S_cols, J.T @ S_rows)`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from asdex._pattern import SparsityPattern, as_pattern
from asdex._plan import DecompressionSchedule
from asdex.coloring._acyclic import acyclic_schedule
from asdex.coloring._graph import symmetric_graph
from asdex.coloring._greedy import Order, color_one_sided
from asdex.coloring._orders import order_names
from asdex.coloring._schedule import make_schedule
from asdex.coloring._star import star_hubs, star_schedule
from asdex.coloring._symmetric import color_acyclic, color_symmetric, compact

ALGORITHMS = ("star", "acyclic")
"""The colorings of the augmented graph a bicoloring can come from."""


def augmented_pattern(sparsity: SparsityPattern) -> SparsityPattern:
    """The pattern of `[[0, J], [J.T, 0]]`, rows of `J` first.

    Its first `nnz` positions are the nonzeros of `J`, in the same order.

    Examples:
        >>> import numpy as np
        >>> augmented_pattern(SparsityPattern.from_dense(np.ones((1, 2)))).shape
        (3, 3)
    """
    m, n = sparsity.shape
    rows = np.concatenate([sparsity.rows, m + sparsity.cols])
    cols = np.concatenate([m + sparsity.cols, sparsity.rows])
    return SparsityPattern.from_coo(rows, cols, (m + n, m + n))


def _split(colors: NDArray[np.int32], m: int) -> tuple[NDArray[np.int32], int, int]:
    """Renumber: column colors first, then row colors; return (colors, n_col, n_row)."""
    rows, cols = colors[:m], colors[m:]
    num = int(colors.max(initial=-1)) + 1
    col_used = np.zeros(num, dtype=bool)
    col_used[cols[cols >= 0]] = True
    row_used = np.zeros(num, dtype=bool)
    row_used[rows[rows >= 0]] = True
    new_cols, num_col = compact(cols, col_used)
    new_rows, num_row = compact(rows, row_used)
    new_rows = np.where(new_rows >= 0, new_rows + num_col, -1).astype(np.int32)
    return np.concatenate([new_rows, new_cols]), num_col, num_row


def color_bidirectional(
    sparsity: Any,
    *,
    method: str = "acyclic",
    order: Order = "best",
    seed: int | None = None,
) -> tuple[NDArray[np.int32], int, int]:
    """Bicolor a Jacobian pattern: colors for rows (VJPs) and columns (JVPs).

    Args:
        sparsity: Jacobian pattern of shape `(m, n)`.
        method: "acyclic" (default: fewer passes, substitution decompression) or "star"
            (direct decompression) coloring of the augmented matrix.
        order: Vertex order in the augmented graph; "best" (default) keeps the fewest
            passes among several orders.
        seed: Seed for `order="random"`.

    Returns:
        `(colors, num_col_colors, num_row_colors)`: `colors` has shape `(m + n,)`, rows
        first; column colors lie in `[0, num_col_colors)`, row colors in
        `[num_col_colors, num_col_colors + num_row_colors)`, neutral ones are -1.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import color_bidirectional
        >>> arrow = np.eye(6); arrow[0] = 1; arrow[:, 0] = 1
        >>> _, jvps, vjps = color_bidirectional(SparsityPattern.from_dense(arrow))
        >>> jvps + vjps
        3
    """
    if method not in ALGORITHMS:
        raise ValueError(f"Unknown bidirectional method {method!r}; expected 'star' or "
                         "'acyclic'.")
    pattern = as_pattern(sparsity)
    augmented = augmented_pattern(pattern)
    colors, num_colors, mode = color_one_sided(pattern)
    if mode == "fwd":
        best = (np.concatenate([np.full(pattern.m, -1, np.int32), colors]), num_colors, 0)
    else:
        best = (np.concatenate([colors, np.full(pattern.n, -1, np.int32)]), 0, num_colors)
    for name in order_names(order):
        if method == "star":
            colors = color_symmetric(augmented, postprocess=True, order=name, seed=seed)[0]
        else:
            colors = color_acyclic(augmented, postprocess=True, order=name, seed=seed)[0]
        result = _split(colors, pattern.m)
        if result[1] + result[2] < best[1] + best[2]:
            best = result
    return best


def bidirectional_schedule(
    sparsity: SparsityPattern, colors: NDArray[np.int32], num_colors: int, algorithm: str
) -> DecompressionSchedule:
    """Schedule of a bicoloring, reading `B = block_diag(J @ S_cols, J.T @ S_rows)`.

    Args:
        sparsity: The Jacobian pattern, shape `(m, n)`.
        colors: The bicoloring, shape `(m + n,)`, as `color_bidirectional` returns it.
        num_colors: Number of colors, column and row colors together.
        algorithm: The coloring of the augmented graph: "star" or "acyclic".

    Examples:
        >>> import numpy as np
        >>> p = SparsityPattern.from_dense(np.ones((2, 2)))
        >>> colors, jvps, vjps = color_bidirectional(p)
        >>> bidirectional_schedule(p, colors, jvps + vjps, "acyclic").nnz
        4
    """
    augmented = augmented_pattern(sparsity)
    graph = symmetric_graph(augmented)
    colors = np.asarray(colors, dtype=np.int32)
    if algorithm == "acyclic":
        full = acyclic_schedule(graph, colors, augmented.nnz, num_colors)
    else:
        full = star_schedule(graph, colors, star_hubs(graph, colors), augmented.nnz,
                             num_colors)
    return make_schedule(list(full.levels), sparsity.nnz, full.b_shape)
