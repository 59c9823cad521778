from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import pytest

from asdex_opt.equinox import (
    filter_hessian,
    filter_jacobian,
    filter_ravel_pytree,
    filter_value_and_hessian,
    filter_value_and_jacobian,
)

ATOL = 1e-5


class Inner(eqx.Module):
    w: jax.Array


class Model(eqx.Module):
    a: jax.Array  # differentiated
    b: jax.Array  # differentiated
    count: jax.Array  # integer array: never differentiated
    n: int  # Python int leaf
    inner: Inner  # frozen in some tests
    act: Callable = eqx.field(static=True)

    def __call__(self, x):
        head = self.act(self.a * x[: self.n]) + self.b[0] * jnp.roll(x, 1)[: self.n] * self.inner.w
        return head + self.count + self.b[1] * self.a[::-1]


def make_model(scale=1.0):
    return Model(
        a=jnp.linspace(0.5, 1.5, 4) * scale,
        b=jnp.array([0.3, -0.7]) * scale,
        count=jnp.arange(4),
        n=4,
        inner=Inner(jnp.array([1.0, 2.0, 3.0, 4.0])),
        act=jnp.tanh,
    )


X = jnp.linspace(-1.0, 1.0, 6)


def loss(model, x):
    out = model(x)
    return jnp.sum(out**2) + jnp.sum(model.a[1:] * model.a[:-1]) + jnp.sum(model.inner.w**3)


def frozen_inner_spec(model):
    spec = jtu.tree_map(eqx.is_inexact_array, model)
    return eqx.tree_at(lambda m: m.inner, spec, replace=False)


def dense_reference(derivative, fn, model, filter_spec, *args):
    flat, unravel = filter_ravel_pytree(model, filter_spec)
    rest = eqx.partition(model, filter_spec)[1]

    def flat_fn(flat):
        out = fn(eqx.combine(unravel(flat), rest), *args)
        return out if out.ndim == 0 else out.ravel()

    return derivative(flat_fn)(flat)


# --------------------------------------------------------------------------- ravel helper


def test_filter_ravel_pytree_roundtrip_and_apply_updates():
    model = make_model()
    flat, unravel = filter_ravel_pytree(model)
    assert flat.shape == (10,)
    np.testing.assert_allclose(flat, jnp.concatenate([model.a, model.b, model.inner.w]))
    update = unravel(jnp.ones_like(flat))
    assert update.count is None and update.n is None
    new = eqx.apply_updates(model, update)
    np.testing.assert_allclose(new.a, model.a + 1)
    np.testing.assert_array_equal(new.count, model.count)
    assert new.n == 4 and new.act is jnp.tanh


def test_filter_ravel_pytree_with_frozen_submodule():
    model = make_model()
    spec = frozen_inner_spec(model)
    flat, unravel = filter_ravel_pytree(model, spec)
    assert flat.shape == (6,)  # a (4) + b (2); inner.w frozen
    new = eqx.apply_updates(model, unravel(jnp.ones(6)))
    np.testing.assert_allclose(new.inner.w, model.inner.w)
    np.testing.assert_allclose(new.b, model.b + 1)


# --------------------------------------------------------------------------- Jacobians


def test_filter_jacobian_matches_dense():
    model = make_model()
    jac = filter_jacobian(lambda m, x: m(x), model, X)(model, X)
    expected = dense_reference(jax.jacfwd, lambda m, x: m(x), model, eqx.is_inexact_array, X)
    assert jac.shape == (4, 10)
    np.testing.assert_allclose(jac.todense(), expected, atol=ATOL)


