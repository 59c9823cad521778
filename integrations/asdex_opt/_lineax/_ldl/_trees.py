"""Elimination trees, postorders, column counts and supernodes (numba kernels).

Liu, "The role of elimination trees in sparse factorization" (SIMAX 1990) and Davis,
"Direct Methods for Sparse Linear Systems" (SIAM 2006), chapter 4. The kernels work
either on the symmetric adjacency of the pattern and an elimination order
(``indptr``, ``indices``, ``order``: no permuted copy is made), or on the strictly
lower triangle of the permuted pattern stored by rows (``rowptr``, ``colidx``: row
``i`` holds the columns ``j < i`` of its entries).
"""

import numba
import numpy as np

__all__ = [
    "amalgamate",
    "envelope",
    "lower_entries",
    "permuted_entries",
    "permuted_lower",
    "postorder",
    "sort_in_place",
    "structures",
    "tree_and_counts",
]


@numba.njit(cache=True)
def _inverse(order):
    inverse = np.empty(order.size, np.int64)
    for k in range(order.size):
        inverse[order[k]] = k
    return inverse


@numba.njit(cache=True, nogil=True)
def tree_and_counts(indptr, indices, order, limit):
    """Elimination tree and column counts of the graph eliminated in ``order``.

    The tree comes from Liu's algorithm with path compression; the column counts from
    the row subtrees' skeletons (Gilbert, Ng & Peyton 1994): column ``j`` of ``L`` has
    one entry per row subtree that holds ``j``, and a row subtree is the union of the
    tree paths from its leaves up to its row. Adding ``+1`` at each leaf, ``-1`` at the
    least common ancestor of each two leaves consecutive in a postorder and ``-1`` above
    the row, the sum over ``j``'s subtree counts the row subtrees through ``j``. Both
    passes take time about linear in the pattern's entries, not in ``nnz(L)``. The
    numbering is the order's (``parent[k] > k``), not a postorder.

    Args:
        indptr: Row pointers of the symmetric adjacency (no diagonal).
        indices: Its column indices.
        order: Vertex ``order[k]`` is eliminated ``k``-th.
        limit: The pass counts as incomplete when the scalar updates (see
            `update_count`) exceed this.

    Returns:
        ``(parent, count, complete)``: the tree (``-1`` for roots), the nonzeros of
        each column of ``L`` (diagonal included), and whether the updates stay within
        ``limit``.
    """
    n = order.size
    inverse = _inverse(order)
    parent = np.full(n, -1, np.int64)
    ancestor = np.full(n, -1, np.int64)
    for i in range(n):
        v = order[i]
        for k in range(indptr[v], indptr[v + 1]):
            r = inverse[indices[k]]
            if r >= i:
                continue
            while ancestor[r] != -1 and ancestor[r] != i:
                t = ancestor[r]
                ancestor[r] = i
                r = t
            if ancestor[r] == -1:
                ancestor[r] = i
                parent[r] = i
    post = postorder(parent)
    # first[j]: the least postorder rank in j's subtree; delta: the skeletons' marks.
    rank = np.empty(n, np.int64)
    first = np.full(n, -1, np.int64)
    delta = np.zeros(n, np.int64)
    for p in range(n):
        j = post[p]
        rank[j] = p
        if first[j] == -1:
            delta[j] = 1  # a leaf of the tree: its own row subtree is just itself
        while j != -1 and first[j] == -1:
            first[j] = p
            j = parent[j]
    last = np.full(n, -1, np.int64)  # rank of the row's latest entry seen
    leaf = np.full(n, -1, np.int64)  # the row's latest leaf
    for j in range(n):
        ancestor[j] = j
    for p in range(n):
        j = post[p]
        if parent[j] >= 0:
            delta[parent[j]] -= 1
        v = order[j]
        for k in range(indptr[v], indptr[v + 1]):
            i = inverse[indices[k]]
            if i <= j:
                continue
            if last[i] < first[j]:  # nothing of row i in j's subtree: j is a leaf of it
                delta[j] += 1
                q = leaf[i]
                if q != -1:
                    while ancestor[q] != q:
                        q = ancestor[q]
                    r = leaf[i]
                    while r != q:
                        t = ancestor[r]
                        ancestor[r] = q
                        r = t
                    delta[q] -= 1
                leaf[i] = j
            last[i] = p
        if parent[j] >= 0:
            ancestor[j] = parent[j]
    updates = 0
    for p in range(n):
        j = post[p]
        if parent[j] >= 0:
            delta[parent[j]] += delta[j]
        updates += delta[j] * (delta[j] - 1) // 2
    return parent, delta, updates <= limit


