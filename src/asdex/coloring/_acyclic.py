"""Acyclic coloring and its substitution decompression.

Gebremedhin, Tarafdar, Manne, Pothen (SISC 2007), Section 3: a distance-1 coloring in
which every cycle uses at least three colors, so that each two-colored subgraph is a
forest. The greedy algorithm keeps those forests in a disjoint-set structure over the
edges; vertex `v` may not take the color `b` of a vertex `x` two steps away when two
different neighbors of `v` reach the same two-colored tree (that would close a cycle).

Decompression (the paper's Section 5, substitution): in a two-colored tree, the
compressed entry `B[v, colors[u]]` is the sum of the tree edges at `v`. Peeling the
trees leaf by leaf recovers every edge; all leaves of one round form one level.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from asdex._pattern import InvalidColoringError
from asdex._plan import DecompressionSchedule
from asdex.coloring._graph import SymmetricGraph
from asdex.coloring._schedule import direct_level, make_level, make_schedule


@numba.njit(cache=True, nogil=True)
def _find(parent, e):  # pragma: no cover - compiled
    while parent[e] != e:
        parent[e] = parent[parent[e]]
        e = parent[e]
    return e


@numba.njit(cache=True, nogil=True)
def _union(parent, size, e, f):  # pragma: no cover - compiled
    r, s = _find(parent, e), _find(parent, f)
    if r == s:
        return
    if size[r] < size[s]:
        r, s = s, r
    parent[s] = r
    size[r] += size[s]


@numba.njit(cache=True, nogil=True)
def _acyclic_kernel(indptr, indices, edge_of, num_edges, order):  # pragma: no cover
    n = indptr.size - 1
    colors = np.full(n, -1, dtype=np.int32)
    forbidden = np.full(n + 1, -1, dtype=np.int64)
    parent = np.arange(num_edges)
    size = np.ones(num_edges, dtype=np.int64)
    visit_v = np.full(num_edges, -1, dtype=np.int64)
    visit_w = np.full(num_edges, -1, dtype=np.int64)
    first_stamp = np.full(n + 1, -1, dtype=np.int64)
    first_edge = np.zeros(n + 1, dtype=np.int64)
    for v in order:
        for p in range(indptr[v], indptr[v + 1]):
            a = colors[indices[p]]
            if a >= 0:
                forbidden[a] = v
        for p in range(indptr[v], indptr[v + 1]):
            w = indices[p]
            if colors[w] < 0:
                continue
            for q in range(indptr[w], indptr[w + 1]):
                x = indices[q]
                b = colors[x]
                if x == v or b < 0 or forbidden[b] == v:
                    continue
                t = _find(parent, edge_of[q])
                if visit_v[t] != v:
                    visit_v[t] = v
                    visit_w[t] = w
                elif visit_w[t] != w:
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
            for q in range(indptr[w], indptr[w + 1]):
                x = indices[q]
                if x != v and colors[x] == c:
                    _union(parent, size, e, edge_of[q])
            if first_stamp[a] == v:
                _union(parent, size, e, first_edge[a])
            else:
                first_stamp[a] = v
                first_edge[a] = e
    return colors


def acyclic_kernel(graph: SymmetricGraph, order: NDArray[np.int64]) -> NDArray[np.int32]:
    """Acyclically color `graph`, visiting vertices in `order`.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring._graph import symmetric_graph
        >>> dense = np.eye(4) + np.eye(4, k=1) + np.eye(4, k=-1)
        >>> acyclic_kernel(symmetric_graph(SparsityPattern.from_dense(dense)),
        ...                np.arange(4)).tolist()
        [0, 1, 0, 1]
    """
    return _acyclic_kernel(graph.indptr, graph.indices, graph.edge_of, graph.num_edges, order)


@numba.njit(cache=True, nogil=True)
def _peel(node_ptr, node_entries, node_of_entry, mate, edge_of, blocked, num_edges):
    num_nodes = node_ptr.size - 1
    remaining = np.diff(node_ptr)
    level = np.full(num_edges, -1, dtype=np.int64)
    reader = np.full(num_edges, -1, dtype=np.int64)
    frontier = np.empty(num_nodes, dtype=np.int64)
    following = np.empty(num_nodes, dtype=np.int64)
    size = 0
    for node in range(num_nodes):
        if remaining[node] == 1 and not blocked[node]:
            frontier[size] = node
            size += 1
    rnd = 0
    while size:
        nsize = 0
        for i in range(size):
            node = frontier[i]
            if remaining[node] != 1:
                continue
            for k in range(node_ptr[node], node_ptr[node + 1]):
                p = node_entries[k]
                e = edge_of[p]
                if level[e] < 0:
                    level[e] = rnd
                    reader[e] = p
                    remaining[node] = 0
                    other = node_of_entry[mate[p]]
                    remaining[other] -= 1
                    if remaining[other] == 1 and not blocked[other]:
                        following[nsize] = other
                        nsize += 1
                    break
        frontier, following = following, frontier
        size = nsize
        rnd += 1
    return level, reader


def _nodes(graph: SymmetricGraph, colors: NDArray[np.int32]):
    """Group adjacency entries by (vertex, neighbor color): the vertices of the trees."""
    src = np.repeat(np.arange(graph.n, dtype=np.int64), np.diff(graph.indptr))
    neighbor_color = colors[graph.indices].astype(np.int64)
    node_entries = np.lexsort((neighbor_color, src))
    keys = src[node_entries] * (graph.n + 2) + neighbor_color[node_entries] + 1
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else keys
    node_ptr = np.r_[starts, keys.size].astype(np.int64)
    node_of_entry = np.empty(keys.size, dtype=np.int64)
    node_of_entry[node_entries] = np.repeat(np.arange(starts.size), np.diff(node_ptr))
    entry_of_edge = np.full((graph.num_edges, 2), -1, dtype=np.int64)
    is_lo = src == graph.edge_lo[graph.edge_of]
    entry_of_edge[graph.edge_of[is_lo], 0] = np.flatnonzero(is_lo)
    entry_of_edge[graph.edge_of[~is_lo], 1] = np.flatnonzero(~is_lo)
    mate = np.where(is_lo, entry_of_edge[graph.edge_of, 1], entry_of_edge[graph.edge_of, 0])
    blocked = neighbor_color[node_entries[starts]] < 0 if keys.size else np.zeros(0, bool)
    return src, node_ptr, node_entries, node_of_entry, mate, blocked


def substitution_levels(
    graph: SymmetricGraph, colors: NDArray[np.int32]
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Peel the two-colored trees: the level and reading entry of every edge.

    Returns:
        `(level, reader, node_of_entry, src)`: per edge, its level and the adjacency
        entry `v → u` whose node reads it (from `B[v, colors[u]]`); per adjacency entry,
        its node (a vertex in one tree) and its source vertex `v`.

    Raises:
        InvalidColoringError: If some edge cannot be recovered by substitution.
    """
    src, node_ptr, node_entries, node_of_entry, mate, blocked = _nodes(graph, colors)
    level, reader = _peel(node_ptr, node_entries, node_of_entry, mate, graph.edge_of,
                          blocked, graph.num_edges)
    missing = np.flatnonzero(level < 0)
    if missing.size:
        e = missing[0]
        raise InvalidColoringError(
            f"Edge ({graph.edge_lo[e]}, {graph.edge_hi[e]}) cannot be recovered by "
            f"substitution with colors ({colors[graph.edge_lo[e]]}, "
            f"{colors[graph.edge_hi[e]]}): its two-colored subgraph is not a forest "
            "or reads a neutral color."
        )
    return level, reader, node_of_entry, src


