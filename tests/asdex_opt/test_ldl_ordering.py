"""SparseLDL's orderings: approximate minimum degree against exact fill counts."""

import numpy as np
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

from asdex_opt._lineax._ldl import analyse
from asdex_opt._lineax._ldl._amd import approximate_minimum_degree
from asdex_opt._lineax._ldl._ordering import adjacency, nested_dissection
from asdex_opt._lineax._ldl._symbolic import _evaluate


def _lower(n: int, rows: np.ndarray, cols: np.ndarray) -> scipy.sparse.csr_matrix:
    r = np.r_[np.maximum(rows, cols), np.arange(n)]
    c = np.r_[np.minimum(rows, cols), np.arange(n)]
    return scipy.sparse.csr_matrix((np.ones(r.size, np.int8), (r, c)), shape=(n, n))


def _fill(n: int, rows: np.ndarray, cols: np.ndarray, order: np.ndarray) -> int:
    """Return nnz(L) (diagonal included) of the pattern eliminated in ``order``."""
    return int(_evaluate(n, _lower(n, rows, cols), order)[4].sum())


def _dense_fill(n: int, rows: np.ndarray, cols: np.ndarray, order: np.ndarray) -> int:
    """Return nnz(L) by eliminating a dense boolean matrix (the reference)."""
    a = np.eye(n, dtype=bool)
    a[rows, cols] = a[cols, rows] = True
    a = a[np.ix_(order, order)]
    count = 0
    for k in range(n):
        below = np.flatnonzero(a[k + 1 :, k]) + k + 1
        count += 1 + below.size
        a[np.ix_(below, below)] = True
    return count


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
