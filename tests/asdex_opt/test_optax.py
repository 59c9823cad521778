import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optimistix as optx
import pytest

import asdex
from asdex_opt.optax import (
    scale_by_sparse_gauss_newton,
    scale_by_sparse_newton,
    sparse_gauss_newton,
    sparse_newton,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::asdex.DenseColoringWarning"),
    pytest.mark.usefixtures("x64"),
]


def rosenbrock(x):
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def test_sparse_newton_jitted_loop_with_value_and_grad_from_state():
    solver = sparse_newton()
    value_and_grad = optax.value_and_grad_from_state(rosenbrock)

    @jax.jit
    def step(params, state):
        value, grad = value_and_grad(params, state=state)
        updates, state = solver.update(
            grad, state, params, value=value, grad=grad, value_fn=rosenbrock
        )
        return optax.apply_updates(params, updates), state

    params = jnp.zeros(20)
    state = solver.init(params)
    values = []
    for _ in range(60):
        params, state = step(params, state)
        values.append(float(rosenbrock(params)))
    assert all(b <= a for a, b in itertools.pairwise(values))
    np.testing.assert_allclose(params, 1.0, atol=1e-8)


def test_direction_is_dense_newton_direction_and_descent_when_indefinite():
    f = lambda x: jnp.sum(jnp.exp(x)) + jnp.sum((x[1:] - x[:-1]) ** 2)  # noqa: E731
    x = jnp.linspace(-1, 1, 7)
    transform = scale_by_sparse_newton()
    update = jax.jit(transform.update, static_argnames="value_fn")
    g = jax.grad(f)(x)
    p, _ = update(g, transform.init(x), x, value_fn=f)
    np.testing.assert_allclose(p, jnp.linalg.solve(jax.hessian(f)(x), g), rtol=1e-10)

    p, _ = update(jax.grad(rosenbrock)(x), transform.init(x), x, value_fn=rosenbrock)
    assert float(jnp.vdot(p, jax.grad(rosenbrock)(x))) > 0


def test_pytree_params_and_extra_args():
    def loss(params, data):
        w, b = params["w"], params["b"]
        return jnp.sum((w * data + b - 2 * data) ** 2) + 0.1 * jnp.sum(jnp.diff(w) ** 2) + b**2

    params = {"w": jnp.zeros(10), "b": jnp.array(1.0)}
    data = jnp.linspace(1, 2, 10)
    solver = sparse_newton()

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(loss)(params, data)
        updates, state = solver.update(
            grad, state, params, value=value, grad=grad, value_fn=loss, data=data
        )
        return optax.apply_updates(params, updates), state

    state = solver.init(params)
    for _ in range(5):
        params, state = step(params, state)
    grad = jax.grad(loss)(params, data)
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree.leaves(grad)) < 1e-8


def test_coloring_is_computed_once(monkeypatch):
    calls = []
    original = asdex.hessian_coloring

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(asdex, "hessian_coloring", counting)
    solver, x = sparse_newton(), jnp.zeros(6)
    state = solver.init(x)
    for _ in range(2):
        value, grad = jax.value_and_grad(rosenbrock)(x)
        updates, state = solver.update(grad, state, x, value=value, grad=grad, value_fn=rosenbrock)
        x = optax.apply_updates(x, updates)
    assert len(calls) == 1


def test_optax_minimiser():
    sol = optx.minimise(
        lambda x, _: rosenbrock(x),
        optx.OptaxMinimiser(sparse_newton(), rtol=1e-10, atol=1e-10),
        jnp.zeros(12),
        max_steps=200,
    )
    np.testing.assert_allclose(sol.value, 1.0, atol=1e-6)


def test_non_scalar_value_fn_is_rejected():
    transform = scale_by_sparse_newton()
    x = jnp.ones(3)
    with pytest.raises(ValueError, match="scalar"):
        transform.update(x, transform.init(x), x, value_fn=lambda x: x**2)


