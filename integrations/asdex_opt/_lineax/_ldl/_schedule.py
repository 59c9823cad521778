"""The numeric plan of a supernodal factorization: fronts in size classes and chunks.

Each supernode ``s`` owns a dense front over its ``k`` pivots (its columns) and the
``r`` rows below them that its columns reach in ``L``. Fronts start in classes on a
grid of sizes ``2**(1/4)`` apart, raised where needed so that no front's class is
smaller than a child's, and classes are merged into the next where that adds little
work (at most five classes in all). Each class's fronts are then padded to its
largest front, rounded up to a whole number of pivot tiles. Classes are factored
in increasing order; within a class the fronts are taken by height in the supernodal
tree and cut into chunks of ``B`` fronts, a chunk never holding a front together
with its child. The numeric factorization is
then one loop per class over its chunks, all of one shape ``(B, M, M)``: the number
of compiled operations grows with the number of classes, not with ``n`` or the
height of the tree.
"""

import dataclasses

import numba
import numpy as np

__all__ = ["Extend", "SizeClass", "schedule"]

_CHUNK_ENTRIES = 1 << 17
"""A chunk holds at most about this many front entries (``B M²``), at least one front."""

_CHUNK_OVERHEAD = 1 << 15
"""The fixed cost of one chunk (one loop step), in front entries."""


@dataclasses.dataclass(frozen=True, eq=False)
class Extend:
    """Update matrices of fronts of one class, added into the chunks of another.

    Attributes:
        source: The class whose fronts are read.
        front: ``(T, K)`` flat index of each child front in the source class's storage
            (padding: 0, with every position dropped).
        slot: ``(T, K)`` the receiving front's place in the chunk.
        position: ``(T, K, M_source)`` where each row of the child's front lands in the
            receiving front (``M`` of this class: dropped; pivot rows and padding).
    """

    source: int
    front: np.ndarray
    slot: np.ndarray
    position: np.ndarray


@dataclasses.dataclass(frozen=True, eq=False)
class SizeClass:
    """The fronts padded to one size ``M``, in ``T`` chunks of ``B`` fronts.

    Attributes:
        size: ``M``, the padded front size.
        tile: Pivots are eliminated in tiles of this many (a divisor of ``M``).
        pivots: ``(T, B)`` the number of pivots of each front (0 for an empty slot).
        tiles: ``(T,)`` tiles needed by the chunk's largest number of pivots.
        variables: ``(T, B, M)`` the variable (original numbering) of each front row,
            ``n`` for padding.
        entry_source: ``(T, E)`` positions in the data vector of the entries of ``A``
            that each chunk assembles (off-diagonal ones twice, once per triangle).
        entry_target: ``(T, E)`` their flat positions in the ``(B, M, M)`` chunk
            (``B M²`` for padding: dropped).
        extends: The children's update matrices added into the chunks, by source class.
    """

    size: int
    tile: int
    pivots: np.ndarray
    tiles: np.ndarray
    variables: np.ndarray
    entry_source: np.ndarray
    entry_target: np.ndarray
    extends: tuple[Extend, ...]

    @property
    def chunks(self) -> int:
        """``T``, the number of chunks."""
        return self.pivots.shape[0]

    @property
    def width(self) -> int:
        """``B``, fronts per chunk."""
        return self.pivots.shape[1]


_MAX_CLASSES = 5
"""At most this many size classes: each is a compiled loop of its own (about 1.5 s of
XLA compilation on CPU), so past this the cheapest merges are made whatever they cost."""

_FREE_MERGE = 0.1
"""Classes are also merged while a merge adds at most this share of the padded work."""

_MERGE_WORK = 1 << 24
"""A merge that adds at most this much work (in ``M³`` units) is made whatever its
share: one class more costs more compile time than such work takes to run."""

_GRID = 4
"""Fronts start in classes of sizes ``2**(1 / _GRID)`` apart, before merging."""