def test_filter_jacobian_frozen_submodule_and_new_values():
    model = make_model()
    spec = frozen_inner_spec(model)
    jac_fn = filter_jacobian(lambda m, x: m(x), model, X, filter_spec=spec)
    # New values, including in the frozen submodule: used at call time.
    other = eqx.tree_at(lambda m: (m.a, m.inner.w), model, (model.a * 2, -model.inner.w))
    jac = jac_fn(other, X * 0.5)
    expected = dense_reference(jax.jacfwd, lambda m, x: m(x), other, spec, X * 0.5)
    assert jac.shape == (4, 6)
    np.testing.assert_allclose(jac.todense(), expected, atol=ATOL)


def test_filter_jacobian_pytree_output_and_jit():
    model = make_model()

    def fn(m, x):
        return {"out": m(x), "extra": (m.b**2).reshape(1, 2)}

    jac_fn = filter_jacobian(fn, model, X)
    jac = eqx.filter_jit(jac_fn)(model, X)

    def flat_fn(m, x):
        return jax.flatten_util.ravel_pytree(fn(m, x))[0]

    expected = dense_reference(jax.jacrev, flat_fn, model, eqx.is_inexact_array, X)
    np.testing.assert_allclose(jac.todense(), expected, atol=ATOL)


def test_filter_value_and_jacobian_and_aux():
    model = make_model()
    (value, aux), jac = filter_value_and_jacobian(
        lambda m, x: ({"y": m(x)}, jnp.sum(x)), model, X, has_aux=True
    )(model, X)
    np.testing.assert_allclose(value["y"], model(X), atol=ATOL)
    np.testing.assert_allclose(aux, jnp.sum(X))
    expected = dense_reference(jax.jacfwd, lambda m, x: m(x), model, eqx.is_inexact_array, X)
    np.testing.assert_allclose(jac.todense(), expected, atol=ATOL)
    dense = filter_jacobian(lambda m, x: m(x), model, X, output_format="dense")(model, X)
    np.testing.assert_allclose(dense, expected, atol=ATOL)


def test_structure_change_is_an_error():
    model = make_model()
    jac_fn = filter_jacobian(lambda m, x: m(x), model, X)
    with pytest.raises(ValueError, match="differs"):
        jac_fn(eqx.tree_at(lambda m: m.a, model, jnp.ones(5)), X)  # shape
    with pytest.raises(ValueError, match="differs"):
        jac_fn(eqx.tree_at(lambda m: m.n, model, 3), X)  # non-array leaf


# --------------------------------------------------------------------------- Hessians


def test_filter_hessian_matches_dense():
    model = make_model()
    hess = filter_hessian(loss, model, X)(model, X)
    expected = dense_reference(jax.hessian, loss, model, eqx.is_inexact_array, X)
    assert hess.shape == (10, 10)
    np.testing.assert_allclose(hess.todense(), expected, atol=1e-4)


def test_filter_value_and_hessian_frozen_and_aux():
    model = make_model()
    spec = frozen_inner_spec(model)

    def with_aux(m, x):
        return loss(m, x), m(x)

    (value, aux), hess = filter_value_and_hessian(
        with_aux, model, X, filter_spec=spec, has_aux=True
    )(model, X)
    np.testing.assert_allclose(value, loss(model, X), rtol=1e-5)
    np.testing.assert_allclose(aux, model(X), atol=ATOL)
    expected = dense_reference(jax.hessian, loss, model, spec, X)
    assert hess.shape == (6, 6)
    np.testing.assert_allclose(hess.todense(), expected, atol=1e-4)


def test_filter_hessian_newton_step_on_linear_model():
    model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
    x, y = jnp.ones((5, 3)) * jnp.arange(1.0, 4.0), jnp.ones((5, 2))

    def mse(model, x, y):
        return jnp.sum((jax.vmap(model)(x) - y) ** 2)

    hess = filter_hessian(mse, model, x, y)(model, x, y)
    expected = dense_reference(jax.hessian, mse, model, eqx.is_inexact_array, x, y)
    np.testing.assert_allclose(hess.todense(), expected, atol=1e-4)
    # Block structure: the two outputs do not interact.
    assert hess.nse < expected.size
