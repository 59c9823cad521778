"""Symbolic analysis of a symmetric sparsity pattern: ordering, supernodes, a level plan.

Everything here runs once per pattern, on the host, and produces NumPy index arrays
that the numeric factorization (`_numeric`) uses as constants inside ``jit``.

The plan is multifrontal (Duff & Reid 1983; Liu 1992): each supernode ``s`` owns a
dense front over its own columns (``k``, the pivots) and the rows below them that
its columns reach in ``L`` (``r``). The front is assembled from the entries of ``A``
in those columns and from the Schur complements (update matrices) of its children,
partially factored, and its own ``r x r`` Schur complement goes to its parent. Fronts
are padded to size classes and cut into chunks (`_schedule`), so that the numeric
phase is one loop of batched dense operations per size class. Patterns whose
factorization makes few scalar updates (small fronts, where that padding dominates)
get the level-scheduled scalar plan of `_levels` instead.
"""

import dataclasses
import hashlib

import numpy as np
import scipy.sparse

from asdex_opt._lineax._ldl._amd import approximate_minimum_degree
from asdex_opt._lineax._ldl._levels import LevelPlan, level_plan, node_levels, update_count
from asdex_opt._lineax._ldl._ordering import adjacency, nested_dissection, reverse_cuthill_mckee
from asdex_opt._lineax._ldl._schedule import SizeClass, schedule
from asdex_opt._lineax._ldl._trees import (
    amalgamate,
    column_counts,
    elimination_tree,
    postorder,
    structures,
)

__all__ = ["LEVEL_MAX_UPDATES", "Analysis", "analyse"]

LEVEL_MAX_UPDATES = 5_000_000
"""Patterns whose factorization makes at most this many scalar updates get the
level-scheduled scalar plan (`_levels`); larger ones dense fronts. At 4.6e6 (2-D
Poisson, n = 10⁴) the scalar plan still factors faster and compiles in half the time;
above, its index blocks (16 bytes per update, constants of the program unless the
solver comes from ``SparseLDL.from_structure``) make compiling slow. A larger limit
helps prepared solvers: the regularised KKT matrix of n = 3000 (2.6e7 updates in the
minimum-degree order) factors about three times faster with the scalar plan."""


_LEVEL_WEIGHT = 512
"""The cost of one elimination-tree level in the scalar plan, in updates (one step
of each of its three loops costs about a microsecond on CPU, a scalar update about
ten nanoseconds: minimum degree's deep trees pay this)."""

_DENSE_MAX_HEIGHT = 64
"""Dense fronts take an order only if its elimination tree is at most this tall."""


@dataclasses.dataclass(frozen=True, eq=False)
class Analysis:
    """The symbolic factorization of one pattern (hashable by the pattern).

    Attributes:
        n: Matrix size.
        order: The fill-reducing order: variable ``order[k]`` is eliminated ``k``-th.
        classes: The fronts by size class, in the order they are factored (none
            when ``levels`` is used).
        levels: The level-scheduled scalar plan, used instead of fronts when the
            factorization makes few scalar updates (small fronts), else ``None``.
        ordering: Name of the ordering chosen (``"nested dissection"``,
            ``"minimum degree"`` or ``"rcm"``).
        nnz_factor: Nonzeros of ``L`` (diagonal included) without the supernodal
            padding.
        stored: Entries stored by the padded fronts (by the scalar plan: ``nnz(L)``).
        height: Number of levels of the supernodal tree (of the elimination tree
            for the scalar plan).
        key: The pattern's digest.
        lower: ``(3, E)``: row, column and place in the data vector of each stored
            entry on or below the diagonal (the entries the factorization reads).
    """

    n: int
    order: np.ndarray
    classes: tuple[SizeClass, ...]
    levels: LevelPlan | None
    ordering: str
    nnz_factor: int
    stored: int
    height: int
    key: bytes
    lower: np.ndarray

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Analysis) and self.key == other.key


