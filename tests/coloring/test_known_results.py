"""Color counts known from the literature, and the reference API's behavior."""

import numpy as np
import pytest
from coloring_patterns import arrowhead, banded
from jax.experimental import sparse

from asdex import InvalidColoringError, SparsityPattern
from asdex.coloring import (
    BEST_OF,
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
)


@pytest.mark.parametrize("b", [1, 2, 3, 5])
def test_banded_counts(b):
    p = banded(60, b)
    assert color_cols(p)[1] == 2 * b + 1
    assert color_rows(p)[1] == 2 * b + 1
    colors, k, _ = color_symmetric(p)
    assert k == 2 * b + 1
    check_coloring_symmetric(p, colors)
    colors, k = color_acyclic(p)
    assert k == b + 1
    check_coloring_acyclic(p, colors)


def test_arrowhead_star_vs_columns():
    p = arrowhead(30)
    _colors, k, stars = color_symmetric(p)
    assert k == 2
    assert stars.num_stars == 1
    assert np.all(stars.hubs == 0)
    assert color_cols(p)[1] == 30


@pytest.mark.parametrize("method", ["acyclic", "star"])
def test_dense_row_and_column_bidirectional(method):
    dense = np.zeros((40, 40))
    dense[3] = 1
    dense[:, 7] = 1
    dense[np.arange(40), np.arange(40)] = 1
    p = SparsityPattern.from_dense(dense)
    assert color_cols(p)[1] == 40 and color_rows(p)[1] == 40
    _, jvps, vjps = color_bidirectional(p, method=method)
    if method == "acyclic":
        assert jvps + vjps <= 3
    else:
        assert jvps + vjps <= 40


def test_dense_row_and_column_without_diagonal():
    dense = np.zeros((20, 25))
    dense[0] = 1
    dense[:, 0] = 1
    _, jvps, vjps = color_bidirectional(SparsityPattern.from_dense(dense))
    assert jvps + vjps <= 3


@pytest.mark.parametrize("seed", range(5))
def test_best_never_worse_than_largest_first(seed):
    rng = np.random.default_rng(seed)
    p = SparsityPattern.from_dense(rng.random((40, 50)) < 0.08)
    assert color_cols(p, order="best")[1] <= color_cols(p)[1]
    assert color_rows(p, order="best")[1] <= color_rows(p)[1]
    sym = SparsityPattern.from_dense((rng.random((40, 40)) < 0.06) | np.eye(40, dtype=bool))
    sym = SparsityPattern.from_dense(sym.todense() | sym.todense().T)
    assert color_symmetric(sym, order="best")[1] <= color_symmetric(sym)[1]
    assert color_acyclic(sym, order="best")[1] <= color_acyclic(sym)[1]
    assert color_acyclic(sym)[1] <= color_symmetric(sym)[1]


def test_orders_listed():
    assert set(BEST_OF) <= set(ORDERS)
    p = banded(20, 2)
    for order in ORDERS:
        colors, _ = color_cols(p, order=order, seed=3)
        check_coloring_cols(p, colors)
    colors, _ = color_cols(p, order=np.arange(20)[::-1])
    check_coloring_cols(p, colors)


def test_mode_selection_and_ties():
    tall = SparsityPattern.from_dense(np.ones((1, 5)))  # one dense row
    assert jacobian_coloring_from_sparsity(tall).mode == "rev"
    assert jacobian_coloring_from_sparsity(tall).num_colors == 1
    wide = SparsityPattern.from_dense(np.ones((5, 1)))
    assert jacobian_coloring_from_sparsity(wide).mode == "fwd"
    tie = banded(10, 1)
    assert jacobian_coloring_from_sparsity(tie).mode == "fwd"
    assert jacobian_coloring_from_sparsity(tie, symmetric=True).mode == "fwd"
    assert jacobian_coloring_from_sparsity(tall, mode="fwd").num_colors == 5