def acyclic_schedule(
    graph: SymmetricGraph, colors: NDArray[np.int32], nnz: int, num_colors: int
) -> DecompressionSchedule:
    """Substitution schedule of an acyclic coloring: one level per peeling round.

    Raises:
        InvalidColoringError: If a diagonal nonzero has a neutral vertex, or an edge
            cannot be recovered by substitution.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring._graph import symmetric_graph
        >>> dense = np.eye(4) + np.eye(4, k=1) + np.eye(4, k=-1)
        >>> g = symmetric_graph(SparsityPattern.from_dense(dense))
        >>> acyclic_schedule(g, np.array([0, 1, 0, 1]), 10, 2).num_levels  # diagonal + 2 rounds
        3
    """
    colors = np.asarray(colors, dtype=np.int32)
    if np.any(colors[graph.diag_vertices] < 0):
        v = graph.diag_vertices[np.argmin(colors[graph.diag_vertices])]
        raise InvalidColoringError(f"Vertex {v} has a diagonal nonzero but a neutral color.")
    level, reader, node_of_entry, src = substitution_levels(graph, colors)
    # subtractions: the other entries of the reading node
    read_by_node = np.full(node_of_entry.max(initial=-1) + 1, -1, dtype=np.int64)
    read_by_node[node_of_entry[reader]] = np.arange(graph.num_edges)
    owner = read_by_node[node_of_entry]
    sub = (owner >= 0) & (graph.edge_of != owner)
    sub_edge, sub_of = graph.edge_of[sub], owner[sub]
    b_rows = src[reader]
    b_cols = colors[graph.indices[reader]]
    levels = [direct_level(graph.diag_pos, graph.diag_vertices, colors[graph.diag_vertices])]
    by_level = np.argsort(level, kind="stable")
    bounds = np.searchsorted(level[by_level], np.arange(level.max(initial=-1) + 2))
    # within a level, targets and their subtractions both follow the edge ids
    sub_order = np.lexsort((sub_of, level[sub_of]))
    sub_bounds = np.searchsorted(level[sub_of][sub_order], np.arange(level.max(initial=-1) + 2))
    sub_counts = np.bincount(sub_of, minlength=graph.num_edges)
    for r in range(bounds.size - 1):
        edges = by_level[bounds[r]:bounds[r + 1]]
        subs = sub_order[sub_bounds[r]:sub_bounds[r + 1]]
        levels.append(make_level(graph.edge_pos[edges], b_rows[edges], b_cols[edges],
                                 np.r_[0, np.cumsum(sub_counts[edges])],
                                 graph.edge_pos[sub_edge[subs]]))
    has_mirror = graph.mirror_pos >= 0
    return make_schedule(levels, nnz, (graph.n, num_colors),
                         graph.mirror_pos[has_mirror], graph.edge_pos[has_mirror])
