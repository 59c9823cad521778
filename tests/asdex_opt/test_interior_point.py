"""SparseInteriorPoint: KKT conditions at the returned point, failures, bad input."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest
from jax.flatten_util import ravel_pytree

from asdex_opt._constrained._barrier import optimality_error
from asdex_opt._constrained._inertia import factor_with_inertia, refined_solve
from asdex_opt._constrained._kkt import KKTStructure
from asdex_opt._constrained._linear import DenseKKTSolver, SparseKKTSolver
from asdex_opt._constrained._status import Status
from asdex_opt.constrained import SparseInteriorPoint, constrained_minimise

pytestmark = pytest.mark.usefixtures("x64")

SOLVER = SparseInteriorPoint()


def _flat(tree):
    return ravel_pytree(tree)[0] if jax.tree.leaves(tree) else jnp.zeros(0)


def check_kkt(sol, fn, y0, args=None, equality=None, inequality=None, bounds=None, tol=1e-6):
    """First-order conditions at ``sol.value`` from dense JAX derivatives."""
    x, unravel = ravel_pytree(sol.value)
    mult = sol.stats["multipliers"]

    def c_eq(x):
        return _flat(equality(unravel(x), args)) if equality else jnp.zeros(0)

    def c_in(x):
        return _flat(inequality(unravel(x), args)) if inequality else jnp.zeros(0)

    lam_e, lam_i = _flat(mult["equality"]), _flat(mult["inequality"])
    zl, zu = _flat(mult["lower"]), _flat(mult["upper"])
    grad = jax.grad(lambda x: fn(unravel(x), args))(x)
    je = jax.jacfwd(c_eq)(x).reshape(-1, x.size)
    ji = jax.jacfwd(c_in)(x).reshape(-1, x.size)
    stationarity = grad - je.T @ lam_e - ji.T @ lam_i - zl + zu
    scale = 1 + jnp.max(jnp.abs(grad))
    assert jnp.max(jnp.abs(stationarity), initial=0.0) <= tol * scale
    assert jnp.max(jnp.abs(c_eq(x)), initial=0.0) <= tol
    assert jnp.min(c_in(x), initial=0.0) >= -tol
    assert jnp.min(lam_i, initial=0.0) >= -tol
    assert jnp.max(jnp.abs(lam_i * c_in(x)), initial=0.0) <= tol * scale
    assert jnp.min(zl) >= -tol and jnp.min(zu) >= -tol
    if bounds is not None:
        lower = _flat(bounds[0]) if bounds[0] is not None else jnp.full(x.size, -jnp.inf)
        upper = _flat(bounds[1]) if bounds[1] is not None else jnp.full(x.size, jnp.inf)
        assert jnp.all(x >= lower) and jnp.all(x <= upper)
        assert jnp.max(jnp.where(jnp.isfinite(lower), zl * (x - lower), 0)) <= tol * scale
        assert jnp.max(jnp.where(jnp.isfinite(upper), zu * (upper - x), 0)) <= tol * scale
    residuals = sol.stats["kkt_residuals"]
    assert residuals["stationarity"] <= tol * scale
    assert residuals["feasibility"] <= tol


def solve(fn, y0, args=None, **kwargs):
    sol = constrained_minimise(fn, SOLVER, y0, args, **kwargs)
    assert sol.result == optx.RESULTS.successful
    check_kkt(sol, fn, y0, args, **{k: v for k, v in kwargs.items() if k != "max_steps"})
    return sol


def hs071(y, _):
    return y[0] * y[3] * (y[0] + y[1] + y[2]) + y[2]


def test_hs071():
    sol = solve(
        hs071,
        jnp.array([1.0, 5.0, 5.0, 1.0]),
        equality=lambda y, _: jnp.sum(y**2) - 40.0,
        inequality=lambda y, _: jnp.prod(y) - 25.0,
        bounds=(jnp.ones(4), jnp.full(4, 5.0)),
    )
    expected = jnp.array([1.0, 4.74299963, 3.82114998, 1.37940829])
    assert jnp.allclose(sol.value, expected, atol=1e-6)
    assert sol.stats["objective"] == pytest.approx(17.0140173, rel=1e-7)
    assert sol.stats["num_steps"] <= 15
    # IPOPT's multipliers for HS071 (its sign convention is the opposite).
    assert float(sol.stats["multipliers"]["equality"]) == pytest.approx(-0.16146857, rel=1e-5)
    assert float(sol.stats["multipliers"]["inequality"]) == pytest.approx(0.55229366, rel=1e-5)


def test_bounds_only_rosenbrock():
    def rosenbrock(y, _):
        return (1 - y[0]) ** 2 + 100 * (y[1] - y[0] ** 2) ** 2

    bounds = (jnp.array([-1.5, -jnp.inf]), jnp.array([0.5, jnp.inf]))
    sol = solve(rosenbrock, jnp.array([-1.2, 1.0]), bounds=bounds)
    assert jnp.allclose(sol.value, jnp.array([0.5, 0.25]), atol=1e-7)
    assert float(sol.stats["multipliers"]["upper"][0]) == pytest.approx(1.0, rel=1e-6)


def test_equality_only_pytree():
    y0 = {"a": jnp.zeros(2), "b": jnp.zeros((1, 3))}

    def fn(y, _):
        return jnp.sum(y["a"] ** 2) + jnp.sum(y["b"] ** 2)

    def equality(y, _):
        return jnp.sum(y["a"]) + jnp.sum(y["b"]) - 1.0

    sol = solve(fn, y0, equality=equality)
    assert jnp.allclose(sol.value["a"], 0.2) and jnp.allclose(sol.value["b"], 0.2)
    assert sol.value["b"].shape == (1, 3)
    assert float(sol.stats["multipliers"]["equality"]) == pytest.approx(0.4, rel=1e-8)


def test_redundant_equalities_singular_kkt():
    """A rank-deficient Jacobian: the KKT matrix is singular without ``δ_c``."""

    def equality(y, _):
        s = y[0] + y[1] - 1.0
        return jnp.stack([s, 2 * s])

    sol = constrained_minimise(lambda y, _: jnp.sum(y**2), SOLVER, jnp.zeros(2), None,
                               equality=equality)
    assert sol.result == optx.RESULTS.successful
    assert jnp.allclose(sol.value, 0.5, atol=1e-7)


def test_infeasible_is_a_failure():
    kwargs = dict(inequality=lambda y, _: -(y**2) - 1.0)
    sol = constrained_minimise(
        lambda y, _: jnp.sum(y), SOLVER, jnp.array([0.5]), None, throw=False, **kwargs
    )
    assert sol.result != optx.RESULTS.successful
    assert int(sol.stats["status"]) in (Status.INFEASIBLE, Status.RESTORATION_FAILED)
    with pytest.raises(Exception, match=r"infeasib|restoration"):
        constrained_minimise(lambda y, _: jnp.sum(y), SOLVER, jnp.array([0.5]), None, **kwargs)


def test_unbounded_below_is_a_failure():
    sol = constrained_minimise(
        lambda y, _: -jnp.sum(y), SOLVER, jnp.ones(2), None,
        bounds=(jnp.zeros(2), None), throw=False,
    )
    assert sol.result == optx.RESULTS.nonlinear_divergence
    assert int(sol.stats["status"]) == Status.UNBOUNDED


def test_nonfinite_start_is_a_failure():
    def fn(y, _):
        return jnp.sum(jnp.log(y))

    sol = constrained_minimise(fn, SOLVER, jnp.array([-1.0, 1.0]), None, throw=False)
    assert sol.result == optx.RESULTS.nonfinite
    assert int(sol.stats["status"]) == Status.NONFINITE_START
    with pytest.raises(Exception, match="initial point"):
        constrained_minimise(fn, SOLVER, jnp.array([-1.0, 1.0]))


@pytest.mark.parametrize("where", ["equality", "inequality"])
def test_nonfinite_constraint_at_start_is_a_failure(where):
    kwargs = {where: lambda y, _: 1.0 / y[0] - 1.0}
    sol = constrained_minimise(
        lambda y, _: jnp.sum(y**2), SOLVER, jnp.zeros(2), None, throw=False, **kwargs
    )
    assert sol.result == optx.RESULTS.nonfinite
    assert int(sol.stats["status"]) == Status.NONFINITE_START


def test_jit_and_vmap_over_problems_inequality_only():
    """One structure, a batch of targets: min ‖y - t‖² s.t. Σy ≤ 1, y ≥ 0 (inequalities)."""

    def fn(y, t):
        return jnp.sum((y - t) ** 2)

    def inequality(y, _):
        return {"simplex": 1.0 - jnp.sum(y), "positive": y}

    @jax.jit
    def solve_one(t):
        sol = constrained_minimise(fn, SOLVER, jnp.full(3, 0.1), t, inequality=inequality)
        assert sol.stats["multipliers"]["inequality"]["positive"].shape == (3,)
        return sol.value, sol.result == optx.RESULTS.successful

    targets = jnp.array([[0.2, 0.1, 0.3], [1.0, 1.0, 1.0], [2.0, -1.0, 0.0]])
    values, ok = jax.vmap(solve_one)(targets)
    expected = jnp.array([[0.2, 0.1, 0.3], [1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])
    assert jnp.all(ok)
    assert jnp.allclose(values, expected, atol=1e-7)


def test_equinox_module():
    model = eqx.nn.Linear(2, 2, key=jax.random.key(0))

    def fn(m, _):
        return jnp.sum((m.weight - 1.0) ** 2) + jnp.sum(m.bias**2)

    def equality(m, _):
        return jnp.sum(m.weight, axis=1) - m.bias  # two constraints

    sol = solve(fn, model, equality=equality)
    assert isinstance(sol.value, eqx.nn.Linear)
    # By symmetry w_ij = a, b_i = 2a; stationarity gives a = 1/3.
    assert jnp.allclose(sol.value.weight, 1 / 3, atol=1e-7)
    assert jnp.allclose(sol.value.bias, 2 / 3, atol=1e-7)
    assert sol.stats["multipliers"]["lower"].weight.shape == (2, 2)


# ------------------------------------------------------------------ bad input


def test_constraint_without_variables_is_rejected():
    with pytest.raises(ValueError, match=r"inequality\[1\].*depend on no variable"):
        constrained_minimise(
            lambda y, _: jnp.sum(y**2), SOLVER, jnp.zeros(2),
            inequality=lambda y, _: jnp.stack([y[0], jnp.asarray(1.0)]),
        )


def test_inconsistent_bounds_are_rejected():
    with pytest.raises(ValueError, match=r"lower > upper at flat indices \[1\]"):
        constrained_minimise(
            lambda y, _: jnp.sum(y**2), SOLVER, jnp.zeros(2),
            bounds=(jnp.array([0.0, 2.0]), jnp.array([1.0, 1.0])),
        )


def test_bounds_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="shape"):
        constrained_minimise(
            lambda y, _: jnp.sum(y**2), SOLVER, jnp.zeros(2), bounds=(jnp.zeros(3), None)
        )
    with pytest.raises(ValueError, match="structure of `y0`"):
        constrained_minimise(
            lambda y, _: jnp.sum(y["a"] ** 2), SOLVER, {"a": jnp.zeros(2)},
            bounds=({"b": jnp.zeros(2)}, None),
        )


def test_non_scalar_objective_is_rejected():
    with pytest.raises(ValueError, match="scalar"):
        constrained_minimise(lambda y, _: y**2, SOLVER, jnp.zeros(2))


# ------------------------------------------------------------------ the KKT matrix


def test_kkt_assembly_and_dense_inertia():
    rng = np.random.default_rng(0)
    n, me, mi = 5, 2, 2
    dense_h = np.triu(rng.random((n, n)) < 0.4)
    dense_h = dense_h | dense_h.T | np.eye(n, dtype=bool)
    hr, hc = np.nonzero(np.tril(dense_h))
    jac_mask = rng.random((me + mi, n)) < 0.5
    jac_mask[:, 0] = True
    jr, jc = np.nonzero(jac_mask)
    kkt = KKTStructure(n, me, mi, hr, hc, jr, jc)
    hess = rng.standard_normal(hr.size)
    jac = rng.standard_normal(jr.size)
    diag = rng.random(n + mi) + 0.5
    data = kkt.assemble(jnp.asarray(hess), jnp.asarray(diag), jnp.asarray(jac), 1e-3)

    w = np.zeros((n, n))
    w[hr, hc] = hess
    w = w + np.tril(w, -1).T
    a = np.zeros((me + mi, n + mi))
    a[jr, jc] = jac
    a[me + np.arange(mi), n + np.arange(mi)] = -1
    top = np.zeros((n + mi, n + mi))
    top[:n, :n] = w
    top += np.diag(diag)
    expected = np.block([[top, a.T], [a, -1e-3 * np.eye(me + mi)]])
    assert np.allclose(kkt.dense(data), expected)
    vector = rng.standard_normal(kkt.size)
    assert np.allclose(kkt.matvec(data, jnp.asarray(vector)), expected @ vector)

    eig = np.linalg.eigvalsh(expected)
    rhs = rng.standard_normal(kkt.size)
    for solver in (DenseKKTSolver(kkt), SparseKKTSolver(kkt)):
        factor = solver.factor(data)
        assert [int(i) for i in factor.inertia] == [np.sum(eig > 0), np.sum(eig < 0), 0]
        assert np.allclose(factor.solve(jnp.asarray(rhs)), np.linalg.solve(expected, rhs))


@pytest.mark.parametrize("shift", [-3.0, 3.0])
def test_sparse_kkt_inertia_flags_a_wrong_hessian(shift):
    """SparseLDL's inertia through the public interface: W - 3I is seen, W + 3I passes."""
    n, me = 4, 1
    hr, hc = np.arange(n), np.arange(n)
    kkt = KKTStructure(n, me, 0, hr, hc, np.zeros(n, int), np.arange(n))
    data = kkt.assemble(jnp.full(n, shift), jnp.zeros(n), jnp.ones(n), 1e-8)
    eig = np.linalg.eigvalsh(np.asarray(kkt.dense(data)))
    inertia = [int(i) for i in SparseKKTSolver(kkt).factor(data).inertia]
    assert inertia == [np.sum(eig > 0), np.sum(eig < 0), 0]
    assert (inertia == [n, me, 0]) == (shift > 0)


