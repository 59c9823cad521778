"""Fill-reducing orderings of a symmetric sparsity pattern, computed on the host.

Nested dissection (George 1973; George & Liu 1978, "automatic nested dissection"):
split the graph by a vertex separator taken from a breadth-first level structure
rooted at a pseudo-peripheral vertex, order both halves recursively and the separator
last. Its elimination trees are shallow (their height grows like the number of
dissection steps, about ``log2 n``, not like ``n``), which is what a level-by-level
factorization needs. Rows and columns of degree above ``max(16, 10 √n)`` are left out
of the dissection and ordered last, as AMD does with dense rows.
"""

import numba
import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from asdex_opt._lineax._ldl._trees import sort_in_place

__all__ = [
    "adjacency",
    "dense_threshold",
    "nested_dissection",
    "reverse_cuthill_mckee",
    "symmetric_adjacency",
]


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
    indptr, indices, mirrored = _adjacency(
        n, np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    )
    data = np.ones(indices.size, np.int8)
    graph = scipy.sparse.csr_matrix((data, indices, indptr), shape=(n, n), copy=False)
    return graph, bool(mirrored)


@numba.njit(cache=True)
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
    indptr = np.zeros(n + 1, np.int64)
    indices = np.empty(ptr[n], np.int64)
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
            indices[size] = w
            size += 1
            sides |= bits
            unmatched |= bits != 3
        indptr[v + 1] = size
    return indptr, indices[:size].copy(), (sides & 2) == 0 or not unmatched


def reverse_cuthill_mckee(graph: scipy.sparse.csr_matrix) -> np.ndarray:
    """SciPy's reverse Cuthill-McKee order of ``graph`` (a profile-reducing candidate)."""
    return np.asarray(
        scipy.sparse.csgraph.reverse_cuthill_mckee(graph, symmetric_mode=True), np.int64
    )


def nested_dissection(graph: scipy.sparse.csr_matrix, leaf_size: int = 32) -> np.ndarray:
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
    n = graph.shape[0]
    degree = np.diff(graph.indptr)
    dense = degree > dense_threshold(n)
    return _dissect(
        graph.indptr.astype(np.int64), graph.indices.astype(np.int64), dense, int(leaf_size)
    )


@numba.njit(cache=True)
def _bfs(indptr, indices, label, current, start, level, queue):
    """Breadth-first levels from ``start`` within the vertices labelled ``current``.

    Writes ``level`` for the vertices reached (the caller resets them) and returns how
    many were reached; ``queue[:count]`` lists them by level.
    """
    level[start] = 0
    queue[0] = start
    head, tail = 0, 1
    while head < tail:
        v = queue[head]
        head += 1
        for k in range(indptr[v], indptr[v + 1]):
            w = indices[k]
            if label[w] == current and level[w] < 0:
                level[w] = level[v] + 1
                queue[tail] = w
                tail += 1
    return tail


@numba.njit(cache=True)
def _reset(level, queue, count):
    for k in range(count):
        level[queue[k]] = -1