def pattern_key(n: int, rows: np.ndarray, cols: np.ndarray) -> bytes:
    """A digest of the pattern ``(n, rows, cols)``."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.int64(n).tobytes())
    digest.update(np.ascontiguousarray(rows, np.int64).tobytes())
    digest.update(np.ascontiguousarray(cols, np.int64).tobytes())
    return digest.digest()


def lower_entries(n: int, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which stored entries describe the lower triangle, and whether the pattern is one.

    Args:
        n: Matrix size.
        rows: Row of each stored entry (entries outside ``[0, n)`` are padding).
        cols: Column of each stored entry.

    Returns:
        ``(use, inside)``: the stored entries on or below the diagonal, and those in
        range.

    Raises:
        ValueError: If the pattern holds entries above the diagonal that are not
            mirrored below it (an unsymmetric pattern).
    """
    inside = (rows >= 0) & (rows < n) & (cols >= 0) & (cols < n)
    r, c = rows[inside], cols[inside]
    if np.any(r < c):
        upper = _sorted_unique(r[r < c] * n + c[r < c])
        lower = _sorted_unique(c[r > c] * n + r[r > c])
        if upper.size != lower.size or not np.array_equal(upper, lower):
            raise ValueError(
                "`SparseLDL` needs a symmetric sparsity pattern (or only its lower "
                "triangle); this one has entries whose mirror image is not stored. Use "
                "`asdex_opt.lineax.SparseLU` for unsymmetric matrices."
            )
    return np.flatnonzero(inside & (rows >= cols)), inside


def _evaluate(n: int, lower: scipy.sparse.csr_matrix, order: np.ndarray):
    """Postordered order, elimination tree, column counts of ``order``."""
    inverse = np.empty(n, np.int64)
    inverse[order] = np.arange(n)
    coo = lower.tocoo()
    i, j = inverse[coo.row], inverse[coo.col]
    rowptr, colidx = _by_rows(n, np.maximum(i, j), np.minimum(i, j))
    parent = elimination_tree(rowptr, colidx)
    post = postorder(parent)
    order = order[post]
    inverse[order] = np.arange(n)
    i, j = inverse[coo.row], inverse[coo.col]
    rowptr, colidx = _by_rows(n, np.maximum(i, j), np.minimum(i, j))
    parent = elimination_tree(rowptr, colidx)
    return order, rowptr, colidx, parent, column_counts(rowptr, colidx, parent)


def _sorted_unique(keys: np.ndarray) -> np.ndarray:
    """Return the distinct values of ``keys`` in increasing order."""
    # ``np.unique`` hashes wide-range integers first, many times slower than a sort.
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if keys.size else keys


