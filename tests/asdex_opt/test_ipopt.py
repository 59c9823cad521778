"""asdex_opt.ipopt: exact sparse callbacks for cyipopt (the solve itself needs cyipopt)."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asdex_opt.ipopt import IpoptProblem, minimize_ipopt

pytestmark = pytest.mark.usefixtures("x64")


def hs071(y, _):
    return y[0] * y[3] * (y[0] + y[1] + y[2]) + y[2]


def equality(y, _):
    return jnp.sum(y**2) - 40.0


def inequality(y, _):
    return jnp.stack([jnp.prod(y) - 25.0, y[0] - y[2] ** 2])


def make_problem():
    return IpoptProblem(
        hs071,
        jnp.array([1.0, 5.0, 5.0, 1.0]),
        equality=equality,
        inequality=inequality,
        bounds=(jnp.ones(4), jnp.array([5.0, 5.0, 5.0, jnp.inf])),
    )


def test_callbacks_match_dense_derivatives():
    nlp = make_problem()
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 5, 4)
    lam = rng.standard_normal(3)
    sigma = 0.7

    def g(x):
        return jnp.concatenate([jnp.atleast_1d(equality(x, None)), inequality(x, None)])

    assert nlp.objective(x) == pytest.approx(float(hs071(x, None)))
    assert np.allclose(nlp.gradient(x), jax.grad(hs071)(x, None))
    assert np.allclose(nlp.constraints(x), g(x))

    rows, cols = nlp.jacobianstructure()
    jac = np.zeros((nlp.m, nlp.n))
    jac[rows, cols] = nlp.jacobian(x)
    assert np.allclose(jac, jax.jacfwd(g)(x))
    assert rows.size < nlp.m * nlp.n  # y[0] - y[2]**2 touches two variables

    rows, cols = nlp.hessianstructure()
    assert np.all(rows >= cols)
    hess = np.zeros((nlp.n, nlp.n))
    hess[rows, cols] = nlp.hessian(x, lam, sigma)
    expected = jax.hessian(lambda x: sigma * hs071(x, None) + jnp.dot(lam, g(x)))(x)
    assert np.allclose(hess, np.tril(expected))

    assert np.array_equal(nlp.cl, np.zeros(3))
    assert nlp.cu[0] == 0 and np.all(nlp.cu[1:] >= 1e19)
    assert np.array_equal(nlp.lb, np.ones(4)) and nlp.ub[3] >= 1e19


def test_pytree_variables_unflatten():
    y0 = {"a": jnp.zeros(2), "b": jnp.ones((2, 2))}
    nlp = IpoptProblem(lambda y, _: jnp.sum(y["a"] ** 2) + jnp.sum(y["b"]), y0)
    assert nlp.n == 6 and nlp.m == 0
    y = nlp.unflatten(np.arange(6.0))
    assert y["b"].shape == (2, 2) and float(y["b"][1, 1]) == 5.0


def test_missing_cyipopt_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cyipopt", None)
    with pytest.raises(ImportError, match=r"pip install -e \"\.\[ipopt\]\""):
        make_problem().cyipopt_problem()


def test_minimize_ipopt_hs071():
    pytest.importorskip("cyipopt")
    y, info = minimize_ipopt(
        hs071,
        jnp.array([1.0, 5.0, 5.0, 1.0]),
        equality=equality,
        inequality=lambda y, _: jnp.prod(y) - 25.0,
        bounds=(jnp.ones(4), jnp.full(4, 5.0)),
        options={"tol": 1e-8},
    )
    assert info["status"] == 0
    assert np.allclose(y, [1.0, 4.74299963, 3.82114998, 1.37940829], atol=1e-6)
    assert info["obj_val"] == pytest.approx(17.0140173, rel=1e-7)
    assert np.allclose(info["mult_g"], [0.16146857, -0.55229366], rtol=1e-5)
