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

import concurrent.futures
import dataclasses
import hashlib

import numpy as np

from asdex_opt._lineax._ldl._amd import approximate_minimum_degree
from asdex_opt._lineax._ldl._levels import LevelPlan, level_plan, node_levels, update_count
from asdex_opt._lineax._ldl._ordering import (
    Adjacency,
    ball,
    central_vertex,
    dense_threshold,
    nested_dissection,
    pattern_adjacency,
    reverse_cuthill_mckee,
)
from asdex_opt._lineax._ldl._schedule import SizeClass, schedule
from asdex_opt._lineax._ldl._trees import (
    amalgamate,
    envelope,
    lower_entries,
    permuted_entries,
    permuted_lower,
    postorder,
    structures,
    tree_and_counts,
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

_TRIAL_MIN_SIZE = 1 << 17
"""Patterns of at least this many columns try both orderings on a sample first, and
one of them may be left out (`_candidates`)."""

_TRIAL_SIZE = 1 << 14
"""The number of columns of that sample."""

_TRIAL_MARGIN = 1.05
"""Nested dissection wins clearly when minimum degree makes more than this many times
its updates on the sample."""

_TRIAL_ND_LEFT_OUT = 0.5
"""Nested dissection is left out where minimum degree makes fewer than this fraction
of its updates on the sample (and the plan will be dense fronts, see `_candidates`)."""

_FRONTS_SCALE = 4
"""How far above the scalar plan's limit the sample's minimum-degree updates, scaled
by the pattern's size, must be for nested dissection to be left out."""

_RCM_MARGIN = 2
"""Reverse Cuthill-McKee is left out where its envelope on the sample exceeds nested
dissection's fill this many times (see `_candidates`)."""

_SECOND_THREAD = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="asdex-ldl")
"""Runs the lower entries' collection beside the adjacency's, and minimum degree and
then the pattern's digest beside nested dissection (these kernels and hashing release
the GIL)."""


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
    digest.update(memoryview(np.ascontiguousarray(rows, np.int64)))
    digest.update(memoryview(np.ascontiguousarray(cols, np.int64)))
    return digest.digest()


def _pattern_graph(n: int, rows: np.ndarray, cols: np.ndarray) -> tuple[Adjacency, np.ndarray]:
    """The pattern's adjacency and the stored entries on or below the diagonal.

    Args:
        n: Matrix size.
        rows: Row of each stored entry (entries outside ``[0, n)`` are padding).
        cols: Column of each stored entry.

    Returns:
        ``(graph, lower)``: the symmetric adjacency (see `pattern_adjacency`) and the stored
        entries in range on or below the diagonal (see `lower_entries`).

    Raises:
        ValueError: If the pattern holds entries above the diagonal that are not
            mirrored below it (an unsymmetric pattern).
    """
    lower = _SECOND_THREAD.submit(lower_entries, n, rows, cols)
    graph, mirrored = pattern_adjacency(n, rows, cols)
    if not mirrored:
        raise ValueError(
            "`SparseLDL` needs a symmetric sparsity pattern (or only its lower "
            "triangle); this one has entries whose mirror image is not stored. Use "
            "`asdex_opt.lineax.SparseLU` for unsymmetric matrices."
        )
    return graph, lower.result()


def _postordered(order: np.ndarray, parent: np.ndarray, count: np.ndarray):
    """Return ``(order, parent, count)`` renumbered by a postorder of the tree."""
    post = postorder(parent)
    rank = np.empty(post.size, np.int64)
    rank[post] = np.arange(post.size)
    above = parent[post]
    return order[post], np.where(above >= 0, rank[np.maximum(above, 0)], -1), count[post]


def _tree_height(parent: np.ndarray) -> int:
    """Height of the forest ``parent`` (children numbered before parents)."""
    return int(node_levels(parent).max(initial=0)) + 1


def _cost(name: str, parent: np.ndarray, count: np.ndarray, max_scalar_updates: int):
    """The cost of an ordering's plan, ordered (smaller is faster); ``None``: not usable.

    The scalar plan's cost is its updates plus `_LEVEL_WEIGHT` per level of the
    elimination tree (minimum degree fills in least on irregular patterns, but its
    trees are deep); where no ordering makes at most ``max_scalar_updates`` updates,
    the dense fronts' cost is their updates, and an ordering whose elimination tree
    is taller than `_DENSE_MAX_HEIGHT` (RCM's paths) is not used for them.
    """
    updates = update_count(count)
    if updates <= max_scalar_updates:
        return (0, updates + _LEVEL_WEIGHT * _tree_height(parent))
    if name != "rcm" or _tree_height(parent) <= _DENSE_MAX_HEIGHT:
        return (1, updates)
    return None


