"""Fill-reducing orderings of a symmetric sparsity pattern, computed on the host.

Nested dissection (George 1973; George & Liu 1978, "automatic nested dissection"):
split the graph by a vertex separator taken from a breadth-first level structure
rooted at a pseudo-peripheral vertex, order both halves recursively and the separator
last. Its elimination trees are shallow (their height grows like the number of
dissection steps, about ``log2 n``, not like ``n``), which is what a level-by-level
factorization needs. Rows and columns of degree above ``max(16, 10 √n)`` are left out
of the dissection and ordered last, as AMD does with dense rows.
"""

from typing import NamedTuple

import numba
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from asdex_opt._lineax._ldl._trees import sort_in_place

__all__ = [
    "Adjacency",
    "adjacency",
    "ball",
    "central_vertex",
    "dense_threshold",
    "nested_dissection",
    "pattern_adjacency",
    "reverse_cuthill_mckee",
    "symmetric_adjacency",
]


class Adjacency(NamedTuple):
    """A symmetric adjacency by rows in ``int64`` (no diagonal, no duplicates).

    The orderings read a ``scipy.sparse.csr_matrix`` by the same two fields; this one
    skips SciPy's narrowing of the index arrays to ``int32``.
    """

    indptr: np.ndarray
    indices: np.ndarray


def dense_threshold(n: int) -> float:
    """Degree above which a vertex counts as dense (AMD's default ``10 √n``, at least 16)."""
    return max(16.0, 10.0 * np.sqrt(n))


def adjacency(n: int, rows: np.ndarray, cols: np.ndarray) -> scipy.sparse.csr_matrix:
    """The symmetric adjacency (no diagonal, no duplicates) of the pattern ``(rows, cols)``.

    Entries outside ``[0, n)`` are ignored; each entry stands for itself and its mirror.
    """
    return symmetric_adjacency(n, rows, cols)[0]


def symmetric_adjacency(
    n: int, rows: np.ndarray, cols: np.ndarray
) -> tuple[scipy.sparse.csr_matrix, bool]:
    """Return `adjacency` and whether the pattern is symmetric or its lower triangle.

    Examples:
        >>> import numpy as np
        >>> from asdex_opt._lineax._ldl._ordering import symmetric_adjacency
        >>> graph, mirrored = symmetric_adjacency(3, np.array([1, 2]), np.array([0, 1]))
        >>> graph.indices.tolist(), mirrored
        ([1, 0, 2, 1], True)
        >>> symmetric_adjacency(3, np.array([1, 0]), np.array([0, 2]))[1]  # (0, 2) unmirrored
        False
    """
    graph, mirrored = pattern_adjacency(n, rows, cols)
    return _csr(graph), mirrored


def pattern_adjacency(n: int, rows: np.ndarray, cols: np.ndarray) -> tuple[Adjacency, bool]:
    """`symmetric_adjacency` as an `Adjacency`.

    Examples:
        >>> import numpy as np
        >>> graph, mirrored = pattern_adjacency(3, np.array([1, 2]), np.array([0, 1]))
        >>> graph.indptr.tolist(), mirrored
        ([0, 1, 3, 4], True)
    """
    indptr, indices, mirrored = _adjacency(
        n, np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    )
    return Adjacency(indptr, indices), bool(mirrored)


def _csr(graph) -> scipy.sparse.csr_matrix:
    n = graph.indptr.size - 1
    data = np.ones(graph.indices.size, np.int8)
    return scipy.sparse.csr_matrix((data, graph.indices, graph.indptr), shape=(n, n), copy=False)


@numba.njit(cache=True, nogil=True)
def _adjacency(n, rows, cols):
    """Sorted adjacency lists without duplicates, and whether the pattern is usable.

    Each neighbour is kept with two bits: seen below the diagonal (1), above it (2).
    A pattern with entries above the diagonal is usable when every pair has both bits
    (symmetric); one with none is its lower triangle.
    """
    ptr = np.zeros(n + 1, np.int64)
    for k in range(rows.size):
        r, c = rows[k], cols[k]
        if r != c and 0 <= r < n and 0 <= c < n:
            ptr[r + 1] += 1
            ptr[c + 1] += 1
    for v in range(n):
        ptr[v + 1] += ptr[v]
    fill = ptr[:-1].copy()
    keys = np.empty(ptr[n], np.int64)
    for k in range(rows.size):
        r, c = rows[k], cols[k]
        if r != c and 0 <= r < n and 0 <= c < n:
            side = 1 if r > c else 2
            keys[fill[r]] = 4 * c + side
            fill[r] += 1
            keys[fill[c]] = 4 * r + side
            fill[c] += 1
    # The neighbours overwrite the keys in place (never ahead of the keys still read).
    indptr = np.zeros(n + 1, np.int64)
    size = 0
    sides = 0
    unmatched = False
    for v in range(n):
        sort_in_place(keys[ptr[v] : ptr[v + 1]])
        k = ptr[v]
        while k < ptr[v + 1]:
            w = keys[k] >> 2
            bits = 0
            while k < ptr[v + 1] and keys[k] >> 2 == w:
                bits |= keys[k] & 3
                k += 1
            keys[size] = w
            size += 1
            sides |= bits
            unmatched |= bits != 3
        indptr[v + 1] = size
    return indptr, keys[:size], (sides & 2) == 0 or not unmatched


