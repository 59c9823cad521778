"""Star coloring for direct Hessian decompression.

Gebremedhin, Tarafdar, Manne, Pothen (SISC 2007), Algorithm 4.1: a greedy distance-1
coloring that keeps the two-colored stars (the connected components of the subgraph
spanned by two colors) as it goes, so that no path on four vertices is two-colored.
When vertex `v` is colored, a color `b` of a vertex `x` two steps away (`v - w - x`) is
forbidden when either

* `x` is the hub of the star holding edge `{w, x}` (then `v - w - x - y` would be a
  two-colored path), or
* `v` has two colored neighbors with `w`'s color (then `u - v - w - x` would be one).

Afterwards each edge's star is updated in O(1) amortized: `v` joins the star of `w` as
a spoke when `w` already touches `v`'s color, otherwise it becomes the hub of a star of
its own neighbors of `w`'s color.
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np
from numpy.typing import NDArray

from asdex._pattern import InvalidColoringError, StarSet
from asdex._plan import DecompressionSchedule
from asdex.coloring._graph import SymmetricGraph
from asdex.coloring._schedule import direct_level, make_schedule


@numba.njit(cache=True, nogil=True)
def _star_kernel(indptr, indices, edge_of, num_edges, order):  # pragma: no cover - compiled
    n = indptr.size - 1
    colors = np.full(n, -1, dtype=np.int32)
    forbidden = np.full(n + 1, -1, dtype=np.int64)
    count_stamp = np.full(n + 1, -1, dtype=np.int64)
    count = np.zeros(n + 1, dtype=np.int64)
    first_stamp = np.full(n + 1, -1, dtype=np.int64)
    first_edge = np.zeros(n + 1, dtype=np.int64)
    star_of = np.full(num_edges, -1, dtype=np.int64)
    hub = np.full(num_edges, -1, dtype=np.int64)
    num_stars = 0
    for v in order:
        for p in range(indptr[v], indptr[v + 1]):
            a = colors[indices[p]]
            if a >= 0:
                forbidden[a] = v
                if count_stamp[a] != v:
                    count_stamp[a] = v
                    count[a] = 0
                count[a] += 1
        for p in range(indptr[v], indptr[v + 1]):
            w = indices[p]
            a = colors[w]
            if a < 0:
                continue
            several = count[a] >= 2
            for q in range(indptr[w], indptr[w + 1]):
                x = indices[q]
                b = colors[x]
                if x == v or b < 0 or forbidden[b] == v:
                    continue
                if several or hub[star_of[edge_of[q]]] == x:
                    forbidden[b] = v
        c = 0
        while forbidden[c] == v:
            c += 1
        colors[v] = c
        for p in range(indptr[v], indptr[v + 1]):
            w = indices[p]
            a = colors[w]
            if a < 0:
                continue
            e = edge_of[p]
            joined = False
            for q in range(indptr[w], indptr[w + 1]):
                x = indices[q]
                if x != v and colors[x] == c:
                    s = star_of[edge_of[q]]
                    star_of[e] = s
                    hub[s] = w
                    joined = True
                    break
            if joined:
                continue
            if first_stamp[a] == v:
                s = star_of[first_edge[a]]
                star_of[e] = s
                hub[s] = v
            else:
                first_stamp[a] = v
                first_edge[a] = e
                star_of[e] = num_stars
                num_stars += 1
    return colors


def star_kernel(graph: SymmetricGraph, order: NDArray[np.int64]) -> NDArray[np.int32]:
    """Star-color `graph`, visiting vertices in `order`.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring._graph import symmetric_graph
        >>> g = symmetric_graph(SparsityPattern.from_dense(np.ones((3, 3))))
        >>> star_kernel(g, np.arange(3)).tolist()
        [0, 1, 2]
    """
    return _star_kernel(graph.indptr, graph.indices, graph.edge_of, graph.num_edges, order)


@dataclasses.dataclass(frozen=True)
class EdgeColorCounts:
    """For each edge `{lo, hi}`: how many neighbors of each endpoint share the other's color.

    An edge can be read directly from row `lo` of color column `colors[hi]` exactly when
    `lo_count == 1` (then `hi` is the only neighbor of `lo` in that color), and likewise
    from row `hi` when `hi_count == 1`.

    Attributes:
        lo_count: Neighbors of `lo` colored `colors[hi]`, per edge.
        hi_count: Neighbors of `hi` colored `colors[lo]`, per edge.
    """

    lo_count: NDArray[np.int64]
    hi_count: NDArray[np.int64]


def edge_color_counts(graph: SymmetricGraph, colors: NDArray[np.int32]) -> EdgeColorCounts:
    """Count, vectorized, the neighbors of each edge endpoint in the other's color.

    Neutral vertices (color -1) are counted as if each had a color of its own.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring._graph import symmetric_graph
        >>> g = symmetric_graph(SparsityPattern.from_dense(np.ones((3, 3)) - np.eye(3)))
        >>> edge_color_counts(g, np.array([0, 1, 1])).lo_count.tolist()
        [2, 2, 1]
    """
    n = graph.n
    unique = np.where(colors >= 0, colors.astype(np.int64), n + np.arange(n))
    src = np.repeat(np.arange(n, dtype=np.int64), np.diff(graph.indptr))
    keys = src * (2 * n + 1) + unique[graph.indices]
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    per_entry = counts[inverse]
    lo_count = np.zeros(graph.num_edges, dtype=np.int64)
    hi_count = np.zeros(graph.num_edges, dtype=np.int64)
    is_lo = src == graph.edge_lo[graph.edge_of]
    lo_count[graph.edge_of[is_lo]] = per_entry[is_lo]
    hi_count[graph.edge_of[~is_lo]] = per_entry[~is_lo]
    return EdgeColorCounts(lo_count, hi_count)


def choose_hubs(
    graph: SymmetricGraph, colors: NDArray[np.int32], counts: EdgeColorCounts, economical: bool
) -> NDArray[np.int32]:
    """Pick the hub of each edge's star: the endpoint whose color column is read.

    A nontrivial star has one vertex adjacent to two or more of its spokes: that vertex
    is the hub. A single-edge star may use either endpoint; with `economical=True` the
    choice favors colors that are needed anyway, so that postprocessing can neutralize
    as many colors as possible. Neutral endpoints are never hubs.

    Returns:
        The hub vertex of each edge, or -1 where no endpoint qualifies (invalid coloring).

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring._graph import symmetric_graph
        >>> g = symmetric_graph(SparsityPattern.from_dense(np.ones((2, 2))))
        >>> c = np.array([0, 1])
        >>> choose_hubs(g, c, edge_color_counts(g, c), economical=False).tolist()
        [1]
    """
    lo, hi = graph.edge_lo, graph.edge_hi
    # reading row `lo` at column colors[hi] makes `hi` the hub, and vice versa
    hi_ok = (counts.lo_count == 1) & (colors[hi] >= 0)
    lo_ok = (counts.hi_count == 1) & (colors[lo] >= 0)
    hubs = np.where(hi_ok, hi, np.where(lo_ok, lo, -1)).astype(np.int32)
    free = hi_ok & lo_ok
    if not economical or not free.any():
        return hubs
    needed = np.zeros(int(colors.max()) + 1, dtype=bool)
    needed[colors[hubs[~free & (hubs >= 0)]]] = True
    needed[colors[graph.diag_vertices]] = True
    pending = np.flatnonzero(free)
    while pending.size:
        c_lo, c_hi = colors[lo[pending]], colors[hi[pending]]
        use_hi, use_lo = needed[c_hi], needed[c_lo] & ~needed[c_hi]
        hubs[pending[use_hi]] = hi[pending[use_hi]]
        hubs[pending[use_lo]] = lo[pending[use_lo]]
        pending = pending[~(use_hi | use_lo)]
        if pending.size:
            tally = np.bincount(np.concatenate([colors[lo[pending]], colors[hi[pending]]]),
                                minlength=needed.size)
            needed[int(np.argmax(tally))] = True
    return hubs


def star_set_from_hubs(graph: SymmetricGraph, colors: NDArray[np.int32],
                       hubs: NDArray[np.int32]) -> StarSet:
    """Group edges into stars: one star per hub and spoke color.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring._graph import symmetric_graph
        >>> g = symmetric_graph(SparsityPattern.from_dense(np.ones((2, 2))))
        >>> star_set_from_hubs(g, np.array([0, 1]), np.array([1])).num_stars
        1
    """
    spokes = np.where(hubs == graph.edge_lo, graph.edge_hi, graph.edge_lo)
    keys = hubs.astype(np.int64) * (int(colors.max(initial=0)) + 1) + colors[spokes]
    _, star_ids = np.unique(keys, return_inverse=True)
    return StarSet(
        edge_rows=graph.edge_lo.copy(),
        edge_cols=graph.edge_hi.copy(),
        hubs=hubs.astype(np.int32),
        star_ids=star_ids.astype(np.int32).reshape(-1),
    )


def star_hubs(graph: SymmetricGraph, colors: NDArray[np.int32], economical: bool = False
              ) -> NDArray[np.int32]:
    """Hubs of a star coloring, checking that every nonzero is directly recoverable.

    Raises:
        InvalidColoringError: If a diagonal nonzero has a neutral vertex, or an edge can
            be read from neither endpoint's color column.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring._graph import symmetric_graph
        >>> star_hubs(symmetric_graph(SparsityPattern.from_dense(np.ones((2, 2)))),
        ...           np.array([0, 1])).tolist()
        [1]
    """
    neutral_diag = graph.diag_vertices[colors[graph.diag_vertices] < 0]
    if neutral_diag.size:
        raise InvalidColoringError(
            f"Vertex {neutral_diag[0]} has a diagonal nonzero but the neutral color -1."
        )
    same = np.flatnonzero((colors[graph.edge_lo] == colors[graph.edge_hi])
                          & (colors[graph.edge_lo] >= 0))
    if same.size:
        i, j = graph.edge_lo[same[0]], graph.edge_hi[same[0]]
        raise InvalidColoringError(
            f"Adjacent vertices {i} and {j} share color {colors[i]}."
        )
    counts = edge_color_counts(graph, colors)
    hubs = choose_hubs(graph, colors, counts, economical)
    bad = np.flatnonzero(hubs < 0)
    if bad.size:
        e = bad[0]
        i, j = int(graph.edge_lo[e]), int(graph.edge_hi[e])
        if counts.lo_count[e] >= 2 and counts.hi_count[e] >= 2:
            nbrs_i = graph.indices[graph.indptr[i]:graph.indptr[i + 1]]
            nbrs_j = graph.indices[graph.indptr[j]:graph.indptr[j + 1]]
            x = nbrs_i[(colors[nbrs_i] == colors[j]) & (nbrs_i != j)][0]
            y = nbrs_j[(colors[nbrs_j] == colors[i]) & (nbrs_j != i)][0]
            raise InvalidColoringError(
                f"Path {x} - {i} - {j} - {y} is two-colored (colors {colors[x]}, "
                f"{colors[i]}): not a star coloring; the nonzero ({i}, {j}) is not "
                "directly recoverable."
            )
        raise InvalidColoringError(
            f"The nonzero ({i}, {j}) cannot be read from a non-neutral color column "
            f"(colors {colors[i]}, {colors[j]})."
        )
    return hubs


def star_schedule(
    graph: SymmetricGraph, colors: NDArray[np.int32], hubs: NDArray[np.int32], nnz: int,
    num_colors: int,
) -> DecompressionSchedule:
    """Direct schedule of a star coloring: `H[spoke, hub] = B[spoke, colors[hub]]`.

    Args:
        graph: The adjacency graph of the colored pattern.
        colors: The star coloring.
        hubs: The hub of each edge of `graph` (a `StarSet`'s `hubs`, or `star_hubs`).
        nnz: Number of nonzeros of the colored pattern.
        num_colors: Number of colors, the columns of `B`.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring._graph import symmetric_graph
        >>> g = symmetric_graph(SparsityPattern.from_dense(np.ones((2, 2))))
        >>> star_schedule(g, np.array([0, 1]), np.array([1]), 4, 2).levels[0].b_cols.tolist()
        [0, 1, 1]
    """
    colors = np.asarray(colors, dtype=np.int32)
    hubs = np.asarray(hubs)
    spokes = np.where(hubs == graph.edge_lo, graph.edge_hi, graph.edge_lo)
    level = direct_level(
        np.concatenate([graph.diag_pos, graph.edge_pos]),
        np.concatenate([graph.diag_vertices, spokes]),
        np.concatenate([colors[graph.diag_vertices], colors[hubs]]),
    )
    has_mirror = graph.mirror_pos >= 0
    return make_schedule([level], nnz, (graph.n, num_colors),
                         graph.mirror_pos[has_mirror], graph.edge_pos[has_mirror])