def _limit(best: tuple[int, int] | None, max_scalar_updates: int) -> int:
    """The most updates an ordering may make and still cost less than ``best``."""
    if best is None:
        return np.iinfo(np.int64).max
    if best[0] == 0:
        return min(best[1] - 1, max_scalar_updates)
    return best[1] - 1


def _trial(indptr: np.ndarray, indices: np.ndarray) -> tuple[int, int, int | None, bool]:
    """Nested dissection against minimum degree on a sample of the graph.

    The sample is the subgraph induced by a breadth-first ball of `_TRIAL_SIZE`
    vertices around a central vertex (dense rows left out); both orderings are computed
    on it and compared by their scalar updates. On grids and meshes nested dissection
    wins by far; on bands, trees and the random couplings of KKT matrices minimum degree
    does.

    Returns:
        ``(size, nested, minimum, banded)``: the sample's vertices, nested dissection's
        updates on it, minimum degree's (``None`` where they exceed `_TRIAL_MARGIN` times
        nested dissection's: it clearly wins), and whether reverse Cuthill-McKee's
        envelope on it is at most `_RCM_MARGIN` times nested dissection's fill.
    """
    n = indptr.size - 1
    dense = np.diff(indptr) > dense_threshold(n)
    _, xadj, adj = ball(
        indptr, indices, dense, central_vertex(indptr, indices, dense), min(n, _TRIAL_SIZE)
    )
    size = xadj.size - 1
    sample = Adjacency(xadj, adj)
    order = nested_dissection(sample, leaf_size=16)
    _, count, _ = tree_and_counts(xadj, adj, order, np.iinfo(np.int64).max)
    nested = update_count(count)
    banded = envelope(xadj, adj, reverse_cuthill_mckee(sample)) <= _RCM_MARGIN * count.sum()
    order = approximate_minimum_degree(sample, int(_TRIAL_MARGIN * nested))
    if order is None:
        return size, nested, None, banded
    _, count, _ = tree_and_counts(xadj, adj, order, np.iinfo(np.int64).max)
    return size, nested, update_count(count), banded


def _candidates(indptr: np.ndarray, indices: np.ndarray, max_scalar_updates: int):
    """Whether to compute nested dissection, minimum degree and RCM: ``(nested, minimum, rcm)``.

    On patterns of at least `_TRIAL_MIN_SIZE` columns, minimum degree is left out where
    nested dissection clearly wins on a sample (`_trial`), and nested dissection where
    minimum degree makes under `_TRIAL_ND_LEFT_OUT` of its updates on the sample and
    the plan will be dense fronts (whose cost is the updates alone): nested dissection
    makes more than ``max_scalar_updates`` on the sample, or minimum degree's, scaled to
    the whole pattern, exceed it `_FRONTS_SCALE` times. Reverse Cuthill-McKee is left
    out where its envelope on the sample is far above nested dissection's fill (the
    envelope grows faster with the size than that fill).
    """
    n = indptr.size - 1
    if n < _TRIAL_MIN_SIZE:
        return True, True, True
    size, nested, minimum, banded = _trial(indptr, indices)
    if minimum is None:
        return True, False, banded
    fronts = max(nested, minimum * n / size / _FRONTS_SCALE) > max_scalar_updates
    return not (fronts and minimum < _TRIAL_ND_LEFT_OUT * nested), True, banded