def lower_entries(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The stored entries in range on or below the diagonal: ``(3, E)`` row, column, place.

    The place is the entry's position in ``rows``; the type is ``int32`` where every
    value fits, else ``int64``.

    Examples:
        >>> import numpy as np
        >>> lower_entries(3, np.array([0, 0, 2, 5]), np.array([0, 1, 1, 0])).tolist()
        [[0, 2], [0, 1], [0, 2]]
    """
    narrow = max(n, rows.size) < 2**31
    out = np.empty((3, _lower_count(n, rows, cols)), np.int32 if narrow else np.int64)
    return _fill_lower(n, rows, cols, out)


@numba.njit(cache=True, nogil=True)
def _lower_count(n, rows, cols):
    count = 0
    for k in range(rows.size):
        if 0 <= cols[k] <= rows[k] < n:
            count += 1
    return count


@numba.njit(cache=True, nogil=True)
def _fill_lower(n, rows, cols, out):
    e = 0
    for k in range(rows.size):
        if 0 <= cols[k] <= rows[k] < n:
            out[0, e], out[1, e], out[2, e] = rows[k], cols[k], k
            e += 1
    return out


@numba.njit(cache=True)
def permuted_entries(order, rows, cols):
    """Row and column of each entry ``(rows, cols)`` after the permutation, lower triangle.

    Returns:
        ``(i, j)`` with ``i >= j``: the entry's place in the matrix permuted by ``order``
        (variable ``order[k]`` becomes ``k``), mirrored below the diagonal.
    """
    inverse = _inverse(order)
    i = np.empty(rows.size, np.int64)
    j = np.empty(rows.size, np.int64)
    for k in range(rows.size):
        a, b = inverse[rows[k]], inverse[cols[k]]
        i[k], j[k] = max(a, b), min(a, b)
    return i, j


@numba.njit(cache=True)
def permuted_lower(indptr, indices, order):
    """The strictly lower triangle of the permuted pattern by rows (``rowptr``, ``colidx``).

    Columns are sorted within each row.
    """
    n = order.size
    inverse = _inverse(order)
    rowptr = np.zeros(n + 1, np.int64)
    for i in range(n):
        v = order[i]
        below = 0
        for k in range(indptr[v], indptr[v + 1]):
            if inverse[indices[k]] < i:
                below += 1
        rowptr[i + 1] = rowptr[i] + below
    colidx = np.empty(rowptr[n], np.int64)
    for i in range(n):
        v = order[i]
        fill = rowptr[i]
        for k in range(indptr[v], indptr[v + 1]):
            j = inverse[indices[k]]
            if j < i:
                colidx[fill] = j
                fill += 1
        sort_in_place(colidx[rowptr[i] : rowptr[i + 1]])
    return rowptr, colidx


@numba.njit(cache=True)
def envelope(indptr, indices, order):
    """Size of the envelope (profile plus diagonal) of the pattern permuted by ``order``.

    It bounds ``nnz(L)`` from above: fill stays inside the envelope.
    """
    n = order.size
    inverse = _inverse(order)
    total = n
    for i in range(n):
        v = order[i]
        first = i
        for k in range(indptr[v], indptr[v + 1]):
            first = min(first, inverse[indices[k]])
        total += i - first
    return total


@numba.njit(cache=True)
def postorder(parent):
    """A postorder of the forest ``parent``: ``order[k]`` is the ``k``-th node visited.

    Children are visited in increasing order, roots too.
    """
    n = parent.size
    head = np.full(n, -1, np.int64)
    nxt = np.full(n, -1, np.int64)
    for j in range(n - 1, -1, -1):
        p = parent[j]
        if p >= 0:
            nxt[j] = head[p]
            head[p] = j
    order = np.empty(n, np.int64)
    stack = np.empty(n, np.int64)
    k = 0
    for root in range(n):
        if parent[root] >= 0:
            continue
        top = 0
        stack[0] = root
        while top >= 0:
            v = stack[top]
            child = head[v]
            if child == -1:
                top -= 1
                order[k] = v
                k += 1
            else:
                head[v] = nxt[child]
                top += 1
                stack[top] = child
    return order


@numba.njit(cache=True)
def amalgamate(parent, count):
    """Supernodes of a postordered elimination tree, relaxed.

    Columns ``j - 1`` and ``j`` share a fundamental-like supernode when ``j`` is the
    parent of ``j - 1`` and their structures agree (``count[j - 1] == count[j] + 1``).
    A child supernode is then merged into its parent when the explicit zeros this adds
    stay small (CHOLMOD's default relaxation: any merge up to 4 columns, up to 16 with
    under 80 % zeros, up to 48 with under 10 %, any size with under 5 %).

    Returns:
        ``(owner, merged)``: for each column its (unmerged) supernode's id, and for
        each supernode id the id of the supernode it ends up in (itself if not merged).
    """
    n = parent.size
    owner = np.empty(n, np.int64)
    first = np.empty(n + 1, np.int64)
    ns = 0
    for j in range(n):
        if j > 0 and parent[j - 1] == j and count[j - 1] == count[j] + 1:
            owner[j] = ns - 1
        else:
            first[ns] = j
            owner[j] = ns
            ns += 1
    first[ns] = n
    cols = np.empty(ns, np.int64)
    below = np.empty(ns, np.int64)
    true_nnz = np.zeros(ns, np.int64)
    sparent = np.full(ns, -1, np.int64)
    for s in range(ns):
        cols[s] = first[s + 1] - first[s]
        last = first[s + 1] - 1
        below[s] = count[last] - 1
        for j in range(first[s], first[s + 1]):
            true_nnz[s] += count[j]
        if parent[last] >= 0:
            sparent[s] = owner[parent[last]]
    merged = np.arange(ns)
    # Children come before parents: merge each child into its parent when it pays.
    for c in range(ns):
        p = sparent[c]
        if p < 0:
            continue
        t = cols[c] + cols[p]
        entries = t * (t + 1) // 2 + t * below[p]
        zeros = 1.0 - (true_nnz[c] + true_nnz[p]) / entries
        if t <= 4 or (t <= 16 and zeros < 0.8) or (t <= 48 and zeros < 0.1) or zeros < 0.05:
            merged[c] = p
            cols[p] = t
            true_nnz[p] += true_nnz[c]
    for s in range(ns - 1, -1, -1):  # parents come after children
        merged[s] = merged[merged[s]]
    return owner, merged


@numba.njit(cache=True)
def structures(first, indptr, indices, order, sparent):
    """Row structure below the diagonal block of each supernode (sorted).

    A supernode's rows are its own columns' entries below it (sorted) and the rows of
    its children's structures below it, each child's already sorted: the runs are
    merged, not sorted again.

    Args:
        first: ``(ns + 1,)`` first column of each supernode (columns are contiguous and
            supernodes come in a topological order, children first).
        indptr: Row pointers of the symmetric adjacency (no diagonal).
        indices: Its column indices.
        order: Vertex ``order[k]`` is eliminated ``k``-th (column ``k``).
        sparent: Parent supernode of each supernode (``-1`` for roots).

    Returns:
        ``(ptr, rows)``: supernode ``s`` has the rows ``rows[ptr[s]:ptr[s + 1]]``.
    """
    ns = first.size - 1
    n = order.size
    inverse = _inverse(order)
    head = np.full(ns, -1, np.int64)
    nxt = np.full(ns, -1, np.int64)
    for s in range(ns - 1, -1, -1):
        p = sparent[s]
        if p >= 0:
            nxt[s] = head[p]
            head[p] = s
    mark = np.full(n, -1, np.int64)
    ptr = np.zeros(ns + 1, np.int64)
    rows = np.empty(max(16, indices.size), np.int64)
    spare = np.empty(16, np.int64)
    bounds = np.empty(ns + 2, np.int64)  # the sorted runs, as offsets from the start
    size = 0
    for s in range(ns):
        last = first[s + 1] - 1
        start = size
        for j in range(first[s], first[s + 1]):
            v = order[j]
            for k in range(indptr[v], indptr[v + 1]):
                i = inverse[indices[k]]
                if i > last and mark[i] != s:
                    mark[i] = s
                    if size == rows.size:
                        rows = _grow(rows)
                    rows[size] = i
                    size += 1
        sort_in_place(rows[start:size])
        bounds[0] = 0
        runs = 0
        if size > start:
            runs = 1
            bounds[1] = size - start
        c = head[s]
        while c != -1:
            for k in range(ptr[c], ptr[c + 1]):
                i = rows[k]
                if i > last and mark[i] != s:
                    mark[i] = s
                    if size == rows.size:
                        rows = _grow(rows)
                    rows[size] = i
                    size += 1
            if size - start > bounds[runs]:
                runs += 1
                bounds[runs] = size - start
            c = nxt[c]
        if runs > 1:
            if spare.size < size - start:
                spare = np.empty(2 * (size - start), np.int64)
            _merge_runs(rows[start:size], spare, bounds, runs)
        ptr[s + 1] = size
    return ptr, rows[:size].copy()


@numba.njit(cache=True)
def _merge_runs(values, spare, bounds, runs):
    """Sort ``values``, made of ``runs`` sorted runs ``values[bounds[r]:bounds[r + 1]]``.

    Pairs of runs are merged, pass after pass, through ``spare``; ``bounds`` is
    overwritten.
    """
    while runs > 1:
        merged = 0
        for r in range(0, runs, 2):
            a, b = bounds[r], bounds[r + 1]
            end = bounds[r + 2] if r + 1 < runs else b
            i, j, out = a, b, a
            while i < b and j < end:
                if values[i] <= values[j]:
                    spare[out] = values[i]
                    i += 1
                else:
                    spare[out] = values[j]
                    j += 1
                out += 1
            while i < b:
                spare[out] = values[i]
                i += 1
                out += 1
            while j < end:
                spare[out] = values[j]
                j += 1
                out += 1
            bounds[merged] = a
            merged += 1
        bounds[merged] = bounds[runs]
        values[:] = spare[: values.size]
        runs = merged


@numba.njit(cache=True)
def _grow(rows):
    bigger = np.empty(2 * rows.size, np.int64)
    bigger[: rows.size] = rows
    return bigger


@numba.njit(cache=True)
def sort_in_place(values):
    """Sort an integer array in place (heapsort, which numba compiles faster than ``np.sort``)."""
    n = values.size
    for root in range(n // 2 - 1, -1, -1):
        _sift(values, root, n)
    for end in range(n - 1, 0, -1):
        values[0], values[end] = values[end], values[0]
        _sift(values, 0, end)


@numba.njit(cache=True)
def _sift(values, root, end):
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and values[child] < values[child + 1]:
            child += 1
        if values[root] >= values[child]:
            return
        values[root], values[child] = values[child], values[root]
        root = child