@numba.njit(cache=True, nogil=True)
def _dissect(indptr, indices, dense, leaf_size):
    n = indptr.size - 1
    members = np.empty(n, np.int64)
    label = np.full(n, -1, np.int64)
    count = 0
    for v in range(n):
        if not dense[v]:
            members[count] = v
            label[v] = 0
            count += 1
    tail = count
    for v in range(n):
        if dense[v]:
            members[tail] = v
            tail += 1
    level = np.full(n, -1, np.int64)
    queue = np.empty(n, np.int64)
    scratch = np.empty(n, np.int64)
    stack_lo = np.empty(n + 1, np.int64)
    stack_hi = np.empty(n + 1, np.int64)
    top = 0
    if count > 0:
        stack_lo[0], stack_hi[0] = 0, count
        top = 1
    while top > 0:
        top -= 1
        lo, hi = stack_lo[top], stack_hi[top]
        size = hi - lo
        if size <= leaf_size:
            sort_in_place(members[lo:hi])
            for k in range(lo, hi):
                label[members[k]] = -1
            continue
        # Connected components first: each becomes its own piece.
        start = members[lo]
        reached = _bfs(indptr, indices, label, lo, start, level, queue)
        if reached < size:
            _reset(level, queue, reached)
            filled = 0
            first = top
            for k in range(lo, hi):
                v = members[k]
                if level[v] >= 0:
                    continue
                got = _bfs(indptr, indices, label, lo, v, level, queue)
                piece = lo + filled
                for q in range(got):
                    scratch[filled + q] = queue[q]
                filled += got
                stack_lo[top], stack_hi[top] = piece, piece + got
                top += 1
            for k in range(size):
                w = scratch[k]
                members[lo + k] = w
                level[w] = -1
            for t in range(first, top):
                for k in range(stack_lo[t], stack_hi[t]):
                    label[members[k]] = stack_lo[t]
            continue
        # A pseudo-peripheral vertex (George & Liu): restart from the farthest level's
        # vertex of least degree while the eccentricity grows.
        depth = level[queue[reached - 1]]
        for _ in range(1):
            best, best_degree = -1, n + 1
            for q in range(reached - 1, -1, -1):
                w = queue[q]
                if level[w] < depth:
                    break
                d = indptr[w + 1] - indptr[w]
                if d < best_degree:
                    best, best_degree = w, d
            _reset(level, queue, reached)
            reached = _bfs(indptr, indices, label, lo, best, level, queue)
            new_depth = level[queue[reached - 1]]
            if new_depth <= depth:
                depth = new_depth
                break
            depth = new_depth
        if depth < 2:
            _reset(level, queue, reached)
            sort_in_place(members[lo:hi])
            for k in range(lo, hi):
                label[members[k]] = -1
            continue
        widths = np.zeros(depth + 1, np.int64)
        for q in range(reached):
            widths[level[queue[q]]] += 1
        # The narrowest level that leaves at least a quarter of the rest on each side
        # (the most balanced of those), else the median level.
        best_level, best_width, best_imbalance = -1, n + 1, n + 1
        below = widths[0]
        median_level = 1
        for lev in range(1, depth):
            above = size - below - widths[lev]
            rest = size - widths[lev]
            imbalance = abs(below - above)
            if 4 * below >= rest and 4 * above >= rest and (
                widths[lev] < best_width
                or (widths[lev] == best_width and imbalance < best_imbalance)
            ):
                best_level, best_width, best_imbalance = lev, widths[lev], imbalance
            if 2 * below < size:
                median_level = lev
            below += widths[lev]
        if best_level < 0:
            best_level = median_level
        # Separator: the vertices of that level adjacent to the next one; the others
        # join the near side.
        na = 0
        nb = 0
        for q in range(reached):
            w = queue[q]
            if level[w] > best_level:
                nb += 1
            elif level[w] < best_level or not _touches(
                indptr, indices, label, level, lo, w, best_level
            ):
                na += 1
        a_pos, b_pos, s_pos = lo, lo + na, lo + na + nb
        for q in range(reached):
            w = queue[q]
            if level[w] > best_level:
                members[b_pos] = w
                b_pos += 1
            elif level[w] < best_level or not _touches(
                indptr, indices, label, level, lo, w, best_level
            ):
                members[a_pos] = w
                a_pos += 1
            else:
                members[s_pos] = w
                s_pos += 1
        for k in range(lo + na, lo + na + nb):
            label[members[k]] = lo + na
        _reset(level, queue, reached)
        for k in range(lo + na + nb, hi):
            label[members[k]] = -1
        stack_lo[top], stack_hi[top] = lo, lo + na
        top += 1
        stack_lo[top], stack_hi[top] = lo + na, lo + na + nb
        top += 1
    return members


@numba.njit(cache=True)
def _touches(indptr, indices, label, level, current, w, lev):
    for k in range(indptr[w], indptr[w + 1]):
        x = indices[k]
        if label[x] == current and level[x] == lev + 1:
            return True
    return False
