"""Vertex orders for greedy coloring.

Degrees are taken in the conflict graph (distance-2 in the bipartite view of
`asdex.coloring._graph`), computed by walking the view with a marker array, so the
conflict graph itself is never stored. The dynamic orders keep vertices in degree
buckets (doubly linked lists) and update neighbors in O(1) each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
from numpy.typing import NDArray

from asdex.coloring._graph import Bipartite

ORDERS = (
    "natural",
    "largest_first",
    "smallest_last",
    "incidence_degree",
    "dynamic_largest_first",
    "random",
)
"""Names accepted by the `order=` option, besides "best" and explicit permutations."""

BEST_OF = ("largest_first", "smallest_last", "incidence_degree", "dynamic_largest_first",
           "natural")
"""Orders tried by `order="best"`, in tie-breaking preference (largest-first wins ties)."""


@numba.njit(cache=True, nogil=True)
def _degrees(v_indptr, v_nets, n_indptr, n_vertices):  # pragma: no cover - compiled
    num = v_indptr.size - 1
    degree = np.zeros(num, dtype=np.int64)
    mark = np.full(num, -1, dtype=np.int64)
    for v in range(num):
        mark[v] = v
        count = 0
        for p in range(v_indptr[v], v_indptr[v + 1]):
            net = v_nets[p]
            for q in range(n_indptr[net], n_indptr[net + 1]):
                w = n_vertices[q]
                if mark[w] != v:
                    mark[w] = v
                    count += 1
        degree[v] = count
    return degree


@numba.njit(cache=True, nogil=True)
def _dynamic_order(v_indptr, v_nets, n_indptr, n_vertices, key, pick_max, delta):
    """Repeatedly take a vertex of extreme `key`, then add `delta` to its live neighbors."""
    num = v_indptr.size - 1
    top = num + 1
    head = np.full(top + 1, -1, dtype=np.int64)
    nxt = np.full(num, -1, dtype=np.int64)
    prv = np.full(num, -1, dtype=np.int64)
    for v in range(num - 1, -1, -1):
        k = key[v]
        nxt[v] = head[k]
        if head[k] >= 0:
            prv[head[k]] = v
        head[k] = v
    done = np.zeros(num, dtype=np.bool_)
    mark = np.full(num, -1, dtype=np.int64)
    order = np.empty(num, dtype=np.int64)
    cur = top if pick_max else 0
    for step in range(num):
        if pick_max:
            while head[cur] < 0:
                cur -= 1
        else:
            while head[cur] < 0:
                cur += 1
        v = head[cur]
        head[cur] = nxt[v]
        if nxt[v] >= 0:
            prv[nxt[v]] = -1
        done[v] = True
        order[step] = v
        mark[v] = v
        for p in range(v_indptr[v], v_indptr[v + 1]):
            net = v_nets[p]
            for q in range(n_indptr[net], n_indptr[net + 1]):
                w = n_vertices[q]
                if done[w] or mark[w] == v:
                    continue
                mark[w] = v
                k = key[w]
                if prv[w] >= 0:
                    nxt[prv[w]] = nxt[w]
                else:
                    head[k] = nxt[w]
                if nxt[w] >= 0:
                    prv[nxt[w]] = prv[w]
                k += delta
                key[w] = k
                prv[w] = -1
                nxt[w] = head[k]
                if head[k] >= 0:
                    prv[head[k]] = w
                head[k] = w
                if pick_max and k > cur:
                    cur = k
                if not pick_max and k < cur:
                    cur = k
    return order


def vertex_order(
    graph: Bipartite, order: str | Sequence[int] | NDArray[np.integer], seed: int | None = None
) -> NDArray[np.int64]:
    """Compute a vertex order (a permutation of the vertices) by name.

    Args:
        graph: Bipartite view of the conflict graph.
        order: One of `ORDERS`, or an explicit permutation of `range(num_vertices)`.
        seed: Seed of the "random" order.

    Returns:
        The vertices in the order they are to be colored.

    Raises:
        ValueError: If the name is unknown or the permutation is not one.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> from asdex.coloring._graph import column_bipartite
        >>> g = column_bipartite(SparsityPattern.from_dense(np.tril(np.ones((3, 3)))))
        >>> vertex_order(g, "largest_first").tolist()
        [0, 1, 2]
    """
    num = graph.num_vertices
    if not isinstance(order, str):
        perm = np.asarray(order)
        if (perm.shape != (num,) or (num and not np.issubdtype(perm.dtype, np.integer))
                or not np.array_equal(np.sort(perm), np.arange(num))):
            raise ValueError(f"An explicit `order` must be a permutation of range({num}).")
        return perm.astype(np.int64)
    args = (graph.v_indptr, graph.v_nets, graph.n_indptr, graph.n_vertices)
    if order == "natural":
        return np.arange(num, dtype=np.int64)
    if order == "random":
        return np.random.default_rng(seed).permutation(num).astype(np.int64)
    if order == "largest_first":
        return np.argsort(-_degrees(*args), kind="stable").astype(np.int64)
    if order == "smallest_last":
        return _dynamic_order(*args, _degrees(*args), False, -1)[::-1].copy()
    if order == "incidence_degree":
        return _dynamic_order(*args, np.zeros(num, dtype=np.int64), True, 1)
    if order == "dynamic_largest_first":
        return _dynamic_order(*args, _degrees(*args), True, -1)
    raise ValueError(f"Unknown order {order!r}; expected one of {(*ORDERS, 'best')}.")


def order_names(order: Any) -> tuple[Any, ...]:
    """The orders to try: the `BEST_OF` list for "best", else just `order`.

    Examples:
        >>> order_names("natural")
        ('natural',)
    """
    if isinstance(order, str) and order == "best":
        return BEST_OF
    return (order,)