def test_gauss_newton_direction_matches_dense():
    r = lambda x: jnp.concatenate([x[1:] - x[:-1] ** 2, jnp.sin(x) - 0.5])  # noqa: E731
    x = jnp.linspace(0.1, 1.0, 8)
    jac = jax.jacfwd(r)(x)
    g = jac.T @ r(x)
    transform = scale_by_sparse_gauss_newton(r)
    p, _ = transform.update(g, transform.init(x), x)
    np.testing.assert_allclose(p, jnp.linalg.solve(jac.T @ jac, g), rtol=1e-9)


def test_equinox_mlp_fit_by_sparse_gauss_newton():
    model = eqx.nn.MLP(1, 1, width_size=8, depth=1, activation=jnp.tanh, key=jax.random.key(1))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    params = jax.tree.map(lambda x: x.astype(jnp.float64), params)
    xs = jnp.linspace(-2, 2, 30)[:, None]
    ys = jnp.sin(2 * xs)

    def residuals(params, x, y):
        return jax.vmap(eqx.combine(params, static))(x) - y

    def loss(params, x, y):
        return 0.5 * jnp.sum(residuals(params, x, y) ** 2)

    solver = sparse_gauss_newton(residuals)
    state = solver.init(params)

    @jax.jit
    def step(params, state):
        value, grad = jax.value_and_grad(loss)(params, xs, ys)
        updates, state = solver.update(
            grad, state, params, value=value, grad=grad, value_fn=loss, x=xs, y=ys
        )
        return eqx.apply_updates(params, updates), state

    loss0 = float(loss(params, xs, ys))
    for _ in range(40):
        params, state = step(params, state)
    assert float(loss(params, xs, ys)) < 0.02 * loss0


def test_default_solver_follows_the_pattern(monkeypatch):
    """Separable problems get the in-JAX block solve (no host SuperLU) and the same answer."""
    from asdex_opt.lineax import BlockDiagonalLU, SparseLDL, SparseLU

    used = []
    for cls in (BlockDiagonalLU, SparseLDL, SparseLU):
        name, original = cls.__name__, cls.compute

        def compute(self, *args, _original=original, _name=name, **kwargs):
            used.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "compute", compute)

    def pairs(x):  # 2 x 2 blocks
        return jnp.sum((x[1::2] - x[::2] ** 2) ** 2 + jnp.cosh(x[::2]))

    x = jnp.linspace(-1.0, 1.0, 10).at[1::2].set(-1.0)  # a positive definite Hessian
    g = jax.grad(pairs)(x)
    newton = scale_by_sparse_newton()
    update = jax.jit(newton.update, static_argnames="value_fn")
    p, _ = update(g, newton.init(x), x, value_fn=pairs)
    hessian = jax.hessian(pairs)(x)
    assert float(jnp.linalg.eigvalsh(hessian)[0]) > 0
    np.testing.assert_allclose(p, jnp.linalg.solve(hessian, g), rtol=1e-10)
    assert set(used) == {"BlockDiagonalLU"}  # compute is traced once per shift attempt

    used.clear()
    residuals = lambda x: jnp.concatenate([x[1::2] - x[::2] ** 2, x - 0.5])  # noqa: E731
    gn = scale_by_sparse_gauss_newton(residuals)
    jac = jax.jacfwd(residuals)(x)
    g = jac.T @ residuals(x)
    p, _ = jax.jit(gn.update)(g, gn.init(x), x)
    np.testing.assert_allclose(p, jnp.linalg.solve(jac.T @ jac, g), rtol=1e-9)
    assert set(used) == {"BlockDiagonalLU"}  # compute is traced once per shift attempt

    used.clear()
    def wide(x):  # couples x_i with x_{i+2}: one component of 40, pentadiagonal
        return jnp.sum((x[2:] - x[:-2] ** 2) ** 2) + jnp.sum((1 - x) ** 2)

    x = jnp.linspace(-1.0, 1.0, 40)
    p, _ = update(jax.grad(wide)(x), newton.init(x), x, value_fn=wide)
    assert set(used) == {"SparseLDL"}  # a symmetric Hessian with small fronts