def reverse_cuthill_mckee(graph: scipy.sparse.csr_matrix | Adjacency) -> np.ndarray:
    """SciPy's reverse Cuthill-McKee order of ``graph`` (a profile-reducing candidate)."""
    return np.asarray(
        scipy.sparse.csgraph.reverse_cuthill_mckee(_csr(graph), symmetric_mode=True), np.int64
    )


def nested_dissection(
    graph: scipy.sparse.csr_matrix | Adjacency, leaf_size: int = 32
) -> np.ndarray:
    """A nested-dissection order of the symmetric ``graph``.

    Args:
        graph: Symmetric adjacency without diagonal (see `adjacency`).
        leaf_size: Pieces of at most this many vertices are not split further.

    Returns:
        ``order``: vertex ``order[k]`` is eliminated ``k``-th.

    Examples:
        >>> import numpy as np
        >>> path = adjacency(7, np.arange(6), np.arange(1, 7))
        >>> order = nested_dissection(path, leaf_size=2)
        >>> int(order[-1])  # the middle vertex separates the path
        3
    """
    indptr = np.asarray(graph.indptr, np.int64)
    dense = np.diff(indptr) > dense_threshold(indptr.size - 1)
    return _dissect(indptr, np.asarray(graph.indices, np.int64), dense, int(leaf_size))


@numba.njit(cache=True)
def _bfs(ptr, adj, start, level, queue):
    """Breadth-first levels from ``start`` within its piece (a compact subgraph).

    Vertex ``v``'s neighbours are ``adj[ptr[v]:ptr[v + 1]]``. Writes ``level`` for the
    vertices reached (the caller resets them) and returns how many were reached;
    ``queue[:count]`` lists them by level.
    """
    level[start] = 0
    queue[0] = start
    head, tail = 0, 1
    while head < tail:
        v = queue[head]
        head += 1
        next_level = level[v] + 1
        for k in range(ptr[v], ptr[v + 1]):
            w = adj[k]
            if level[w] < 0:
                level[w] = next_level
                queue[tail] = w
                tail += 1
    return tail


@numba.njit(cache=True)
def _reset(level, queue, count):
    for k in range(count):
        level[queue[k]] = -1


@numba.njit(cache=True)
def _touches(ptr, adj, level, w, lev):
    """Whether ``w`` has a neighbour at level ``lev + 1``."""
    k, end = ptr[w], ptr[w + 1]
    while k < end and level[adj[k]] != lev + 1:
        k += 1
    return k < end


@numba.njit(cache=True)
def _extract(graph, fresh, vertices, count, new_id, v0, e0):
    """Copy the subgraph of ``vertices[:count]`` into ``fresh`` from vertex ``v0``, edge ``e0``.

    ``graph`` and ``fresh`` are ``(ptr, adj, gid)``. ``new_id`` must hold each listed
    vertex's fresh id and ``-1`` for the other vertices its neighbours may be; the
    neighbours keep their order. Writes ``fresh``'s pointers up to ``v0 + count``
    included and returns the next free edge.
    """
    ptr, adj, gid = graph
    fresh_ptr, fresh_adj, fresh_gid = fresh
    e = e0
    for q in range(count):
        v = vertices[q]
        fresh_ptr[v0 + q] = e
        fresh_gid[v0 + q] = gid[v]
        for k in range(ptr[v], ptr[v + 1]):
            w = new_id[adj[k]]
            if w >= 0:
                fresh_adj[e] = w
                e += 1
    fresh_ptr[v0 + count] = e
    return e


@numba.njit(cache=True)
def _leaf(gid, v0, size, members, out):
    for k in range(size):
        members[out + k] = gid[v0 + k]
    sort_in_place(members[out : out + size])


