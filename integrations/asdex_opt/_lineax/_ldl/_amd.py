r"""Approximate minimum degree ordering (Amestoy, Davis & Duff, SIMAX 1996), in numba.

Minimum degree eliminates, at each step, the variable with the fewest neighbours in
the graph of the remaining Schur complement. The quotient graph holds that graph
implicitly: an eliminated variable becomes an *element* whose neighbours (its
clique) replace it, so memory never grows beyond the original graph. The external
degree of a variable ``i`` adjacent to the new element ``p`` is bounded above by
``|A_i \ L_p| + Σ_e |L_e \ L_p| + |L_p \ i|`` (the approximate degree, computed in
time proportional to the lists scanned). Variables with the same adjacency are
merged into supervariables (found by hashing, eliminated together), variables
adjacent to ``p`` alone are eliminated with it (mass elimination), and elements
whose clique lies inside ``L_p`` are absorbed into it (aggressive absorption).
Rows of degree above `dense_threshold` are ordered last, as in AMD.

Compared with nested dissection, minimum degree fills in far less on irregular
patterns (random couplings, KKT matrices), and more on regular grids.
"""

import numba
import numpy as np
import scipy.sparse

from asdex_opt._lineax._ldl._ordering import Adjacency, dense_threshold

__all__ = ["approximate_minimum_degree"]

_VARIABLE, _ELEMENT, _DEAD = 0, 1, 2


def approximate_minimum_degree(
    graph: scipy.sparse.csr_matrix | Adjacency, limit: int | np.ndarray | None = None
) -> np.ndarray | None:
    """Return an approximate-minimum-degree order of the symmetric ``graph``.

    Args:
        graph: Symmetric adjacency without diagonal (see `adjacency`).
        limit: Give up (return ``None``) once the factorization in this order is known
            to make more than this many scalar updates (see `update_count`); the count
            kept while eliminating leaves the dense rows out, so it never overestimates.
            A one-element ``int64`` array may be lowered by another thread while this
            one runs; the result is then decided by its value at the end.

    Returns:
        ``order``: vertex ``order[k]`` is eliminated ``k``-th; ``None`` past ``limit``.

    Examples:
        >>> import numpy as np
        >>> from asdex_opt._lineax._ldl._ordering import adjacency
        >>> star = adjacency(5, np.zeros(4, np.int64), np.arange(1, 5))
        >>> approximate_minimum_degree(star).tolist()  # leaves first: no fill
        [4, 3, 2, 0, 1]
        >>> print(approximate_minimum_degree(star, limit=-1))
        None
    """
    indptr = np.asarray(graph.indptr, np.int64)
    dense = np.diff(indptr) > dense_threshold(indptr.size - 1)
    if limit is None:
        limit = np.iinfo(np.int64).max
    bound = limit if isinstance(limit, np.ndarray) else np.array([limit], np.int64)
    order, updates = _amd(indptr, np.asarray(graph.indices, np.int64), dense, bound)
    return order if updates <= bound[0] else None


@numba.njit(cache=True)
def _block_updates(pivots, degree):
    """Scalar updates of ``pivots`` columns eliminated together above ``degree`` others.

    Column ``t`` of the block has ``degree + pivots - 1 - t`` entries below its
    diagonal, and ``b`` entries below the diagonal make ``b (b + 1) / 2`` updates.
    """
    top = degree + pivots - 1
    return top * (top + 1) * (top + 2) // 6 - (degree - 1) * degree * (degree + 1) // 6


@numba.njit(cache=True)
def _compact(iw, pe, length, status, size):
    """Copy the live lists (variables and elements) into a new array of ``size``."""
    fresh = np.empty(size, np.int64)
    free = 0
    for v in range(pe.size):
        if status[v] != _DEAD:
            start = pe[v]
            pe[v] = free
            for k in range(length[v]):
                fresh[free + k] = iw[start + k]
            free += length[v]
    return fresh, free


