"""Every search of the sparse Newton minimisers converges on nonconvex problems.

GENHUMPS (sif2jax) has humps of curvature ±800 over a bowl of curvature 0.1: from its
standard start (-506.2) the Hessian is indefinite at most points and the shifted Newton
step alone is short. The chained Rosenbrock function from (-1.2, 1, -1.2, 1, ...) ends
at a local minimum after about 1,500 Newton steps at n = 1000 (IPOPT's count too).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest
from jax.experimental import sparse as jsparse

from asdex_opt.lineax import SparseMatrixLinearOperator
from asdex_opt.optimistix import (
    NonmonotoneArmijo,
    ShiftedNewtonDescent,
    SparseNewton,
    SparseTrustRegionNewton,
    TrustRegion,
    Watchdog,
    Wolfe,
)

SOLVERS = {
    "wolfe": lambda: SparseNewton(1e-10, 1e-10),
    "armijo": lambda: SparseNewton(1e-10, 1e-10, search=NonmonotoneArmijo(memory=1)),
    "watchdog": lambda: SparseNewton(1e-10, 1e-10, search=Watchdog()),
    "trust region": lambda: SparseTrustRegionNewton(1e-10, 1e-10),
}


def _humps(y, args):
    del args
    a, b = y[:-1], y[1:]
    return jnp.sum((jnp.sin(20 * a) * jnp.sin(20 * b)) ** 2 + 0.05 * (a**2 + b**2))


def _humps_start(n: int) -> jax.Array:
    return jnp.full(n, -506.2, jnp.float64).at[0].set(-506.0)


def _chained_rosenbrock(y, args):
    del args
    return jnp.sum(100 * (y[1:] - y[:-1] ** 2) ** 2 + (1 - y[:-1]) ** 2)


def _genrose(y, args):
    del args
    return 1.0 + jnp.sum(100 * (y[1:] - y[:-1] ** 2) ** 2 + (1 - y[1:]) ** 2)


def _minimal_surface(y, args):
    """sif2jax's FMINSRF2: the free-boundary minimal surface over the unit square (f = 1).

    Adding a constant to the surface leaves its area unchanged, so the Hessian is
    singular at the minimum, and the centre's small penalty is its only hold there.
    """
    del args
    p = round(y.size**0.5)
    x = y.reshape(p, p).T
    scale = (p - 1) ** 2
    a, b = x[:-1, :-1] - x[1:, 1:], x[1:, :-1] - x[:-1, 1:]
    area = jnp.sum(jnp.sqrt(0.5 * scale * (a**2 + b**2) + 1.0)) / scale
    mid = p // 2 - 1
    return area + x[mid, mid] ** 2 / p**2


def _minimal_surface_start(p: int) -> jax.Array:
    """FMINSRF2's start: zero inside, the edges raised linearly."""
    steps = jnp.arange(p, dtype=jnp.float64)
    x = jnp.zeros((p, p), jnp.float64)
    x = x.at[0, :].set(1 + 4 * steps / (p - 1)).at[p - 1, :].set(9 + 4 * steps / (p - 1))
    x = x.at[1:-1, 0].set(1 + 8 * steps[1:-1] / (p - 1))
    x = x.at[1:-1, p - 1].set(5 + 8 * steps[1:-1] / (p - 1))
    return x.T.ravel()


def test_a_failed_stretched_trial_falls_back_to_the_plain_step():
    descent = ShiftedNewtonDescent(backtrack=0.5)
    p = jnp.array([1.0, -2.0])
    state = eqx.tree_at(
        lambda s: (s.direction, s.stretch), descent.init(p, None), (p, jnp.asarray(10.0))
    )
    trials = [descent.step(jnp.asarray(size), state)[0] for size in (1.0, 0.5, 0.25)]
    np.testing.assert_allclose(trials, [-10 * p, -p, -0.5 * p])
    unstretched = eqx.tree_at(lambda s: s.stretch, state, jnp.asarray(1.0))
    trials = [descent.step(jnp.asarray(size), unstretched)[0] for size in (1.0, 0.5)]
    np.testing.assert_allclose(trials, [-p, -0.5 * p])


def test_the_default_wolfe_search_starts_at_the_model_minimiser_along_its_line(x64):
    # Eigenvalues -1 and 3 (shift 1 + 1e-3): p is short, the model gᵀd + ½dᵀHd keeps
    # falling beyond -p, and the Wolfe search's first trial (size 1) is its minimiser.
    solver = SparseNewton(1e-6, 1e-6)
    assert isinstance(solver.search, Wolfe) and not solver.descent.stretch
    dense = jnp.array([[3.0, 0.0], [0.0, -1.0]])
    hessian = SparseMatrixLinearOperator(jsparse.BCOO.fromdense(dense), lx.symmetric_tag)
    for grad, curved in ((jnp.array([1.0, 0.001]), True), (jnp.array([0.01, 1.0]), False)):
        info = optx.FunctionInfo.EvalGradHessian(jnp.array(0.0), grad, hessian)
        state = solver.descent.query(grad, info, solver.descent.init(grad, None))
        p = state.direction
        assert float(state.shift) > 0
        # Where the model curves downwards along p it has no minimiser: the line is -s p.
        multiple = float(grad @ p / (p @ dense @ p)) if curved else 1.0
        assert (multiple > 1.5) == curved
        trials = [solver.descent.step(jnp.asarray(size), state)[0] for size in (1.0, 2.0, 0.3)]
        np.testing.assert_allclose(trials, [-s * multiple * p for s in (1.0, 2.0, 0.3)], rtol=1e-10)