@pytest.mark.parametrize("redundant", [False, True])
def test_refinement_removes_the_constraint_regularisation(redundant):
    """Solutions of the ``δ_c``-regularised factorization, refined against the exact matrix.

    With a full-rank Jacobian the refined solution solves the matrix without ``δ_c``
    (the regularised one alone misses by about ``δ_c |y|``); with a repeated constraint
    row that matrix is singular and the regularised solution is kept.
    """
    n = 3
    me = 2 if redundant else 1
    hr, hc = np.arange(n), np.arange(n)
    jr, jc = np.repeat(np.arange(me), n), np.tile(np.arange(n), me)
    kkt = KKTStructure(n, me, 0, hr, hc, jr, jc)
    hess, diag = jnp.array([2.0, 3.0, 4.0]), jnp.zeros(n)
    jac = jnp.tile(jnp.array([1.0, 2.0, 3.0]), me)
    delta_c = 1e-4
    data = kkt.assemble(hess, diag, jac, jnp.asarray(delta_c))
    exact = kkt.assemble(hess, diag, jac, jnp.asarray(0.0))
    rhs = jnp.arange(1.0, n + me + 1.0)
    factor = DenseKKTSolver(kkt).factor(data)  # any factorization of the regularised matrix
    refined = refined_solve(factor, kkt, data, rhs, exact)
    regularised = np.linalg.solve(np.asarray(kkt.dense(data)), np.asarray(rhs))
    if redundant:
        np.testing.assert_allclose(refined, regularised, rtol=1e-10, atol=1e-10)
    else:
        expected = np.linalg.solve(np.asarray(kkt.dense(exact)), np.asarray(rhs))
        np.testing.assert_allclose(refined, expected, rtol=1e-9, atol=1e-9)
        assert np.max(np.abs(regularised - expected)) > 1e-7


