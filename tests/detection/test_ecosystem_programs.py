"""Lineax, Optimistix and Diffrax programs: detection contains the numeric pattern.

lineax's `linear_solve` primitive (and its batched `vprim` form), optimistix's root
finders that call it, and diffrax's explicit, adaptive and implicit solves with each
adjoint. Numeric patterns are `jax.jacfwd`'s where forward mode is defined, else
`jax.jacrev`'s (adjoints built on `custom_vjp`), at random points.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest

from asdex.detection import hessian_sparsity, jacobian_sparsity

N = 6
X = jnp.linspace(0.5, 1.0, N)


def numeric_pattern(f, x, jacobian=jax.jacfwd, points: int = 2) -> np.ndarray:
    """Union over random points near `x` of the nonzeros of the dense Jacobian."""
    found = np.zeros((int(np.prod(jax.eval_shape(f, x).shape)), x.size), bool)
    jac = jax.jit(jacobian(f))
    for key in jax.random.split(jax.random.key(1), points):
        point = x * (1.0 + 0.2 * jax.random.uniform(key, x.shape))
        dense = np.asarray(jac(point)).reshape(found.shape)
        found |= (dense != 0) & ~np.isnan(dense)
    return found


def check(f, x, jacobian=jax.jacfwd, exact: bool = False) -> np.ndarray:
    detected = jacobian_sparsity(f, x).todense().astype(bool)
    numeric = numeric_pattern(f, x, jacobian)
    missed = numeric & ~detected
    assert not missed.any(), f"missed {np.argwhere(missed)[:10].tolist()}"
    if exact:
        np.testing.assert_array_equal(detected, numeric)
    return detected


def blocks(size: int, width: int) -> np.ndarray:
    i, j = np.indices((size, size))
    return i // width == j // width


# --- lineax -------------------------------------------------------------------------------


def test_matrix_operator_solve_is_dense_within_the_solve():
    """An unknown matrix: every solution element may depend on everything."""
    def f(x):
        a = jnp.diag(x) + 0.1 * jnp.eye(N, k=1)
        return lx.linear_solve(lx.MatrixLinearOperator(a), jnp.sin(x)).value

    assert check(f, X).all()


def pairs_operator(x):
    """`A v` couples the elements of each pair `(2k, 2k + 1)` only."""
    def mv(v):
        swapped = v.reshape(-1, 2)[:, ::-1].reshape(-1)
        return x * v + 0.1 * swapped

    return lx.FunctionLinearOperator(mv, jax.ShapeDtypeStruct((N,), X.dtype))


def test_function_operator_solve_follows_the_operator_graph():
    """`A⁻¹` only spreads along `A`'s graph: two-by-two blocks, exactly."""
    def f(x):
        return lx.linear_solve(pairs_operator(x), jnp.sin(x), solver=lx.LU()).value

    detected = check(f, X, exact=True)
    np.testing.assert_array_equal(detected, blocks(N, 2))


def test_known_matrix_solve_follows_its_graph():
    """A known upper-bidiagonal matrix: the solution of `A x = b` is upper triangular."""
    a = np.eye(N) * 2.0 + np.eye(N, k=1)

    def f(x):
        return lx.linear_solve(lx.MatrixLinearOperator(jnp.asarray(a, X.dtype)), x).value

    detected = check(f, X, exact=True)
    np.testing.assert_array_equal(detected, np.triu(np.ones((N, N), bool)))


def test_least_squares_solve_is_dense_within_the_solve():
    def f(x):
        a = jnp.stack([x, x ** 2, jnp.ones_like(x)], axis=1)  # (N, 3): rectangular
        return lx.linear_solve(lx.MatrixLinearOperator(a), jnp.cos(x), solver=lx.QR()).value

    detected = jacobian_sparsity(f, X).todense().astype(bool)
    assert detected.all()
    check(f, X)


