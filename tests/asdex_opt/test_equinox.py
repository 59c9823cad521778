from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import pytest

import asdex_opt
from asdex_opt.equinox import (
    filter_hessian,
    filter_jacfwd,
    filter_jacobian,
    filter_jacrev,
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
    jac = filter_jacobian(lambda m, x: m(x))(model, X)
    expected = dense_reference(jax.jacfwd, lambda m, x: m(x), model, eqx.is_inexact_array, X)
    assert jac.shape == (4, 10)
    np.testing.assert_allclose(jac.todense(), expected, atol=ATOL)


@pytest.mark.parametrize("ours, theirs", [(filter_jacfwd, eqx.filter_jacfwd),
                                          (filter_jacrev, eqx.filter_jacrev)])
def test_filter_jacfwd_jacrev_are_equinox_blocks_flattened(ours, theirs):
    model = make_model()
    jac = ours(lambda m, x: m(x))(model, X)
    blocks = theirs(lambda m, x: m(x))(model, X)  # one (4, *leaf.shape) block per leaf
    expected = jnp.concatenate(
        [b.reshape(4, -1) for b in jax.tree.leaves(eqx.filter(blocks, eqx.is_inexact_array))],
        axis=1,
    )
    np.testing.assert_allclose(jac.todense(), expected, atol=ATOL)


def test_filter_jacobian_frozen_submodule_and_new_values():
    model = make_model()
    spec = frozen_inner_spec(model)
    jac_fn = filter_jacobian(lambda m, x: m(x), filter_spec=spec)
    jac_fn(model, X)
    # New values, including in the frozen submodule: used at call time.
    other = eqx.tree_at(lambda m: (m.a, m.inner.w), model, (model.a * 2, -model.inner.w))
    jac = jac_fn(other, X * 0.5)
    expected = dense_reference(jax.jacfwd, lambda m, x: m(x), other, spec, X * 0.5)
    assert jac.shape == (4, 6)
    np.testing.assert_allclose(jac.todense(), expected, atol=ATOL)


def test_filter_jacobian_pytree_output_keywords_and_jit():
    model = make_model()

    def fn(m, x, *, scale):
        return {"out": m(x) * scale, "extra": (m.b**2).reshape(1, 2)}

    with pytest.warns(UserWarning, match="traced"):  # `model.count`, inside `filter_jit`
        jac = eqx.filter_jit(filter_jacobian(fn))(model, X, scale=2.0)

    def flat_fn(m, x):
        return jax.flatten_util.ravel_pytree(fn(m, x, scale=2.0))[0]

    expected = dense_reference(jax.jacrev, flat_fn, model, eqx.is_inexact_array, X)
    np.testing.assert_allclose(jac.todense(), expected, atol=ATOL)


def test_filter_value_and_jacobian_and_aux():
    model = make_model()
    (value, aux), jac = filter_value_and_jacobian(
        lambda m, x: ({"y": m(x)}, jnp.sum(x)), has_aux=True
    )(model, X)
    np.testing.assert_allclose(value["y"], model(X), atol=ATOL)
    np.testing.assert_allclose(aux, jnp.sum(X))
    expected = dense_reference(jax.jacfwd, lambda m, x: m(x), model, eqx.is_inexact_array, X)
    np.testing.assert_allclose(jac.todense(), expected, atol=ATOL)
    dense = filter_jacobian(lambda m, x: m(x), output_format="dense")(model, X)
    np.testing.assert_allclose(dense, expected, atol=ATOL)


# --------------------------------------------------------------------------- caching


def test_detects_once_per_input_structure_and_compiles_once(monkeypatch):
    calls = {"detect": 0, "trace": 0}
    detect = asdex_opt.equinox.detect_jacobian

    def counting_detect(*args, **kwargs):
        calls["detect"] += 1
        return detect(*args, **kwargs)

    def fn(x, c):
        calls["trace"] += 1
        return x[1:] * x[:-1] * c

    monkeypatch.setattr(asdex_opt.equinox, "detect_jacobian", counting_detect)
    jac_fn = filter_jacobian(fn)
    for scale in (1.0, 2.0, 3.0):
        jac = jac_fn(scale * jnp.arange(5.0), 2.0)
        np.testing.assert_allclose(
            jac.todense(), jax.jacfwd(fn)(scale * jnp.arange(5.0), 2.0), atol=ATOL
        )
    assert calls["detect"] == 1
    traces = calls["trace"]
    jac_fn(jnp.ones(5), 2.0)
    assert calls["trace"] == traces  # the compiled evaluation is reused
    jac_fn(jnp.ones(7), 2.0)  # a new shape: a new detection
    jac_fn(jnp.ones(5), 3.0)  # a new non-array leaf: likewise, as in `eqx.filter_jit`
    assert calls["detect"] == 3


def test_new_index_values_mean_a_new_exact_pattern():
    def fn(x, idx):
        return x[idx] ** 2

    jac_fn = filter_jacobian(fn)
    x = jnp.arange(1.0, 7.0)
    for idx in (jnp.array([0, 2]), jnp.array([5, 1])):
        jac = jac_fn(x, idx)
        assert jac.nse == 2  # read as a constant: the exact pattern
        np.testing.assert_allclose(jac.todense(), jax.jacfwd(fn)(x, idx), atol=ATOL)


def test_the_former_call_form_names_the_new_one():
    model = make_model()
    for call in (
        lambda: filter_hessian(loss, model, X),
        lambda: filter_jacobian(lambda m, x: m(x), model),
        lambda: filter_value_and_hessian(loss, model, filter_spec=eqx.is_inexact_array),
    ):
        with pytest.raises(TypeError, match=r"transform of `fun`.*\(fun\)\(pytree, \*args\)"):
            call()


def test_unhashable_non_array_leaf_is_a_clear_error():
    with pytest.raises(TypeError, match="hashable"):
        filter_jacobian(lambda x, opts: x * len(opts))(jnp.ones(2), {1.0})  # a set: one leaf


# --------------------------------------------------------------------------- Hessians


def test_filter_hessian_matches_dense_and_equinox():
    model = make_model()
    hess = filter_hessian(loss)(model, X)
    expected = dense_reference(jax.hessian, loss, model, eqx.is_inexact_array, X)
    assert hess.shape == (10, 10)
    np.testing.assert_allclose(hess.todense(), expected, atol=1e-4)
    blocks = eqx.filter_hessian(loss)(model, X)
    np.testing.assert_allclose(
        blocks.a.a, hess.todense()[:4, :4], atol=1e-4
    )  # equinox's (a, a) block is the first diagonal block of the flat Hessian


def test_filter_value_and_hessian_frozen_and_aux():
    model = make_model()
    spec = frozen_inner_spec(model)

    def with_aux(m, x):
        return loss(m, x), m(x)

    (value, aux), hess = filter_value_and_hessian(with_aux, True, filter_spec=spec)(model, X)
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

    hess = filter_hessian(mse)(model, x, y)
    expected = dense_reference(jax.hessian, mse, model, eqx.is_inexact_array, x, y)
    np.testing.assert_allclose(hess.todense(), expected, atol=1e-4)
    # Block structure: the two outputs do not interact.
    assert hess.nse < expected.size
