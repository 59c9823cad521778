"""reduce_window family, select_and_scatter_add and select_and_gather_add."""

from __future__ import annotations

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from jax import lax

from asdex.detection import Curvature, Equation, Operand, jacobian_sparsity
from asdex.detection._registry import lookup
from asdex.detection._rules.windows import axis_table, window_table


def detected(f, *args):
    return jacobian_sparsity(f, *args).todense().astype(bool)


def numeric(f, x):
    point = jax.random.normal(jax.random.key(0), jnp.shape(x))
    jac = np.asarray(jax.jacfwd(f)(point))
    return jac.reshape(-1, point.size) != 0


def window_sum(x, window, strides, padding, base, dilation):
    return lax.reduce_window(x, 0.0, lax.add, window, strides, padding, base, dilation)


@st.composite
def window_config(draw):
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 5)) for _ in range(rank))
    window = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    strides = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    padding = tuple((draw(st.integers(-1, 2)), draw(st.integers(-1, 2))) for _ in range(rank))
    base = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    return shape, (window, strides, padding, base, dilation)


@settings(max_examples=6, deadline=None)
@given(window_config())
def test_reduce_window_sum_is_exact_and_max_min_share_the_window(config):
    shape, params = config
    x = jnp.ones(shape)
    try:
        out = jax.eval_shape(lambda x: window_sum(x, *params), x)
    except (TypeError, ValueError):
        return
    if 0 in out.shape:
        return
    summed = detected(lambda x: window_sum(x, *params), x)
    np.testing.assert_array_equal(summed, numeric(lambda x: window_sum(x, *params), x))
    for init, op in ((-jnp.inf, lax.max), (jnp.inf, lax.min)):
        f = lambda x, init=init, op=op: lax.reduce_window(x, init, op, *params)  # noqa: E731
        np.testing.assert_array_equal(detected(f, x), summed)
        assert not (numeric(f, x) & ~summed).any()


def test_pools():
    x = jnp.ones((1, 6, 6, 2))
    avg = lambda x: lax.reduce_window(x, 0.0, lax.add, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4  # noqa: E731
    np.testing.assert_array_equal(detected(avg, x), numeric(avg, x))
    assert detected(avg, x).sum(axis=1).tolist() == [4] * 18
    pool = lambda x: lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")  # noqa: E731
    p = detected(pool, x)
    assert not (numeric(pool, x) & ~p).any()
    np.testing.assert_array_equal(p, detected(lambda x: avg_same(x), x))


def avg_same(x):
    return lax.reduce_window(x, 0.0, lax.add, (1, 3, 3, 1), (1, 2, 2, 1), "SAME")


def test_generic_reduce_window():
    x = jnp.ones((5, 4))
    prod = lambda x: lax.reduce_window(x, 1.0, lax.mul, (2, 2), (1, 1), "SAME")  # noqa: E731
    np.testing.assert_array_equal(
        detected(prod, x), detected(lambda x: window_sum(x, (2, 2), (1, 1), "SAME", None, None), x)
    )

    def two(x):
        a, b = lax.reduce_window((x, x**2), (1.0, 0.0),
                                 lambda u, v: (u[0] * v[0], u[1] + v[1]), (2, 1), (1, 1), "VALID")
        return jnp.concatenate([a.ravel(), b.ravel()])

    expected = detected(lambda x: window_sum(x, (2, 1), (1, 1), "VALID", None, None), x)
    np.testing.assert_array_equal(detected(two, x), np.vstack([expected, expected]))
    # a traced init value feeds every result
    p = jacobian_sparsity(lambda x: lax.reduce_window(x, x[0, 0], lax.max, (2, 2), (2, 2),
                                                      "VALID"), x).todense()
    assert p[:, 0].all()


def _generic_eqn(reducer):
    closed = jax.make_jaxpr(
        lambda x: lax.reduce_window(x, 1.0, reducer, (2,), (1,), "VALID"))(jnp.ones(3))
    (eqn,) = closed.jaxpr.eqns
    return Equation(eqn.primitive, dict(eqn.params), (Operand((3,), np.float32),) * 2,
                    ((2,),), (np.float32,))


@pytest.mark.parametrize(("reducer", "curvature"),
                         [(lax.mul, Curvature.NONLINEAR), (lax.max, Curvature.ZERO),
                          (lambda a, b: a + 2 * b, Curvature.ZERO)])
def test_generic_curvature(reducer, curvature):
    assert lookup("reduce_window").curvature(_generic_eqn(reducer)) is curvature


def test_curvatures():
    for name in ("reduce_window_sum", "reduce_window_max", "reduce_window_min",
                 "select_and_scatter_add", "select_and_gather_add"):
        assert lookup(name).curvature is Curvature.ZERO


def test_max_pool_gradient_and_jvp():
    def loss(x):
        pooled = lax.reduce_window(x, -jnp.inf, lax.max, (2, 2), (2, 2), ((0, 1), (1, 0)))
        return (pooled**2).sum()

    x = jnp.ones((5, 4))
    grad = jax.grad(loss)
    assert "select_and_scatter_add" in str(jax.make_jaxpr(grad)(x))
    p = detected(grad, x)
    assert not (numeric(grad, x) & ~p).any()
    # the gradient at element j depends on the elements of the windows containing j
    windows = detected(lambda x: window_sum(x, (2, 2), (2, 2), ((0, 1), (1, 0)), None, None), x)
    np.testing.assert_array_equal(p, (windows.T.astype(int) @ windows.astype(int)) > 0)

    def tangent(x):
        return jax.jvp(lambda y: lax.reduce_window(y, -jnp.inf, lax.max, (2, 3), (1, 1), "VALID"),
                       (x,), (jnp.sin(x),))[1]

    assert "select_and_gather_add" in str(jax.make_jaxpr(tangent)(x))
    expected = detected(lambda x: window_sum(x, (2, 3), (1, 1), "VALID", None, None), x)
    np.testing.assert_array_equal(detected(tangent, x), expected)


def test_window_table():
    assert axis_table(5, 2, 2, (0, 1)).tolist() == [[0, 1], [2, 3], [4, -1]]
    # base dilation 2: operand positions 0, 2, 4 of the dilated axis are real
    assert axis_table(3, 2, 1, (0, 0), base_dilation=2).tolist() == [
        [0, -1], [-1, 1], [1, -1], [-1, 2]]
    assert axis_table(4, 2, 1, (-1, 0), window_dilation=2).tolist() == [[1, 3]]
    table = window_table((2, 3), (1, 2), (1, 1), ((0, 0), (0, 0)))
    assert table.tolist() == [[0, 1], [1, 2], [3, 4], [4, 5]]