def test_batched_solve_is_dense_within_each_batch_element_only():
    def f(x):
        def solve(row):
            a = jnp.diag(row) + 0.1
            return lx.linear_solve(lx.MatrixLinearOperator(a), jnp.sin(row)).value

        return jax.vmap(solve)(x.reshape(2, N // 2)).reshape(-1)

    assert "vprim" in str(jax.make_jaxpr(f)(X))
    detected = check(f, X, exact=True)
    np.testing.assert_array_equal(detected, blocks(N, N // 2))


def test_solve_hessian_contains_the_numeric_one():
    def g(x):
        return jnp.sum(lx.linear_solve(pairs_operator(x), jnp.sin(x)).value ** 2)

    detected = hessian_sparsity(g, X).todense().astype(bool)
    numeric = np.asarray(jax.hessian(g)(X)) != 0
    assert not (numeric & ~detected).any()
    assert not detected[0, 2:].any()  # the pairs stay apart


# --- optimistix ---------------------------------------------------------------------------


def test_root_find_inside_a_function_is_exact():
    """Newton's method on a separable system: the solution is elementwise in the data."""
    def f(x):
        def residual(y, a):
            return y ** 3 + y - a

        return optx.root_find(residual, optx.Newton(1e-6, 1e-6), jnp.zeros_like(x), args=x).value

    detected = check(f, X, exact=True)
    np.testing.assert_array_equal(detected, np.eye(N, dtype=bool))


def test_root_find_of_a_coupled_system_is_sound():
    def f(x):
        def residual(y, a):
            return y ** 3 + 0.1 * jnp.roll(y, 1) - a

        return optx.root_find(residual, optx.Newton(1e-6, 1e-6), jnp.ones_like(x), args=x).value

    check(f, X)


# --- diffrax ------------------------------------------------------------------------------


def decoupled(t, y, args):
    return -y ** 3 + jnp.sin(t)


def heat(t, y, args):
    padded = jnp.pad(y, 1)
    return padded[:-2] - 2.0 * y + padded[2:] - 0.1 * y ** 3


def solve(rhs, solver, adjoint, controller=None, t1=0.04):
    def f(y):
        extra = {} if controller is None else {"stepsize_controller": controller}
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(rhs), solver, 0.0, t1, 0.02, y, adjoint=adjoint, max_steps=8,
            saveat=diffrax.SaveAt(t1=True), **extra)
        return solution.ys[-1]

    return f


def kvaerno5():
    """Kvaerno5 with the root finder's tolerances set (needed at constant steps)."""
    return diffrax.Kvaerno5(root_finder=diffrax.VeryChord(rtol=1e-5, atol=1e-7,
                                                          norm=optx.max_norm))


FORWARD_ADJOINTS = {"direct": diffrax.DirectAdjoint()}
REVERSE_ADJOINTS = {
    "recursive_checkpoint": diffrax.RecursiveCheckpointAdjoint(),
    "backsolve": diffrax.BacksolveAdjoint(),
}


def adjoint_cases():
    """`(adjoint, numeric Jacobian)`: forward mode where the adjoint allows it."""
    return [pytest.param(a, jax.jacfwd, id=name) for name, a in FORWARD_ADJOINTS.items()] + [
        pytest.param(a, jax.jacrev, id=name) for name, a in REVERSE_ADJOINTS.items()]


@pytest.mark.slow
def test_kvaerno5_decoupled_is_diagonal():
    """An implicit solve of independent equations at constant steps stays diagonal."""
    f = solve(decoupled, kvaerno5(), diffrax.RecursiveCheckpointAdjoint(), t1=0.02)
    detected = check(f, X, jax.jacrev, exact=True)
    np.testing.assert_array_equal(detected, np.eye(N, dtype=bool))


@pytest.mark.slow
def test_tsit5_pid_recursive_checkpoint_is_exact():
    """Adaptive steps: the step size reads every element, so the pattern is dense."""
    f = solve(heat, diffrax.Tsit5(), diffrax.RecursiveCheckpointAdjoint(),
              diffrax.PIDController(rtol=1e-3, atol=1e-5))
    assert check(f, X, jax.jacrev, exact=True).all()


@pytest.mark.slow
@pytest.mark.parametrize(("adjoint", "jacobian"), adjoint_cases())
def test_kvaerno5_pid_heat_with_each_adjoint(adjoint, jacobian):
    """Adaptive steps: the backward solve of BacksolveAdjoint diverges at constant ones."""
    controller = diffrax.PIDController(rtol=1e-3, atol=1e-5)
    check(solve(heat, kvaerno5(), adjoint, controller), X, jacobian)


@pytest.mark.slow
@pytest.mark.parametrize(("adjoint", "jacobian"), adjoint_cases())
def test_tsit5_pid_with_each_adjoint(adjoint, jacobian):
    controller = diffrax.PIDController(rtol=1e-3, atol=1e-5)
    check(solve(heat, diffrax.Tsit5(), adjoint, controller), X, jacobian)


@pytest.mark.slow
@pytest.mark.parametrize(("adjoint", "jacobian"), adjoint_cases())
def test_kvaerno5_pid_decoupled_with_each_adjoint(adjoint, jacobian):
    controller = diffrax.PIDController(rtol=1e-3, atol=1e-5)
    check(solve(decoupled, kvaerno5(), adjoint, controller), X, jacobian)


def test_tsit5_backsolve_fixed_steps_is_exact():
    """BacksolveAdjoint (custom_vjp with integer results) at one explicit step: banded."""
    f = solve(heat, diffrax.Tsit5(), diffrax.BacksolveAdjoint(), t1=0.02)
    detected = check(f, jnp.linspace(0.5, 1.0, 14), jax.jacrev, exact=True)
    i, j = np.indices(detected.shape)
    np.testing.assert_array_equal(detected, np.abs(i - j) <= 6)  # six stages


@pytest.mark.slow
def test_steady_state_with_implicit_adjoint():
    """ImplicitAdjoint differentiates a steady state (an event ends the solve)."""
    def f(y):
        def rhs(t, z, args):
            return args - z ** 3 - 0.1 * jnp.roll(z, 1)

        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(rhs), diffrax.Tsit5(), 0.0, jnp.inf, 0.1, jnp.ones_like(y),
            args=y, max_steps=64, adjoint=diffrax.ImplicitAdjoint(),
            event=diffrax.Event(diffrax.steady_state_event()),
            stepsize_controller=diffrax.PIDController(rtol=1e-4, atol=1e-6))
        return solution.ys[-1]

    check(f, X, jax.jacrev)
