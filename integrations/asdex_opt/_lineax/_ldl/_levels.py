"""The plan of a level-scheduled scalar LDLᵀ: index batches per elimination-tree level.

For patterns whose fronts are small (most Hessians of separable-plus-coupling
objectives, bands, 2-D grids of moderate size), dense fronts pad ``L`` many times
over. This plan stores ``L`` exactly, as one flat vector: the ``n`` pivots first,
then the entries below the diagonal. The factorization is right-looking by levels
of the elimination tree (a column's height above its leaves): once the lower levels
are done, the columns ``k`` of one level are final, and each sends
``L[i, k] d_k L[j, k]`` to the entry ``(i, j)`` for every pair of rows ``i >= j``
of its column (all in ancestors of ``k``, on higher levels). The values ``v`` hold
``L[i, k] d_k`` until the end; a level starts by dividing its columns' values by
their pivots into a second vector ``u``, one contiguous slice (the *finalisation*),
so that an update is one product ``v[p_ik] u[p_jk]`` subtracted from ``v[p_ij]``:
the updates of each level are index triples, without the pivot. The levels, in
order, are grouped into a few runs: a run of one level is one batch of exactly its
updates (no loop, no padding); a run of several levels is one loop over blocks of
one size, each level's updates in blocks of their own (its last one padded), the
first block of a level finalising it. The runs are chosen by a cost model (slots,
those in a loop counting `_LOOP_SLOT` times, plus `_STEP_OVERHEAD` per batch); as
each run is a piece of the compiled program, runs are merged while that costs little
(`_RUN_COST`) and down to at most `_MAX_RUNS`. The triangular solves run the entries
of ``L`` by level of their column in runs of the same kind. The entries are stored
in that order (by level of their column, then by row), so that a level's
finalisation and a solve's batch read their entries of ``L`` as one contiguous slice
rather than by a gather.

Padded slots point at scratch entries past the stored values: a zero that is only
read, and targets spread over one block's width (scatter-adds to one place would
run one after the other). A padded slot of a solve reads the values that follow its
block's (or the zeros past the stored values) and multiplies them by a zero.
"""

import dataclasses
import heapq

import numba
import numpy as np

__all__ = ["LevelPlan", "level_plan", "node_levels", "update_count"]

_STEP_OVERHEAD = 512
"""The fixed cost of one batch, in update slots (about a microsecond on CPU)."""

_LOOP_SLOT = 4
"""The cost of an update slot in a loop, relative to one in a batch of its own (XLA's
CPU gathers and scatters run about this much slower inside a ``while`` loop)."""

_MAX_RUNS = 4
"""At most this many runs per phase: each is compiled separately."""

_RUN_COST = 16384
"""Runs are merged while that adds less than this many update slots to a call (each
run costs compile time)."""

_SIZES = 2 ** np.arange(4, 18)
"""Block sizes a run of several levels may take."""


Run = tuple[int, int, int]
"""A run of blocks: ``(start, steps, size)``, the blocks ``[start + t size, start +
(t + 1) size)`` of the flat index arrays for ``t < steps``, one loop step each (no loop
when ``steps`` is one)."""