def test_the_fallback_follows_the_search_backtracking_factor():
    assert SparseNewton(1e-6, 1e-6, search=NonmonotoneArmijo(memory=1)).descent.backtrack == 0.5
    solver = SparseNewton(1e-6, 1e-6, search=NonmonotoneArmijo(decrease_factor=0.3))
    assert solver.descent.backtrack == 0.3
    with pytest.raises(ValueError, match="backtrack"):
        ShiftedNewtonDescent(backtrack=1.0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: NonmonotoneArmijo(memory=0), r"NonmonotoneArmijo\(memory=...\)` must be an int"),
        (lambda: NonmonotoneArmijo(step_init=0.0), r"step_init=...\)` must be > 0"),
        (lambda: TrustRegion(accept_cutoff=1.0), r"accept_cutoff=...\)` must be in \[0, 1\)"),
        (lambda: TrustRegion(high_constant=1.0), r"high_constant=...\)` must be > 1"),
        (lambda: Watchdog(slope=1.5), r"Watchdog\(slope=...\)` must be in \(0, 1\)"),
    ],
)
def test_search_parameters_are_checked(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def _solve(fn, solver, y0, max_steps):
    sol = optx.minimise(fn, solver, y0, max_steps=max_steps, throw=False)
    grad = jnp.max(jnp.abs(jax.grad(fn)(sol.value, None)))
    return sol, float(fn(sol.value, None)), float(grad)


@pytest.mark.parametrize("name", SOLVERS)
def test_genhumps_converges_with_every_search(x64, name):
    # Without the stretch of shifted steps (and, for the trust region, the radius kept
    # from the steps taken) the trust region took about 17,800 steps here.
    sol, f, grad = _solve(_humps, SOLVERS[name](), _humps_start(10), max_steps=4000)
    assert sol.result == optx.RESULTS.successful, name
    assert grad <= 1e-6 and f <= 1e-10, (name, f, grad)


def test_the_default_search_jumps_past_the_humps(x64):
    # Along a shifted direction the line first curves downwards over the humps; doubling
    # from the unit step stopped at the first flat point, and the default took 2,140
    # steps (1,120 Hessians) here.
    sol, f, grad = _solve(_humps, SOLVERS["wolfe"](), _humps_start(10), max_steps=1000)
    assert sol.result == optx.RESULTS.successful
    assert grad <= 1e-6 and f <= 1e-10, (f, grad)


@pytest.mark.parametrize("name", SOLVERS)
def test_genrose_reaches_its_minimum_with_every_search(x64, name):
    n = 30
    y0 = jnp.arange(1, n + 1, dtype=jnp.float64) / (n + 1)
    sol, f, grad = _solve(_genrose, SOLVERS[name](), y0, max_steps=2000)
    assert sol.result == optx.RESULTS.successful, name
    assert grad <= 1e-6, (name, grad)
    np.testing.assert_allclose(f, 1.0, rtol=1e-12)
    np.testing.assert_allclose(sol.value, 1.0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", SOLVERS)
def test_genhumps_at_n_1000(x64, name):
    sol, f, grad = _solve(_humps, SOLVERS[name](), _humps_start(1000), max_steps=20000)
    assert sol.result == optx.RESULTS.successful, name
    assert grad <= 1e-6 and f <= 1e-10, (name, f, grad)


@pytest.mark.slow
@pytest.mark.parametrize("name", SOLVERS)
def test_chained_rosenbrock_at_n_1000(x64, name):
    y0 = jnp.tile(jnp.array([-1.2, 1.0], jnp.float64), 500)
    sol, f, grad = _solve(_chained_rosenbrock, SOLVERS[name](), y0, max_steps=2000)
    assert sol.result == optx.RESULTS.successful, name
    assert grad <= 1e-6, (name, grad)
    # The local minimum every method reaches from this start.
    np.testing.assert_allclose(f, 3.98662, rtol=1e-5)
    assert int(sol.stats["num_hessians"]) <= 1700, name


def test_the_shift_falls_below_beta_at_a_singular_minimum(x64):
    # H + τI is never positive definite at τ = 0 near this minimum. A shift held at
    # β = 10⁻³ max|diag H| (the schedule's old floor) damped the slow directions: the
    # default took 65 Hessians at p = 8, and 2,000 steps without stopping at p = 12.
    sol, f, grad = _solve(_minimal_surface, SOLVERS["wolfe"](), _minimal_surface_start(8), 200)
    assert sol.result == optx.RESULTS.successful
    np.testing.assert_allclose(f, 1.0, rtol=1e-12)
    assert grad <= 1e-10, grad
    assert int(sol.stats["num_hessians"]) <= 20, int(sol.stats["num_hessians"])
