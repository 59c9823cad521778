import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest
from jax.experimental import sparse as jsparse

from asdex_opt._lineax._newton import shifted_newton_direction
from asdex_opt.lineax import (
    BlockDiagonalLU,
    Preconditioned,
    SparseLDL,
    SparseLU,
    SparseMatrixLinearOperator,
    TridiagonalLU,
)
from asdex_opt.optimistix import (
    NonmonotoneArmijo,
    SparseGaussNewton,
    SparseLevenbergMarquardt,
    SparseNewton,
    SparseNewtonRootFinder,
    SparseTrustRegionNewton,
    Watchdog,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore::asdex.DenseColoringWarning"),
    pytest.mark.usefixtures("x64"),
]


def extended_rosenbrock(x, args):
    del args
    return jnp.sum(100 * (x[1::2] - x[::2] ** 2) ** 2 + (1 - x[::2]) ** 2)


def rosenbrock_start(n):
    return jnp.tile(jnp.array([-1.2, 1.0]), n // 2)


NEWTONS = [SparseNewton, SparseTrustRegionNewton]


@pytest.mark.parametrize("solver_cls", NEWTONS)
def test_newton_extended_rosenbrock(solver_cls):
    sol = optx.minimise(extended_rosenbrock, solver_cls(1e-10, 1e-10), rosenbrock_start(200))
    np.testing.assert_allclose(sol.value, 1.0, atol=1e-8)
    assert 0 < int(sol.stats["num_hessians"]) <= int(sol.stats["num_steps"]) < 60


def test_newton_with_a_trust_region_search_keeps_the_hessian():
    # Line searches keep f and the gradient only; ClassicalTrustRegion predicts the
    # reduction with the Hessian, which SparseNewton then keeps for it.
    solver = SparseNewton(1e-10, 1e-10, search=optx.ClassicalTrustRegion())
    sol = optx.minimise(extended_rosenbrock, solver, rosenbrock_start(20), max_steps=200)
    np.testing.assert_allclose(sol.value, 1.0, atol=1e-8)
    y0 = rosenbrock_start(20)
    struct = jax.ShapeDtypeStruct((), y0.dtype)
    with_aux = lambda y, args: (extended_rosenbrock(y, args), None)  # noqa: E731
    kept = [
        type(s.init(with_aux, y0, None, {}, struct, None, frozenset()).f_info)
        for s in (solver, SparseNewton(1e-10, 1e-10))
    ]
    assert kept == [optx.FunctionInfo.EvalGradHessian, optx.FunctionInfo.EvalGrad]


def test_newton_matches_bfgs_and_iterative_solver():
    def fn(x, a):
        return jnp.sum(jnp.cosh(x - a)) + 0.5 * jnp.sum((x[1:] - x[:-1]) ** 2)

    a = jnp.linspace(-1, 1, 30)
    pcg = Preconditioned(lx.CG(rtol=1e-12, atol=1e-12))
    newton = optx.minimise(fn, SparseNewton(1e-10, 1e-10, linear_solver=pcg), jnp.zeros(30), a)
    bfgs = optx.minimise(fn, optx.BFGS(1e-10, 1e-10), jnp.zeros(30), a)
    np.testing.assert_allclose(newton.value, bfgs.value, atol=1e-6)
    assert int(newton.stats["num_steps"]) < int(bfgs.stats["num_steps"])


@pytest.mark.parametrize("solver_cls", NEWTONS)
def test_newton_pytree_y0_has_aux_and_jit(solver_cls):
    def fn(y, scale):
        x = jnp.concatenate([y["a"], y["b"].ravel()])
        value = extended_rosenbrock(x, None) * scale
        return value, {"value": value, "first": y["a"][0]}

    y0 = {"a": jnp.array([-1.2, 1.0]), "b": jnp.tile(jnp.array([-1.2, 1.0]), (3, 1))}

    @jax.jit
    def solve(y0, scale):
        return optx.minimise(fn, solver_cls(1e-10, 1e-10), y0, scale, has_aux=True)

    sol = solve(y0, 2.0)
    assert jax.tree.structure(sol.value) == jax.tree.structure(y0)
    np.testing.assert_allclose(sol.value["b"], 1.0, atol=1e-8)
    np.testing.assert_allclose(sol.aux["first"], sol.value["a"][0], atol=1e-6)
    assert float(sol.aux["value"]) < 1e-12


@pytest.mark.parametrize("solver_cls", NEWTONS)
def test_newton_indefinite_start_never_goes_uphill(solver_cls):
    # A double well in every coordinate, coupled: the Hessian at the start is indefinite.
    def fn(x, _):
        return jnp.sum((x**2 - 1) ** 2) + 0.1 * jnp.sum((x[1:] - x[:-1]) ** 2)

    x0 = jnp.linspace(-0.1, 0.1, 40)
    solver = solver_cls(1e-10, 1e-10)
    sol = optx.minimise(fn, solver, x0, max_steps=200)
    # Drive the same solver step by step: the accepted iterates never go uphill.
    with_aux = lambda y, args: (fn(y, args), None)  # noqa: E731
    f_struct = jax.ShapeDtypeStruct((), jnp.float64)
    state = solver.init(with_aux, x0, None, {}, f_struct, None, frozenset())
    step = eqx.filter_jit(lambda y, s: solver.step(with_aux, y, None, {}, s, frozenset()))
    y, values = x0, [float(fn(x0, None))]
    for _ in range(int(sol.stats["num_steps"])):
        y, state, _ = step(y, state)
        values.append(float(fn(y, None)))
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(values))
    grad = jax.grad(fn)(sol.value, None)
    assert float(jnp.max(jnp.abs(grad))) < 1e-6
    assert float(jnp.min(jnp.linalg.eigvalsh(jax.hessian(fn)(sol.value, None)))) > 0


