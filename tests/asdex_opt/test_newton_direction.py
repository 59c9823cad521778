"""The shifted Newton direction: stationary and indefinite points, the shift carried over,
one traced solve for every attempt."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jax.experimental import sparse as jsparse

import asdex_opt._lineax._newton as newton
from asdex_opt._lineax._newton import shifted_newton_direction
from asdex_opt._optimistix._dense import damped_direction
from asdex_opt.lineax import SparseLU, SparseMatrixLinearOperator


def _operator(dense):
    return SparseMatrixLinearOperator(jsparse.BCOO.fromdense(jnp.asarray(dense)), lx.symmetric_tag)


def test_stationary_point_needs_no_shift():
    hessian = _operator([[2.0, 0.0], [0.0, 3.0]])
    p, shift, finite = shifted_newton_direction(jnp.zeros(2), hessian, lx.LU())
    np.testing.assert_array_equal(p, 0.0)
    assert float(shift) == 0.0 and bool(finite)
    # Also for an indefinite Hessian: the shift starts where Nocedal-Wright start, no growth.
    p, shift, _ = shifted_newton_direction(
        jnp.zeros(2), _operator([[1.0, 0.0], [0.0, -1.0]]), lx.LU()
    )
    np.testing.assert_array_equal(p, 0.0)
    np.testing.assert_allclose(float(shift), 1e-3 + 1.0, rtol=1e-6)


def test_indefinite_hessian_is_shifted_until_descent():
    grad = jnp.array([1.0, 1.0])
    p, shift, _ = shifted_newton_direction(grad, _operator([[1.0, 0.0], [0.0, -1.0]]), lx.LU())
    assert float(shift) > 1.0 and float(jnp.vdot(grad, p)) > 0


def _counting_attempts(monkeypatch):
    """Count the shifted solves (factorizations) run, as they run."""
    count = [0]
    solve = newton._solve

    def counted(*args):
        jax.debug.callback(lambda: count.__setitem__(0, count[0] + 1))
        return solve(*args)

    monkeypatch.setattr(newton, "_solve", counted)
    return count


def test_the_schedule_resumes_from_the_previous_shift(monkeypatch):
    grad = jnp.array([1.0, 0.5])
    # Eigenvalues -9 and 11 behind a positive diagonal: Nocedal-Wright start at 0.
    hessian = _operator([[1.0, 10.0], [10.0, 1.0]])
    count = _counting_attempts(monkeypatch)
    direction = jax.jit(lambda tau: shifted_newton_direction(grad, hessian, SparseLU(), None, tau))
    _, first, _ = shifted_newton_direction(grad, hessian, SparseLU())
    from_zero = count[0]
    count[0] = 0
    p, resumed, _ = direction(first)
    # Zero, then beta = 0.001 raised fourfold to 16.384; resumed: a quarter of the last
    # shift (too small here), then the last shift itself.
    assert (from_zero, count[0]) == (9, 2)
    np.testing.assert_allclose([float(first), float(resumed)], [16.384, 16.384], rtol=1e-6)
    assert float(jnp.vdot(grad, p)) > 0


def test_a_positive_definite_hessian_sheds_the_previous_shift():
    hessian = _operator([[2.0, 0.0], [0.0, 3.0]])
    direction = jax.jit(
        lambda tau: shifted_newton_direction(jnp.ones(2), hessian, SparseLU(), None, tau)
    )
    shift, shifts = jnp.array(1e3), []
    while float(shift) > 0 and len(shifts) < 20:
        shift = direction(shift)[1]
        shifts.append(float(shift))
    # Quartered each step while that stays at least beta = 3e-3; then pure Newton.
    np.testing.assert_allclose(shifts[:-1], 1e3 / 4.0 ** np.arange(1, len(shifts)), rtol=1e-6)
    assert shifts[-1] == 0.0 and len(shifts) == 10, shifts


def _primitive_count(jaxpr, name):
    count = 0
    for eqn in jaxpr.eqns:
        count += eqn.primitive.name == name
        for param in eqn.params.values():
            for sub in param if isinstance(param, list | tuple) else [param]:
                if isinstance(sub, jax.extend.core.ClosedJaxpr):
                    count += _primitive_count(sub.jaxpr, name)
                elif isinstance(sub, jax.extend.core.Jaxpr):
                    count += _primitive_count(sub, name)
    return count


def test_every_shift_attempt_shares_one_traced_solve(monkeypatch):
    traced = [0]
    solve = newton._solve

    def counted(*args):
        traced[0] += 1
        return solve(*args)

    monkeypatch.setattr(newton, "_solve", counted)
    hessian = _operator([[1.0, 10.0], [10.0, 1.0]])
    jax.make_jaxpr(lambda g, tau: shifted_newton_direction(g, hessian, SparseLU(), None, tau))(
        jnp.ones(2), 1.0
    )
    assert traced[0] == 1
    normal = jnp.array([[1.0, 1.0], [1.0, 1.0]])
    jaxpr = jax.make_jaxpr(damped_direction)(jnp.ones(2), normal, 0.0).jaxpr
    assert _primitive_count(jaxpr, "cholesky") == 1


def test_dense_damping_is_raised_on_the_schedule():
    # Singular: the zero damping fails, beta = 1e-3 max diag = 1e-3 passes.
    normal = jnp.array([[1.0, 1.0], [1.0, 1.0]])
    grad = jnp.array([1.0, 0.0])
    direction = jax.jit(damped_direction)
    p, finite = direction(grad, normal, 0.0)
    np.testing.assert_allclose(p, np.linalg.solve(normal + 1e-3 * np.eye(2), grad), rtol=1e-3)
    # A damping that passes is kept.
    p, _ = direction(grad, normal, 0.5)
    np.testing.assert_allclose(p, np.linalg.solve(normal + 0.5 * np.eye(2), grad), rtol=1e-5)
    assert bool(finite)


def test_a_diagonal_entry_at_or_below_zero_skips_the_zero_shift(monkeypatch):
    # H + 0 I cannot be positive definite with a zero on the diagonal: the first attempt
    # is Nocedal-Wright's beta - min(diag H) = 1e-3, not zero.
    count = _counting_attempts(monkeypatch)
    p, shift, _ = jax.jit(shifted_newton_direction, static_argnums=2)(
        jnp.ones(2), _operator([[0.0, 0.0], [0.0, 1.0]]), SparseLU()
    )
    assert count[0] == 1
    np.testing.assert_allclose(float(shift), 1e-3, rtol=1e-6)
    np.testing.assert_allclose(p, [1e3, 1 / 1.001], rtol=1e-6)


def test_the_shift_falls_below_beta_where_the_diagonal_has_a_zero(monkeypatch):
    # A zero on the diagonal used to pin the shift at beta = 1e-3 (and cost a failed
    # zero each time); the resumed quarter is the margin above it instead.
    hessian = _operator([[0.0, 0.0], [0.0, 1.0]])
    count = _counting_attempts(monkeypatch)
    direction = jax.jit(
        lambda tau: shifted_newton_direction(jnp.ones(2), hessian, SparseLU(), None, tau)
    )
    shift, shifts = jnp.array(1e-3), []
    for _ in range(4):
        shift = direction(shift)[1]
        shifts.append(float(shift))
    np.testing.assert_allclose(shifts, 1e-3 / 4.0 ** np.arange(1, 5), rtol=1e-6)
    assert count[0] == 4