def _by_rows(n: int, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strictly lower entries ``(i > j)`` by rows, without duplicates."""
    strict = i > j
    keys = _sorted_unique(i[strict] * n + j[strict])
    rows, cols = keys // n, keys % n
    rowptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=rowptr[1:])
    return rowptr, cols


def _envelope(n: int, lower: scipy.sparse.csr_matrix, order: np.ndarray) -> int:
    """Size of the envelope of ``A[order][:, order]``, a bound on the fill of ``L``."""
    inverse = np.empty(n, np.int64)
    inverse[order] = np.arange(n)
    coo = lower.tocoo()
    i, j = inverse[coo.row], inverse[coo.col]
    first = np.arange(n)
    np.minimum.at(first, np.maximum(i, j), np.minimum(i, j))
    return int(np.sum(np.arange(n) - first) + n)


def _tree_height(parent: np.ndarray) -> int:
    """Height of the forest ``parent`` in a postorder (children before parents)."""
    return int(node_levels(parent).max(initial=0)) + 1


def _choose(evaluated: dict, max_scalar_updates: int) -> str:
    """Return the ordering whose plan should be fastest.

    The scalar plan's cost is its updates plus `_LEVEL_WEIGHT` per level of the
    elimination tree (minimum degree fills in least on irregular patterns, but its
    trees are deep); where no ordering makes at most ``max_scalar_updates`` updates,
    the dense fronts' cost is their updates, and an ordering whose elimination tree
    is taller than `_DENSE_MAX_HEIGHT` (RCM's paths) is not used for them.
    """
    costs = {}
    for name, (_, _, _, parent, count) in evaluated.items():
        updates = update_count(count)
        if updates <= max_scalar_updates:
            costs[name] = (0, updates + _LEVEL_WEIGHT * _tree_height(parent))
        elif name != "rcm" or _tree_height(parent) <= _DENSE_MAX_HEIGHT:
            costs[name] = (1, updates)
    return min(costs, key=costs.__getitem__)


def analyse(
    n: int, rows: np.ndarray, cols: np.ndarray, max_scalar_updates: int = LEVEL_MAX_UPDATES
) -> Analysis:
    """The symbolic factorization of the symmetric pattern ``(n, rows, cols)``.

    Args:
        n: Matrix size.
        rows: Row of each stored entry: the whole symmetric pattern or its lower
            triangle; duplicates allowed, out-of-range entries ignored. The diagonal
            is added if missing.
        cols: Column of each stored entry.
        max_scalar_updates: The level-scheduled scalar plan is used when the
            factorization makes at most this many scalar updates, else dense fronts.

    Returns:
        The analysis; its classes map the stored entries (by position in ``rows``) into
        the fronts.

    Examples:
        >>> import numpy as np
        >>> rows, cols = np.array([0, 1, 1, 2, 2]), np.array([0, 0, 1, 1, 2])
        >>> analyse(3, rows, cols).nnz_factor  # a tridiagonal matrix does not fill in
        5
    """
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    use, _ = lower_entries(n, rows, cols)
    r, c = rows[use], cols[use]
    lower = scipy.sparse.csr_matrix(
        (np.ones(r.size + n, np.int8), (np.r_[r, np.arange(n)], np.r_[c, np.arange(n)])),
        shape=(n, n),
    )
    graph = adjacency(n, r, c)
    orders = {
        "nested dissection": nested_dissection(graph, leaf_size=16),
        "minimum degree": approximate_minimum_degree(graph),
    }
    evaluated = {name: _evaluate(n, lower, order) for name, order in orders.items()}
    least = min(int(found[4].sum()) for found in evaluated.values())
    rcm = reverse_cuthill_mckee(graph)
    if _envelope(n, lower, rcm) < least:
        evaluated["rcm"] = _evaluate(n, lower, rcm)
    name = _choose(evaluated, max_scalar_updates)
    order, rowptr, colidx, parent, count = evaluated[name]
    if update_count(count) <= max_scalar_updates:
        analysis = _scalar(n, r, c, use, name, order, rowptr, colidx, parent, count)
    else:
        analysis = _plan(n, r, c, use, name, order, rowptr, colidx, parent, count)
    return dataclasses.replace(analysis, key=pattern_key(n, rows, cols))


def _scalar(n, r, c, use, name, order, rowptr, colidx, parent, count) -> Analysis:
    inverse = np.empty(n, np.int64)
    inverse[order] = np.arange(n)
    pi, pj = inverse[r], inverse[c]
    plan = level_plan(n, rowptr, colidx, parent, count, np.maximum(pi, pj), np.minimum(pi, pj), use)
    return Analysis(
        n=n,
        order=order,
        classes=(),
        levels=plan,
        ordering=name,
        nnz_factor=int(count.sum()),
        stored=plan.entries,
        height=_tree_height(parent),
        key=b"",
        lower=np.stack([r, c, use]),
    )


def _plan(n, r, c, use, name, order, rowptr, colidx, parent, count) -> Analysis:
    owner, merged = amalgamate(parent, count)
    final = merged.copy()
    for s in range(final.size - 1, -1, -1):  # parents come after children
        final[s] = final[final[s]]
    column_super = final[owner]
    # Renumber: supernodes in a postorder of the merged tree, columns kept in order.
    reps = np.unique(column_super)
    rep_index = np.full(final.size, -1, np.int64)
    rep_index[reps] = np.arange(reps.size)
    column_super = rep_index[column_super]
    last_col = np.zeros(reps.size, np.int64)
    np.maximum.at(last_col, column_super, np.arange(n))
    sparent = np.full(reps.size, -1, np.int64)
    has_parent = parent[last_col] >= 0
    sparent[has_parent] = column_super[parent[last_col[has_parent]]]
    spost = postorder(sparent)
    rank = np.empty(reps.size, np.int64)
    rank[spost] = np.arange(reps.size)
    new_position = np.lexsort((np.arange(n), rank[column_super]))
    order = order[new_position]
    column_super = rank[column_super[new_position]]
    sparent = np.where(sparent[spost] >= 0, rank[np.maximum(sparent[spost], 0)], -1)
    ns = reps.size
    first = np.zeros(ns + 1, np.int64)
    np.cumsum(np.bincount(column_super, minlength=ns), out=first[1:])
    inverse = np.empty(n, np.int64)
    inverse[order] = np.arange(n)
    pi, pj = inverse[r], inverse[c]
    i, j = np.maximum(pi, pj), np.minimum(pi, pj)
    rowptr, colidx = _by_rows(n, i, j)
    sptr, srows = structures(first, rowptr, colidx, sparent)
    height = np.zeros(first.size - 1, np.int64)
    for s in range(first.size - 1):
        if sparent[s] >= 0:
            height[sparent[s]] = max(height[sparent[s]], height[s] + 1)
    classes = schedule(n, order, first, sparent, sptr, srows, i, j, use)
    return Analysis(
        n=n,
        order=order,
        classes=classes,
        levels=None,
        ordering=name,
        nnz_factor=int(count.sum()),
        stored=sum(plan.pivots.size * plan.size**2 for plan in classes),
        height=int(height.max(initial=0)) + 1,
        key=b"",
        lower=np.stack([r, c, use]),
    )