@dataclasses.dataclass(frozen=True, eq=False)
class LevelPlan:
    """The index runs of a level-scheduled scalar factorization.

    Attributes:
        entries: Number of stored values: ``n`` pivots and the entries below the
            diagonal of ``L``, those ordered by level of their column, then by row.
        columns: ``(entries - n + widest,)`` the column (position in the order) of
            each entry below the diagonal, then ``widest`` zeros (so that every
            finalisation's slice of it is in range).
        assemble: ``(2, E)`` the place in the data vector and in the stored values of
            each entry of ``A`` on or below the diagonal.
        updates: ``(4, U)`` target and the two factors (in ``v`` and in ``u``) of each
            update, by level of its pivot column, in the blocks of `update_runs`
            (padding: a scratch target past ``entries``, factors the zero at
            ``entries``); the fourth row is zero except at the first slot of the first
            block of each level, where it is one plus the position (among the entries
            below the diagonal) of the level's first entry, which that block
            finalises.
        update_runs: The runs of `updates`, in order.
        widths: Per update run, the entries its finalisations divide: the most
            entries of one of its levels.
        forward: ``(2, V)`` row and column of each entry below the diagonal, in the
            order they are stored, in the blocks of `solve_runs` (padding: a scratch
            row past ``n``, column ``n``).
        offsets: ``(blocks,)`` where each block of `forward` starts in the stored
            entries below the diagonal (its values are the ``size`` entries from there).
        solve_runs: The runs of `forward`, in forward order; the backward solve takes
            the same blocks in reverse.
        scratch: The scratch places the padding needs past the stored values and past
            the ``n`` unknowns: a read-only zero and the spread targets (and room for
            the widest finalisation's slice).
        slack: Zeros the stored values need after them, so that every solve block's
            slice of them is in range.
    """

    entries: int
    columns: np.ndarray
    assemble: np.ndarray
    updates: np.ndarray
    update_runs: tuple[Run, ...]
    widths: tuple[int, ...]
    forward: np.ndarray
    offsets: np.ndarray
    solve_runs: tuple[Run, ...]
    scratch: tuple[int, int]
    slack: int

    @property
    def steps(self) -> int:
        """Return the number of batches of one factorization and solve (loop steps or not)."""
        return sum(run[1] for run in self.update_runs) + 2 * sum(run[1] for run in self.solve_runs)

    @property
    def widest(self) -> int:
        """Return the most entries one finalisation divides."""
        return max(self.widths, default=0)

    @property
    def work(self) -> int:
        """Return the cost model of one factorization and solve, in update slots.

        Every slot of the factorization's and the two solves' index arrays, and
        `_STEP_OVERHEAD` for each of their batches, a slot in a loop counting
        `_LOOP_SLOT` times.
        """
        total = 0
        for runs, arrays in ((self.update_runs, 1), (self.solve_runs, 2)):
            for _, steps, size in runs:
                slot = 1 if steps == 1 else _LOOP_SLOT
                total += arrays * steps * (slot * size + _STEP_OVERHEAD)
        return total


@numba.njit(cache=True)
def _factor_pattern(rowptr, colidx, parent, count):
    """Return the rows of ``L`` below the diagonal, by columns (sorted), from the row subtrees."""
    n = parent.size
    colptr = np.zeros(n + 1, np.int64)
    for j in range(n):
        colptr[j + 1] = colptr[j] + count[j] - 1
    fill = colptr[:-1].copy()
    rows = np.empty(colptr[n], np.int64)
    mark = np.full(n, -1, np.int64)
    for i in range(n):
        mark[i] = i
        for p in range(rowptr[i], rowptr[i + 1]):
            j = colidx[p]
            while mark[j] != i:
                rows[fill[j]] = i
                fill[j] += 1
                mark[j] = i
                j = parent[j]
    return colptr, rows


@numba.njit(cache=True)
def _level_updates(n, colptr, rows, level, per_level):
    """Return the updates ``(target, left, right)`` ``(3, U)`` by level of their pivot.

    The update of pivot column ``k`` to the entry ``(i, j)``, ``i >= j`` rows of column
    ``k``, reads ``L[i, k] d_k`` (``left``, in ``v``) and ``L[j, k]`` (``right``, in
    ``u``). Within a level, in the order of their pivot columns (spreading the updates
    of one target apart).
    """
    first = np.zeros(per_level.size + 1, np.int64)
    for lev in range(per_level.size):
        first[lev + 1] = first[lev] + per_level[lev]
    out = np.empty((3, first[-1]), np.int64)
    for k in range(n):
        for a in range(colptr[k], colptr[k + 1]):
            j = rows[a]
            q = colptr[j]
            for b in range(a, colptr[k + 1]):
                i = rows[b]
                if b == a:
                    target = j
                else:
                    while rows[q] != i:
                        q += 1
                    target = n + q
                slot = first[level[k]]
                first[level[k]] += 1
                out[0, slot] = target
                out[1, slot] = n + b
                out[2, slot] = n + a
    return out