@pytest.mark.parametrize("floor", [0.0, 1.0])
def test_factor_with_inertia_solves_the_system_with_its_floor(floor):
    """The constraint block ``-floor I`` belongs to the system; ``δ_c`` does not.

    ``floor = 1`` is the restoration's quasi-definite matrix and ``floor = 0`` the KKT
    matrix: both solutions match a dense solve of the matrix with ``-floor I``, at
    ``δ_w = 0`` (the inertia is right).
    """
    n, me = 3, 1
    kkt = KKTStructure(n, me, 0, np.arange(n), np.arange(n), np.zeros(n, int), np.arange(n))
    hess, diag, jac = jnp.array([2.0, 3.0, 4.0]), jnp.full(n, 0.5), jnp.array([1.0, 2.0, 3.0])
    rhs = jnp.arange(1.0, n + me + 1.0)
    corrected = factor_with_inertia(
        SparseKKTSolver(kkt), kkt, hess, diag, jac, jnp.asarray(0.1), jnp.asarray(0.0), rhs,
        floor,
    )
    matrix = np.asarray(kkt.dense(kkt.assemble(hess, diag, jac, jnp.asarray(floor))))
    assert bool(corrected.ok) and float(corrected.delta_w) == 0.0
    np.testing.assert_allclose(
        corrected.solution, np.linalg.solve(matrix, np.asarray(rhs)), rtol=1e-10, atol=1e-12
    )