@pytest.mark.parametrize(
    "solver",
    [
        SparseNewton(1e-12, 1e-12),
        SparseNewton(1e-12, 1e-12, search=NonmonotoneArmijo()),
        SparseNewton(1e-12, 1e-12, search=Watchdog()),
        SparseTrustRegionNewton(1e-12, 1e-12),
    ],
    ids=["wolfe", "armijo", "watchdog", "trust-region"],
)
def test_newton_stops_at_a_stationary_start_before_any_hessian(solver):
    # ∇f vanishes exactly at the start, where the Hessian is singular.
    def fn(x, _):
        return jnp.sum((x - 1) ** 4) + jnp.sum((x[1:] - x[:-1]) ** 2), x[0]

    x0 = jnp.ones(30)
    sol = optx.minimise(fn, solver, x0, has_aux=True)
    assert sol.result == optx.RESULTS.successful
    assert int(sol.stats["num_hessians"]) == 0
    assert int(sol.stats["num_steps"]) == 1
    np.testing.assert_array_equal(sol.value, x0)
    assert float(sol.aux) == 1.0
    # Elsewhere the same solver evaluates Hessians and converges to that point.
    sol = optx.minimise(fn, solver, jnp.linspace(0.0, 2.0, 30), has_aux=True)
    assert int(sol.stats["num_hessians"]) > 0
    np.testing.assert_allclose(sol.value, 1.0, atol=1e-3)


def test_shifted_direction_is_descent_for_indefinite_hessian():
    dense = jnp.array([[-2.0, 1.0, 0.0], [1.0, 1.0, 0.5], [0.0, 0.5, -0.1]])
    hessian = SparseMatrixLinearOperator(jsparse.BCOO.fromdense(dense), lx.symmetric_tag)
    grad = jnp.array([1.0, -2.0, 0.5])
    p, shift, finite = shifted_newton_direction(
        grad, hessian, SparseNewton(1, 1).descent.linear_solver
    )
    assert bool(finite)
    assert float(shift) > 2.0  # must exceed -λ_min(H) ≈ 2.3 for a positive definite shift
    assert float(jnp.vdot(grad, p)) > 0
    np.testing.assert_allclose((dense + shift * jnp.eye(3)) @ p, grad, rtol=1e-10)