def _runs(counts: np.ndarray, max_runs: int = _MAX_RUNS) -> list[tuple[int, int]]:
    """Group consecutive levels (``counts`` items each, none empty) into runs.

    Returns:
        ``(levels, size)`` per run, in order: a run of one level is one batch of its
        exact size; a longer one, blocks of ``size`` with each level from a new block.
        The grouping starts from runs of the levels that prefer one block size, then
        merges the adjacent pair that adds least cost (the leftmost of equals) while
        there are more than ``max_runs`` or that pair adds less than `_RUN_COST`. The
        pairs wait in a heap, so a tree of ``L`` levels takes ``O(L log L)``.
    """
    if counts.size == 0:
        return []
    blocks = -(-counts[:, None] // _SIZES[None, :])
    per_level = blocks * (_LOOP_SLOT * _SIZES + _STEP_OVERHEAD)
    best = np.argmin(per_level, axis=1)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(best)) + 1])
    costs = np.add.reduceat(per_level, starts, axis=0).astype(float)
    levels = np.diff(np.append(starts, counts.size))
    alone = np.where(levels == 1, counts[starts] + _STEP_OVERHEAD, costs.min(axis=1))
    count = len(starts)
    following = [*range(1, count), -1]
    preceding = list(range(-1, count - 1))
    version = [0] * count

    def pair(left: int) -> tuple[float, int, int, int, int]:
        right = following[left]
        added = (costs[left] + costs[right]).min() - alone[left] - alone[right]
        return float(added), left, right, version[left], version[right]

    heap = [pair(r) for r in range(count - 1)]
    heapq.heapify(heap)
    while heap:
        added, left, right, left_version, right_version = heapq.heappop(heap)
        if (version[left], version[right], following[left]) != (left_version, right_version, right):
            continue  # stale: a side has merged since
        if count <= max_runs and added >= _RUN_COST:
            break
        costs[left] += costs[right]
        alone[left] = costs[left].min()
        levels[left] += levels[right]
        following[left] = following[right]
        if following[left] >= 0:
            preceding[following[left]] = left
        version[left] += 1
        version[right] = -1
        count -= 1
        for neighbour in (preceding[left], left):
            if neighbour >= 0 and following[neighbour] >= 0:
                heapq.heappush(heap, pair(neighbour))
    out = []
    run = 0
    while run >= 0:
        size = int(counts[starts[run]]) if levels[run] == 1 else int(_SIZES[np.argmin(costs[run])])
        out.append((int(levels[run]), size))
        run = following[run]
    return out


