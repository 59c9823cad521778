"""The sparse least-squares solvers on the problems of `benchmarks/bench_least_squares.py`."""

import jax
import jax.numpy as jnp
import optimistix as optx
import pytest

from asdex_opt.optimistix import SparseGaussNewton, SparseLevenbergMarquardt

pytestmark = [
    pytest.mark.filterwarnings("ignore::asdex.DenseColoringWarning"),
    pytest.mark.usefixtures("x64"),
]

GTOL = 1e-8
REFERENCE = optx.LevenbergMarquardt(1e-10, 1e-10)  # one instance: compiled once per problem


def liarwhd(y, args):
    """LIARWHDNE: overdetermined (m = 2n), arrowhead ``JᵀJ``."""
    del args
    return jnp.concatenate([2.0 * (y * y - y[0]), y - 1.0])


def bratu(y, args):
    """2-D Bratu ``-Δu = 6 eᵘ`` on a k x k interior grid, ``u = 0`` on the boundary."""
    del args
    k = round(y.size**0.5)
    u = jnp.pad(y.reshape(k, k), 1)
    centre = u[1:-1, 1:-1]
    laplacian = 4 * centre - u[:-2, 1:-1] - u[2:, 1:-1] - u[1:-1, :-2] - u[1:-1, 2:]
    return (laplacian - 6.0 / (k + 1) ** 2 * jnp.exp(centre)).ravel()


@pytest.mark.parametrize(
    ("fn", "y0"),
    [(liarwhd, jnp.full(50, 4.0)), (bratu, jnp.zeros(100))],
    ids=["LIARWHDNE", "Bratu"],
)
@pytest.mark.parametrize("solver", [SparseGaussNewton, SparseLevenbergMarquardt])
def test_reaches_tolerance_like_optimistix(fn, y0, solver):
    """Max |Jᵀr| ≤ GTOL at the same point as optx.LevenbergMarquardt, in as many steps."""
    y0 = y0.astype(jnp.float64)
    sol = optx.least_squares(fn, solver(1e-10, 1e-10), y0, max_steps=100, throw=False)
    reference = optx.least_squares(fn, REFERENCE, y0, max_steps=100, throw=False)
    assert sol.result == optx.RESULTS.successful
    grad = jax.grad(lambda y: 0.5 * jnp.sum(fn(y, None) ** 2))
    assert jnp.max(jnp.abs(grad(sol.value))) <= GTOL
    assert jnp.max(jnp.abs(grad(reference.value))) <= GTOL
    assert jnp.allclose(sol.value, reference.value, rtol=1e-7, atol=1e-9)
    assert int(sol.stats["num_steps"]) <= int(reference.stats["num_steps"]) + 2
