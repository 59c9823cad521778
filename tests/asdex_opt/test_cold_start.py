"""What a first solve traces: each expensive piece once.

A Newton solve's first call traces the function, its gradient and its sparse Hessian
into the step, and reads the constants the function closes over by a walk up the
calling frames (`with_concrete_twin`). Tracing any of them twice costs time in every
cold start, so these tests count them while tracing whole solves.
"""

import jax
import jax.numpy as jnp
import optimistix as optx
import pytest

import asdex_opt._problem as problem
from asdex_opt.optimistix import SparseNewton, SparseTrustRegionNewton

pytestmark = pytest.mark.usefixtures("x64")

_WEIGHTS = jnp.linspace(1.0, 2.0, 20)


def _chain(y, args):
    del args
    return jnp.sum(_WEIGHTS[1:] * (y[1:] - y[:-1] ** 2) ** 2) + jnp.sum((y - 2.0) ** 2)


def _trace(solver):
    """Trace (do not compile) a whole solve with the default adjoint."""
    jax.clear_caches()  # a solve traced before would not be traced again
    jax.make_jaxpr(lambda y0: optx.minimise(_chain, solver, y0, max_steps=50).value)(jnp.zeros(20))


@pytest.mark.parametrize("solver_cls", [SparseNewton, SparseTrustRegionNewton])
def test_a_solve_traces_the_hessian_once(monkeypatch, solver_cls):
    calls = []
    evaluate = problem.HessianEvaluator.__call__

    def counted(self, y_flat, dynamic):
        calls.append(y_flat.shape)
        return evaluate(self, y_flat, dynamic)

    monkeypatch.setattr(problem.HessianEvaluator, "__call__", counted)
    _trace(solver_cls(1e-8, 1e-8))
    assert calls == [(20,)]


def test_the_calling_frames_are_searched_once_per_solve(monkeypatch):
    # `_chain` closes over `_WEIGHTS`, which optimistix's ImplicitAdjoint traces: finding
    # its concrete value walks the calling frames.
    walks = []
    twin = problem._concrete_twin

    def counted(tree):
        if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree)):
            walks.append(True)
        return twin(tree)

    monkeypatch.setattr(problem, "_concrete_twin", counted)
    _trace(SparseNewton(1e-8, 1e-8))
    assert walks == [True]


def test_the_frames_are_searched_once_where_no_caller_holds_a_twin(monkeypatch):
    # Closed over a value traced by an outer `jit`: no frame holds it concrete, and the
    # answer (none) is remembered for the rest of the solve's tracing.
    walks = []
    search = problem._search_frames

    def counted(*args):
        walks.append(True)
        return search(*args)

    monkeypatch.setattr(problem, "_search_frames", counted)
    jax.clear_caches()

    def solve(weights, y0):
        def fn(y, args):
            del args
            return jnp.sum(weights[1:] * (y[1:] - y[:-1] ** 2) ** 2) + jnp.sum((y - 2.0) ** 2)

        return optx.minimise(fn, SparseNewton(1e-8, 1e-8), y0, max_steps=50).value

    y = jax.jit(solve)(_WEIGHTS, jnp.zeros(20))
    assert walks == [True]
    assert jnp.allclose(y, solve(_WEIGHTS, jnp.zeros(20)), atol=1e-6)