def test_positive_definite_hessian_gives_pure_newton_step():
    dense = jnp.array([[4.0, 1.0], [1.0, 3.0]])
    hessian = SparseMatrixLinearOperator(jsparse.BCOO.fromdense(dense), lx.symmetric_tag)
    grad = jnp.array([1.0, 2.0])
    p, shift, _ = shifted_newton_direction(grad, hessian, SparseLU())
    assert float(shift) == 0.0
    np.testing.assert_allclose(p, jnp.linalg.solve(dense, grad), rtol=1e-12)


def test_newton_rejects_non_scalar_objective():
    solver = SparseNewton(1e-6, 1e-6)
    fn = lambda x, _: (x**2, None)  # noqa: E731
    struct = jax.ShapeDtypeStruct((3,), jnp.float64)
    with pytest.raises(ValueError, match="scalar"):
        solver.init(fn, jnp.ones(3), None, {}, struct, None, frozenset())
    with pytest.raises(ValueError, match="scalar"):
        optx.minimise(lambda x, _: x**2, solver, jnp.ones(3))


@pytest.mark.parametrize("solver_cls", NEWTONS)
def test_newton_nonfinite_derivatives_fail(solver_cls):
    fn = lambda x, _: jnp.sum(jnp.sqrt(x) + x**2)  # noqa: E731  (infinite gradient at 0)
    sol = optx.minimise(fn, solver_cls(1e-8, 1e-8), jnp.zeros(4), throw=False)
    assert sol.result != optx.RESULTS.successful
    with pytest.raises(Exception, match=r"(?i)nonfinite|nan"):
        optx.minimise(fn, solver_cls(1e-8, 1e-8), jnp.zeros(4))


def chain_residuals(y, args):
    return {"chain": 10 * (y[1:] - y[:-1] ** 2), "anchor": args - y}


@pytest.mark.parametrize("solver_cls", [SparseGaussNewton, SparseLevenbergMarquardt])
def test_least_squares_pytree_residuals(solver_cls):
    y0 = jnp.full(100, 0.9)
    sol = optx.least_squares(chain_residuals, solver_cls(1e-10, 1e-10), y0, 1.0, max_steps=100)
    np.testing.assert_allclose(sol.value, 1.0, atol=1e-8)
    ref = optx.least_squares(
        chain_residuals, optx.LevenbergMarquardt(1e-10, 1e-10), y0, 1.0, max_steps=100
    )
    np.testing.assert_allclose(sol.value, ref.value, atol=1e-7)


def test_levenberg_marquardt_nonzero_residual_and_rank_deficiency():
    # More unknowns than residuals: JᵀJ is singular, but JᵀJ + λI is not.
    fn = lambda y, _: jnp.concatenate([y[1:] ** 2 - y[:-1], jnp.array([y[0] - 2.0])])  # noqa: E731
    y0 = jnp.linspace(1.0, 2.0, 12)
    sol = optx.least_squares(fn, SparseLevenbergMarquardt(1e-10, 1e-10), y0, max_steps=200)
    assert float(jnp.sum(fn(sol.value, None) ** 2)) < 1e-12
    singular = lambda y, _: jnp.stack([y[0] + y[1] - 1, 2 * y[0] + 2 * y[1] - 3])  # noqa: E731
    gn = optx.least_squares(singular, SparseGaussNewton(1e-10, 1e-10), jnp.ones(2), throw=False)
    assert gn.result != optx.RESULTS.successful


def test_root_find_tridiagonal_system():
    def fn(y, b):
        return 3 * y - y**3 / 10 - jnp.pad(y[1:], (0, 1)) - jnp.pad(y[:-1], (1, 0)) - b

    b = jnp.linspace(0.0, 1.0, 300)
    sol = jax.jit(lambda b: optx.root_find(fn, SparseNewtonRootFinder(1e-12, 1e-12), b, b))(b)
    np.testing.assert_allclose(fn(sol.value, b), 0.0, atol=1e-12)
    ref = optx.root_find(fn, optx.Newton(1e-12, 1e-12), b, b)
    np.testing.assert_allclose(sol.value, ref.value, atol=1e-10)