@numba.njit(cache=True)
def _prepare(indptr, indices, dense):
    """The compact graph of the vertices that are not dense, and the dense ones' places.

    Returns:
        ``(members, degree, (ptr, adj, gid), count)``: the order with the dense
        vertices at its end, each vertex's degree, the graph (``gid``: each compact
        vertex's id in the pattern) and the number of vertices that are not dense.
    """
    n = indptr.size - 1
    members = np.empty(n, np.int64)
    degree = np.empty(n, np.int64)
    local = np.full(n, -1, np.int32)
    count = 0
    for v in range(n):
        degree[v] = indptr[v + 1] - indptr[v]
        if not dense[v]:
            local[v] = count
            count += 1
    tail = count
    for v in range(n):
        if dense[v]:
            members[tail] = v
            tail += 1
    ptr = np.zeros(count + 1, np.int64)
    adj = np.empty(max(indices.size, 1), np.int32)
    gid = np.empty(count, np.int64)
    e = 0
    for v in range(n):
        if local[v] < 0:
            continue
        a = local[v]
        gid[a] = v
        for k in range(indptr[v], indptr[v + 1]):
            w = local[indices[k]]
            if w >= 0:
                adj[e] = w
                e += 1
        ptr[a + 1] = e
    return members, degree, (ptr, adj, gid), count


@numba.njit(cache=True)
def _split(graph, fresh, scratch, degree, members, pieces, leaf_size, children):
    """Split the pieces of one level of the dissection.

    Each piece is a compact subgraph: its vertices ``v0:v0 + size`` numbered in the
    order the searches of its parent placed them, its edges only, its place in the
    order from ``lo`` (``pieces`` holds ``(v0, size, lo)`` by rows). Its parts go to
    ``fresh`` within the piece's own vertex range, their edges after those of the
    level's pieces before it. A piece of
    at most ``leaf_size`` vertices, or too shallow to cut, is ordered as it is; one
    that is not connected becomes one piece per component; any other is cut by a
    separator from a breadth-first level structure rooted at a pseudo-peripheral
    vertex, the separator ordered after both sides.

    Returns:
        The number of rows written to ``children`` (the next level's pieces).
    """
    ptr, adj, gid = graph
    level, new_id, queue, part, sides = scratch
    n = degree.size
    made = 0
    fe = 0
    for p in range(pieces.shape[0]):
        v0, size, lo = pieces[p, 0], pieces[p, 1], pieces[p, 2]
        if size <= leaf_size:
            _leaf(gid, v0, size, members, lo)
            continue
        fv = v0
        queue_p = queue[v0 : v0 + size]
        reached = _bfs(ptr, adj, v0, level, queue_p)
        if reached < size:
            # Connected components: each becomes its own piece.
            _reset(level, queue_p, reached)
            filled = 0
            for v in range(v0, v0 + size):
                if level[v] >= 0:
                    continue
                component = queue_p[filled:]
                got = _bfs(ptr, adj, v, level, component)
                for q in range(got):
                    new_id[component[q]] = fv + q
                fe = _extract(graph, fresh, component, got, new_id, fv, fe)
                children[made, 0], children[made, 1], children[made, 2] = fv, got, lo + filled
                made += 1
                fv += got
                filled += got
            for q in range(size):
                level[queue_p[q]] = -1
                new_id[queue_p[q]] = -1
            continue
        # A pseudo-peripheral vertex (George & Liu): restart once from the farthest
        # level's vertex of least degree.
        depth = level[queue_p[reached - 1]]
        best, best_degree = -1, n + 1
        for q in range(reached - 1, -1, -1):
            w = queue_p[q]
            if level[w] < depth:
                break
            d = degree[gid[w]]
            if d < best_degree:
                best, best_degree = w, d
        # The piece is connected from here on: its vertices are v0:v0 + size.
        level[v0 : v0 + size] = -1
        reached = _bfs(ptr, adj, best, level, queue_p)
        depth = level[queue_p[reached - 1]]
        if depth < 2:
            level[v0 : v0 + size] = -1
            _leaf(gid, v0, size, members, lo)
            continue
        widths = np.zeros(depth + 1, np.int64)
        for q in range(reached):
            widths[level[queue_p[q]]] += 1
        # The narrowest level that leaves at least a quarter of the rest on each
        # side (the most balanced of those), else the median level.
        best_level, best_width, best_imbalance = -1, n + 1, n + 1
        below = widths[0]
        median_level = 1
        for lev in range(1, depth):
            above = size - below - widths[lev]
            rest = size - widths[lev]
            imbalance = abs(below - above)
            if (
                4 * below >= rest
                and 4 * above >= rest
                and (
                    widths[lev] < best_width
                    or (widths[lev] == best_width and imbalance < best_imbalance)
                )
            ):
                best_level, best_width, best_imbalance = lev, widths[lev], imbalance
            if 2 * below < size:
                median_level = lev
            below += widths[lev]
        if best_level < 0:
            best_level = median_level
        # Separator: the vertices of that level adjacent to the next one; the others
        # join the near side. part (by place in the queue): 0 near side, 1 far side,
        # 2 separator.
        part_p = part[v0 : v0 + size]
        na = 0
        nb = 0
        for q in range(reached):
            w = queue_p[q]
            lev = level[w]
            if lev > best_level:
                part_p[q] = 1
                nb += 1
            elif lev < best_level or not _touches(ptr, adj, level, w, best_level):
                part_p[q] = 0
                na += 1
            else:
                part_p[q] = 2
        a_list = sides[v0 : v0 + na]
        b_list = sides[v0 + na : v0 + na + nb]
        a_pos, b_pos, s_pos = 0, 0, lo + na + nb
        for q in range(reached):
            w = queue_p[q]
            if part_p[q] == 0:
                new_id[w] = fv + a_pos
                a_list[a_pos] = w
                a_pos += 1
            elif part_p[q] == 1:
                new_id[w] = fv + na + b_pos
                b_list[b_pos] = w
                b_pos += 1
            else:
                members[s_pos] = gid[w]
                s_pos += 1
        fe = _extract(graph, fresh, a_list, na, new_id, fv, fe)
        children[made, 0], children[made, 1], children[made, 2] = fv, na, lo
        made += 1
        fv += na
        fe = _extract(graph, fresh, b_list, nb, new_id, fv, fe)
        children[made, 0], children[made, 1], children[made, 2] = fv, nb, lo + na
        made += 1
        level[v0 : v0 + size] = -1
        new_id[v0 : v0 + size] = -1
    return made