def test_accepts_arrays_and_bcoo():
    dense = np.eye(4)
    from_array = jacobian_coloring_from_sparsity(dense)
    from_bcoo = jacobian_coloring_from_sparsity(sparse.BCOO.fromdense(dense))
    assert from_array.sparsity == from_bcoo.sparsity
    assert from_array.num_colors == 1


def test_hessian_defaults():
    p = banded(30, 2)
    colored = hessian_coloring_from_sparsity(p)
    assert colored.mode == "fwd_over_rev" and colored.symmetric
    assert colored.star_set is not None and colored.num_colors == 5
    unsym = hessian_coloring_from_sparsity(p, symmetric=False, mode="rev_over_rev")
    assert not unsym.symmetric and unsym.mode == "rev_over_rev" and unsym.num_colors == 5
    acyclic = hessian_coloring_from_sparsity(p, method="acyclic")
    assert acyclic.algorithm == "acyclic" and acyclic.num_colors == 3 and acyclic.star_set is None


@pytest.mark.parametrize(
    ("make", "algorithm", "partition", "kinds"),
    [
        (lambda p: jacobian_coloring_from_sparsity(p, mode="fwd"), "greedy", "column", ["jvp"]),
        (lambda p: jacobian_coloring_from_sparsity(p, mode="rev"), "greedy", "row", ["vjp"]),
        (lambda p: jacobian_coloring_from_sparsity(p, method="bidirectional"), "acyclic",
         "bidirectional", ["jvp", "vjp"]),
        (lambda p: jacobian_coloring_from_sparsity(p, symmetric=True), "star", "column",
         ["jvp"]),
        (lambda p: hessian_coloring_from_sparsity(p), "star", "column", ["hvp"]),
        (lambda p: hessian_coloring_from_sparsity(p, method="acyclic"), "acyclic", "column",
         ["hvp"]),
        (lambda p: hessian_coloring_from_sparsity(p, symmetric=False), "greedy", "column",
         ["hvp"]),
    ],
)
def test_method_strings_give_algorithm_partition_and_passes(make, algorithm, partition, kinds):
    colored = make(arrowhead(12))
    assert (colored.algorithm, colored.partition) == (algorithm, partition)
    assert [p.kind for p in colored.plan.passes] == kinds
    assert sum(p.count for p in colored.plan.passes) == colored.num_colors
    for seed_pass in colored.plan.passes:
        assert seed_pass.colors.max(initial=-1) < seed_pass.count


def test_bidirectional_passes_split_the_row_and_column_colors():
    p = arrowhead(12)
    colored = jacobian_coloring_from_sparsity(p, method="bidirectional")
    jvp, vjp = colored.plan.passes
    rows, cols = colored.colors[: p.m], colored.colors[p.m :]
    np.testing.assert_array_equal(jvp.colors, cols)
    np.testing.assert_array_equal(vjp.colors, np.where(rows >= 0, rows - jvp.count, -1))
    with pytest.raises(ValueError, match="leave `mode` as None"):
        jacobian_coloring_from_sparsity(p, method="bidirectional", mode="rev")


def test_star_schedule_reads_each_edge_at_its_star_hub():
    p = arrowhead(12)
    colored = hessian_coloring_from_sparsity(p)
    stars = colored.star_set
    (level,) = colored.plan.schedule.levels
    edge_of_target = {(int(r), int(c)): k for k, (r, c) in enumerate(
        zip(stars.edge_rows, stars.edge_cols, strict=True))}
    for target, col in zip(level.targets, level.b_cols, strict=True):
        i, j = int(p.rows[target]), int(p.cols[target])
        if i != j:
            hub = stars.hubs[edge_of_target[(min(i, j), max(i, j))]]
            assert col == colored.colors[hub]


