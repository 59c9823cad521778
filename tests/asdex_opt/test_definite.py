"""Definiteness reported by the direct solvers, and the shift that relies on it."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.experimental import sparse as jsparse

from asdex_opt._lineax._definite import blocks_positive_definite
from asdex_opt._lineax._newton import shifted_newton_direction
from asdex_opt._lineax._tridiagonal import tridiagonal_pivots, tridiagonal_positive_definite
from asdex_opt.lineax import (
    BlockDiagonalLU,
    BorderedBlockLU,
    SparseLU,
    SparseMatrixLinearOperator,
    SparseStructure,
    TridiagonalLU,
)
from asdex_opt.optimistix import SparseNewton, SparseTrustRegionNewton

pytestmark = pytest.mark.usefixtures("x64")

CLAIM = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})


def _structured(dense, tags=CLAIM):
    dense = np.asarray(dense)
    indices = np.argwhere(dense != 0)
    structure = SparseStructure(indices, dense.shape)
    data = jnp.asarray(dense[indices[:, 0], indices[:, 1]])
    return SparseMatrixLinearOperator.from_structure(data, structure, tags)


def _definite(dense):
    return bool(np.linalg.eigvalsh(np.asarray(dense)).min() > 0)


def _symmetric(rng, size, shift):
    a = rng.normal(size=(size, size))
    return a + a.T + shift * np.eye(size)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.floats(-4.0, 8.0), st.integers(0, 2**31 - 1))
def test_block_pivots_match_eigenvalues(size, shift, seed):
    rng = np.random.default_rng(seed)
    blocks = np.stack([_symmetric(rng, size, shift) for _ in range(3)])
    expected = all(_definite(b) for b in blocks)
    assert bool(blocks_positive_definite(jnp.asarray(blocks))) == expected


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.floats(-1.0, 3.0), st.integers(0, 2**31 - 1))
def test_tridiagonal_minors_match_eigenvalues(n, shift, seed):
    # Diagonals around 2 max |b| + shift: definite and indefinite matrices both common.
    rng = np.random.default_rng(seed)
    off = rng.normal(size=n - 1)
    diagonal = 2 * np.abs(off).max(initial=0.5) + shift + 0.3 * rng.normal(size=n)
    dense = np.diag(diagonal) + np.diag(off, 1) + np.diag(off, -1)
    computed = tridiagonal_positive_definite(jnp.asarray(diagonal), jnp.asarray(off))
    assert bool(computed) == _definite(dense)


def test_tridiagonal_minors_do_not_overflow():
    n = 5000  # the minors grow like 1e3^n; scaled, their signs survive
    assert bool(tridiagonal_positive_definite(jnp.full(n, 1e3), jnp.ones(n - 1)))
    diagonal = jnp.full(n, 1e3).at[-1].set(1e-3)  # the last pivot: 1e-3 - 1e-3 < 0
    assert not bool(tridiagonal_positive_definite(diagonal, jnp.ones(n - 1)))


def _block_diagonal(rng, sizes, shift):
    n = sum(sizes)
    dense, start = np.zeros((n, n)), 0
    for size in sizes:
        block = _symmetric(rng, size, shift)
        block[np.abs(block) < 1e-3] = 1e-3  # no accidental structural zeros
        dense[start : start + size, start : start + size] = block
        start += size
    return dense


@pytest.mark.parametrize("shift", [-3.0, 0.0, 6.0, 12.0])
def test_each_direct_solver_reports_definiteness(shift):
    rng = np.random.default_rng(int(shift) + 10)
    dense = _block_diagonal(rng, [2, 3, 1, 3], shift)
    if shift >= 6.0:  # the tridiagonal part only, for the tridiagonal solve too
        dense = np.triu(np.tril(dense, 1), -1)
    rows, cols = np.nonzero(dense)
    n = dense.shape[0]
    b = jnp.asarray(rng.normal(size=n))
    solvers = [BlockDiagonalLU.from_pattern(rows, cols, n), SparseLU()]
    if np.all(np.abs(rows - cols) <= 1):
        solvers.append(TridiagonalLU())
    for solver in solvers:
        solution = lx.linear_solve(_structured(dense), b, solver)
        assert bool(solution.stats["positive_definite"]) == _definite(dense), solver
        # An indefinite matrix is still solved (nonzero diagonal pivots).
        np.testing.assert_allclose(dense @ solution.value, b, rtol=1e-8, atol=1e-8)


def _arrowhead(interior_diagonal, corner):
    n = 8
    dense = np.diag(np.full(n, float(interior_diagonal)))
    dense[0, 1:] = dense[1:, 0] = 1.0
    dense[0, 0] = corner
    return dense


@pytest.mark.parametrize(
    ("interior", "corner"),
    [(2.0, 10.0), (2.0, 1.0), (-2.0, 10.0)],  # definite; Schur complement < 0; blocks < 0
)
def test_bordered_solve_reports_definiteness(interior, corner):
    dense = _arrowhead(interior, corner)
    rows, cols = np.nonzero(dense)
    solver = BorderedBlockLU.from_pattern(rows, cols, 8, max_block_size=2)
    b = jnp.arange(8.0)
    solution = lx.linear_solve(_structured(dense), b, solver)
    assert bool(solution.stats["positive_definite"]) == _definite(dense)
    np.testing.assert_allclose(dense @ solution.value, b, rtol=1e-8, atol=1e-8)


def test_no_report_without_the_claim():
    dense = _block_diagonal(np.random.default_rng(0), [2, 2], 6.0)
    rows, cols = np.nonzero(dense)
    for solver in [BlockDiagonalLU.from_pattern(rows, cols, 4), SparseLU(), TridiagonalLU()]:
        operator = _structured(dense, frozenset({lx.symmetric_tag}))
        assert "positive_definite" not in lx.linear_solve(operator, jnp.ones(4), solver).stats


def test_sparse_lu_claim_with_a_zero_diagonal_is_not_definite():
    # Diagonal pivots are impossible here (a zero on the diagonal): SuperLU pivots off
    # the diagonal and the claim is reported false, but the solve is still right.
    dense = np.array([[0.0, 1.0], [1.0, 0.0]])
    matrix = SparseMatrixLinearOperator(jsparse.BCOO.fromdense(jnp.asarray(dense)), CLAIM)
    solution = lx.linear_solve(matrix, jnp.array([1.0, 2.0]), SparseLU())
    assert not bool(solution.stats["positive_definite"])
    np.testing.assert_allclose(solution.value, [2.0, 1.0])


@pytest.mark.parametrize("make_solver", [SparseLU, None])
def test_shift_makes_the_matrix_definite_not_just_descent(make_solver):
    # H has eigenvalues 3 and -1 but a positive diagonal, so the shift starts at 0, where
    # the Newton direction p = (1/3, 1/3) is a descent direction (gᵀp = 2/3). With a
    # solver that reports definiteness the shift goes past 1.
    dense = np.array([[1.0, 2.0], [2.0, 1.0]])
    grad = jnp.array([1.0, 1.0])
    rows, cols = np.nonzero(dense)
    solver = BlockDiagonalLU.from_pattern(rows, cols, 2) if make_solver is None else SparseLU()
    hessian = _structured(dense, frozenset({lx.symmetric_tag}))
    p, shift, finite = shifted_newton_direction(grad, hessian, solver)
    assert float(shift) > 1.0 and bool(finite)
    assert float(jnp.vdot(grad, p)) > 0
    # A Krylov solver reports nothing: the descent test alone accepts τ = 0.
    _, shift, _ = shifted_newton_direction(grad, hessian, lx.GMRES(rtol=1e-12, atol=1e-12))
    assert float(shift) == 0.0


@pytest.mark.parametrize("make_solver", [SparseLU, None])
def test_failed_unshifted_solve_goes_on_from_the_nocedal_wright_shift(make_solver):
    # A solver that reports definiteness tries τ = 0 first whatever the diagonal. Here it
    # fails (a negative diagonal entry), and the schedule goes on from Nocedal-Wright's
    # first shift β - min(diag H) = 10⁻³ · 2 + 1, which passes.
    dense = np.array([[-1.0, 0.0], [0.0, 2.0]])
    grad = jnp.array([1.0, 1.0])
    rows, cols = np.nonzero(np.ones((2, 2)))
    solver = BlockDiagonalLU.from_pattern(rows, cols, 2) if make_solver is None else SparseLU()
    hessian = _structured(dense, frozenset({lx.symmetric_tag}))
    p, shift, finite = shifted_newton_direction(grad, hessian, solver)
    assert bool(finite)
    np.testing.assert_allclose(float(shift), 1e-3 * 2 + 1, rtol=1e-12)
    np.testing.assert_allclose((dense + float(shift) * np.eye(2)) @ p, grad, rtol=1e-10)
    # A positive definite H is solved at τ = 0, without reading the diagonal.
    _, shift, _ = shifted_newton_direction(grad, _structured(np.diag([1.0, 2.0])), solver)
    assert float(shift) == 0.0


def _saddle_pairs(y, _):
    """A saddle at 0 whose Hessian has a positive diagonal; minima at x = -z = ±1/√8."""
    x, z = y[::2], y[1::2]
    return jnp.sum(x**2 + z**2 + 3 * x * z + (x**2 + z**2) ** 2)


@pytest.mark.parametrize("solver_cls", [SparseNewton, SparseTrustRegionNewton])
@pytest.mark.parametrize("linear_solver", [None, SparseLU(), TridiagonalLU()])
def test_newton_does_not_stop_at_a_saddle(solver_cls, linear_solver):
    # Near the saddle, along its positive curvature: the plain Newton step (a descent
    # direction) heads straight into it; only the definiteness test turns away.
    y0 = jnp.tile(jnp.array([0.3, 0.3 + 1e-3]), 20)
    solver = solver_cls(1e-10, 1e-10, linear_solver=linear_solver)
    sol = optx.minimise(_saddle_pairs, solver, y0, max_steps=200)
    hessian = jax.hessian(_saddle_pairs)(sol.value, None)
    assert float(jnp.linalg.eigvalsh(hessian)[0]) > 0
    np.testing.assert_allclose(jnp.abs(sol.value), 8**-0.5, rtol=1e-6)


def test_tridiagonal_solve_matches_lineax():
    rng = np.random.default_rng(3)
    n = 7
    bands = rng.normal(size=n) + 4, rng.normal(size=n - 1), rng.normal(size=n - 1)
    operator = lx.TridiagonalLinearOperator(*(jnp.asarray(band) for band in bands))
    b = jnp.asarray(rng.normal(size=n))
    expected = lx.linear_solve(operator, b, lx.Tridiagonal()).value
    np.testing.assert_allclose(lx.linear_solve(operator, b, TridiagonalLU()).value, expected)
    # Reverse mode solves with the transpose.
    grad = jax.grad(lambda b: lx.linear_solve(operator, b, TridiagonalLU()).value.sum())(b)
    np.testing.assert_allclose(operator.as_matrix().T @ grad, jnp.ones(n), atol=1e-10)


@pytest.mark.parametrize("shift", [-1.0, 0.5, 4.0])  # indefinite (nonzero pivots) to definite
def test_tridiagonal_ldl_solve_under_the_claim(shift):
    # The claimed path solves by LDLᵀ: the solution, its transpose (reverse mode) and
    # the pivots against dense linear algebra.
    rng = np.random.default_rng(7)
    n = 9
    off = rng.normal(size=n - 1)
    diagonal = 2.0 + shift + 0.3 * rng.normal(size=n)
    dense = np.diag(diagonal) + np.diag(off, 1) + np.diag(off, -1)
    tridiagonal = lx.TridiagonalLinearOperator(*(jnp.asarray(v) for v in (diagonal, off, off)))
    operator = lx.TaggedLinearOperator(tridiagonal, CLAIM)
    b = jnp.asarray(rng.normal(size=n))
    solution = lx.linear_solve(operator, b, TridiagonalLU())
    np.testing.assert_allclose(solution.value, np.linalg.solve(dense, b), rtol=1e-9)
    assert bool(solution.stats["positive_definite"]) == _definite(dense)
    grad = jax.grad(lambda b: lx.linear_solve(operator, b, TridiagonalLU()).value.sum())(b)
    np.testing.assert_allclose(dense @ grad, np.ones(n), atol=1e-9)
    minors = [np.linalg.det(dense[:k, :k]) for k in range(1, n + 1)]
    expected = np.array(minors) / np.array([1.0, *minors[:-1]])
    np.testing.assert_allclose(tridiagonal_pivots(diagonal, off), expected, rtol=1e-8)


def test_tridiagonal_ldl_solve_of_a_hermitian_claim():
    diagonal = jnp.array([4.0, 5.0, 3.0], jnp.complex128)
    lower = jnp.array([1.0 + 2.0j, -1.0j])
    dense = np.diag(np.asarray(diagonal)) + np.diag(np.asarray(lower), -1)
    dense += np.diag(np.conj(np.asarray(lower)), 1)
    tridiagonal = lx.TridiagonalLinearOperator(diagonal, lower, jnp.conj(lower))
    operator = lx.TaggedLinearOperator(tridiagonal, CLAIM)
    b = jnp.array([1.0, 2.0j, -1.0])
    solution = lx.linear_solve(operator, b, TridiagonalLU())
    np.testing.assert_allclose(dense @ solution.value, b, atol=1e-12)
    assert bool(solution.stats["positive_definite"]) == _definite(dense)