@numba.njit(cache=True, nogil=True)
def _dissect(indptr, indices, dense, leaf_size):
    """The nested-dissection order, one level of pieces at a time (see `_split`)."""
    members, degree, graph, count = _prepare(indptr, indices, dense)
    fresh = (np.empty_like(graph[0]), np.empty_like(graph[1]), np.empty_like(graph[2]))
    scratch = (
        np.full(count, -1, np.int32),
        np.full(count, -1, np.int32),
        np.empty(count, np.int32),
        np.empty(count, np.int32),
        np.empty(count, np.int32),
    )
    pieces = np.zeros((min(count, 1), 3), np.int64)
    if count > 0:
        pieces[0, 1] = count
    while pieces.shape[0] > 0:
        children = np.empty((np.maximum(pieces[:, 1], 2).sum(), 3), np.int64)
        made = _split(graph, fresh, scratch, degree, members, pieces, leaf_size, children)
        pieces = children[:made]
        graph, fresh = fresh, graph
    return members


@numba.njit(cache=True, nogil=True)
def ball(indptr, indices, dense, start, size):
    """The subgraph induced by the first ``size`` vertices a breadth-first search meets.

    The search starts at ``start`` (not dense), skips dense vertices and moves on to the
    first unreached vertex when a component is exhausted.

    Returns:
        ``(vertices, xadj, adj)``: the vertices in the order the search met them, and
        the subgraph's adjacency in that numbering.
    """
    n = indptr.size - 1
    new_id = np.full(n, -1, np.int64)
    queue = np.empty(size, np.int64)
    new_id[start] = 0
    queue[0] = start
    tail = 1
    head = 0
    seed = 0
    while tail < size:
        if head == tail:
            while seed < n and (dense[seed] or new_id[seed] >= 0):
                seed += 1
            if seed == n:
                break
            new_id[seed] = tail
            queue[tail] = seed
            tail += 1
        v = queue[head]
        head += 1
        for k in range(indptr[v], indptr[v + 1]):
            w = indices[k]
            if tail < size and not dense[w] and new_id[w] < 0:
                new_id[w] = tail
                queue[tail] = w
                tail += 1
    xadj = np.zeros(tail + 1, np.int64)
    adj = np.empty(indptr[n], np.int64)
    e = 0
    for a in range(tail):
        v = queue[a]
        for k in range(indptr[v], indptr[v + 1]):
            w = new_id[indices[k]]
            if w >= 0:
                adj[e] = w
                e += 1
        xadj[a + 1] = e
    return queue[:tail].copy(), xadj, adj[:e].copy()


@numba.njit(cache=True, nogil=True)
def central_vertex(indptr, indices, dense):
    """Return a vertex near the middle of the graph.

    It is the middle one of the middle level of a breadth-first search from the first
    vertex that is not dense (dense ones skipped).
    """
    n = indptr.size - 1
    start = 0
    while start < n - 1 and dense[start]:
        start += 1
    level = np.where(dense, n, -1)
    queue = np.empty(n, np.int64)
    tail = _bfs(indptr, indices, start, level, queue)
    middle = level[queue[tail - 1]] // 2
    first = 0
    while level[queue[first]] < middle:
        first += 1
    last = first
    while last < tail and level[queue[last]] == middle:
        last += 1
    return queue[(first + last - 1) // 2]