def _lay_out(
    items: np.ndarray, counts: np.ndarray, pad: np.ndarray, spread: int, base: int
) -> tuple[np.ndarray, tuple[Run, ...], int, np.ndarray]:
    """Cut ``items`` ``(F, N)``, sorted by level, into the blocks of `_runs` of ``counts``.

    Padding takes the values ``pad``, except field ``spread``, which takes scratch
    places ``base + 1 + (slot mod size)``.

    Returns:
        The padded items, their runs, the widest padded block (the scratch needed),
        and ``(2, levels)`` the first slot and the run of each nonempty level.
    """
    nonempty = counts[counts > 0]
    pieces, runs, firsts = [], [], []
    start = position = scratch = 0
    level = 0
    for levels, size in _runs(nonempty):
        steps = 0
        for count in nonempty[level : level + levels]:
            firsts.append((start + steps * size, len(runs)))
            blocks = -(-int(count) // size)
            filler = np.repeat(pad[:, None], blocks * size - count, axis=1)
            if filler.shape[1]:
                filler[spread] = base + 1 + np.arange(count, blocks * size) % size
                scratch = max(scratch, size)
            pieces.extend([items[:, position : position + count], filler])
            position += count
            steps += blocks
        runs.append((start, steps, size))
        start += steps * size
        level += levels
    firsts = np.array(firsts, np.int64).reshape(-1, 2).T
    if not pieces:
        return np.repeat(pad[:, None], 0, axis=1), (), 0, firsts
    return np.concatenate(pieces, axis=1), tuple(runs), scratch, firsts


def update_count(count: np.ndarray) -> int:
    """Return the number of scalar updates of a factor with these column counts.

    Examples:
        >>> import numpy as np
        >>> update_count(np.array([3, 2, 1]))  # a dense 3 x 3 matrix
        4
    """
    below = count.astype(np.int64) - 1
    return int(np.sum(below * (below + 1) // 2))


@numba.njit(cache=True)
def node_levels(parent: np.ndarray) -> np.ndarray:
    """Return the height of each node above the leaves of the postordered forest ``parent``."""
    level = np.zeros(parent.size, np.int64)
    for j in range(parent.size):
        p = parent[j]
        if p >= 0 and level[p] < level[j] + 1:
            level[p] = level[j] + 1
    return level


def level_plan(
    n: int,
    rowptr: np.ndarray,
    colidx: np.ndarray,
    parent: np.ndarray,
    count: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    use: np.ndarray,
) -> LevelPlan:
    """Return the level-scheduled plan of a postordered pattern.

    Args:
        n: Matrix size.
        rowptr: Row pointers of the strictly lower pattern (positions) by rows.
        colidx: Its column indices.
        parent: The elimination tree (postordered).
        count: Column counts of ``L`` (diagonal included).
        i: Row position of each stored lower entry of ``A`` (``i >= j``).
        j: Its column position.
        use: Its place in the data vector.

    Returns:
        The plan.
    """
    colptr, rows = _factor_pattern(rowptr, colidx, parent, count)
    level = node_levels(parent)
    levels = int(level.max(initial=0)) + 1
    columns = np.repeat(np.arange(n), np.diff(colptr))
    keys = columns * n + rows
    off = i != j
    entries = n + rows.size
    # Stored places: pivots first, then the entries below the diagonal by level of
    # their column and by row; ``place`` maps an entry's column-major index there.
    stored = np.lexsort((rows, level[columns]))
    place = np.concatenate([np.arange(n), np.empty(rows.size, np.int64)])
    place[n + stored] = n + np.arange(rows.size)
    target = i.copy()
    target[off] = place[n + np.searchsorted(keys, j[off] * n + i[off])]
    by_level = np.bincount(level[columns], minlength=levels)
    below = count.astype(np.int64) - 1
    per_level = np.bincount(level, weights=below * (below + 1) // 2, minlength=levels)
    per_level = per_level.astype(np.int64)
    raw = _level_updates(n, colptr, rows, level, per_level)
    raw = place[raw]
    raw = np.concatenate([raw, np.zeros((1, raw.shape[1]), np.int64)])
    updates, update_runs, update_scratch, firsts = _lay_out(
        raw, per_level, np.array([0, entries, entries, 0]), 0, entries
    )
    # A level has updates exactly when it has entries below the diagonal: its first
    # block finalises them (one plus the position of the first, as zero means none).
    level_start = np.concatenate([[0], np.cumsum(by_level)])[:-1][by_level > 0]
    updates[3, firsts[0]] = 1 + level_start
    widths = np.zeros(len(update_runs), np.int64)
    np.maximum.at(widths, firsts[1], by_level[by_level > 0])
    widest = int(widths.max(initial=0))
    solve_items = np.stack([rows[stored], columns[stored]])
    forward, solve_runs, solve_scratch, _ = _lay_out(solve_items, by_level, np.array([0, n]), 0, n)
    real = np.concatenate([[0], np.cumsum(forward[1] < n)])
    starts = [start + t * size for start, steps, size in solve_runs for t in range(steps)]
    return LevelPlan(
        entries=entries,
        columns=np.concatenate([columns[stored], np.zeros(widest, np.int64)]),
        assemble=np.stack([use, target]),
        updates=updates,
        update_runs=update_runs,
        widths=tuple(int(width) for width in widths),
        forward=forward,
        offsets=real[np.array(starts, np.int64)],
        solve_runs=solve_runs,
        scratch=(max(1 + update_scratch, widest), 1 + solve_scratch),
        slack=max((size for _, _, size in solve_runs), default=0),
    )