def _merge_classes(size_class: np.ndarray, size: np.ndarray | None = None) -> np.ndarray:
    """Move the fronts of a class up into the next one where it costs little work.

    A class holds the fronts of one level of a grid of sizes (``size_class``), its
    fronts padded to the largest of them (``size``; ``None``: ``2**size_class``). The
    work of a front padded to ``M`` is about ``M³`` (its partial factorization).
    Repeatedly, the class whose move into the next one adds the least work is moved,
    as long as that adds at most `_FREE_MERGE` of the total or `_MERGE_WORK`, or there
    are more than `_MAX_CLASSES` classes. Moving a class up keeps parents at least as large as
    their children.

    Examples:
        >>> import numpy as np
        >>> # Two fronts of 2**3 next to a hundred of 2**9: the small ones join them.
        >>> sorted(set(_merge_classes(np.array([3, 3] + [9] * 100)).tolist()))
        [9]
    """
    if size is None:
        size = 2.0**size_class
    classes, members = np.unique(size_class, return_inverse=True)
    counts = np.bincount(members, minlength=classes.size)
    largest = np.zeros(classes.size)
    np.maximum.at(largest, members, size)
    alive = np.arange(classes.size)
    into = np.arange(classes.size)  # the class each class's fronts have moved into
    while alive.size > 1:
        work = counts * largest**3
        added = counts[:-1] * largest[1:] ** 3 - work[:-1]
        c = int(np.argmin(added))
        small = added[c] <= max(_FREE_MERGE * work.sum(), _MERGE_WORK)
        if alive.size <= _MAX_CLASSES and not small:
            break
        into[alive[c]] = alive[c + 1]
        counts[c + 1] += counts[c]
        largest[c + 1] = max(largest[c + 1], largest[c])
        alive, counts, largest = np.delete(alive, c), np.delete(counts, c), np.delete(largest, c)
    for c in range(classes.size - 1, -1, -1):  # classes move up only
        into[c] = into[into[c]]
    return classes[into[members]]


def _tile(size: int) -> int:
    """Pivots per tile of fronts of ``size`` rows: all of them up to 16, else 8 to 32."""
    if size <= 16:
        return size
    return 8 if size <= 128 else 16 if size <= 512 else 32