def test_postprocess_neutral_colors():
    # arrowhead without diagonal on the spokes: only the hub's color is ever read
    dense = np.zeros((6, 6))
    dense[0] = 1
    dense[:, 0] = 1
    p = SparsityPattern.from_dense(dense)
    colors, k, _ = color_symmetric(p, postprocess=True)
    assert k == 1
    assert colors[0] == 0 and np.all(colors[1:] == -1)
    check_coloring_symmetric(p, colors)
    colored = hessian_coloring_from_sparsity(p, postprocess=True)
    assert colored.num_colors == 1
    a_colors, a_k = color_acyclic(p, postprocess=True)
    assert a_k == 1
    check_coloring_acyclic(p, a_colors)
    # with a full diagonal every color is needed
    colors, k, _ = color_symmetric(arrowhead(6), postprocess=True)
    assert k == 2 and colors.min() == 0


def test_forced_colors():
    p = banded(8, 1)
    _colors, k, stars = color_symmetric(p, forced_colors=[0, 1, 2, 0, 1, 2, 0, 1])
    assert k == 3 and stars.hubs.size == 7
    with pytest.raises(InvalidColoringError, match="two-colored"):
        color_symmetric(p, forced_colors=[0, 1, 0, 1, 0, 1, 0, 1])
    with pytest.raises(InvalidColoringError, match="share color"):
        color_symmetric(p, forced_colors=[0, 0, 1, 2, 0, 1, 2, 0])
    assert color_acyclic(p, forced_colors=[0, 1, 0, 1, 0, 1, 0, 1])[1] == 2


def test_acyclic_rejects_cycle():
    cycle = np.eye(4) + np.roll(np.eye(4), 1, 1) + np.roll(np.eye(4), -1, 1)
    p = SparsityPattern.from_dense(cycle)
    with pytest.raises(InvalidColoringError, match="cannot be recovered"):
        check_coloring_acyclic(p, [0, 1, 0, 1])
    with pytest.raises(InvalidColoringError):
        color_acyclic(p, forced_colors=[0, 1, 0, 1])


def test_check_messages_name_the_pair():
    p = SparsityPattern.from_dense(np.array([[1, 1, 0], [0, 1, 1]]))
    with pytest.raises(InvalidColoringError, match="Columns 1 and 2 share row 1"):
        check_coloring_cols(p, [0, 1, 1])
    with pytest.raises(InvalidColoringError, match="Rows 0 and 1 share column 1"):
        check_coloring_rows(p, [0, 0])
    with pytest.raises(InvalidColoringError, match="neutral"):
        check_coloring_cols(p, [0, -1, 2])


def test_bad_input():
    with pytest.raises(ValueError, match="square"):
        color_symmetric(SparsityPattern.from_dense(np.ones((2, 3))))
    with pytest.raises(ValueError, match="square"):
        hessian_coloring_from_sparsity(np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        color_symmetric(banded(4, 1), forced_colors=[0, 1])
    with pytest.raises(ValueError, match="integers"):
        color_symmetric(banded(4, 1), forced_colors=[0.0, 1.0, 2.0, 0.0])
    with pytest.raises(ValueError, match="2-D"):
        jacobian_coloring_from_sparsity(np.ones(3))
    with pytest.raises(ValueError, match="Unknown order"):
        color_cols(banded(4, 1), order="sideways")
    with pytest.raises(ValueError, match="permutation"):
        color_cols(banded(4, 1), order=[0, 0, 1, 2])
    with pytest.raises(ValueError, match="mode"):
        jacobian_coloring_from_sparsity(np.eye(2), mode="fwd_over_rev")
    with pytest.raises(ValueError, match="mode"):
        hessian_coloring_from_sparsity(np.eye(2), mode="fwd")
    with pytest.raises(ValueError, match="method"):
        hessian_coloring_from_sparsity(np.eye(2), method="greedy")


def test_empty_patterns():
    empty = SparsityPattern.from_coo([], [], (3, 3))
    assert color_cols(empty)[1] == 1
    assert color_symmetric(empty)[1] == 1
    assert color_symmetric(empty, postprocess=True)[1] == 0
    zero = SparsityPattern.from_coo([], [], (0, 0))
    assert color_cols(zero)[1] == 0
    assert color_symmetric(zero)[1] == 0
