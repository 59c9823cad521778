import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import sparse

import asdex

REFERENCE_NAMES = {
    "jacobian", "value_and_jacobian", "hessian", "value_and_hessian",
    "jacobian_from_coloring", "value_and_jacobian_from_coloring", "hessian_from_coloring",
    "value_and_hessian_from_coloring", "jacobian_coloring", "hessian_coloring",
    "jacobian_coloring_from_sparsity", "hessian_coloring_from_sparsity", "color_rows",
    "color_cols", "color_symmetric", "spy", "jacobian_sparsity", "hessian_sparsity",
    "SparsityPattern", "ColoredPattern", "JacobianMode", "HessianMode", "VerificationError",
}


def test_public_names():
    assert set(asdex.__all__) >= REFERENCE_NAMES
    for name in asdex.__all__:
        assert hasattr(asdex, name)


def _dense(tree):
    return jax.tree.map(lambda b: b.todense() if isinstance(b, sparse.BCOO) else b, tree,
                        is_leaf=lambda b: isinstance(b, sparse.BCOO))


def brusselator_like(u, v):
    lap = jnp.roll(u, 1) + jnp.roll(u, -1) - 2 * u
    return 1.0 + u**2 * v - 4.4 * u + lap, 3.4 * u - u**2 * v + jnp.roll(v, 1) - v


@pytest.mark.parametrize("mode", [None, "fwd", "rev"])
@pytest.mark.parametrize("output_format", ["bcoo", "dense"])
def test_jacobian_end_to_end(mode, output_format):
    u, v = jnp.linspace(0.1, 1.0, 10), jnp.linspace(1.0, 2.0, 10)
    jac_fn = asdex.jacobian(brusselator_like, u, v, argnums=(0, 1), mode=mode,
                            output_format=output_format)
    value_fn = asdex.value_and_jacobian(brusselator_like, u, v, argnums=(0, 1), mode=mode,
                                        output_format=output_format)
    expected = jax.jacrev(brusselator_like, (0, 1))(u, v)
    actual = _dense(jax.jit(jac_fn)(u, v))
    jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6),
                 actual, expected)
    value, _jac = jax.jit(value_fn)(u, v)
    jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-5),
                 value, brusselator_like(u, v))


def test_jacobian_colors_fewer_than_dense():
    u, v = jnp.ones(30), jnp.ones(30)
    coloring = asdex.jacobian_coloring(brusselator_like, u, v, argnums=(0, 1))
    assert coloring.num_colors < 10


@pytest.mark.parametrize("mode", [None, "fwd_over_rev", "rev_over_rev"])
def test_hessian_end_to_end(mode):
    def rosenbrock(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    x = jnp.linspace(-1.0, 1.0, 20)
    hess_fn = asdex.hessian(rosenbrock, x, mode=mode)
    value, hess = jax.jit(asdex.value_and_hessian(rosenbrock, x, mode=mode))(x)
    expected = jax.hessian(rosenbrock)(x)
    np.testing.assert_allclose(jax.jit(hess_fn)(x).todense(), expected, rtol=1e-4)
    np.testing.assert_allclose(hess.todense(), expected, rtol=1e-4)
    np.testing.assert_allclose(value, rosenbrock(x), rtol=1e-6)
    assert asdex.hessian_coloring(rosenbrock, x, mode=mode).num_colors <= 3


def test_has_aux_end_to_end():
    def f(x):
        return jnp.sum(x**2 * jnp.roll(x, 1)), {"x": x}

    x = jnp.arange(5.0)
    (_value, aux), hess = asdex.value_and_hessian(f, x, has_aux=True)(x)
    np.testing.assert_allclose(hess.todense(), jax.hessian(lambda x: f(x)[0])(x), rtol=1e-5)
    np.testing.assert_allclose(aux["x"], x)
    jac, aux = asdex.jacobian(lambda x: (jnp.sin(x), x.sum()), x, has_aux=True)(x)
    np.testing.assert_allclose(jac.todense(), jnp.diag(jnp.cos(x)), rtol=1e-6)


def test_kwargs_forwarded():
    def f(x, *, power):
        return x**power

    x = jnp.arange(1.0, 4.0)
    coloring = asdex.jacobian_coloring(lambda x: f(x, power=2), x)
    jac = asdex.jacobian_from_coloring(f, coloring, "dense")(x, power=3)
    np.testing.assert_allclose(jac, jnp.diag(3 * x**2))


def test_dense_coloring_warns():
    x = jnp.ones(4)
    with pytest.warns(asdex.DenseColoringWarning, match="no gain"):
        asdex.jacobian(lambda x: x * x.sum(), x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        asdex.jacobian(jnp.sin, x)


@pytest.fixture
def diagonal():
    return asdex.jacobian_coloring_from_sparsity(
        asdex.SparsityPattern.from_dense(np.eye(3)), mode="fwd"
    )


def test_call_time_errors(diagonal):
    jac_fn = asdex.jacobian_from_coloring(jnp.sin, diagonal)
    with pytest.raises(ValueError, match=r"shape \(4,\).*shape \(3,\)"):
        jac_fn(jnp.ones(4))
    with pytest.raises(ValueError, match="structure"):
        jac_fn((jnp.ones(3),))
    with pytest.raises(TypeError, match="integer and inexact"):
        jac_fn(jnp.ones(3, jnp.int32))
    with pytest.raises(TypeError, match="positional argument"):
        jac_fn()
    with pytest.raises(ValueError, match="2 output element"):
        asdex.jacobian_from_coloring(lambda x: x[:2], diagonal)(jnp.ones(3))
    with pytest.raises(TypeError, match="real-valued outputs"):
        asdex.jacobian_from_coloring(lambda x: x.astype(jnp.int32), diagonal)(jnp.ones(3))
    with pytest.raises(TypeError, match="holomorphic=True requires inputs with complex"):
        asdex.jacobian_from_coloring(jnp.sin, diagonal, holomorphic=True)(jnp.ones(3))


def test_build_time_errors(diagonal):
    with pytest.raises(ValueError, match="output_format"):
        asdex.jacobian_from_coloring(jnp.sin, diagonal, "csr")
    with pytest.raises(ValueError, match="chunk_size"):
        asdex.jacobian_from_coloring(jnp.sin, diagonal, chunk_size=0)
    with pytest.raises(TypeError, match="ColoredPattern"):
        asdex.jacobian_from_coloring(jnp.sin, diagonal.sparsity)
    with pytest.raises(ValueError, match="Hessian coloring"):
        asdex.hessian_from_coloring(jnp.sum, diagonal)
    hess = asdex.hessian_coloring_from_sparsity(diagonal.sparsity)
    with pytest.raises(ValueError, match="Jacobian coloring"):
        asdex.jacobian_from_coloring(jnp.sin, hess)
