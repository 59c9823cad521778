"""SparseNewtonRootFinder's globalisation: known roots where full Newton steps fail."""

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest
import scipy.optimize

from asdex_opt.optimistix import SparseNewtonRootFinder

pytestmark = pytest.mark.usefixtures("x64")


def _arctan_chain(y, _):
    # Full Newton steps on arctan diverge from |y| > 1.39; the root is y = 0.
    return jnp.arctan(y) + 0.1 * (y - jnp.roll(y, 1))


def test_line_search_converges_where_full_newton_steps_diverge():
    y0 = jnp.full(6, 3.0)
    sol = optx.root_find(_arctan_chain, SparseNewtonRootFinder(1e-12, 1e-12), y0)
    np.testing.assert_allclose(sol.value, 0.0, atol=1e-12)
    undamped = SparseNewtonRootFinder(1e-12, 1e-12, globalise=False)
    for solver in (undamped, optx.Newton(1e-12, 1e-12)):
        full = optx.root_find(_arctan_chain, solver, y0, throw=False, max_steps=50)
        assert full.result != optx.RESULTS.successful


def test_singular_jacobian_takes_the_damped_direction():
    def circle(y, _):
        return jnp.stack([y[0] ** 2 + y[1] ** 2 - 2, y[0] - y[1]])

    y0 = jnp.array([1.0, -1.0])  # J = [[2, -2], [1, -1]] is singular here
    sol = optx.root_find(circle, SparseNewtonRootFinder(1e-12, 1e-12), y0)
    np.testing.assert_allclose(jnp.abs(sol.value), 1.0, atol=1e-12)
    assert sol.stats["num_damped_steps"] >= 1
    undamped = SparseNewtonRootFinder(1e-12, 1e-12, globalise=False)
    failed = optx.root_find(circle, undamped, y0, throw=False)
    assert failed.result != optx.RESULTS.successful
    np.testing.assert_array_equal(failed.value, y0)  # the last finite iterate, not a NaN


@pytest.mark.parametrize("globalise", [True, False])
def test_nonfinite_trial_points_are_failures_or_rejected_never_a_silent_nan(globalise):
    def log_equation(y, _):
        return jnp.log(y) + y - 1  # root y = 1; a full Newton step from 10 leaves y > 0

    solver = SparseNewtonRootFinder(1e-12, 1e-12, globalise=globalise)
    sol = optx.root_find(log_equation, solver, jnp.full(3, 10.0), throw=False)
    if globalise:
        np.testing.assert_allclose(sol.value, 1.0, atol=1e-12)
    else:
        assert sol.result == optx.RESULTS.nonfinite
        np.testing.assert_array_equal(sol.value, 10.0)


def test_no_root_ends_with_a_failure():
    sol = optx.root_find(
        lambda y, _: y**2 + 1, SparseNewtonRootFinder(1e-10, 1e-10), jnp.ones(2), throw=False
    )
    assert sol.result != optx.RESULTS.successful
    assert bool(jnp.all(jnp.isfinite(sol.value)))


def test_broyden_tridiagonal_matches_scipy_hybr():
    def broyden(y, _):
        padded = jnp.pad(y, 1)
        return (3 - 2 * y) * y - padded[:-2] - 2 * padded[2:] + 1

    y0 = -jnp.ones(40)
    sol = jax.jit(lambda y: optx.root_find(broyden, SparseNewtonRootFinder(1e-12, 1e-12), y))(y0)
    ref = scipy.optimize.root(lambda y: np.asarray(broyden(jnp.asarray(y), None)), y0, tol=1e-13)
    assert ref.success
    np.testing.assert_allclose(sol.value, ref.x, atol=1e-10)
    np.testing.assert_allclose(broyden(sol.value, None), 0.0, atol=1e-12)