def _fitted(largest: np.ndarray) -> np.ndarray:
    """The padded size of classes whose largest fronts have ``largest`` rows.

    The size is rounded up to a multiple of its tile (`_tile`).

    Examples:
        >>> _fitted(np.array([5, 20, 130, 600])).tolist()
        [5, 24, 144, 608]
    """
    return np.array([-(-m // _tile(m)) * _tile(m) for m in largest.tolist()], np.int64)


def _width(per_height: np.ndarray, size: int) -> int:
    """Fronts per chunk: the power of two with the least padded work plus overhead.

    Each chunk costs its ``B M²`` entries plus an overhead worth `_CHUNK_OVERHEAD`
    entries; at most `_CHUNK_ENTRIES` entries per chunk.
    """
    per_height = per_height[per_height > 0]
    cap = max(1, _CHUNK_ENTRIES // (size * size))
    best, best_cost = 1, np.inf
    width = 1
    while width <= min(cap, 2 * per_height.max()):
        chunks = np.sum(-(-per_height // width))
        cost = chunks * (width * size * size + _CHUNK_OVERHEAD)
        if cost < best_cost:
            best, best_cost = width, cost
        width *= 2
    return min(best, int(per_height.max()))


def _index_type(largest: int) -> type:
    """The narrowest integer type of index arrays whose values are at most ``largest``."""
    return np.int16 if largest < 2**15 else np.int32 if largest < 2**31 else np.int64


def _padded(keys: np.ndarray, values: np.ndarray, count: int, fill: int) -> np.ndarray:
    """Stack ``values`` by key ``0..count-1`` (stable), padded with ``fill``.

    Returns:
        ``(count, L)``, ``L`` the most values of one key.

    Examples:
        >>> import numpy as np
        >>> from asdex_opt._lineax._ldl._schedule import _padded
        >>> _padded(np.array([1, 0, 1]), np.array([5, 6, 7]), 3, -1).tolist()
        [[6, -1], [5, 7], [-1, -1]]
    """
    longest = int(np.bincount(keys, minlength=count).max(initial=0))
    return _place(keys, values, np.full((count, longest), fill, np.int64))


@numba.njit(cache=True)
def _place(keys, values, out):
    """Write ``values`` into ``out`` row ``keys[k]``, each row filled from the left."""
    seen = np.zeros(out.shape[0], np.int64)
    for k in range(keys.size):
        out[keys[k], seen[keys[k]]] = values[k]
        seen[keys[k]] += 1
    return out


@numba.njit(cache=True)
def _extend_positions(kids, kid_chunk, first, sptr, srows, sparent, out):
    """Write where each row of each child's front lands in its parent's front.

    Children are stacked by the chunk of their parent (``out``: ``(T, K, M_child)``,
    filled with the parent's front size beforehand); the rows of a child's structure
    follow its pivots. They are sorted and lie in the parent's pivots or structure, so
    one merge with the parent's structure places them.
    """
    seen = np.zeros(out.shape[0], np.int64)
    for k in range(kids.size):
        t, s = kid_chunk[k], kids[k]
        p = sparent[s]
        pivots, q = first[s + 1] - first[s], sptr[p]
        for r in range(sptr[s], sptr[s + 1]):
            row = srows[r]
            if row < first[p + 1]:
                place = row - first[p]
            else:
                while srows[q] < row:
                    q += 1
                place = first[p + 1] - first[p] + q - sptr[p]
            out[t, seen[t], pivots + r - sptr[s]] = place
        seen[t] += 1
    return out


@numba.njit(cache=True)
def _fill_variables(members, chunk, slot, first, sptr, srows, order, out):
    """Write the variables of each member front's rows into ``out``: pivots, then structure."""
    for s in members:
        t, b = chunk[s], slot[s]
        k = 0
        for p in range(first[s], first[s + 1]):
            out[t, b, k] = order[p]
            k += 1
        for r in range(sptr[s], sptr[s + 1]):
            out[t, b, k] = order[srows[r]]
            k += 1


@numba.njit(cache=True)
def _entry_counts(column_front, group, i, j, groups):
    """The copies of stored entries that each chunk assembles (off-diagonal ones twice)."""
    count = np.zeros(groups, np.int64)
    for k in range(i.size):
        count[group[column_front[j[k]]]] += 1 if i[k] == j[k] else 2
    return count


@numba.njit(cache=True)
def _place_entries(first, sptr, srows, column_front, group, start, slot, size, i, j, use, out):
    """Write the entries of ``A`` that each chunk assembles into its row of ``out``.

    Entry ``k`` lies in the front ``s`` of its column, at its row's place there (pivots
    first, then the structure by binary search) and its column's; an off-diagonal one
    also at the mirrored place. Chunk ``g`` lists the lower copies of its entries
    first, then the mirrored ones, from ``start[g]`` on in ``out = (source, target)``:
    place in the data vector and flat place in the ``(B, M, M)`` chunk.
    """
    source, target = out
    seen = start.copy()
    for mirrored in range(2):
        for k in range(i.size):
            row, column = i[k], j[k]
            if mirrored == 1 and row == column:
                continue
            s = column_front[column]
            if row < first[s + 1]:
                a = row - first[s]
            else:
                lo, hi = sptr[s], sptr[s + 1]
                while lo < hi:
                    mid = (lo + hi) // 2
                    if srows[mid] < row:
                        lo = mid + 1
                    else:
                        hi = mid
                a = first[s + 1] - first[s] + lo - sptr[s]
            b = column - first[s]
            if mirrored == 1:
                a, b = b, a
            m = size[s]
            place = seen[group[s]]
            source[place] = use[k]
            target[place] = (slot[s] * m + a) * m + b
            seen[group[s]] += 1


@numba.njit(cache=True)
def _heights(sparent, size_class):
    """Height of each supernode, and its class raised to its children's (children first)."""
    height = np.zeros(sparent.size, np.int64)
    size_class = size_class.copy()
    for s in range(sparent.size):
        p = sparent[s]
        if p >= 0:
            height[p] = max(height[p], height[s] + 1)
            size_class[p] = max(size_class[p], size_class[s])
    return height, size_class


@numba.njit(cache=True)
def _chunks(fronts, width, sparent, class_of, c, chunk, slot, child_chunk):
    """Cut the fronts of class ``c`` (in order) into chunks of at most ``width``.

    A new chunk starts when the current one is full or holds a child of the front.
    Writes ``chunk`` and ``slot`` of each front; returns the number of chunks.
    """
    current, filled = 0, 0
    for s in fronts:
        if filled == width or child_chunk[s] == current:
            current, filled = current + 1, 0
        chunk[s], slot[s] = current, filled
        filled += 1
        p = sparent[s]
        if p >= 0 and class_of[p] == c:
            child_chunk[p] = current
    return current + 1


def schedule(
    n: int,
    order: np.ndarray,
    first: np.ndarray,
    sparent: np.ndarray,
    sptr: np.ndarray,
    srows: np.ndarray,
    i: np.ndarray,
    j: np.ndarray,
    use: np.ndarray,
) -> tuple[SizeClass, ...]:
    """The size classes of the supernodal factorization.

    Args:
        n: Matrix size.
        order: Variable ``order[p]`` is eliminated ``p``-th.
        first: ``(ns + 1,)`` first column (position) of each supernode; supernodes in a
            postorder (children first).
        sparent: Parent supernode of each supernode, ``-1`` for roots.
        sptr: Supernode ``s`` has the rows ``srows[sptr[s]:sptr[s + 1]]`` below its
            columns (positions, sorted).
        srows: See ``sptr``.
        i: Row position of each stored lower entry of ``A`` (``i >= j``).
        j: Its column position.
        use: Its place in the data vector.

    Returns:
        The classes, in the order they are factored.
    """
    ns = first.size - 1
    ncols = np.diff(first)
    nrows = np.diff(sptr)
    rows = ncols + nrows
    size_class = np.ceil(_GRID * np.log2(np.maximum(rows, 1))).astype(np.int64)
    height, size_class = _heights(sparent, size_class)
    size_class = _merge_classes(size_class, rows)
    used, class_of = np.unique(size_class, return_inverse=True)
    largest = np.zeros(used.size, np.int64)
    np.maximum.at(largest, class_of, rows)
    fitted = _fitted(largest)
    # Classes that round up to the same size are one class.
    sizes, same = np.unique(fitted, return_inverse=True)
    sizes, class_of = sizes.tolist(), same[class_of]
    # Chunks: per class, fronts by height, a new chunk when full or when a child of the
    # front is in the current one.
    chunk = np.empty(ns, np.int64)
    slot = np.empty(ns, np.int64)
    child_chunk = np.full(ns, -1, np.int64)  # latest chunk of a child in the same class
    widths, counts = [], []
    for c, size in enumerate(sizes):
        fronts = np.flatnonzero(class_of == c)
        fronts = fronts[np.argsort(height[fronts], kind="stable")]
        width = _width(np.bincount(height[fronts]), size)
        counts.append(_chunks(fronts, width, sparent, class_of, c, chunk, slot, child_chunk))
        widths.append(width)
    flat = chunk * np.asarray(widths)[class_of] + slot
    # The entries of A, assembled by chunk: chunk g of class c owns the row of `longest[c]`
    # places from `start[g]` of one flat buffer.
    column_front = np.repeat(np.arange(ns), ncols)
    base = np.cumsum([0, *counts])
    group = base[class_of] + chunk
    per_group = _entry_counts(column_front, group, i, j, base[-1])
    longest = [int(per_group[base[c] : base[c + 1]].max(initial=0)) for c in range(len(sizes))]
    offset = np.cumsum([0] + [counts[c] * longest[c] for c in range(len(sizes))])
    start = offset[:-1].repeat(counts) + (np.arange(base[-1]) - base[:-1].repeat(counts)) * (
        np.repeat(longest, counts)
    )
    pads = [widths[c] * size * size for c, size in enumerate(sizes)]
    entries = (
        np.zeros(offset[-1], _index_type(max(use.size, 1))),
        np.repeat(np.array(pads, np.int64), np.diff(offset)).astype(_index_type(max(pads))),
    )
    _place_entries(
        first,
        sptr,
        srows,
        column_front,
        group,
        start,
        slot,
        np.asarray(sizes)[class_of],
        i,
        j,
        use,
        entries,
    )
    children = np.flatnonzero(sparent >= 0)
    classes = []
    for c, size in enumerate(sizes):
        width, count = widths[c], counts[c]
        members = np.flatnonzero(class_of == c)
        pivots = np.zeros((count, width), np.int64)
        pivots[chunk[members], slot[members]] = ncols[members]
        tile = _tile(size)
        tiles = -(-pivots.max(axis=1) // tile)
        variables = np.full((count, width, size), n, _index_type(n))
        _fill_variables(members, chunk, slot, first, sptr, srows, order, variables)
        source, target = (e[offset[c] : offset[c + 1]].reshape(count, longest[c]) for e in entries)
        extends = []
        into = children[class_of[sparent[children]] == c]
        for source_class in np.unique(class_of[into]):
            kids = into[class_of[into] == source_class]
            m_child = sizes[source_class]
            kid_chunk = chunk[sparent[kids]]
            front = _padded(kid_chunk, flat[kids], count, 0)
            position = np.full((*front.shape, m_child), size, _index_type(size))
            extends.append(
                Extend(
                    source=int(source_class),
                    front=front,
                    slot=_padded(kid_chunk, slot[sparent[kids]], count, 0),
                    position=_extend_positions(
                        kids, kid_chunk, first, sptr, srows, sparent, position
                    ),
                )
            )
        classes.append(
            SizeClass(
                size=size,
                tile=tile,
                pivots=pivots,
                tiles=tiles,
                variables=variables,
                entry_source=source,
                entry_target=target,
                extends=tuple(extends),
            )
        )
    return tuple(classes)
