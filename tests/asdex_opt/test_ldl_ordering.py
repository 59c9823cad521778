"""SparseLDL's orderings and symbolic kernels against dense boolean elimination."""

import threading

import numpy as np
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

from asdex_opt._lineax._ldl import analyse
from asdex_opt._lineax._ldl._amd import _amd, approximate_minimum_degree
from asdex_opt._lineax._ldl._levels import update_count
from asdex_opt._lineax._ldl._ordering import (
    adjacency,
    ball,
    central_vertex,
    dense_threshold,
    nested_dissection,
    symmetric_adjacency,
)
from asdex_opt._lineax._ldl._symbolic import (
    _TRIAL_MIN_SIZE,
    _candidates,
    _postordered,
    _trial,
    pattern_key,
)
from asdex_opt._lineax._ldl._trees import (
    amalgamate,
    permuted_entries,
    structures,
    tree_and_counts,
)

_NO_LIMIT = np.iinfo(np.int64).max


def _counts(n: int, rows: np.ndarray, cols: np.ndarray, order: np.ndarray):
    """Return the elimination tree and column counts of the pattern eliminated in ``order``."""
    graph = adjacency(n, rows, cols)
    indptr, indices = graph.indptr.astype(np.int64), graph.indices.astype(np.int64)
    parent, count, complete = tree_and_counts(indptr, indices, np.asarray(order), _NO_LIMIT)
    assert complete
    return parent, count


def _fill(n: int, rows: np.ndarray, cols: np.ndarray, order: np.ndarray) -> int:
    """Return nnz(L) (diagonal included) of the pattern eliminated in ``order``."""
    return int(_counts(n, rows, cols, order)[1].sum())


