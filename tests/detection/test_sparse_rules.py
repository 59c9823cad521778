"""`bcoo_dot_general` (JAX sparse BCOO products): its layout, and patterns against JAX.

The rule reads the operands `(data, indices, rhs)` and the params `dimension_numbers`
and `lhs_spinfo`; the first test pins them (if it fails after a JAX upgrade, update
`asdex/detection/_rules/sparse.py`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st
from jax.experimental import sparse
from rule_checks import check_rule, run_property

import asdex

EXAMPLES = 60
"""Hypothesis examples per property (slow suite: an example compiles its references)."""


def _eqn(f, *args):
    eqns = [e for e in jax.make_jaxpr(f)(*args).jaxpr.eqns if e.primitive.name.startswith("bcoo")]
    assert [e.primitive.name for e in eqns] == ["bcoo_dot_general"]
    return eqns[0]


def test_bcoo_dot_general_layout():
    matrix = sparse.BCOO.fromdense(np.eye(2, 3, dtype=np.float32).reshape(1, 2, 3), n_batch=1)
    eqn = _eqn(lambda x: sparse.bcoo_dot_general(
        matrix, x, dimension_numbers=(((2,), (1,)), ((0,), (0,)))), jnp.ones((1, 3, 4)))
    data, indices, rhs = (v.aval for v in eqn.invars)
    assert (data.shape, indices.shape, rhs.shape) == ((1, 2), (1, 2, 2), (1, 3, 4))
    assert eqn.params["dimension_numbers"] == (((2,), (1,)), ((0,), (0,)))
    assert tuple(eqn.params["lhs_spinfo"].shape) == (1, 2, 3)
    assert eqn.outvars[0].aval.shape == (1, 2, 4)
    # a dense lhs times a sparse rhs is the same primitive with the operands swapped
    eqn = _eqn(lambda x: x @ matrix[0], jnp.ones((4, 2)))
    assert eqn.params["dimension_numbers"] == (((0,), (1,)), ((), ()))
    assert [v.aval.shape for v in eqn.invars] == [(2,), (2, 2), (4, 2)]


@st.composite
def products(draw):
    """A random BCOO matrix (constant), and dimension numbers for a product with it.

    JAX cannot transpose a product whose BCOO operand has dense dimensions, so the
    Hessian reference (`jax.hessian`) only runs without them (`matrix.n_dense == 0`).
    """
    n_batch = draw(st.integers(0, 1))
    n_sparse = draw(st.integers(1, 2))
    n_dense = draw(st.integers(0, 1))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=n_batch + n_sparse + n_dense,
                                max_size=n_batch + n_sparse + n_dense)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    dense = rng.normal(size=shape).astype(np.float32)
    dense[rng.random(shape) < 0.5] = 0.0
    nse = int((dense.reshape(*shape[:n_batch + n_sparse], -1) != 0).any(-1)
              .reshape(*shape[:n_batch], -1).sum(-1).max(initial=0))
    matrix = sparse.BCOO.fromdense(dense, n_batch=n_batch, n_dense=n_dense,
                                   nse=max(nse, 1) + draw(st.integers(0, 2)))
    contract = n_batch + draw(st.integers(0, n_sparse - 1))
    batched = n_batch == 1 and draw(st.booleans())
    lhs_batch, rhs_batch = ((0,), (0,)) if batched else ((), ())
    rhs_shape = (*((shape[0],) if batched else ()), shape[contract], 2)
    numbers = (((contract,), (len(rhs_batch),)), (lhs_batch, rhs_batch))
    return matrix, numbers, rhs_shape


def _constant(rng, shape):
    value = rng.normal(size=shape).astype(np.float32)
    value[rng.random(shape) < 0.3] = 0.0
    return value


@pytest.mark.slow
def test_constant_sparse_matrix_times_x_is_exact():
    def check(data):
        matrix, numbers, rhs_shape = data.draw(products())
        f = lambda x: sparse.bcoo_dot_general(matrix, x, dimension_numbers=numbers)  # noqa: E731
        check_rule(data, f, np.zeros(rhs_shape), hessian=matrix.n_dense == 0)

    run_property(EXAMPLES, check)


@pytest.mark.slow
def test_traced_values_at_constant_indices_are_exact():
    def check(data):
        matrix, numbers, rhs_shape = data.draw(products())
        rhs = _constant(np.random.default_rng(data.draw(st.integers(0, 99))), rhs_shape)

        def f(values):
            traced = sparse.BCOO((values, matrix.indices), shape=matrix.shape)
            return sparse.bcoo_dot_general(traced, rhs, dimension_numbers=numbers)

        check_rule(data, f, np.zeros(matrix.data.shape), hessian=matrix.n_dense == 0)

    run_property(EXAMPLES, check)


@pytest.mark.slow
def test_traced_values_and_rhs_are_exact():
    def check(data):
        matrix, numbers, rhs_shape = data.draw(products())
        size = matrix.data.size

        def f(x):
            traced = sparse.BCOO((x[:size].reshape(matrix.data.shape), matrix.indices),
                                 shape=matrix.shape)
            return sparse.bcoo_dot_general(traced, x[size:].reshape(rhs_shape),
                                           dimension_numbers=numbers)

        # the curvature couples each stored value with the whole contracted row; JAX's
        # own Hessian of a batched BCOO product of two traced operands fails
        check_rule(data, f, np.zeros(size + int(np.prod(rhs_shape))),
                   hessian=matrix.n_dense == 0 and matrix.n_batch == 0, hessian_exact=False)

    run_property(EXAMPLES, check)


@pytest.mark.slow
def test_traced_indices_are_sound():
    def check(data):
        matrix, numbers, rhs_shape = data.draw(products())
        size = matrix.data.size
        bound = np.asarray(matrix.shape[matrix.n_batch:matrix.n_batch + matrix.n_sparse])

        def f(x, indices):
            traced = sparse.BCOO((x[:size].reshape(matrix.data.shape), indices),
                                 shape=matrix.shape)
            return sparse.bcoo_dot_general(traced, x[size:].reshape(rhs_shape),
                                           dimension_numbers=numbers)

        def indices(rng):
            return (rng.integers(0, bound + 1, matrix.indices.shape).astype(np.int32),)

        check_rule(data, f, np.zeros(size + int(np.prod(rhs_shape))), indices, exact=False,
                   hessian=matrix.n_dense == 0 and matrix.n_batch == 0)

    run_property(EXAMPLES, check)


def test_dense_times_sparse_matrix_gives_its_transpose_pattern():
    dense = np.zeros((4, 6), np.float32)
    dense[[0, 1, 3, 3], [2, 5, 0, 4]] = [1.0, 2.0, 3.0, 4.0]
    matrix = sparse.BCOO.fromdense(dense)
    pattern = asdex.jacobian_sparsity(lambda x: x @ matrix, jnp.ones(4)).todense()
    np.testing.assert_array_equal(pattern != 0, dense.T != 0)


def test_out_of_range_and_negative_indices():
    indices = np.array([[0, 1], [-1, 2], [3, 0], [1, 5]], np.int32)  # (-1, 2) is row 2
    matrix = sparse.BCOO((jnp.ones(4), indices), shape=(3, 4))
    pattern = asdex.jacobian_sparsity(lambda x: matrix @ x, jnp.ones(4)).todense()
    expected = np.zeros((3, 4), bool)
    expected[0, 1] = expected[2, 2] = True
    np.testing.assert_array_equal(pattern != 0, expected)
    np.testing.assert_array_equal(
        jax.jit(jax.jacfwd(lambda x: matrix @ x))(jnp.ones(4)) != 0, expected)


def test_batched_matrix_with_dense_dimension_and_padding_is_exact():
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(2, 3, 4, 2)).astype(np.float32)
    dense[rng.random((2, 3, 4)) < 0.6] = 0.0
    matrix = sparse.BCOO.fromdense(dense, n_batch=1, n_dense=1, nse=7)  # padded
    size = matrix.data.size
    numbers = (((2,), (1,)), ((0,), (0,)))

    def f(x):
        traced = sparse.BCOO((x[:size].reshape(matrix.data.shape), matrix.indices),
                             shape=matrix.shape)
        return sparse.bcoo_dot_general(traced, x[size:].reshape(2, 4, 3),
                                       dimension_numbers=numbers).ravel()

    x = jnp.asarray(rng.normal(size=size + 24).astype(np.float32))
    pattern = asdex.jacobian_sparsity(f, x).todense() != 0
    np.testing.assert_array_equal(pattern, np.asarray(jax.jit(jax.jacfwd(f))(x)) != 0)
