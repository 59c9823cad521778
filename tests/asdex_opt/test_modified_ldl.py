"""SparseLDL with bounded pivots (modified LDLᵀ) and the modified Newton direction."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asdex_opt._lineax._definite import bounds_pivots
from asdex_opt._lineax._ldl import analyse
from asdex_opt._lineax._ldl._level_numeric import PivotBound
from asdex_opt._lineax._ldl._numeric import _bounded_partial_ldl, factorize, solve
from asdex_opt._lineax._newton import newton_direction, shifted_newton_direction
from asdex_opt._optimistix._descents import _stretched_direction
from asdex_opt.lineax import SparseLDL, SparseLU, SparseMatrixLinearOperator, SparseStructure

pytestmark = pytest.mark.usefixtures("x64_module")

SCALAR, FRONTS = 10**12, -1
"""`analyse`'s ``max_scalar_updates`` that force the scalar plan or the dense fronts."""

_SMALLEST = 1e-8


def _modified_ldl(matrix: np.ndarray, order: np.ndarray, smallest: float):
    """Gill, Murray & Wright's modified LDLᵀ in ``order``, densely: ``(L, d, e, β²)``."""
    n = matrix.shape[0]
    a = matrix[np.ix_(order, order)].astype(float)
    gamma = np.abs(np.diag(a)).max(initial=0.0)
    xi = np.abs(a - np.diag(np.diag(a))).max(initial=0.0)
    beta2 = max(gamma, xi / max(np.sqrt(n * n - 1.0), 1.0), np.finfo(float).eps)
    delta = smallest * max(gamma + xi, np.finfo(float).eps)
    lower, d, e = np.eye(n), np.zeros(n), np.zeros(n)
    for j in range(n):
        column = a[j + 1 :, j].copy()
        theta = np.abs(column).max(initial=0.0)
        d[j] = max(abs(a[j, j]), theta**2 / beta2, delta)
        e[j] = d[j] - a[j, j]
        lower[j + 1 :, j] = column / d[j]
        a[j + 1 :, j + 1 :] -= np.outer(column, column) / d[j]
    e_original = np.zeros(n)
    e_original[order] = e
    return lower, d, e_original, beta2


def _factor(matrix: np.ndarray, engine: int, bound: bool = True):
    rows, cols = np.nonzero(matrix)
    analysis = analyse(matrix.shape[0], rows, cols, engine)
    assert (analysis.levels is None) == (engine == FRONTS)

    @jax.jit
    def run(data, b):
        factor = factorize(analysis, data, 1e-12, None, jnp.array(bound), _SMALLEST)
        return solve(analysis, factor, b), factor.added, factor.inertia

    return analysis, run


def _symmetric(seed: int, n: int, density: float, shift: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    upper = np.triu(rng.standard_normal((n, n)) * (rng.random((n, n)) < density), 1)
    return upper + upper.T + np.diag(rng.standard_normal(n) + shift)


@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 40),
    density=st.floats(0.02, 0.4),
    shift=st.floats(-3.0, 1.0),
    engine=st.sampled_from([SCALAR, FRONTS]),
)
def test_factors_are_of_the_matrix_plus_a_nonnegative_diagonal(seed, n, density, shift, engine):
    """L D Lᵀ = H + diag(e), e ≥ 0, D > 0, as the dense modified LDLᵀ in the same order."""
    matrix = _symmetric(seed, n, density, shift)
    analysis, run = _factor(matrix, engine)
    rows, cols = np.nonzero(matrix)
    columns = np.asarray(jax.vmap(lambda b: run(jnp.asarray(matrix[rows, cols]), b)[0])(np.eye(n)))
    _, added, inertia = run(jnp.asarray(matrix[rows, cols]), jnp.zeros(n))
    added = np.asarray(added)
    assert added.min() >= 0
    assert [int(i) for i in inertia] == [n, 0, 0]
    # The solves' inverse is of H + diag(e), off the diagonal too.
    np.testing.assert_allclose(
        np.linalg.inv(columns.T), matrix + np.diag(added), rtol=1e-6, atol=1e-6 * (1 + added.max())
    )
    lower, d, expected, beta2 = _modified_ldl(matrix, analysis.order, _SMALLEST)
    np.testing.assert_allclose(added, expected, rtol=1e-8, atol=1e-8 * (1 + expected.max()))
    # The bound the modification keeps: |l_ij| √d_j ≤ β.
    below = np.abs(np.tril(lower, -1)) * np.sqrt(d)[None, :]
    assert np.all(below <= np.sqrt(beta2) * (1 + 1e-12))


