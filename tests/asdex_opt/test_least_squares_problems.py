"""The sparse least-squares solvers on the problems of `benchmarks/bench_least_squares.py`."""

import jax
import jax.numpy as jnp
import optimistix as optx
import pytest

from asdex_opt.lineax import TridiagonalLU
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


@pytest.mark.parametrize("square", [True, False])
def test_default_solver_follows_the_pattern(square):
    """Pairs of coupled unknowns: the block solve in JAX, chosen from J (square) or JᵀJ."""
    from asdex_opt.lineax import BlockDiagonalLU, SparseLDL
    from asdex_opt.optimistix import SparseNewtonRootFinder

    def pairs(y, args):
        del args
        coupled = jnp.stack([y[::2] ** 2 + y[1::2] - 2.0, y[::2] - y[1::2] ** 3], 1).ravel()
        return coupled if square else jnp.concatenate([coupled, 1e-3 * (y - 1.0)])

    y0 = jnp.full(20, 1.5)
    solvers = [SparseGaussNewton(1e-10, 1e-10), SparseLevenbergMarquardt(1e-10, 1e-10)]
    for solver in solvers:
        sol = optx.least_squares(pairs, solver, y0, max_steps=100)
        assert isinstance(sol.state.descent.linear_solver, BlockDiagonalLU)
        assert jnp.allclose(sol.value, 1.0, atol=1e-8)
    if square:
        sol = optx.root_find(pairs, SparseNewtonRootFinder(1e-10, 1e-10), y0)
        assert isinstance(sol.state.linear_solver, BlockDiagonalLU)
        assert jnp.allclose(sol.value, 1.0, atol=1e-8)

    chained = lambda y, args: jnp.concatenate([y[1:] - y[:-1] ** 2, y - 1.0])  # noqa: E731
    sol = optx.least_squares(chained, SparseGaussNewton(1e-10, 1e-10), jnp.full(40, 0.5))
    assert isinstance(sol.state.descent.linear_solver, TridiagonalLU)  # JᵀJ: a chain
    assert jnp.allclose(sol.value, 1.0, atol=1e-8)
    wide = lambda y, args: jnp.concatenate([y[2:] - y[:-2] ** 2, y - 1.0])  # noqa: E731
    sol = optx.least_squares(wide, SparseGaussNewton(1e-10, 1e-10), jnp.full(40, 0.5))
    assert isinstance(sol.state.descent.linear_solver, SparseLDL)  # pentadiagonal JᵀJ


def test_gauss_newton_divergence_is_a_failure_naming_it():
    # Full Newton steps on the cube root double |y| each step: ½‖r‖² grows without bound.
    sol = optx.least_squares(
        lambda y, _: jnp.cbrt(y),
        SparseGaussNewton(1e-12, 1e-12),
        jnp.array([1.0, 2.0]),
        throw=False,
        max_steps=200,
    )
    assert sol.result == optx.RESULTS.nonlinear_divergence
    assert sol.stats["num_steps"] < 200


def test_gauss_newton_far_step_that_comes_back_is_not_divergence():
    # From y = 1e-2 Newton's first step on y³ - 1 lands near 3e3 (½‖r‖² up by 1e20),
    # then falls back by a third per step to the root.
    sol = optx.least_squares(
        lambda y, _: y**3 - 1.0,
        SparseGaussNewton(1e-10, 1e-10),
        jnp.full(3, 1e-2),
        throw=False,
        max_steps=200,
    )
    assert sol.result == optx.RESULTS.successful
    assert jnp.allclose(sol.value, 1.0)
