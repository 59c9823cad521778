"""The plan of a level-scheduled scalar LDLᵀ: index blocks per elimination-tree level.

For patterns whose fronts are small (most Hessians of separable-plus-coupling
objectives, bands, 2-D grids of moderate size), dense fronts pad ``L`` many times
over. This plan stores ``L`` exactly, as one flat vector: the ``n`` pivots first,
then the entries below the diagonal column by column. The factorization is
left-looking: column ``j`` receives ``L[i, k] d_k L[j, k]`` from every column ``k``
with ``L[j, k] != 0`` (all descendants of ``j`` in the elimination tree), so all
columns of one level of the tree (the height above its leaves) can be updated
together once the lower levels are done. With ``L[i, k] d_k`` stored in place of
``L[i, k]`` until the end, an update is one product of three stored values,
``v[p_ik] v[p_jk] / v[k]``, subtracted from ``v[p_ij]``: the updates of each level
are index triples, cut into blocks of one fixed size (a level's last block padded),
and the factorization is one loop over the blocks. The triangular solves are one
loop each over blocks of the entries of ``L``, by level of their column.
"""

import dataclasses

import numba
import numpy as np

__all__ = ["LevelPlan", "level_plan", "node_levels", "update_count"]

_BLOCK_OVERHEAD = 4096
"""The fixed cost of one loop step, in updates (gathers and a scatter of that many)."""


@dataclasses.dataclass(frozen=True, eq=False)
class LevelPlan:
    """The index blocks of a level-scheduled scalar factorization.

    Attributes:
        entries: Number of stored values: ``n`` pivots and the entries below the
            diagonal of ``L``.
        columns: ``(entries - n,)`` the column (position in the order) of each entry
            below the diagonal.
        assemble: ``(2, E)`` the place in the data vector and in the stored values of
            each entry of ``A`` on or below the diagonal.
        updates: ``(T, 4, S)`` per block: target, the two factors and the pivot of
            each update (padding: target ``entries``, dropped).
        forward: ``(U, 3, R)`` per block: row, entry and column of each entry below
            the diagonal, by level of the column, sorted by row within a block
            (padding: row and column ``n``, dropped).
        backward: The same blocks sorted by column within a block.
    """

    entries: int
    columns: np.ndarray
    assemble: np.ndarray
    updates: np.ndarray
    forward: np.ndarray
    backward: np.ndarray

    @property
    def work(self) -> int:
        """Return the cost model of one factorization and solve, in updates.

        Every slot of the update blocks, and `_BLOCK_OVERHEAD` for each step of the
        three loops (the factorization's and the two triangular solves').
        """
        steps = self.updates.shape[0] + self.forward.shape[0] + self.backward.shape[0]
        return self.updates.shape[0] * self.updates.shape[2] + _BLOCK_OVERHEAD * steps


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
def _updates_per_level(n, colptr, rows, level, levels):
    """Return the number of updates whose target column is on each level."""
    per_level = np.zeros(levels, np.int64)
    for k in range(n):
        for a in range(colptr[k], colptr[k + 1]):
            per_level[level[rows[a]]] += colptr[k + 1] - a
    return per_level


@numba.njit(cache=True)
def _update_blocks(n, colptr, rows, level, per_level, size):
    """Return the updates ``(target, left, right, pivot)`` in blocks ``(T, 4, size)``.

    Each level's updates start a new block (the last one padded with target
    ``entries``, dropped), in the order of their pivot columns (sorting them by
    target did not change the factorization's time).
    """
    first = np.zeros(per_level.size + 1, np.int64)
    for lev in range(per_level.size):
        first[lev + 1] = first[lev] + (per_level[lev] + size - 1) // size
    out = np.zeros((max(first[-1], 1), 4, size), np.int64)
    out[:, 0, :] = n + rows.size
    seen = np.zeros(per_level.size, np.int64)
    for k in range(n):
        for a in range(colptr[k], colptr[k + 1]):
            j = rows[a]
            lev = level[j]
            q = colptr[j]
            for b in range(a, colptr[k + 1]):
                i = rows[b]
                if b == a:
                    target = j
                else:
                    while rows[q] != i:
                        q += 1
                    target = n + q
                slot = first[lev] * size + seen[lev]
                seen[lev] += 1
                t, s = slot // size, slot % size
                out[t, 0, s] = target
                out[t, 1, s] = n + a
                out[t, 2, s] = n + b
                out[t, 3, s] = k
    return out


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