@settings(max_examples=4, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), engine=st.sampled_from([SCALAR, FRONTS])
)
def test_well_conditioned_positive_definite_is_unchanged(seed, n, engine):
    """e = 0 where H is diagonally dominant with a positive diagonal: the plain LDLᵀ."""
    matrix = _symmetric(seed, n, 0.2, 0.0)
    matrix += np.diag(np.abs(matrix).sum(axis=1) + 1.0)
    rhs = np.random.default_rng(seed).standard_normal(n)
    _, run = _factor(matrix, engine)
    rows, cols = np.nonzero(matrix)
    x, added, _ = run(jnp.asarray(matrix[rows, cols]), jnp.asarray(rhs))
    assert np.all(np.asarray(added) == 0)
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(matrix, rhs), rtol=1e-10)


def _operator(matrix: np.ndarray) -> SparseMatrixLinearOperator:
    rows, cols = np.nonzero(matrix)
    structure = SparseStructure(np.stack([rows, cols], axis=1), matrix.shape)
    return SparseMatrixLinearOperator.from_structure(
        jnp.asarray(matrix[rows, cols]), structure, lx.symmetric_tag
    )


def test_solver_option_and_stats():
    """The option is traced (one program for both), e is in stats, refinement is against H + E."""
    matrix = _symmetric(3, 30, 0.1, -1.0)
    operator, rhs = _operator(matrix), jnp.ones(30)

    @jax.jit
    def run(flag):
        solution = lx.linear_solve(
            operator, rhs, SparseLDL(), options={"bound_pivots": flag}, throw=False
        )
        return solution.value, solution.stats["added"], solution.stats["inertia"]

    x, added, inertia = run(jnp.array(True))
    assert np.asarray(added).max() > 0 and [int(i) for i in inertia] == [30, 0, 0]
    np.testing.assert_allclose(
        np.asarray(x), np.linalg.solve(matrix + np.diag(np.asarray(added)), rhs), rtol=1e-10
    )
    x, added, inertia = run(jnp.array(False))
    assert np.all(np.asarray(added) == 0) and int(inertia[1]) > 0
    np.testing.assert_allclose(np.asarray(x), np.linalg.solve(matrix, rhs), rtol=1e-8)
    assert bounds_pivots(SparseLDL()) and not bounds_pivots(SparseLU())
    plain = lx.linear_solve(operator, rhs, SparseLDL(), throw=False)
    assert "added" not in plain.stats


def test_modified_direction_takes_one_factorization_and_reports_the_correction():
    """Indefinite H: p solves (H + E) p = g, pᵀEp is returned, no shift of every variable."""
    # Two uncoupled blocks: one positive definite, one indefinite.
    good = np.array([[4.0, 1.0], [1.0, 3.0]])
    bad = np.array([[1.0, 2.0], [2.0, -5.0]])
    matrix = np.block([[good, np.zeros((2, 2))], [np.zeros((2, 2)), bad]])
    grad = jnp.array([1.0, -2.0, 0.5, -1.0])
    p, tau, correction, finite = newton_direction(grad, _operator(matrix), SparseLDL())
    assert bool(finite) and float(tau) == 0.0
    # The positive definite block keeps its Newton step.
    np.testing.assert_allclose(np.asarray(p[:2]), np.linalg.solve(good, grad[:2]), rtol=1e-10)
    curvature = float(jnp.vdot(p, jnp.asarray(matrix) @ p))
    np.testing.assert_allclose(float(jnp.vdot(grad, p)) - float(correction), curvature, rtol=1e-10)
    assert float(correction) > 0 and float(jnp.vdot(grad, p)) > 0
    # The uniform shift moves the good block's step too.
    p_shift, tau_shift, _ = shifted_newton_direction(grad, _operator(matrix), SparseLDL())
    assert float(tau_shift) > 0
    assert not np.allclose(np.asarray(p_shift[:2]), np.linalg.solve(good, grad[:2]), rtol=1e-3)


def test_positive_definite_hessian_gives_the_newton_step():
    matrix = (
        np.diag(np.arange(1.0, 7.0)) + np.diag(np.full(5, 0.3), 1) + np.diag(np.full(5, 0.3), -1)
    )
    grad = jnp.linspace(-1.0, 1.0, 6)
    p, tau, correction, _ = newton_direction(grad, _operator(matrix), SparseLDL())
    assert float(tau) == 0.0 and float(correction) == 0.0
    np.testing.assert_allclose(np.asarray(p), np.linalg.solve(matrix, grad), rtol=1e-12)


