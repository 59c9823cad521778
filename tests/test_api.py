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
    with pytest.warns(asdex.DenseColoringWarning, match="no gain") as record:
        asdex.jacobian(lambda x: x * x.sum(), x)
    assert record[0].filename == __file__
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


def test_non_differentiated_argument_shape_is_checked():
    def f(p, d):
        k = d.shape[0]
        return jnp.sum(p[:k] * p[1 : k + 1] * d)

    p = jnp.linspace(0.1, 1.0, 8)
    hess_fn = asdex.hessian(f, p, jnp.ones(3))
    np.testing.assert_allclose(hess_fn(p, 2 * jnp.ones(3)).todense(),
                               jax.hessian(f)(p, 2 * jnp.ones(3)), rtol=1e-6)
    with pytest.raises(ValueError, match=r"positional argument 1 has shape \(6,\).*\(3,\)"):
        hess_fn(p, jnp.ones(6))
    with pytest.raises(ValueError, match=r"positional argument 1 has shape \(6,\)"):
        jax.jit(hess_fn)(p, jnp.ones(6))
    with pytest.raises(TypeError, match=r"positional argument 1 has dtype int32 \(integer\)"):
        hess_fn(p, jnp.ones(3, jnp.int32))
    with pytest.raises(TypeError, match="detected for 2 positional argument"):
        hess_fn(p)
    jac_fn = asdex.jacobian(lambda x, cfg: x * cfg["scale"], p, {"scale": jnp.ones(8)})
    with pytest.raises(ValueError, match="positional argument 1 has structure"):
        jac_fn(p, {"scale": jnp.ones(8), "shift": jnp.ones(8)})


def test_static_string_argument_is_checked():
    def f(x, how):
        return x[1:] * x[:-1] if how == "product" else x[1:] - x[:-1]

    x = jnp.arange(1.0, 5.0)
    jac_fn = asdex.jacobian(f, x, "product", output_format="dense")
    np.testing.assert_allclose(jac_fn(x, "product"), jax.jacfwd(f)(x, "product"))
    with pytest.raises(ValueError, match="positional argument 1 is 'difference'"):
        jac_fn(x, "difference")


@pytest.mark.filterwarnings("ignore::asdex.DenseColoringWarning")
@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_mixed_input_dtypes_match_jacrev(mode):
    def f(u, v):
        return u[1:] * v[:-1] + jnp.sin(u[:-1])

    u, v = jnp.linspace(0.5, 1.0, 4, dtype=jnp.float16), jnp.linspace(1.0, 2.0, 4)
    jac = asdex.jacobian(f, u, v, argnums=(0, 1), mode=mode, output_format="dense")(u, v)
    expected = jax.jacrev(f, (0, 1))(u, v)
    for block, reference in zip(jac, expected, strict=True):
        assert block.dtype == reference.dtype
        np.testing.assert_allclose(block, reference, rtol=1e-2)
    for bad, dtype in [(jnp.ones(4, jnp.int32), "int32"), (jnp.ones(4, bool), "bool")]:
        with pytest.raises(TypeError, match=f"real- or complex-valued inputs.*{dtype}"):
            asdex.jacobian(f, u, bad, argnums=(0, 1), mode=mode)(u, bad)
    c = jnp.ones(4, jnp.complex64)
    kind = "real-valued inputs" if mode == "fwd" else "real-valued outputs"
    with pytest.raises(TypeError, match=f"{kind}.*complex64"):
        asdex.jacobian(f, u, c, argnums=(0, 1), mode=mode)(u, c)


def test_returned_function_is_compiled_once():
    traces = []

    def f(x):
        traces.append(None)
        return x[1:] * x[:-1]

    x = jnp.arange(4.0)
    jac_fn = asdex.jacobian(f, x)
    traces.clear()
    first = jac_fn(x).todense()
    count = len(traces)
    np.testing.assert_allclose(jac_fn(2 * x).todense(), 2 * first)
    assert count >= 1 and len(traces) == count


def test_slow_preparation_logs_a_notice(caplog, monkeypatch):
    monkeypatch.setattr("asdex._api.NOTICE_SECONDS", 0.0)
    with caplog.at_level("WARNING", logger="asdex"):
        asdex.hessian_coloring(lambda x: jnp.sum(x**2), jnp.ones(3))
    (record,) = caplog.records
    assert record.name == "asdex"
    assert "sparsity detection took" in record.getMessage()
    assert "\n" not in record.getMessage()
    caplog.clear()
    monkeypatch.setattr("asdex._api.NOTICE_SECONDS", 1e9)
    with caplog.at_level("WARNING", logger="asdex"):
        asdex.jacobian_coloring(jnp.sin, jnp.ones(3))
    assert not caplog.records