def _block_size(per_level: np.ndarray) -> int:
    """Return the power of two with the least padded work plus `_BLOCK_OVERHEAD` per block."""
    per_level = per_level[per_level > 0]
    if per_level.size == 0:
        return 1
    best, best_cost, size = 1, np.inf, 1
    while size <= 2 * per_level.max():
        cost = np.sum(-(-per_level // size)) * (size + _BLOCK_OVERHEAD)
        if cost < best_cost:
            best, best_cost = size, cost
        size *= 2
    return best


@numba.njit(cache=True)
def _counting_order(keys, bound):
    """Return the stable order that sorts ``keys`` (integers in ``[0, bound)``)."""
    start = np.zeros(bound + 1, np.int64)
    for key in keys:
        start[key + 1] += 1
    for k in range(bound):
        start[k + 1] += start[k]
    order = np.empty(keys.size, np.int64)
    for index in range(keys.size):
        order[start[keys[index]]] = index
        start[keys[index]] += 1
    return order


@numba.njit(cache=True)
def _place(items, keys, sort, fill, per_key, size):
    """Place the items in blocks ``(T, F, S)`` by key, each key from a new block."""
    by_field = _counting_order(items[sort], items[sort].max() + 1)
    by = by_field[_counting_order(keys[by_field], per_key.size)]
    first = np.zeros(per_key.size + 1, np.int64)
    for k in range(per_key.size):
        first[k + 1] = first[k] + (per_key[k] + size - 1) // size
    out = np.empty((max(first[-1], 1), fill.size, size), np.int64)
    for f in range(fill.size):
        out[:, f, :] = fill[f]
    seen = np.zeros(per_key.size, np.int64)
    for index in by:
        key = keys[index]
        slot = first[key] * size + seen[key]
        seen[key] += 1
        for f in range(fill.size):
            out[slot // size, f, slot % size] = items[f, index]
    return out


def _blocks(items: np.ndarray, keys: np.ndarray, fill: np.ndarray, sort: int) -> np.ndarray:
    """Cut the columns of ``items`` ``(F, N)`` into blocks ``(T, F, S)`` by ``keys``.

    Items of one key go to blocks of their own (the last one padded with ``fill``),
    sorted by their field ``sort`` (the scatter target: sorted scatters are faster);
    the blocks are in increasing order of key.
    """
    if keys.size == 0:
        return fill[None, :, None].copy()
    per_key = np.bincount(keys)
    return _place(items, keys, sort, fill, per_key, _block_size(per_key))


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
    columns = np.repeat(np.arange(n), np.diff(colptr))
    keys = columns * n + rows
    off = i != j
    target = np.where(off, n + np.searchsorted(keys, j * n + i), i)
    entries = n + rows.size
    per_level = _updates_per_level(n, colptr, rows, level, int(level.max(initial=0)) + 1)
    updates = _update_blocks(n, colptr, rows, level, per_level, _block_size(per_level))
    solve_items = np.stack([rows, n + np.arange(rows.size), columns])
    forward = _blocks(solve_items, level[columns], np.array([n, 0, n]), 0)
    backward = _blocks(solve_items, level[columns], np.array([n, 0, n]), 2)
    return LevelPlan(
        entries=entries,
        columns=columns,
        assemble=np.stack([use, target]),
        updates=updates,
        forward=forward,
        backward=backward,
    )