def test_non_finite_hessian_falls_back_to_the_schedule():
    """A non-finite H: no descent from the bounded factorization, steepest descent's limit."""
    matrix = np.diag([1.0, 2.0, 3.0])
    operator = _operator(matrix)
    operator = SparseMatrixLinearOperator.from_structure(
        operator.data.at[0].set(jnp.nan), operator.structure, lx.symmetric_tag
    )
    grad = jnp.ones(3)
    p, _, _, finite = newton_direction(grad, operator, SparseLDL())
    assert not bool(finite)
    assert bool(jnp.all(jnp.isfinite(p))) and float(jnp.vdot(grad, p)) > 0


def test_other_solvers_keep_the_shift_schedule():
    matrix = np.diag([2.0, -1.0])
    grad = jnp.ones(2)
    p, tau, correction, _ = newton_direction(grad, _operator(matrix), SparseLU())
    p_old, tau_old, _ = shifted_newton_direction(grad, _operator(matrix), SparseLU())
    assert float(tau) == float(tau_old) > 0
    np.testing.assert_allclose(np.asarray(p), np.asarray(p_old))
    np.testing.assert_allclose(float(correction), float(tau) * float(jnp.vdot(p, p)), rtol=1e-12)


def _bounded_elimination(front: np.ndarray, k: int, beta2: float, delta: float):
    """The first ``k`` steps of the modified elimination: ``(inverse of L̃, d, e, update)``."""
    a = front.copy()
    size = a.shape[0]
    lower, d, e = np.eye(size), np.ones(size), np.zeros(size)
    for j in range(k):
        column = a[j + 1 :, j].copy()
        d[j] = max(abs(a[j, j]), np.abs(column).max(initial=0.0) ** 2 / beta2, delta)
        e[j] = d[j] - a[j, j]
        lower[j + 1 :, j] = column / d[j]
        a[j + 1 :, j + 1 :] -= np.outer(column, column) / d[j]
    return np.linalg.inv(lower), d, e, a[k:, k:]


@pytest.mark.slow
@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), tiles=st.integers(2, 3))
def test_tiled_fronts_bound_each_pivot_by_its_whole_column(seed, tiles):
    """The dense fronts' tiled elimination (tiles of 8) against the dense modified one."""
    tile, count = 8, 2
    size = tile * tiles
    rng = np.random.default_rng(seed)
    fronts = rng.standard_normal((count, size, size))
    fronts = fronts + np.swapaxes(fronts, 1, 2)
    pivots = rng.integers(tile, size, count)
    bound = PivotBound(jnp.array(True), jnp.array(1.5), jnp.array(1e-3))
    width = min(size, tile * -(-int(pivots.max()) // tile))
    h, d, schur, e = jax.jit(_bounded_partial_ldl, static_argnums=(3, 4))(
        jnp.asarray(fronts), jnp.asarray(pivots), jnp.asarray(width // tile), tile, width, bound
    )
    for b, k in enumerate(pivots):
        inverse, pivot, added, update = _bounded_elimination(fronts[b], k, 1.5, 1e-3)
        assert added.max() > 0
        np.testing.assert_allclose(np.asarray(d[b][:k]), pivot[:k], rtol=1e-9)
        np.testing.assert_allclose(np.asarray(e[b][:k]), added[:k], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(np.asarray(h[b])[:, :k], inverse[:, :k], rtol=1e-8, atol=1e-8)
        trailing = np.tril(np.asarray(schur[b])[k:, k:])
        np.testing.assert_allclose(trailing, np.tril(update), rtol=1e-8, atol=1e-8)


def test_stretch_uses_the_curvature_without_the_bounded_diagonal():
    """_stretched_direction: m = gᵀp / pᵀHp with pᵀHp = gᵀp - pᵀEp (E from the bounded pivots)."""
    matrix = np.diag([2.0, 4.0, -0.01])
    grad = jnp.array([1.0, 1.0, 0.001])
    info = optx.FunctionInfo.EvalGradHessian(jnp.zeros(()), grad, _operator(matrix))
    state = _stretched_direction(info, SparseLDL(), jnp.zeros(()), bound_pivots=True)
    p = np.asarray(state.direction)
    np.testing.assert_allclose(p, [0.5, 0.25, 0.1], rtol=1e-10)
    curvature = p @ matrix @ p
    assert curvature > 0 and bool(state.curved)
    np.testing.assert_allclose(float(state.stretch), float(grad @ p) / curvature, rtol=1e-10)
    plain = _stretched_direction(info, SparseLDL(), jnp.zeros(()))
    assert float(plain.shift) > 0 and float(plain.stretch) > 1
