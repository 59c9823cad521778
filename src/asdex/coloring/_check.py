"""Validity checks for colorings: each raises `InvalidColoringError` naming a violation."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from asdex._pattern import InvalidColoringError, SparsityPattern
from asdex.coloring._acyclic import substitution_levels
from asdex.coloring._graph import symmetric_graph
from asdex.coloring._star import star_hubs


def as_colors(colors: Any, size: int, what: str) -> NDArray[np.int32]:
    """Validate a color array: integers of shape `(size,)`, all `>= -1`.

    Raises:
        ValueError: If the shape or dtype is wrong or a color is below -1.

    Examples:
        >>> as_colors([0, 1, -1], 3, "vertices").tolist()
        [0, 1, -1]
    """
    array = np.asarray(colors)
    if array.shape != (size,):
        raise ValueError(f"Expected one color per {what}: shape ({size},), got {array.shape}.")
    if size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"Colors must be integers, got dtype {array.dtype}.")
    if size and array.min() < -1:
        raise ValueError(f"Colors must be >= -1 (-1 is neutral), got {array.min()}.")
    return array.astype(np.int32)


def _check_partial(lines: NDArray[np.int32], vertices: NDArray[np.int32],
                   colors: NDArray[np.int32], line: str, vertex: str) -> None:
    """No two vertices sharing a line may share a color; neutral vertices must be empty."""
    neutral = np.flatnonzero(colors[vertices] < 0)
    if neutral.size:
        k = neutral[0]
        raise InvalidColoringError(
            f"{vertex.capitalize()} {vertices[k]} has the neutral color -1 but a nonzero in "
            f"{line} {lines[k]}."
        )
    keys = lines.astype(np.int64) * (int(colors.max(initial=0)) + 1) + colors[vertices]
    order = np.argsort(keys, kind="stable")
    dup = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    if dup.size:
        a, b = order[dup[0]], order[dup[0] + 1]
        raise InvalidColoringError(
            f"{vertex.capitalize()}s {vertices[a]} and {vertices[b]} share {line} {lines[a]} "
            f"and color {colors[vertices[a]]}."
        )


def check_coloring_cols(sparsity: SparsityPattern, colors: Any) -> None:
    """Check a column coloring: no two columns sharing a row have the same color.

    Raises:
        InvalidColoringError: Naming two conflicting columns and their shared row.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import check_coloring_cols
        >>> check_coloring_cols(SparsityPattern.from_dense(np.eye(2)), [0, 0])
        >>> check_coloring_cols(SparsityPattern.from_dense(np.ones((1, 2))), [0, 0])
        Traceback (most recent call last):
        ...
        asdex._pattern.InvalidColoringError: Columns 0 and 1 share row 0 and color 0.
    """
    colors = as_colors(colors, sparsity.n, "column")
    _check_partial(sparsity.rows, sparsity.cols, colors, "row", "column")


def check_coloring_rows(sparsity: SparsityPattern, colors: Any) -> None:
    """Check a row coloring: no two rows sharing a column have the same color.

    Raises:
        InvalidColoringError: Naming two conflicting rows and their shared column.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import check_coloring_rows
        >>> check_coloring_rows(SparsityPattern.from_dense(np.eye(2)), [0, 0])
    """
    colors = as_colors(colors, sparsity.m, "row")
    order = np.lexsort((sparsity.rows, sparsity.cols))
    _check_partial(sparsity.cols[order], sparsity.rows[order], colors, "column", "row")


def check_coloring_symmetric(sparsity: SparsityPattern, colors: Any) -> None:
    """Check a star coloring: every nonzero is directly recoverable.

    Without neutral colors this is the star condition: adjacent vertices differ and no
    path on four vertices is two-colored. A neutral vertex (-1) must have no diagonal
    nonzero and each of its edges must be readable from the other endpoint's color.

    Raises:
        ValueError: If the pattern is not square.
        InvalidColoringError: Naming the violating pair or two-colored path.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import check_coloring_symmetric
        >>> path = np.eye(4) + np.eye(4, k=1) + np.eye(4, k=-1)
        >>> check_coloring_symmetric(SparsityPattern.from_dense(path), [0, 1, 0, 1])
        Traceback (most recent call last):
        ...
        asdex._pattern.InvalidColoringError: Path 0 - 1 - 2 - 3 is two-colored (colors 0, 1): not a star coloring; the nonzero (1, 2) is not directly recoverable.
    """  # noqa: E501
    graph = symmetric_graph(sparsity)
    star_hubs(graph, as_colors(colors, graph.n, "vertex"))


def check_coloring_acyclic(sparsity: SparsityPattern, colors: Any) -> None:
    """Check an acyclic coloring: every nonzero is recoverable by substitution.

    Adjacent vertices must differ, and every two-colored subgraph must be a forest
    (no cycle uses only two colors). Neutral vertices are handled as in
    `check_coloring_symmetric`.

    Raises:
        ValueError: If the pattern is not square.
        InvalidColoringError: Naming the violating pair or an edge of a two-colored cycle.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import check_coloring_acyclic
        >>> cycle = np.eye(4) + np.roll(np.eye(4), 1, 1) + np.roll(np.eye(4), -1, 1)
        >>> check_coloring_acyclic(SparsityPattern.from_dense(cycle), [0, 1, 0, 2])
    """
    graph = symmetric_graph(sparsity)
    colors = as_colors(colors, graph.n, "vertex")
    neutral_diag = graph.diag_vertices[colors[graph.diag_vertices] < 0]
    if neutral_diag.size:
        raise InvalidColoringError(
            f"Vertex {neutral_diag[0]} has a diagonal nonzero but the neutral color -1."
        )
    same = np.flatnonzero((colors[graph.edge_lo] == colors[graph.edge_hi])
                          & (colors[graph.edge_lo] >= 0))
    if same.size:
        i, j = graph.edge_lo[same[0]], graph.edge_hi[same[0]]
        raise InvalidColoringError(f"Adjacent vertices {i} and {j} share color {colors[i]}.")
    substitution_levels(graph, colors)