def analyse(
    n: int,
    rows: np.ndarray,
    cols: np.ndarray,
    max_scalar_updates: int = LEVEL_MAX_UPDATES,
    *,
    key: bytes | None = None,
) -> Analysis:
    """The symbolic factorization of the symmetric pattern ``(n, rows, cols)``.

    Candidate orderings are nested dissection, approximate minimum degree and, when its
    envelope is smaller than the least fill of the candidates kept, reverse
    Cuthill-McKee; the one whose plan costs least (`_cost`) is used. A candidate is
    dropped as soon as its running count of updates shows that it cannot cost less
    than the best one so far (minimum degree counts them while it eliminates). On
    patterns of at least `_TRIAL_MIN_SIZE` columns, a trial on a sample of the graph
    can leave out any of them (`_candidates`).

    Args:
        n: Matrix size.
        rows: Row of each stored entry: the whole symmetric pattern or its lower
            triangle; duplicates allowed, out-of-range entries ignored. The diagonal
            is added if missing.
        cols: Column of each stored entry.
        max_scalar_updates: The level-scheduled scalar plan is used when the
            factorization makes at most this many scalar updates, else dense fronts.
        key: The pattern's `pattern_key`, if the caller has it (else it is computed).

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
    graph, lower = _pattern_graph(n, rows, cols)
    indptr, indices = graph
    best, best_cost, least = None, None, None

    def consider(name: str, order: np.ndarray | None) -> None:
        nonlocal best, best_cost, least
        if order is None:
            return
        limit = _limit(best_cost, max_scalar_updates)
        parent, count, complete = tree_and_counts(indptr, indices, order, limit)
        if not complete:
            return
        fill = int(count.sum())
        least = fill if least is None else min(least, fill)
        cost = _cost(name, parent, count, max_scalar_updates)
        if cost is not None and (best_cost is None or cost < best_cost):
            best, best_cost = (name, order, parent, count), cost

    # Minimum degree runs beside nested dissection (both release the GIL); it stops early
    # once nested dissection's cost is known and its own count exceeds what could win.
    limit = np.array([np.iinfo(np.int64).max])
    minimum_degree = None
    with_nested, with_minimum, with_rcm = _candidates(indptr, indices, max_scalar_updates)
    if with_minimum:
        minimum_degree = _SECOND_THREAD.submit(approximate_minimum_degree, graph, limit)
    digest = None if key is not None else _SECOND_THREAD.submit(pattern_key, n, rows, cols)
    if with_nested:
        consider("nested dissection", nested_dissection(graph, leaf_size=16))
    if minimum_degree is not None:
        limit[0] = _limit(best_cost, max_scalar_updates)
        consider("minimum degree", minimum_degree.result())
    if with_rcm:
        rcm = reverse_cuthill_mckee(graph)
        if envelope(indptr, indices, rcm) < least:
            consider("rcm", rcm)
    name, order, parent, count = best
    order, parent, count = _postordered(order, parent, count)
    if update_count(count) <= max_scalar_updates:
        rowptr, colidx = permuted_lower(indptr, indices, order)
        analysis = _scalar(n, lower, name, order, rowptr, colidx, parent, count)
    else:
        analysis = _plan(n, lower, name, order, indptr, indices, parent, count)
    return dataclasses.replace(analysis, key=key if digest is None else digest.result())


def _scalar(n, lower, name, order, rowptr, colidx, parent, count) -> Analysis:
    i, j = permuted_entries(order, lower[0], lower[1])
    plan = level_plan(n, rowptr, colidx, parent, count, i, j, lower[2].astype(np.int64))
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
        lower=lower,
    )


def _plan(n, lower, name, order, indptr, indices, parent, count) -> Analysis:
    owner, final = amalgamate(parent, count)
    # Renumber: supernodes in a postorder of the merged tree, columns kept in order.
    reps = np.flatnonzero(final == np.arange(final.size))
    rep_index = np.full(final.size, -1, np.int64)
    rep_index[reps] = np.arange(reps.size)
    column_super = rep_index[final[owner]]
    last_col = np.zeros(reps.size, np.int64)
    np.maximum.at(last_col, column_super, np.arange(n))
    sparent = np.full(reps.size, -1, np.int64)
    has_parent = parent[last_col] >= 0
    sparent[has_parent] = column_super[parent[last_col[has_parent]]]
    spost = postorder(sparent)
    rank = np.empty(reps.size, np.int64)
    rank[spost] = np.arange(reps.size)
    new_position = np.argsort(rank[column_super], kind="stable")
    order = order[new_position]
    column_super = rank[column_super[new_position]]
    sparent = np.where(sparent[spost] >= 0, rank[np.maximum(sparent[spost], 0)], -1)
    ns = reps.size
    first = np.zeros(ns + 1, np.int64)
    np.cumsum(np.bincount(column_super, minlength=ns), out=first[1:])
    i, j = permuted_entries(order, lower[0], lower[1])
    sptr, srows = structures(first, indptr, indices, order, sparent)
    classes = schedule(n, order, first, sparent, sptr, srows, i, j, lower[2])
    return Analysis(
        n=n,
        order=order,
        classes=classes,
        levels=None,
        ordering=name,
        nnz_factor=int(count.sum()),
        stored=sum(plan.pivots.size * plan.size**2 for plan in classes),
        height=_tree_height(sparent),
        key=b"",
        lower=lower,
    )