def test_root_find_rejects_mismatched_shapes_and_singular_jacobians():
    with pytest.raises(ValueError, match="as many equations as unknowns"):
        optx.root_find(lambda y, _: y[1:], SparseNewtonRootFinder(1e-8, 1e-8), jnp.ones(3))
    singular = lambda y, _: jnp.stack([y[0] + y[1] - 1, 2 * y[0] + 2 * y[1] - 3])  # noqa: E731
    sol = optx.root_find(singular, SparseNewtonRootFinder(1e-8, 1e-8), jnp.ones(2), throw=False)
    assert sol.result != optx.RESULTS.successful


def test_root_find_nonfinite_fails():
    fn = lambda y, _: jnp.log(y) + y  # noqa: E731
    sol = optx.root_find(fn, SparseNewtonRootFinder(1e-8, 1e-8), -jnp.ones(3), throw=False)
    assert sol.result != optx.RESULTS.successful


def test_equinox_mlp_fit_by_gauss_newton():
    model = eqx.nn.MLP(1, 1, width_size=6, depth=1, activation=jnp.tanh, key=jax.random.key(0))
    model = jax.tree.map(lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x, model)
    xs = jnp.linspace(-2, 2, 40)[:, None]
    ys = jnp.sin(2 * xs)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def residuals(params, data):
        x, y = data
        return jax.vmap(eqx.combine(params, static))(x) - y

    loss0 = 0.5 * float(jnp.sum(residuals(params, (xs, ys)) ** 2))
    lm = optx.least_squares(
        residuals,
        SparseLevenbergMarquardt(1e-8, 1e-8),
        params,
        (xs, ys),
        max_steps=60,
        throw=False,
    )
    lm_loss = 0.5 * float(jnp.sum(residuals(lm.value, (xs, ys)) ** 2))
    assert jnp.isfinite(lm_loss) and lm_loss < 0.05 * loss0, (lm_loss, loss0)
    # Undamped Gauss-Newton from the start is chaotic on this rank-deficient fit (the
    # loss jumps up and down), so it refines Levenberg-Marquardt's solution instead.
    gn = optx.least_squares(
        residuals, SparseGaussNewton(1e-8, 1e-8), lm.value, (xs, ys), max_steps=60, throw=False
    )
    gn_loss = 0.5 * float(jnp.sum(residuals(gn.value, (xs, ys)) ** 2))
    assert jnp.isfinite(gn_loss) and gn_loss <= 1.001 * lm_loss, (gn_loss, lm_loss)


def test_default_linear_solver_follows_the_pattern():
    f_struct = jax.ShapeDtypeStruct((), jnp.float64)
    y0 = jnp.tile(jnp.array([-1.2, 1.0]), 50)
    solver = SparseNewton(1e-10, 1e-10)
    with_aux = lambda y, args: (extended_rosenbrock(y, args), None)  # noqa: E731
    state = solver.init(with_aux, y0, None, {}, f_struct, None, frozenset())
    assert isinstance(state.descent.linear_solver, BlockDiagonalLU)  # 2 x 2 blocks
    sol = optx.minimise(extended_rosenbrock, solver, y0)
    np.testing.assert_allclose(sol.value, 1.0, atol=1e-6)

    def chain(y, args):
        return jnp.sum((y[1:] - y[:-1] ** 2) ** 2) + jnp.sum((y - 2.0) ** 2), args

    state = solver.init(chain, y0, None, {}, f_struct, None, frozenset())
    assert isinstance(state.descent.linear_solver, TridiagonalLU)  # a chain
    sol = optx.minimise(lambda y, args: chain(y, args)[0], solver, y0)
    np.testing.assert_allclose(jax.grad(lambda y: chain(y, None)[0])(sol.value), 0, atol=1e-6)

    def wide(y, args):  # couples y_i and y_{i+2}: pentadiagonal, one component
        return jnp.sum((y[2:] - y[:-2] ** 2) ** 2) + jnp.sum((y - 2.0) ** 2), args

    state = solver.init(wide, y0, None, {}, f_struct, None, frozenset())
    assert isinstance(state.descent.linear_solver, SparseLDL)  # symmetric, small fronts
    assert state.descent.linear_solver.refinement_steps == 0  # a Newton step needs none


# ---------------------------------------------------------------------------------------
# sif2jax problems.

