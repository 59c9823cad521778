"""Symbolic analysis of a symmetric sparsity pattern: ordering, supernodes, a level plan.

Everything here runs once per pattern, on the host, and produces NumPy index arrays
that the numeric factorization (`_numeric`) uses as constants inside ``jit``.

The plan is multifrontal (Duff & Reid 1983; Liu 1992): each supernode ``s`` owns a
dense front over its own columns (``k``, the pivots) and the rows below them that
its columns reach in ``L`` (``r``). The front is assembled from the entries of ``A``
in those columns and from the Schur complements (update matrices) of its children,
partially factored, and its own ``r x r`` Schur complement goes to its parent. Fronts
are grouped into batches by the height of their supernode in the supernodal tree (all
children of a front have a smaller height) and by padded sizes, so the numeric phase
is a fixed sequence of batched dense operations whose length grows with the tree's
height, not with ``n``.
"""

import dataclasses
import hashlib

import numpy as np
import scipy.sparse

from ._ordering import adjacency, nested_dissection, reverse_cuthill_mckee
from ._trees import amalgamate, column_counts, elimination_tree, postorder, structures

__all__ = ["Analysis", "Batch", "Extend", "analyse", "padded_size"]


def padded_size(size: int) -> int:
    """``size`` rounded up to four steps per octave (1-8 exact, then 10, 12, 14, 16, 20...).

    Fronts padded to these sizes waste at most 25 % per dimension, and fronts of
    similar size share one batched operation.

    Examples:
        >>> [padded_size(s) for s in (0, 3, 9, 17, 100)]
        [0, 3, 10, 20, 112]
    """
    if size <= 8:
        return size
    step = 1 << (size.bit_length() - 3)
    return -(-size // step) * step


@dataclasses.dataclass(frozen=True, eq=False)
class Extend:
    """Update matrices of some fronts of one batch, added into the fronts of another.

    Attributes:
        child: The batch whose update matrices are read.
        take: ``(c,)`` which fronts of that batch.
        slot: ``(c,)`` the receiving fronts' places in this batch.
        position: ``(c, r_child)`` where each update row lands in the receiving front
            (``m`` of this batch for padding, dropped).
    """

    child: int
    take: np.ndarray
    slot: np.ndarray
    position: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class Batch:
    """Fronts of one height and padded size, factored by one batched operation.

    Attributes:
        k: Padded number of pivots (columns) per front.
        r: Padded number of rows below the pivots.
        cols: ``(B, k)`` the variables (original numbering) of each front's pivots,
            ``n`` for padding.
        rows: ``(B, r)`` the variables of the rows below, ``n`` for padding.
        pad: ``(B, k)`` one where a pivot is padding (its diagonal is set to one).
        entry_source: Positions in the data vector of the entries of ``A`` that this
            batch assembles (off-diagonal ones twice, once per triangle).
        entry_target: Their flat positions in the ``(B, m, m)`` fronts.
        extends: The update matrices added into these fronts.
        pivots: Number of real (unpadded) pivots.
    """

    k: int
    r: int
    cols: np.ndarray
    rows: np.ndarray
    pad: np.ndarray
    entry_source: np.ndarray
    entry_target: np.ndarray
    extends: tuple[Extend, ...]
    pivots: int

    @property
    def size(self) -> int:
        """Number of fronts."""
        return self.cols.shape[0]

    @property
    def m(self) -> int:
        """Padded front size ``k + r``."""
        return self.k + self.r


@dataclasses.dataclass(frozen=True, eq=False)
class Analysis:
    """The symbolic factorization of one pattern (hashable by the pattern).

    Attributes:
        n: Matrix size.
        order: The fill-reducing order: variable ``order[k]`` is eliminated ``k``-th.
        batches: The fronts, batch by batch, children before parents.
        ordering: Name of the ordering chosen (``"nested dissection"`` or ``"rcm"``).
        nnz_factor: Nonzeros of ``L`` (diagonal included) without the supernodal
            padding.
        stored: Entries of ``L`` stored by the padded fronts.
        flops: Floating-point operations of the numeric factorization (padded).
        height: Number of levels of the supernodal tree.
        key: The pattern's digest.
    """

    n: int
    order: np.ndarray
    batches: tuple[Batch, ...]
    ordering: str
    nnz_factor: int
    stored: int
    flops: float
    height: int
    key: bytes

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
        upper = np.unique(r[r < c] * n + c[r < c])
        lower = np.unique(c[r > c] * n + r[r > c])
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


def _by_rows(n: int, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Strictly lower entries ``(i > j)`` by rows, without duplicates."""
    strict = i > j
    keys = np.unique(i[strict] * n + j[strict])
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
    height = np.zeros(parent.size, np.int64)
    for j in range(parent.size):
        if parent[j] >= 0:
            height[parent[j]] = max(height[parent[j]], height[j] + 1)
    return int(height.max(initial=0)) + 1


def analyse(n: int, rows: np.ndarray, cols: np.ndarray) -> Analysis:
    """The symbolic factorization of the symmetric pattern ``(n, rows, cols)``.

    Args:
        n: Matrix size.
        rows: Row of each stored entry: the whole symmetric pattern or its lower
            triangle; duplicates allowed, out-of-range entries ignored. The diagonal
            is added if missing.
        cols: Column of each stored entry.

    Returns:
        The analysis; its batches map the stored entries (by position in ``rows``) into
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
    candidates = {"nested dissection": nested_dissection(graph)}
    best = None
    for name, order in candidates.items():
        order, rowptr, colidx, parent, count = _evaluate(n, lower, order)
        best = (name, order, rowptr, colidx, parent, count)
    nnz = int(best[5].sum())
    rcm = reverse_cuthill_mckee(graph)
    if _envelope(n, lower, rcm) < nnz:
        evaluated = _evaluate(n, lower, rcm)
        # RCM's trees are paths: take it only when it also keeps the plan short.
        if evaluated[4].sum() < nnz and _tree_height(evaluated[3]) <= 64:
            best = ("rcm", *evaluated)
    name, order, rowptr, colidx, parent, count = best
    analysis = _plan(n, r, c, use, name, order, rowptr, colidx, parent, count)
    return dataclasses.replace(analysis, key=pattern_key(n, rows, cols))


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
    return _batches(n, order, first, sparent, sptr, srows, i, j, use, name, count.sum())


def _cost(k, r):
    """Relative cost of factoring a ``(k + r)``-front with ``k`` pivots (flops + overhead)."""
    return k**3 / 3 + k * k * r + k * r * r + 8 * (k + r) ** 2 + 512


def _group(height: np.ndarray, ncols: np.ndarray, nrows: np.ndarray, waste: float = 4.0):
    """Batches of fronts: same height, padded to a common size.

    Within a height, fronts are taken from the most to the least costly, and a front
    joins the current batch while the batch's real cost stays above ``1 / waste`` of
    its padded cost; the per-front overhead in `_cost` lets small fronts share a batch.

    Returns:
        ``(batches, batch_of)``: ``(height, k, r)`` of each batch (by height), and each
        supernode's batch.
    """
    batch_of = np.empty(height.size, np.int64)
    batches = []
    for level in np.unique(height):
        fronts = np.flatnonzero(height == level)
        cost = _cost(ncols[fronts], nrows[fronts])
        fronts = fronts[np.argsort(-cost, kind="stable")]
        k = r = 0
        real = 0.0
        count = 0
        for s in fronts:
            kk, rr = max(k, ncols[s]), max(r, nrows[s])
            padded = _cost(padded_size(int(kk)), padded_size(int(rr)))
            total = real + _cost(ncols[s], nrows[s])
            if count and total < (count + 1) * padded / waste:
                batches.append((level, padded_size(int(k)), padded_size(int(r))))
                kk, rr, total, count = ncols[s], nrows[s], _cost(ncols[s], nrows[s]), 0
            k, r, real = kk, rr, total
            count += 1
            batch_of[s] = len(batches)
        batches.append((level, padded_size(int(k)), padded_size(int(r))))
    return np.array(batches, np.int64).reshape(-1, 3), batch_of


def _batches(n, order, first, sparent, sptr, srows, i, j, use, name, nnz) -> Analysis:
    ns = first.size - 1
    ncols = np.diff(first)
    nrows = np.diff(sptr)
    height = np.zeros(ns, np.int64)
    for s in range(ns):
        if sparent[s] >= 0:
            height[sparent[s]] = max(height[sparent[s]], height[s] + 1)
    unique, batch_of = _group(height, ncols, nrows)
    kpad, rpad = unique[batch_of, 1], unique[batch_of, 2]
    slot = np.empty(ns, np.int64)
    members = [np.flatnonzero(batch_of == b) for b in range(unique.shape[0])]
    for supernodes in members:
        slot[supernodes] = np.arange(supernodes.size)
    # Position of every structure row in its supernode's front (pivots come first).
    owner_of_row = np.repeat(np.arange(ns), nrows)
    rank_in_struct = np.arange(srows.size) - sptr[owner_of_row]
    struct_keys = owner_of_row * n + srows

    def front_position(s: np.ndarray, g: np.ndarray) -> np.ndarray:
        inside = (g >= first[s]) & (g < first[s + 1])
        found = np.searchsorted(struct_keys, s * n + g)
        found = np.minimum(found, max(srows.size - 1, 0))
        below = kpad[s] + (rank_in_struct[found] if srows.size else 0)
        return np.where(inside, g - first[s], below)

    # Entries of A: column j's supernode, both triangles.
    s_of_col = np.repeat(np.arange(ns), ncols)
    es = s_of_col[j]
    li, lj = front_position(es, i), j - first[es]
    m_of = kpad + rpad
    flat_a = slot[es] * m_of[es] ** 2 + li * m_of[es] + lj
    flat_b = slot[es] * m_of[es] ** 2 + lj * m_of[es] + li
    off = li != lj
    entry_batch = np.r_[batch_of[es], batch_of[es][off]]
    entry_source = np.r_[use, use[off]]
    entry_target = np.r_[flat_a, flat_b[off]]
    by_batch = np.argsort(entry_batch, kind="stable")
    entry_splits = np.searchsorted(entry_batch[by_batch], np.arange(unique.shape[0] + 1))
    # Update rows of every child in its parent's front.
    child_position = np.full(srows.size, -1, np.int64)
    has_parent = sparent[owner_of_row] >= 0
    child_position[has_parent] = front_position(sparent[owner_of_row[has_parent]],
                                                srows[has_parent])
    batches, flops, stored = [], 0.0, 0
    for b, supernodes in enumerate(members):
        k, rr = int(unique[b, 1]), int(unique[b, 2])
        m = k + rr
        count = supernodes.size
        offsets = np.arange(k)
        cols = first[supernodes][:, None] + offsets
        real = offsets < ncols[supernodes][:, None]
        cols_var = np.where(real, order[np.minimum(cols, n - 1)], n)
        rows_var = np.full((count, rr), n, np.int64)
        for q, s in enumerate(supernodes):
            rows_var[q, : nrows[s]] = order[srows[sptr[s] : sptr[s + 1]]]
        picked = by_batch[entry_splits[b] : entry_splits[b + 1]]
        extends = []
        children = np.flatnonzero(np.isin(sparent, supernodes))
        for cb in np.unique(batch_of[children]):
            kids = children[batch_of[children] == cb]
            rc = int(unique[cb, 2])
            position = np.full((kids.size, rc), m, np.int64)
            for q, kid in enumerate(kids):
                position[q, : nrows[kid]] = child_position[sptr[kid] : sptr[kid + 1]]
            extends.append(Extend(int(cb), slot[kids], slot[sparent[kids]], position))
        flops += count * (k**3 / 3 + k * k * rr + k * rr * rr)
        stored += count * (k * (k + 1) // 2 + k * rr)
        batches.append(
            Batch(
                k=k,
                r=rr,
                cols=cols_var,
                rows=rows_var,
                pad=(~real).astype(np.int8),
                entry_source=entry_source[picked],
                entry_target=entry_target[picked],
                extends=tuple(extends),
                pivots=int(ncols[supernodes].sum()),
            )
        )
    return Analysis(
        n=n,
        order=order,
        batches=tuple(batches),
        ordering=name,
        nnz_factor=int(nnz),
        stored=int(stored),
        flops=float(flops),
        height=int(height.max(initial=0)) + 1,
        key=b"",
    )