def _dense_factor(n: int, rows: np.ndarray, cols: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Return the pattern of ``L`` by eliminating a dense boolean matrix (the reference)."""
    a = np.eye(n, dtype=bool)
    a[rows, cols] = a[cols, rows] = True
    a = a[np.ix_(order, order)]
    for k in range(n):
        below = np.flatnonzero(a[k + 1 :, k]) + k + 1
        a[np.ix_(below, below)] = True
    return np.tril(a)


def _dense_fill(n: int, rows: np.ndarray, cols: np.ndarray, order: np.ndarray) -> int:
    """Return nnz(L) (diagonal included) by dense boolean elimination."""
    return int(_dense_factor(n, rows, cols, order).sum())


@st.composite
def _patterns(draw):
    n = draw(st.integers(1, 40))
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=120))
    rows = np.array([p[0] for p in pairs], np.int64)
    cols = np.array([p[1] for p in pairs], np.int64)
    return n, rows, cols


@settings(max_examples=60, deadline=None)
@given(_patterns())
def test_minimum_degree_is_a_permutation_and_fills_no_more_than_a_random_order(pattern):
    n, rows, cols = pattern
    off = rows != cols
    order = approximate_minimum_degree(adjacency(n, rows[off], cols[off]))
    assert np.array_equal(np.sort(order), np.arange(n))
    fill = _fill(n, rows, cols, order)
    assert fill == _dense_fill(n, rows, cols, order)
    random = np.random.default_rng(n).permutation(n)
    assert fill <= _dense_fill(n, rows, cols, random) + n


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 300), st.integers(0, 2**31))
def test_minimum_degree_does_not_fill_a_tree(n, seed):
    rng = np.random.default_rng(seed)
    parent = np.array([rng.integers(0, k) for k in range(1, n)])
    rows, cols = np.arange(1, n), parent
    order = approximate_minimum_degree(adjacency(n, rows, cols))
    assert _fill(n, rows, cols, order) == 2 * n - 1


def test_minimum_degree_beats_nested_dissection_on_a_random_kkt_pattern():
    rng = np.random.default_rng(0)
    n, m = 400, 200
    h = [(k + 1, k) for k in range(n - 1)]
    a = [(n + i, int(j)) for i in range(m) for j in rng.integers(0, n, 3)]
    rows, cols = np.array(h + a).T
    graph = adjacency(n + m, rows, cols)
    amd = _fill(n + m, rows, cols, approximate_minimum_degree(graph))
    nd = _fill(n + m, rows, cols, nested_dissection(graph, leaf_size=16))
    assert amd < 0.7 * nd
    assert analyse(n + m, rows, cols).ordering == "minimum degree"


@settings(max_examples=40, deadline=None)
@given(_patterns(), st.integers(0, 2**31))
def test_tree_and_counts_match_a_dense_elimination(pattern, seed):
    n, rows, cols = pattern
    order = np.random.default_rng(seed).permutation(n)
    parent, count = _counts(n, rows, cols, order)
    factor = _dense_factor(n, rows, cols, order)
    assert np.array_equal(count, factor.sum(axis=0))
    # The parent of column j is the first row below the diagonal that it reaches in L.
    for j in range(n):
        below = np.flatnonzero(factor[j + 1 :, j])
        assert parent[j] == (j + 1 + below[0] if below.size else -1)


@settings(max_examples=40, deadline=None)
@given(_patterns())
def test_minimum_degree_counts_the_updates_of_its_order(pattern):
    n, rows, cols = pattern
    graph = adjacency(n, rows, cols)
    indptr, indices = graph.indptr.astype(np.int64), graph.indices.astype(np.int64)
    dense = np.diff(indptr) > dense_threshold(n)
    order, updates = _amd(indptr, indices, dense, np.array([_NO_LIMIT]))
    exact = update_count(_counts(n, rows, cols, order)[1])
    # Exact without dense rows; with them (ordered last, outside the count) a lower bound.
    assert updates == exact if not dense.any() else updates <= exact
    assert approximate_minimum_degree(graph, limit=updates) is not None
    assert approximate_minimum_degree(graph, limit=updates - 1) is None


@settings(max_examples=30, deadline=None)
@given(_patterns(), st.integers(0, 2**31))
def test_counts_stop_past_the_limit(pattern, seed):
    n, rows, cols = pattern
    order = np.random.default_rng(seed).permutation(n)
    full = update_count(_counts(n, rows, cols, order)[1])
    graph = adjacency(n, rows, cols)
    indptr, indices = graph.indptr.astype(np.int64), graph.indices.astype(np.int64)
    assert tree_and_counts(indptr, indices, order, full)[2]
    assert not tree_and_counts(indptr, indices, order, full - 1)[2]


@settings(max_examples=40, deadline=None)
@given(_patterns(), st.booleans())
def test_adjacency_and_symmetry_check_match_a_dense_pattern(pattern, mirror):
    n, rows, cols = pattern
    if mirror:
        rows, cols = np.r_[rows, cols], np.r_[cols, rows]
    graph, mirrored = symmetric_adjacency(n, rows, cols)
    dense = np.zeros((n, n), bool)
    dense[rows, cols] = True
    expected = dense | dense.T
    np.fill_diagonal(expected, False)
    assert np.array_equal(graph.toarray().astype(bool), expected)
    assert graph.has_sorted_indices
    upper = np.triu(dense, 1)
    assert mirrored == (not upper.any() or np.array_equal(upper, np.tril(dense, -1).T))


@settings(max_examples=40, deadline=None)
@given(_patterns(), st.integers(1, 45))
def test_ball_is_the_subgraph_a_breadth_first_search_meets(pattern, size):
    n, rows, cols = pattern
    graph = adjacency(n, rows, cols)
    dense = np.zeros(n, bool)
    dense[: n // 5] = np.diff(graph.indptr)[: n // 5] > 2
    if dense.all():
        return
    start = int(np.flatnonzero(~dense)[-1])
    vertices, xadj, adj = ball(graph.indptr.astype(np.int64), graph.indices, dense, start, size)
    assert vertices[0] == start
    assert vertices.size == min(size, int((~dense).sum()))
    assert np.unique(vertices).size == vertices.size and not dense[vertices].any()
    sub = scipy.sparse.csr_matrix((np.ones(adj.size), adj, xadj), shape=(vertices.size,) * 2)
    expected = graph[vertices][:, vertices]
    assert np.array_equal(sub.toarray() != 0, expected.toarray() != 0)
    # Each vertex is met from an earlier one, or starts a new component once the
    # earlier ones have no unmet neighbour; new components start at the first such vertex.
    for k in range(1, vertices.size):
        earlier = vertices[:k]
        if not graph[vertices[k]][:, earlier].nnz:
            met = np.zeros(n, bool)
            met[earlier] = True
            reach = graph[earlier].indices
            assert met[reach[~dense[reach]]].all()
            assert vertices[k] == np.flatnonzero(~met & ~dense)[0]


def test_central_vertex_of_a_path_and_a_grid():
    path = adjacency(9, np.arange(8), np.arange(1, 9))
    indptr, indices = path.indptr.astype(np.int64), path.indices.astype(np.int64)
    assert central_vertex(indptr, indices, np.zeros(9, bool)) == 4
    # Dense vertices are left out: the path 0..6 (7 and 8 dense) has its middle at 3.
    assert central_vertex(indptr, indices, np.arange(9) >= 7) == 3
    grid = np.arange(49).reshape(7, 7)
    rows = np.r_[grid[:, 1:].ravel(), grid[1:].ravel()]
    cols = np.r_[grid[:, :-1].ravel(), grid[:-1].ravel()]
    graph = adjacency(49, rows, cols)
    indptr, indices = graph.indptr.astype(np.int64), graph.indices.astype(np.int64)
    assert central_vertex(indptr, indices, np.zeros(49, bool)) == grid[3, 3]


def test_the_trial_leaves_out_minimum_degree_on_a_grid_and_nested_dissection_on_a_band():
    side = 400  # n = 160,000: above the size where the trial is made
    grid = np.arange(side * side).reshape(side, side)
    rows = np.r_[grid[:, 1:].ravel(), grid[1:].ravel()]
    cols = np.r_[grid[:, :-1].ravel(), grid[:-1].ravel()]
    graph = adjacency(side * side, rows, cols)
    assert side * side >= _TRIAL_MIN_SIZE
    indptr, indices = graph.indptr.astype(np.int64), graph.indices.astype(np.int64)
    assert _candidates(indptr, indices, 5_000_000) == (True, False, False)
    n, width = 160_000, 5
    rows = np.concatenate([np.arange(d, n) for d in range(1, width + 1)])
    cols = np.concatenate([np.arange(0, n - d) for d in range(1, width + 1)])
    band = adjacency(n, rows, cols)
    indptr, indices = band.indptr.astype(np.int64), band.indices.astype(np.int64)
    size, nested, minimum, banded = _trial(indptr, indices)
    assert size == 1 << 14 and minimum < 0.5 * nested and banded
    # Nested dissection stays where the scalar plan may take it, not for dense fronts.
    assert _candidates(indptr, indices, 5_000_000) == (True, True, True)
    assert _candidates(indptr, indices, 100_000) == (False, True, True)


@settings(max_examples=40, deadline=None)
@given(_patterns(), st.integers(0, 2**31))
def test_permuted_entries_match_numpy(pattern, seed):
    n, rows, cols = pattern
    order = np.random.default_rng(seed).permutation(n)
    inverse = np.argsort(order)
    i, j = permuted_entries(order, rows, cols)
    assert np.array_equal(i, np.maximum(inverse[rows], inverse[cols]))
    assert np.array_equal(j, np.minimum(inverse[rows], inverse[cols]))


@settings(max_examples=40, deadline=None)
@given(_patterns(), st.integers(1, 6))
def test_nested_dissection_is_a_permutation(pattern, leaf_size):
    n, rows, cols = pattern
    order = nested_dissection(adjacency(n, rows, cols), leaf_size)
    assert np.array_equal(np.sort(order), np.arange(n))


@settings(max_examples=10, deadline=None)
@given(st.integers(16, 40), st.floats(0.0, 0.2), st.integers(0, 2**31))
def test_nested_dissection_fills_a_grid_less_than_its_band(side, dropped, seed):
    """On a grid (with some edges dropped: pieces fall apart) it beats the natural order."""
    grid = np.arange(side * side).reshape(side, side)
    rows = np.r_[grid[:, 1:].ravel(), grid[1:].ravel()]
    cols = np.r_[grid[:, :-1].ravel(), grid[:-1].ravel()]
    keep = np.random.default_rng(seed).random(rows.size) >= dropped
    rows, cols = rows[keep], cols[keep]
    n = side * side
    order = nested_dissection(adjacency(n, rows, cols), leaf_size=8)
    assert np.array_equal(np.sort(order), np.arange(n))
    assert _fill(n, rows, cols, order) < 0.7 * _fill(n, rows, cols, np.arange(n))


def _grid(side: int):
    """The 5-point pattern of a ``side x side`` grid (lower triangle)."""
    index = np.arange(side * side).reshape(side, side)
    rows = np.concatenate([index[1:].ravel(), index[:, 1:].ravel()])
    cols = np.concatenate([index[:-1].ravel(), index[:, :-1].ravel()])
    return side * side, rows, cols


@settings(max_examples=40, deadline=None)
@given(
    st.one_of(_patterns(), st.integers(2, 12).map(_grid)),
    st.integers(0, 2**31),
    st.booleans(),
    st.booleans(),
)
def test_structures_match_a_dense_elimination(pattern, seed, dissect, fundamental):
    n, rows, cols = pattern
    if dissect:
        order = nested_dissection(adjacency(n, rows, cols), leaf_size=2)
    else:
        order = np.random.default_rng(seed).permutation(n)
    order, parent, count = _postordered(order, *_counts(n, rows, cols, order))
    # Supernodes: single columns, or the chains amalgamate finds before relaxing.
    owner = amalgamate(parent, count)[0] if fundamental else np.arange(n)
    first = np.flatnonzero(np.diff(owner, prepend=-1, append=-1)).astype(np.int64)
    last = first[1:] - 1
    sparent = np.where(parent[last] >= 0, owner[np.maximum(parent[last], 0)], -1)
    graph = adjacency(n, rows, cols)
    ptr, srows = structures(
        first, graph.indptr.astype(np.int64), graph.indices.astype(np.int64), order, sparent
    )
    factor = _dense_factor(n, rows, cols, order)
    for s in range(first.size - 1):
        below = np.flatnonzero(factor[:, first[s] : last[s] + 1].any(axis=1))
        assert srows[ptr[s] : ptr[s + 1]].tolist() == below[below > last[s]].tolist()


def test_analyse_takes_the_callers_key_and_starts_no_thread_per_call():
    rows, cols = np.array([0, 1, 1, 2, 2]), np.array([0, 0, 1, 1, 2])
    key = pattern_key(3, rows, cols)
    assert analyse(3, rows, cols).key == key
    assert analyse(3, rows, cols, key=b"given").key == b"given"
    before = threading.active_count()
    for n in range(4, 10):
        analyse(n, np.arange(n), np.arange(n))
    assert threading.active_count() <= max(before, 2)
