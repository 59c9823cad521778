"""The second call of every front end compiles nothing.

Compilations are counted with a ``jax.monitoring`` listener on XLA's backend-compile
event, which fires once per compiled program (jitted solves and eager operations
alike), so the inputs of the second call are built before counting starts.
"""

import contextlib

import jax
import jax.numpy as jnp
import optax
import optimistix as optx
import pytest
from jax import monitoring

from asdex_opt.optax import sparse_gauss_newton, sparse_newton
from asdex_opt.optimistix import (
    NonmonotoneArmijo,
    SparseGaussNewton,
    SparseLevenbergMarquardt,
    SparseNewton,
    SparseNewtonRootFinder,
    SparseTrustRegionNewton,
    Watchdog,
)

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def _compilations():
    """Counts XLA compilations in the block: ``with _compilations() as count: ...``."""
    count = [0]

    def listener(event: str, duration: float, **kwargs) -> None:
        del duration, kwargs
        if event == _COMPILE_EVENT:
            count[0] += 1

    monitoring.register_event_duration_secs_listener(listener)
    try:
        yield count
    finally:
        monitoring.unregister_event_duration_listener(listener)


def _chain(y, args):
    del args
    return jnp.sum((y[1:] - y[:-1] ** 2) ** 2) + 0.1 * jnp.sum((y - 2.0) ** 2)


def _residuals(y, args):
    del args
    return jnp.concatenate([y[1:] - y[:-1] ** 2, y - 2.0])


def _equations(y, args):
    del args
    return y**3 + jnp.concatenate([y[1:], jnp.zeros(1)]) - 2.0


def test_the_listener_counts_compilations():
    with _compilations() as count:
        jax.jit(lambda x: jnp.sin(x) * 3.0)(jnp.arange(7.0))
    assert count[0] >= 1


MINIMISERS = {
    "SparseNewton": lambda: SparseNewton(1e-5, 1e-5),
    "SparseNewton(Watchdog)": lambda: SparseNewton(1e-5, 1e-5, search=Watchdog()),
    "SparseNewton(NonmonotoneArmijo)": lambda: SparseNewton(1e-5, 1e-5, search=NonmonotoneArmijo()),
    "SparseTrustRegionNewton": lambda: SparseTrustRegionNewton(1e-5, 1e-5),
}


@pytest.mark.parametrize("name", MINIMISERS)
def test_minimise_compiles_once(x64, name):
    solver = MINIMISERS[name]()
    first, second = jnp.zeros(20), jnp.linspace(0.0, 1.0, 20)
    optx.minimise(_chain, solver, first, throw=False)
    with _compilations() as count:
        optx.minimise(_chain, solver, second, throw=False)
    assert count[0] == 0, f"{name}: {count[0]} compilations on the second call"


@pytest.mark.parametrize(
    "solver", [SparseGaussNewton(1e-5, 1e-5), SparseLevenbergMarquardt(1e-5, 1e-5)]
)
def test_least_squares_compiles_once(x64, solver):
    first, second = jnp.zeros(20), jnp.linspace(0.0, 1.0, 20)
    optx.least_squares(_residuals, solver, first, throw=False)
    with _compilations() as count:
        optx.least_squares(_residuals, solver, second, throw=False)
    assert count[0] == 0, f"{type(solver).__name__}: {count[0]} compilations"


def test_root_find_compiles_once(x64):
    solver = SparseNewtonRootFinder(1e-5, 1e-5)
    first, second = jnp.ones(20), jnp.linspace(1.0, 1.2, 20)
    optx.root_find(_equations, solver, first, throw=False)
    with _compilations() as count:
        optx.root_find(_equations, solver, second, throw=False)
    assert count[0] == 0, f"{count[0]} compilations on the second call"


def _optax_step(optimizer, value_fn):
    value_and_grad = optax.value_and_grad_from_state(value_fn)

    @jax.jit
    def step(params, state):
        value, grad = value_and_grad(params, state=state)
        updates, state = optimizer.update(
            grad, state, params, value=value, grad=grad, value_fn=value_fn
        )
        return optax.apply_updates(params, updates), state

    return step


@pytest.mark.parametrize("kind", ["newton", "gauss-newton"])
def test_optax_update_compiles_once(x64, kind):
    if kind == "newton":
        value_fn = lambda y: _chain(y, None)  # noqa: E731
        optimizer = sparse_newton()
    else:
        value_fn = lambda y: 0.5 * jnp.sum(_residuals(y, None) ** 2)  # noqa: E731
        optimizer = sparse_gauss_newton(lambda y: _residuals(y, None))
    step = _optax_step(optimizer, value_fn)
    params = jnp.zeros(20)
    state = optimizer.init(params)
    params, state = step(params, state)
    with _compilations() as count:
        for _ in range(3):
            params, state = step(params, state)
        jax.block_until_ready(params)
    assert count[0] == 0, f"{kind}: {count[0]} compilations after the first update"
