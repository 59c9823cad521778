"""Hessian sparsity detection: exact patterns per nonlinearity class, API, control flow."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asdex.detection import hessian_sparsity, jacobian_sparsity


def detected(f, *args, **kwargs) -> np.ndarray:
    return hessian_sparsity(f, *args, **kwargs).todense().astype(bool)


def numeric(f, x, num_points: int = 3, seed: int = 0) -> np.ndarray:
    """Union of the nonzeros of the numeric Hessian at random points (forward-over-
    reverse, or forward-over-forward where reverse mode is unavailable)."""
    key = jax.random.key(seed)
    found = np.zeros((x.size, x.size), bool)
    for _ in range(num_points):
        key, sub = jax.random.split(key)
        y = x + jax.random.uniform(sub, x.shape, minval=0.3, maxval=1.3)
        try:
            h = jax.hessian(f)(y)
        except ValueError:  # while loops with dynamic trip counts
            h = jax.jacfwd(jax.jacfwd(f))(y)
        found |= np.asarray(h).reshape(x.size, x.size) != 0
    return found


def assert_exact(f, x, expected=None):
    d = detected(f, x)
    num = numeric(f, x)
    assert not (num & ~d).any(), "missed a nonzero"
    if expected is None:
        expected = num
    np.testing.assert_array_equal(d, np.asarray(expected, bool))
    np.testing.assert_array_equal(d, d.T)


def band(n: int, width: int) -> np.ndarray:
    i, j = np.indices((n, n))
    return np.abs(i - j) <= width


# --- nonlinearity classes -----------------------------------------------------------------

X = jnp.arange(1.0, 7.0)


def test_linear_and_piecewise_linear_have_zero_hessian():
    a = np.random.default_rng(0).normal(size=(3, 6))
    for f in [
        lambda x: jnp.sum(a @ x),
        lambda x: jnp.sum(jnp.abs(x)) + jnp.max(x) - jnp.min(x[:3]),
        lambda x: jnp.sum(jnp.where(x > 2, x, 3 * x)),
        lambda x: jnp.sum(jnp.maximum(x, 0.5) + jnp.clip(x, 1, 2)),
        lambda x: jnp.sum(jnp.cumsum(x) + jnp.sort(x)),
        lambda x: jnp.sum(x / 3.0) + jnp.sum(x**1) + jnp.sum(jnp.power(x, 1.0)),
    ]:
        assert not detected(f, X).any()


def test_separable_sums_are_diagonal():
    for f in [
        lambda x: jnp.sum(x**2),
        lambda x: jnp.sum(jnp.exp(jnp.sin(x))),
        lambda x: jnp.sum(jnp.log(x) + 1 / x + jnp.sqrt(x) + x**3),
        lambda x: jnp.sum(x * x),
        lambda x: jnp.sum(jnp.tanh(x) * 2.0),
    ]:
        assert_exact(f, X, np.eye(6))


def test_extended_rosenbrock_is_tridiagonal():
    def f(x):
        return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)

    assert_exact(f, jnp.ones(8), band(8, 1))


def test_bilinear_cross_terms_only():
    def f(x):
        return x[0] * x[3] + x[1] * x[2] * 2.0 + x[4] * x[4]

    expected = np.zeros((6, 6), bool)
    expected[0, 3] = expected[3, 0] = expected[1, 2] = expected[2, 1] = expected[4, 4] = True
    assert_exact(f, X, expected)


def test_division_is_linear_in_the_numerator():
    def f(x):
        return x[0] / x[1] + x[2] / 2.0 + 3.0 / x[3]

    expected = np.zeros((6, 6), bool)
    expected[0, 1] = expected[1, 0] = expected[1, 1] = expected[3, 3] = True
    assert_exact(f, X, expected)


def test_product_has_zero_diagonal():
    assert_exact(lambda x: jnp.prod(x), X, ~np.eye(6, dtype=bool))
    blocks = np.kron(np.eye(3), np.ones((2, 2))) - np.eye(6)
    assert_exact(lambda x: jnp.sum(jnp.prod(x.reshape(3, 2), axis=1)), X, blocks)


def test_nonlinear_binary_couples_both_operands():
    def f(x):
        return jnp.arctan2(x[0], x[1]) + x[2] ** x[3]

    expected = np.zeros((6, 6), bool)
    expected[:2, :2] = expected[2:4, 2:4] = True
    assert_exact(f, X, expected)


def test_least_squares_is_jtj_while_gradient_trick_is_dense():
    n = 12

    def residuals(x):
        return jnp.concatenate([x[1:] - x[:-1] ** 2, jnp.sin(x[:1]) * x[-1:]])

    def f(x):
        return jnp.sum(residuals(x) ** 2)

    x = jnp.ones(n)
    jac = jacobian_sparsity(residuals, x).todense().astype(int)
    expected = (jac.T @ jac) > 0
    assert_exact(f, x, expected)
    # this engine's Jacobian of the gradient is exact here too; never sparser
    gradient_trick = jacobian_sparsity(jax.grad(f), x).todense().astype(bool)
    assert gradient_trick.sum() >= detected(f, x).sum()


def test_constant_index_products():
    i, j = np.array([0, 2, 4]), np.array([1, 5, 4])

    def f(x):
        return jnp.sum(x[i] * x[j])

    expected = np.zeros((6, 6), bool)
    expected[i, j] = expected[j, i] = True
    assert_exact(f, X, expected)


def test_composition_through_quadratic_form():
    a = np.diag(np.ones(5), 1) + np.eye(6)

    def f(x):
        y = a @ x
        return jnp.sum(jnp.exp(y))

    expected = (a.T.astype(int) @ a.astype(int)) > 0
    assert_exact(f, X, expected)


# --- liveness -----------------------------------------------------------------------------


def test_only_elements_reaching_the_output_count():
    assert_exact(lambda x: jnp.sum((x**2)[:2]), X, np.diag([1, 1, 0, 0, 0, 0]))
    assert_exact(lambda x: (jnp.exp(x) * jnp.array([1.0, 0, 0, 0, 0, 0]))[0], X,
                 np.diag([1, 0, 0, 0, 0, 0]))


def test_zero_derivative_paths_propagate_nothing():
    def f(x):
        big = x**2 > 4.0  # a comparison: zero derivative
        return jnp.sum(jnp.where(big, x, 2 * x)) + jnp.floor(x[0] ** 3) + x[1] ** 2

    assert_exact(f, X, np.diag([0, 1, 0, 0, 0, 0]))


def test_piecewise_linear_keeps_the_curvature_below_it():
    assert_exact(lambda x: jnp.max(x**2) + jnp.abs(x[0] * x[1]), X,
                 np.eye(6, dtype=bool) | (np.arange(6)[:, None] + np.arange(6) == 1))


# --- API ----------------------------------------------------------------------------------


def test_squeezable_outputs():
    for shape in [(1,), (1, 1)]:
        p = detected(lambda x, s=shape: jnp.sum(x**2).reshape(s), X)
        np.testing.assert_array_equal(p, np.eye(6))


def test_non_scalar_output_is_an_error():
    with pytest.raises(ValueError, match=r"\(6,\)"):
        hessian_sparsity(lambda x: x**2, X)
    with pytest.raises(ValueError, match="2 array"):
        hessian_sparsity(lambda x: (x[0], x[1]), X)


def test_has_aux_and_pytrees():
    def f(params, scale):
        w, b = params["w"], params["b"]
        return jnp.sum(w**2) * scale + jnp.sum(b * w[:2]), {"aux": w}

    params = {"w": jnp.ones(3), "b": jnp.ones(2)}
    p = hessian_sparsity(f, params, 2.0, has_aux=True)
    assert p.shape == (5, 5)
    # pytree leaf order: b (2), then w (3)
    expected = np.zeros((5, 5), bool)
    expected[2:, 2:] = np.eye(3)
    expected[0, 2] = expected[2, 0] = expected[1, 3] = expected[3, 1] = True
    np.testing.assert_array_equal(p.todense().astype(bool), expected)
    both = hessian_sparsity(f, params, 2.0, argnums=(0, 1), has_aux=True)
    assert both.shape == (6, 6) and both.todense()[5, 2:5].all()
    assert both.input_avals == jacobian_sparsity(
        lambda p, s: f(p, s)[0][None], params, 2.0, argnums=(0, 1)).input_avals
    assert both.argnums == (0, 1)


# --- control flow and calls ---------------------------------------------------------------


def test_liveness_flows_through_jit():
    inner = jax.jit(lambda x: (x**2, x[0] * x[1]))

    def f(x):
        squares, cross = inner(x)
        return jnp.sum(squares[:3]) + jnp.floor(cross)

    assert_exact(f, X, np.diag([1, 1, 1, 0, 0, 0]))


@jax.custom_jvp
def softplus(x):
    return jnp.log1p(jnp.exp(x))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return softplus(x), t * jax.nn.sigmoid(x)


@jax.custom_vjp
def cube(x):
    return x**3


def _cube_fwd(x):
    return x**3, x


def _cube_bwd(x, g):
    return (3 * x**2 * g,)


cube.defvjp(_cube_fwd, _cube_bwd)


@pytest.mark.parametrize(
    "f",
    [
        lambda x: jnp.sum(softplus(x)),
        lambda x: jnp.sum(cube(x)),
        lambda x: jnp.sum(jax.nn.relu(x) ** 2),
        lambda x: jax.lax.cond(x[0] > 1, lambda y: jnp.sum(y**2), lambda y: y[1] * y[2], x),
        lambda x: jax.lax.fori_loop(0, 3, lambda i, s: s * x[i], 1.0),
        lambda x: jax.lax.fori_loop(0, 6, lambda i, s: s + jnp.sin(x[i]), 0.0),
        lambda x: jax.lax.scan(lambda c, y: (c + y**2 * c, None), x[0], x[1:])[0],
        lambda x: jax.lax.while_loop(lambda c: c[1] < 10.0,
                                     lambda c: (c[0] * x[0] + x[2], c[1] + 1.0),
                                     (x[1], 0.0))[0],
        lambda x: jnp.sum(jax.checkpoint(lambda y: jnp.exp(y[:3]) * y[3:])(x)),
    ],
)
def test_control_flow_and_calls_are_sound(f):
    d = detected(f, X)
    assert not (numeric(f, X) & ~d).any()
    np.testing.assert_array_equal(d, d.T)


def test_separable_custom_rules_stay_diagonal():
    assert_exact(lambda x: jnp.sum(softplus(x)), X, np.eye(6))
    assert_exact(lambda x: jnp.sum(cube(x)), X, np.eye(6))


LOOPS = [
    lambda x: jax.lax.fori_loop(0, 3, lambda i, s: s * x[i], 1.0),
    lambda x: jax.lax.scan(lambda c, y: (c + y**2 * c, None), x[0], x[1:])[0],
    lambda x: jax.lax.scan(lambda c, y: (c * y, jnp.sin(c)), x[0], x[1:])[1].sum(),
    lambda x: jax.lax.fori_loop(0, 4, lambda i, c: (c[1], c[0] * c[1]), (x[0], x[1]))[0],
]


@pytest.mark.parametrize("f", LOOPS)
def test_loop_fixed_points_are_sound(f, monkeypatch):
    """Beyond their unrolling budget, loops take a (semi-naive) fixed point: the
    Hessian engine must not rely on the recorded steps alone."""
    from asdex.detection._rules import control_flow

    monkeypatch.setattr(control_flow, "MAX_UNROLLED_EQUATIONS", 0)
    d = detected(f, X)
    assert not (numeric(f, X) & ~d).any()


def test_dot_general_terms_make_contractions_exact(monkeypatch):
    """With `dot_general_terms` as its curvature, `r @ r` is as exact as `sum(r**2)`."""
    import dataclasses

    from asdex.detection import _registry
    from asdex.detection._rules.contractions import dot_general_terms

    entry = _registry.lookup("dot_general")
    monkeypatch.setitem(_registry._TABLE, "dot_general",
                        dataclasses.replace(entry, curvature=dot_general_terms))

    def r(x):
        return x[1:] - x[:-1] ** 2

    assert_exact(lambda x: r(x) @ r(x), X, band(6, 1))
    assert_exact(lambda x: jnp.sum(x.reshape(2, 3) @ x.reshape(3, 2)), X)
    assert_exact(lambda x: jnp.sum(jnp.einsum("bi,bj->bij", x.reshape(2, 3), x.reshape(2, 3))
                                   ** 2), X, np.kron(np.eye(2), np.ones((3, 3))))


def test_liveness_through_a_matrix_map_with_many_rows():
    # 256 live cumsum results depend on x[0]: a narrow integer count would wrap to 0
    p = detected(lambda x: jnp.sum(jnp.cumsum(jnp.sin(x))), jnp.ones(256))
    np.testing.assert_array_equal(p, np.eye(256, dtype=bool))