sif2jax = pytest.importorskip("sif2jax")
_UNCONSTRAINED = {type(p).__name__: p for p in sif2jax.unconstrained_minimisation_problems}
_EQUATIONS = {type(p).__name__: p for p in sif2jax.nonlinear_equations_problems}


def _problem(name, n=None):
    problem = _UNCONSTRAINED.get(name) or _EQUATIONS[name]
    if n is None:
        return problem
    if isinstance(getattr(type(problem), "n", None), property):  # ENGVAL1, TOINTGSS: `_n`
        problem = eqx.tree_at(lambda p: p._n, problem, n)
    elif name == "CHAINWOO":  # its number of groups `ns` does not follow `n`
        problem = type(problem)(n=n, ns=n // 2 - 1)
    else:
        problem = type(problem)(n=n)
    _check_consistent(problem)
    return problem


def _check_consistent(problem):
    """A resized problem must still be one function: its gradient matches differences.

    (CHAINWOO with only `n` changed indexes past the end of `y`; the clamped gather and
    its gradient then disagree, and every solver fails for a reason of the test's own.)
    """
    rng = np.random.default_rng(0)
    y = problem.y0 + 0.1 * rng.normal(size=problem.y0.shape)
    d = rng.normal(size=problem.y0.shape)
    step = 1e-6

    def along(s):
        return problem.objective(y + s * d, problem.args)

    slope = float(jnp.vdot(jax.grad(problem.objective)(y, problem.args), d))
    difference = float((along(step) - along(-step)) / (2 * step))
    assert abs(slope - difference) <= 1e-5 * max(1.0, abs(slope)), type(problem).__name__


def _check_minimum(problem, value):
    fn = problem.objective
    grad = jax.grad(fn)(value, problem.args)
    assert float(jnp.max(jnp.abs(grad))) < 1e-6 * max(1.0, abs(float(fn(value, problem.args))))
    if value.size <= 1000:  # a minimum, not a saddle: no clearly negative curvature
        eigenvalues = jnp.linalg.eigvalsh(jax.hessian(fn)(value, problem.args))
        assert float(eigenvalues[0]) >= -1e-6 * max(1.0, float(eigenvalues[-1]))
    expected = expected_value(problem)
    if expected is not None:
        np.testing.assert_allclose(fn(value, problem.args), expected, rtol=1e-4, atol=1e-8)


# sif2jax gives 0 for these, but their objective has the constant term 1 and its minimum
# is at the origin (sif2jax's `expected_result`), where `objective(zeros) == 1` exactly.
_CORRECTED_VALUES = {"DIXMAANB": 1.0, "DIXMAANE1": 1.0}


def expected_value(problem):
    name = type(problem).__name__
    if name in _CORRECTED_VALUES:
        return _CORRECTED_VALUES[name]
    # sif2jax lists these values for other sizes or local minima (checked against BFGS).
    if name in {"ENGVAL1", "BROYDN7D", "FREUROTH"}:
        return None
    return problem.expected_objective_value


FAST_UNCONSTRAINED = [("ROSENBR", None), ("LIARWHD", 100), ("ARWHEAD", 100)]


@pytest.mark.parametrize(("name", "n"), FAST_UNCONSTRAINED)
def test_sif2jax_unconstrained_fast(name, n):
    problem = _problem(name, n)
    sol = optx.minimise(
        problem.objective, SparseNewton(1e-10, 1e-10), problem.y0, problem.args, max_steps=500
    )
    _check_minimum(problem, sol.value)


# CHAINWOO (n = 1000, ns = 499) has many local minima: the line-search, trust-region and
# watchdog variants stop at some of them (f = 79.3 and 211.3 for the first two, positive
# definite Hessians), not at the global minimum 0.
_LOCAL = pytest.mark.xfail(reason="a local minimum, not the global one", strict=True)

SLOW_UNCONSTRAINED = [
    ("ROSENBR", None), ("SROSENBR", 10_000), ("GENROSE", 500), ("CHNROSNB", None),
    ("BROYDN7D", 1000), ("DIXMAANA1", 3000), ("DIXMAANB", 3000), ("DIXMAANE1", 300),
    ("FREUROTH", 1000), ("LIARWHD", 10_000), ("ARWHEAD", 10_000), ("BDQRTIC", 1000),
    ("DQDRTIC", 10_000), ("DQRTIC", 1000), ("ENGVAL1", 1000), ("EDENSCH", 2000),
    ("CRAGGLVY", None), ("NONDQUAR", 1000), ("WOODS", 1000), ("CHAINWOO", 1000),
    ("FLETCHCR", 1000), ("DIXON3DQ", 1000), ("TOINTGSS", 1000), ("COSINE", 1000),
    ("BEALE", None), ("DENSCHNB", None), ("CUBE", None),
]  # fmt: skip


def watchdog_newton(rtol, atol):
    """`SparseNewton` with the `Watchdog` search."""
    return SparseNewton(rtol, atol, search=Watchdog())


def _sweep_cases():
    solvers = [*NEWTONS, watchdog_newton]
    for solver_cls, (name, n) in itertools.product(solvers, SLOW_UNCONSTRAINED):
        marks = []
        if name == "CHAINWOO":
            marks = [_LOCAL]
        yield pytest.param(solver_cls, name, n, marks=marks)


# BROYDN7D has many local minima: from its start BFGS, LBFGS and the trust-region Newton
# reach three different ones (n = 100: f = 26.38, 35.43, 39.34, all with positive definite
# Hessians), so "no worse than BFGS" compares basins there, not solvers.
_MULTIMODAL = {"BROYDN7D"}


@pytest.mark.slow
@pytest.mark.parametrize(("solver_cls", "name", "n"), _sweep_cases())
def test_sif2jax_unconstrained_sweep(solver_cls, name, n):
    problem = _problem(name, n)
    solver = solver_cls(1e-10, 1e-10)
    # FLETCHCR's chain needs ~1700 (line search) and ~2400 (trust region) steps at n = 1000.
    max_steps = 5000 if name == "FLETCHCR" else 2000
    sol = optx.minimise(problem.objective, solver, problem.y0, problem.args, max_steps=max_steps)
    _check_minimum(problem, sol.value)
    if problem.y0.size <= 1000 and name not in _MULTIMODAL:  # BFGS's dense matrix fits
        bfgs = optx.minimise(
            problem.objective, optx.BFGS(1e-10, 1e-10), problem.y0, problem.args,
            max_steps=20_000, throw=False,
        )  # fmt: skip
        fn = problem.objective
        assert float(fn(sol.value, problem.args)) <= float(fn(bfgs.value, problem.args)) + 1e-6


EQUATIONS = ["HATFLDANE", "BROWNDENE", "DENSCHNBNE", "POWELLSE", "BOOTH", "HS25NE"]


@pytest.mark.parametrize("name", EQUATIONS[:2])
def test_sif2jax_equations_fast(name):
    _solve_equations(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", EQUATIONS[2:])
def test_sif2jax_equations_sweep(name):
    _solve_equations(name)


def _solve_equations(name):
    problem = _problem(name)
    fn, y0, args = problem.residual, problem.y0, problem.args
    # POWELLSE's root is singular: Levenberg-Marquardt converges linearly there, in ~460
    # (sparse) and ~510 (optx) steps.
    sol = optx.least_squares(fn, SparseLevenbergMarquardt(1e-10, 1e-10), y0, args, max_steps=1000)
    ref = optx.least_squares(fn, optx.LevenbergMarquardt(1e-10, 1e-10), y0, args, max_steps=1000)
    loss = lambda y: 0.5 * jnp.sum(fn(y, args) ** 2)  # noqa: E731
    assert float(loss(sol.value)) <= float(loss(ref.value)) + 1e-8
    if jax.eval_shape(fn, y0, args).size == y0.size and float(loss(ref.value)) < 1e-12:
        start = sol.value + 1e-3  # pure Newton has no globalisation: start nearby
        root = optx.root_find(fn, SparseNewtonRootFinder(1e-12, 1e-12), start, args)
        np.testing.assert_allclose(fn(root.value, args), 0.0, atol=1e-8)
        gn = optx.least_squares(fn, SparseGaussNewton(1e-10, 1e-10), sol.value, args)
        np.testing.assert_allclose(fn(gn.value, args), 0.0, atol=1e-8)
