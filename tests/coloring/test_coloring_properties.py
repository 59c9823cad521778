"""Hypothesis property tests: every algorithm and order gives a valid coloring, and
every decompression schedule recovers a random matrix with that pattern exactly."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from asdex import InvalidColoringError, SparsityPattern
from asdex.coloring import (
    ORDERS,
    check_coloring_acyclic,
    check_coloring_cols,
    check_coloring_rows,
    check_coloring_symmetric,
    color_acyclic,
    color_bidirectional,
    color_cols,
    color_rows,
    color_symmetric,
    hessian_coloring_from_sparsity,
    jacobian_coloring_from_sparsity,
    schedule,
)

ALL_ORDERS = [*ORDERS, "best"]
FAST = settings(max_examples=25, deadline=None)


@st.composite
def patterns(draw, square=False, symmetric=False):
    m = draw(st.integers(0, 14))
    n = m if square else draw(st.integers(0, 14))
    density = draw(st.floats(0.0, 0.6))
    seed = draw(st.integers(0, 2**32 - 1))
    dense = np.random.default_rng(seed).random((m, n)) < density
    if symmetric:
        dense = dense | dense.T
        if draw(st.booleans()):
            dense[np.arange(n), np.arange(n)] = True
    return SparsityPattern.from_dense(dense)


def _values(p, seed=0):
    rng = np.random.default_rng(seed)
    mat = np.zeros(p.shape)
    mat[p.rows, p.cols] = rng.normal(size=p.nnz)
    return mat


def _seeds(colors, num_colors):
    seeds = np.zeros((colors.size, num_colors))
    active = colors >= 0
    seeds[np.flatnonzero(active), colors[active]] = 1.0
    return seeds


def _assert_recovers(colored, matrix):
    """The plan's passes, applied to a matrix with the pattern, decompress to its values."""
    products = {"jvp": lambda s: matrix @ s, "vjp": lambda s: matrix.T @ s,
                "hvp": lambda s: matrix @ s}
    blocks = [products[p.kind](_seeds(p.colors, p.count)) for p in colored.plan.passes]
    sched = schedule(colored)
    compressed = scipy.linalg.block_diag(*blocks).reshape(sched.b_shape)
    p = colored.sparsity
    np.testing.assert_allclose(sched.apply(compressed), matrix[p.rows, p.cols], atol=1e-10)


@FAST
@given(patterns(), st.sampled_from(ALL_ORDERS), st.integers(0, 3))
def test_partial_colorings_valid(p, order, seed):
    colors, k = color_cols(p, order=order, seed=seed)
    check_coloring_cols(p, colors)
    assert k == (colors.max() + 1 if colors.size else 0)
    colors, k = color_rows(p, order=order, seed=seed)
    check_coloring_rows(p, colors)
    for mode in ("fwd", "rev"):
        colored = jacobian_coloring_from_sparsity(p, mode=mode, order=order, seed=seed)
        _assert_recovers(colored, _values(p, seed))


@FAST
@given(patterns(), st.sampled_from(ALL_ORDERS))
def test_unset_mode_picks_the_side_with_fewer_colors(p, order):
    num_cols = color_cols(p, order=order, seed=0)[1]
    num_rows = color_rows(p, order=order, seed=0)[1]
    colored = jacobian_coloring_from_sparsity(p, order=order, seed=0)
    assert colored.num_colors == min(num_cols, num_rows)
    assert colored.mode == ("fwd" if num_cols <= num_rows else "rev")
    _assert_recovers(colored, _values(p))


def test_unset_mode_skips_the_row_coloring_a_dense_column_rules_out():
    # 200,000 rows meeting in one column: the row coloring alone is quadratic in m.
    m, n = 200_000, 1_000
    rows = np.concatenate([np.arange(m), np.arange(m)])
    cols = np.concatenate([np.zeros(m, int), 1 + np.arange(m) % (n - 1)])
    colored = jacobian_coloring_from_sparsity(SparsityPattern.from_coo(rows, cols, (m, n)))
    assert (colored.mode, colored.num_colors) == ("fwd", 2)


@FAST
@given(patterns(square=True, symmetric=True), st.sampled_from(ALL_ORDERS), st.booleans())
def test_symmetric_colorings_valid(p, order, postprocess):
    hess = _symmetric_matrix(p)
    colors, _k, stars = color_symmetric(p, order=order, seed=1, postprocess=postprocess)
    check_coloring_symmetric(p, colors)
    assert stars.edge_rows.size == np.count_nonzero(p.rows < p.cols)
    colors_a, _k_a = color_acyclic(p, order=order, seed=1, postprocess=postprocess)
    check_coloring_acyclic(p, colors_a)
    for method in ("star", "acyclic"):
        colored = hessian_coloring_from_sparsity(p, method=method, order=order, seed=1,
                                                 postprocess=postprocess)
        _assert_recovers(colored, hess)


@FAST
@given(patterns(), st.sampled_from(["star", "acyclic"]), st.sampled_from(ALL_ORDERS))
def test_bidirectional_valid(p, method, order):
    colors, num_col, num_row = color_bidirectional(p, method=method, order=order, seed=2)
    assert colors.shape == (p.m + p.n,)
    assert num_col + num_row <= min(color_cols(p)[1], color_rows(p)[1])
    colored = jacobian_coloring_from_sparsity(p, method="bidirectional")
    _assert_recovers(colored, _values(p))


def _symmetric_matrix(p):
    rng = np.random.default_rng(7)
    upper = rng.normal(size=p.shape)
    mat = np.triu(upper) + np.triu(upper, 1).T
    return np.where(p.todense() | p.todense().T, mat, 0.0)


@FAST
@given(patterns(square=True, symmetric=True), st.integers(0, 2**32 - 1))
def test_forced_colorings(p, seed):
    rng = np.random.default_rng(seed)
    forced = rng.integers(0, max(p.n // 2, 1) + 1, size=p.n)
    try:
        check_coloring_symmetric(p, forced)
    except InvalidColoringError:
        with pytest.raises(InvalidColoringError):
            color_symmetric(p, forced_colors=forced)
    else:
        colors, _, _ = color_symmetric(p, forced_colors=forced)
        np.testing.assert_array_equal(colors, forced)
    try:
        check_coloring_acyclic(p, forced)
    except InvalidColoringError:
        with pytest.raises(InvalidColoringError):
            color_acyclic(p, forced_colors=forced)
    else:
        colors, _k = color_acyclic(p, forced_colors=forced, postprocess=True)
        check_coloring_acyclic(p, colors)
    # every computed coloring passes as a forced one
    colors, _, _ = color_symmetric(p)
    np.testing.assert_array_equal(color_symmetric(p, forced_colors=colors)[0], colors)


@FAST
@given(patterns(square=True, symmetric=True))
def test_star_is_acyclic_and_distance1(p):
    colors, _, _ = color_symmetric(p)
    check_coloring_acyclic(p, colors)


@FAST
@given(patterns(square=True))
def test_unsymmetric_square_pattern_uses_its_closure(p):
    hess = _symmetric_matrix(p)
    for method in ("star", "acyclic"):
        colored = hessian_coloring_from_sparsity(p, method=method)
        _assert_recovers(colored, hess)