@numba.njit(cache=True, nogil=True)
def _amd(indptr, indices, dense, limit):
    """Return the order and its updates (past ``limit[0]``: a partial order, the count so far)."""
    n = indptr.size - 1
    # Each node's list: a variable's elements (the first ``elen``) then its variables;
    # an element's variables.
    size = 2 * indptr[n] + 4 * n + 64
    iw = np.empty(size, np.int64)
    pe = np.zeros(n, np.int64)
    length = np.zeros(n, np.int64)
    elen = np.zeros(n, np.int64)
    status = np.full(n, _VARIABLE, np.int64)
    nv = np.ones(n, np.int64)
    degree = np.zeros(n, np.int64)
    free = 0
    for v in range(n):
        pe[v] = free
        if dense[v]:
            status[v] = _DEAD
            continue
        for k in range(indptr[v], indptr[v + 1]):
            w = indices[k]
            if not dense[w] and w != v:
                iw[free] = w
                free += 1
        length[v] = free - pe[v]
        degree[v] = length[v]
    # Degree lists.
    head = np.full(n + 1, -1, np.int64)
    nxt = np.full(n, -1, np.int64)
    prv = np.full(n, -1, np.int64)
    remaining = 0
    for v in range(n):
        if status[v] == _VARIABLE:
            remaining += 1
            d = degree[v]
            nxt[v] = head[d]
            if head[d] >= 0:
                prv[head[d]] = v
            head[d] = v
    # Members of each supervariable, as linked lists.
    member_next = np.full(n, -1, np.int64)
    member_last = np.arange(n)
    order = np.empty(n, np.int64)
    placed = 0
    w = np.zeros(n, np.int64)
    wflg = 1
    mark = np.zeros(n, np.int64)
    stamp = 0
    bucket = np.full(n, -1, np.int64)
    bucket_next = np.full(n, -1, np.int64)
    hashes = np.zeros(n, np.int64)
    scratch = np.empty(n, np.int64)
    lp = np.empty(n, np.int64)
    mindeg = 0
    nel = 0
    updates = 0
    while nel < remaining:
        while head[mindeg] < 0:
            mindeg += 1
        p = head[mindeg]
        head[mindeg] = nxt[p]
        if nxt[p] >= 0:
            prv[nxt[p]] = -1
        nvpiv = nv[p]
        nel += nvpiv
        nv[p] = -nvpiv
        # Make room for L_p at the end of iw.
        bound = length[p] - elen[p]
        for k in range(pe[p], pe[p] + elen[p]):
            e = iw[k]
            if status[e] == _ELEMENT:
                bound += length[e]
        if free + bound > iw.size:
            iw, free = _compact(iw, pe, length, status, 2 * (free + bound))
        # L_p: the variables of p's elements and p's own variables; the elements die.
        count = 0
        degme = 0
        for k in range(pe[p], pe[p] + length[p]):
            e = iw[k]
            if k < pe[p] + elen[p]:
                if status[e] != _ELEMENT:
                    continue
                for q in range(pe[e], pe[e] + length[e]):
                    j = iw[q]
                    if status[j] == _VARIABLE and nv[j] > 0:
                        degme += nv[j]
                        nv[j] = -nv[j]
                        lp[count] = j
                        count += 1
                status[e] = _DEAD
            elif status[e] == _VARIABLE and nv[e] > 0:
                degme += nv[e]
                nv[e] = -nv[e]
                lp[count] = e
                count += 1
        start = free
        for q in range(count):
            j = lp[q]
            iw[free] = j
            free += 1
            # Out of its degree list.
            if prv[j] >= 0:
                nxt[prv[j]] = nxt[j]
            else:
                head[degree[j]] = nxt[j]
            if nxt[j] >= 0:
                prv[nxt[j]] = prv[j]
        status[p] = _ELEMENT
        pe[p] = start
        length[p] = count
        elen[p] = 0
        # |L_e \ L_p| for the other elements next to L_p, as w[e] - wflg.
        for q in range(count):
            i = lp[q]
            weight = -nv[i]
            for k in range(pe[i], pe[i] + elen[i]):
                e = iw[k]
                if status[e] == _ELEMENT and e != p:
                    if w[e] < wflg:
                        w[e] = degree[e] + wflg
                    w[e] -= weight
        # Approximate degrees; prune the lists; mass elimination.
        mass = 0
        for q in range(count):
            i = lp[q]
            kept = 0
            partial = 0
            h = p
            for k in range(pe[i], pe[i] + elen[i]):
                e = iw[k]
                if status[e] == _ELEMENT and e != p:
                    outside = w[e] - wflg
                    if outside > 0:
                        partial += outside
                        scratch[kept] = e
                        kept += 1
                        h += e
                    else:
                        status[e] = _DEAD
            elements = kept
            for k in range(pe[i] + elen[i], pe[i] + length[i]):
                j = iw[k]
                if status[j] == _VARIABLE and nv[j] > 0:
                    partial += nv[j]
                    scratch[kept] = j
                    kept += 1
                    h += j
            if partial == 0 and elements == 0:
                weight = -nv[i]
                degme -= weight
                nel += weight
                mass += weight
                nv[i] = 0
                status[i] = _DEAD
                member_next[member_last[p]] = i
                member_last[p] = member_last[i]
                continue
            iw[pe[i]] = p
            for k in range(kept):
                iw[pe[i] + 1 + k] = scratch[k]
            elen[i] = elements + 1
            length[i] = kept + 1
            degree[i] = min(degree[i], partial)
            hashes[i] = h % n
            bucket_next[i] = bucket[hashes[i]]
            bucket[hashes[i]] = i
        # Supervariables: variables of L_p with the same list.
        for q in range(count):
            i = lp[q]
            if status[i] != _VARIABLE or bucket[hashes[i]] < 0:
                continue
            first = bucket[hashes[i]]
            bucket[hashes[i]] = -1
            a = first
            while a >= 0:
                if status[a] == _VARIABLE:
                    stamp += 1
                    for k in range(pe[a], pe[a] + length[a]):
                        mark[iw[k]] = stamp
                    b = bucket_next[a]
                    while b >= 0:
                        if status[b] == _VARIABLE and length[b] == length[a] and elen[b] == elen[a]:
                            same = True
                            for k in range(pe[b], pe[b] + length[b]):
                                if mark[iw[k]] != stamp:
                                    same = False
                                    break
                            if same:
                                nv[a] += nv[b]  # both negative: in L_p
                                nv[b] = 0
                                status[b] = _DEAD
                                member_next[member_last[a]] = b
                                member_last[a] = member_last[b]
                        b = bucket_next[b]
                a = bucket_next[a]
        # Final degrees; the survivors back into the degree lists.
        kept = 0
        for q in range(count):
            i = lp[q]
            if status[i] != _VARIABLE:
                continue
            weight = -nv[i]
            nv[i] = weight
            d = min(degree[i] + degme - weight, remaining - nel - weight)
            d = max(d, 0)
            degree[i] = d
            nxt[i] = head[d]
            prv[i] = -1
            if head[d] >= 0:
                prv[head[d]] = i
            head[d] = i
            if d < mindeg:
                mindeg = d
            iw[start + kept] = i
            kept += 1
        length[p] = kept
        degree[p] = degme
        if kept == 0:
            status[p] = _DEAD
        free = start + kept
        nv[p] = nvpiv
        wflg += n + 1
        v = p
        while v >= 0:
            order[placed] = v
            placed += 1
            v = member_next[v]
        updates += _block_updates(nvpiv + mass, degme)
        if updates > limit[0]:
            return order, updates
    for v in range(n):
        if dense[v]:
            order[placed] = v
            placed += 1
    return order, updates
