"""Symmetric colorings of Hessian patterns: star (direct) and acyclic (substitution)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from asdex._pattern import SparsityPattern, StarSet, as_pattern
from asdex.coloring._acyclic import acyclic_kernel, substitution_levels
from asdex.coloring._check import as_colors, check_coloring_acyclic
from asdex.coloring._graph import SymmetricGraph, symmetric_graph
from asdex.coloring._greedy import Order
from asdex.coloring._orders import order_names, vertex_order
from asdex.coloring._star import star_hubs, star_kernel, star_set_from_hubs


def compact(colors: NDArray[np.int32], needed: NDArray[np.bool_]) -> tuple[NDArray[np.int32], int]:
    """Make unneeded colors neutral (-1) and renumber the others `0, 1, ...` in order.

    Examples:
        >>> compact(np.array([0, 1, 2, -1]), np.array([True, False, True]))
        (array([ 0, -1,  1, -1], dtype=int32), 2)
    """
    needed = np.r_[needed, False]  # a guard slot, so that neutral colors index safely
    new_id = np.cumsum(needed) - 1
    safe = np.where(colors >= 0, colors, needed.size - 1)
    return np.where(needed[safe], new_id[safe], -1).astype(np.int32), int(needed.sum())


def _num_colors(colors: NDArray[np.int32]) -> int:
    return int(colors.max()) + 1 if colors.size else 0


def _postprocess_star(graph: SymmetricGraph, colors: NDArray[np.int32]):
    hubs = star_hubs(graph, colors, economical=True)
    needed = np.zeros(_num_colors(colors), dtype=bool)
    needed[colors[hubs]] = True
    needed[colors[graph.diag_vertices]] = True
    return compact(colors, needed)


def _postprocess_acyclic(graph: SymmetricGraph, colors: NDArray[np.int32]):
    _, reader, _, _ = substitution_levels(graph, colors)
    needed = np.zeros(_num_colors(colors), dtype=bool)
    needed[colors[graph.indices[reader]]] = True
    needed[colors[graph.diag_vertices]] = True
    return compact(colors, needed)


def _color_best(
    graph: SymmetricGraph,
    kernel: Callable[[SymmetricGraph, NDArray[np.int64]], NDArray[np.int32]],
    finish: Callable[[SymmetricGraph, NDArray[np.int32]], tuple[NDArray[np.int32], int]],
    order: Order,
    seed: int | None,
) -> tuple[NDArray[np.int32], int]:
    """Run `kernel` for each order, `finish` each result, keep the fewest colors."""
    best: tuple[NDArray[np.int32], int] | None = None
    view = graph.bipartite()
    for name in order_names(order):
        result = finish(graph, kernel(graph, vertex_order(view, name, seed)))
        if best is None or result[1] < best[1]:
            best = result
    assert best is not None
    return best


def _plain(graph: SymmetricGraph, colors: NDArray[np.int32]) -> tuple[NDArray[np.int32], int]:
    return colors, _num_colors(colors)


def star_coloring(
    pattern: SparsityPattern,
    *,
    postprocess: bool,
    forced_colors: Any,
    order: Order,
    seed: int | None,
) -> tuple[SymmetricGraph, NDArray[np.int32], int, NDArray[np.int32]]:
    """`color_symmetric` with its by-products: `(graph, colors, num_colors, hubs)`.

    Examples:
        >>> from asdex import SparsityPattern
        >>> _, colors, k, hubs = star_coloring(SparsityPattern.from_dense(np.ones((2, 2))),
        ...     postprocess=False, forced_colors=None, order="natural", seed=None)
        >>> k, hubs.tolist()
        (2, [1])
    """
    graph = symmetric_graph(pattern)
    finish = _postprocess_star if postprocess else _plain
    if forced_colors is not None:
        colors = as_colors(forced_colors, graph.n, "vertex")
        star_hubs(graph, colors)
        colors, num_colors = finish(graph, colors)
        num_colors = max(num_colors, _num_colors(colors))
    else:
        colors, num_colors = _color_best(graph, star_kernel, finish, order, seed)
    return graph, colors, num_colors, star_hubs(graph, colors)


def acyclic_coloring(
    pattern: SparsityPattern,
    *,
    postprocess: bool,
    forced_colors: Any,
    order: Order,
    seed: int | None,
) -> tuple[SymmetricGraph, NDArray[np.int32], int]:
    """`color_acyclic` with the adjacency graph it colored: `(graph, colors, num_colors)`.

    Examples:
        >>> from asdex import SparsityPattern
        >>> acyclic_coloring(SparsityPattern.from_dense(np.ones((2, 2))), postprocess=False,
        ...                  forced_colors=None, order="natural", seed=None)[2]
        2
    """
    graph = symmetric_graph(pattern)
    finish = _postprocess_acyclic if postprocess else _plain
    if forced_colors is not None:
        colors = as_colors(forced_colors, graph.n, "vertex")
        check_coloring_acyclic(pattern, colors)
        colors, num_colors = finish(graph, colors)
        return graph, colors, max(num_colors, _num_colors(colors))
    colors, num_colors = _color_best(graph, acyclic_kernel, finish, order, seed)
    return graph, colors, num_colors


def color_symmetric(
    sparsity: Any,
    *,
    postprocess: bool = False,
    forced_colors: Any = None,
    order: Order = "largest_first",
    seed: int | None = None,
) -> tuple[NDArray[np.int32], int, StarSet]:
    """Greedy star coloring for direct sparse Hessian decompression.

    Algorithm 4.1 of Gebremedhin, Tarafdar, Manne, Pothen (SISC 2007): a distance-1
    coloring in which every path on four vertices uses at least three colors, so each
    two-colored subgraph is a collection of stars and each off-diagonal nonzero is read
    from the compressed column of its star's hub color.

    Args:
        sparsity: Symmetric pattern of shape `(n, n)` (its union with its transpose is
            colored).
        postprocess: Make colors never used as a hub color (and not needed by a diagonal
            nonzero) neutral (-1), then renumber the rest: fewer HVPs.
        forced_colors: A coloring of shape `(n,)` to check and use instead of computing one.
        order: Vertex order, as for `asdex.coloring.color_cols` (default "largest_first",
            in the adjacency graph).
        seed: Seed for `order="random"`.

    Returns:
        `(colors, num_colors, star_set)`.

    Raises:
        ValueError: If the pattern is not square or `forced_colors` is malformed.
        InvalidColoringError: If `forced_colors` is not a star coloring.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex import color_symmetric
        >>> arrow = np.eye(5); arrow[0] = 1; arrow[:, 0] = 1
        >>> colors, k, stars = color_symmetric(SparsityPattern.from_dense(arrow))
        >>> k, stars.num_stars
        (2, 1)
    """
    graph, colors, num_colors, hubs = star_coloring(
        as_pattern(sparsity), postprocess=postprocess, forced_colors=forced_colors,
        order=order, seed=seed,
    )
    return colors, num_colors, star_set_from_hubs(graph, colors, hubs)


def color_acyclic(
    sparsity: Any,
    *,
    postprocess: bool = False,
    forced_colors: Any = None,
    order: Order = "largest_first",
    seed: int | None = None,
) -> tuple[NDArray[np.int32], int]:
    """Greedy acyclic coloring for sparse Hessians decompressed by substitution.

    Gebremedhin, Tarafdar, Manne, Pothen (SISC 2007), Section 3: a distance-1 coloring
    in which every cycle uses at least three colors. It typically needs far fewer colors
    than a star coloring (half on banded patterns); decompression then solves for the
    nonzeros along the two-colored trees (see `asdex.coloring.schedule`).

    Args:
        sparsity: Symmetric pattern of shape `(n, n)`.
        postprocess: Make colors never read during substitution (and not needed by a
            diagonal nonzero) neutral (-1), then renumber the rest.
        forced_colors: A coloring of shape `(n,)` to check and use instead.
        order: Vertex order, as for `color_symmetric`.
        seed: Seed for `order="random"`.

    Returns:
        `(colors, num_colors)`.

    Raises:
        ValueError: If the pattern is not square or `forced_colors` is malformed.
        InvalidColoringError: If `forced_colors` is not an acyclic coloring.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring import color_acyclic
        >>> band = sum(np.eye(6, k=k) for k in (-2, -1, 0, 1, 2))
        >>> color_acyclic(SparsityPattern.from_dense(band))[1]
        3
    """
    _, colors, num_colors = acyclic_coloring(
        as_pattern(sparsity), postprocess=postprocess, forced_colors=forced_colors,
        order=order, seed=seed,
    )
    return colors, num_colors