def test_nearly_dependent_constraints_are_solved_without_regularisation():
    """``A d = r`` holds exactly when the KKT matrix is nonsingular, however ill-conditioned.

    Two almost parallel constraint rows make ``A H⁻¹ Aᵀ`` nearly singular: a ``δ_c``
    of ``10⁻⁸ μ^{1/4}`` then dominates it, refinement cannot remove it, and the
    regularised step misses the linearised constraints by about ``δ_c |Δy|`` (5e-7
    here), which kept many-inequality QPs such as LISWET1 short of feasibility.
    """
    n, me = 3, 2
    kkt = KKTStructure(n, me, 0, np.arange(n), np.arange(n), np.repeat(np.arange(me), n),
                       np.tile(np.arange(n), me))
    hess, jac = jnp.array([2.0, 3.0, 4.0]), jnp.array([1.0, 2.0, 3.0, 1.0, 2.0, 3.01])
    rhs = jnp.arange(1.0, n + me + 1.0)
    corrected = factor_with_inertia(
        SparseKKTSolver(kkt), kkt, hess, jnp.zeros(n), jac, jnp.asarray(0.1), jnp.asarray(0.0),
        rhs,
    )
    matrix = np.asarray(kkt.dense(kkt.assemble(hess, jnp.zeros(n), jac, jnp.asarray(0.0))))
    residual = matrix @ np.asarray(corrected.solution) - np.asarray(rhs)
    assert bool(corrected.ok) and float(corrected.delta_c) == 0.0
    assert np.max(np.abs(residual[n:])) <= 1e-12


def test_complementarity_scale_counts_only_bounded_entries():
    """IPOPT's ``s_c``: the mean bound multiplier over the finite bounds only."""
    z = jnp.array([1e4, 0.0, 0.0, 0.0])
    compl = jnp.array([1e-3, 0.0, 0.0, 0.0])
    error = optimality_error(jnp.zeros(2), jnp.zeros(1), compl, jnp.zeros(1), z,
                             jnp.array([True, False, False, False]))
    assert float(error) == pytest.approx(1e-3 / 100)
