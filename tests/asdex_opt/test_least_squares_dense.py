"""Gauss-Newton and Levenberg-Marquardt fall back to dense J and JᵀJ when coloring cannot help."""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest

import asdex
from asdex_opt._problem import DenseJacobianEvaluator, JacobianEvaluator
from asdex_opt.lineax import SparseLU
from asdex_opt.optimistix import SparseGaussNewton, SparseLevenbergMarquardt

pytestmark = pytest.mark.usefixtures("x64")


def mlp_fit():
    """A small MLP fit: every residual depends on every parameter (a dense Jacobian)."""
    mlp = eqx.nn.MLP(1, 1, 4, 2, key=jax.random.key(0), dtype=jnp.float64)
    params, static = eqx.partition(mlp, eqx.is_inexact_array)
    x = jnp.linspace(-1.0, 1.0, 40)[:, None]  # 40 residuals, 33 parameters

    def residuals(params, args):
        return (jax.vmap(eqx.combine(params, static))(x) - jnp.sin(3 * x))[:, 0]

    return residuals, params


def dense_square(y, args):
    """Square and dense: ``A y + y³/10 = b``."""
    del args
    a = jnp.eye(y.size) * 4 + 0.5
    return a @ y + 0.1 * y**3 - jnp.arange(1.0, y.size + 1)


def test_dense_evaluator_gives_jax_jacobian_and_normal_matrix():
    residuals, params = mlp_fit()
    flat, unravel = jax.flatten_util.ravel_pytree(params)
    flat_fn = lambda y, dynamic: (residuals(unravel(y), None), None)  # noqa: E731
    evaluator = DenseJacobianEvaluator(flat_fn, (40, 33), normal=True)
    evaluation = jax.jit(lambda y: evaluator(y, None))(flat)
    expected = jax.jacfwd(lambda y: residuals(unravel(y), None))(flat)
    np.testing.assert_allclose(evaluation.residual, residuals(params, None), rtol=1e-12)
    np.testing.assert_allclose(evaluation.jac.as_matrix(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(evaluation.normal.as_matrix(), expected.T @ expected, rtol=1e-10)


def _state(solver, fn, y):
    def init():
        closed = eqx.filter_closure_convert(lambda y, a: (fn(y, a), None), y, None)
        f_struct = jax.eval_shape(fn, y, None)
        return solver.init(closed, y, None, {}, f_struct, None, frozenset())

    return eqx.filter_eval_shape(init)


@pytest.mark.slow
def test_levenberg_marquardt_on_an_mlp_is_optimistix_levenberg_marquardt():
    residuals, params = mlp_fit()
    with pytest.warns(asdex.DenseColoringWarning, match="dense Jacobian"):
        ours = optx.least_squares(
            residuals, SparseLevenbergMarquardt(1e-8, 1e-8), params, max_steps=100, throw=False
        )
    theirs = optx.least_squares(
        residuals, optx.LevenbergMarquardt(1e-8, 1e-8), params, max_steps=100, throw=False
    )
    assert ours.result == theirs.result
    np.testing.assert_allclose(
        jax.flatten_util.ravel_pytree(ours.value)[0],
        jax.flatten_util.ravel_pytree(theirs.value)[0],
        rtol=1e-6, atol=1e-8,
    )
    loss = lambda p: 0.5 * jnp.sum(residuals(p, None) ** 2)  # noqa: E731
    assert float(loss(ours.value)) < 0.1 * float(loss(params))


@pytest.mark.filterwarnings("ignore::asdex.DenseColoringWarning")
@pytest.mark.parametrize("solver", [SparseLevenbergMarquardt, SparseGaussNewton])
def test_the_dense_path_forms_no_sparse_normal_product(solver):
    residuals, params = mlp_fit()
    state = _state(solver(1e-8, 1e-8), residuals, params)
    assert isinstance(state.jacobian_fn, DenseJacobianEvaluator)
    assert isinstance(state.f_info.jac, lx.MatrixLinearOperator)
    assert isinstance(state.f_info.normal, lx.MatrixLinearOperator)
    assert state.f_info.normal.matrix.shape == (33, 33)
    # A linear solver given by the user keeps the sparse path.
    sparse = _state(solver(1e-8, 1e-8, linear_solver=SparseLU()), residuals, params)
    assert isinstance(sparse.jacobian_fn, JacobianEvaluator)


@pytest.mark.slow
def test_gauss_newton_on_a_dense_square_system_is_newton():
    y0 = jnp.zeros(6)
    with pytest.warns(asdex.DenseColoringWarning):
        ours = optx.least_squares(dense_square, SparseGaussNewton(1e-10, 1e-10), y0)
    state = _state(SparseGaussNewton(1e-10, 1e-10), dense_square, y0)
    assert state.f_info.normal is None  # square: J p = r, no JᵀJ
    theirs = optx.least_squares(dense_square, optx.GaussNewton(1e-10, 1e-10), y0)
    np.testing.assert_allclose(ours.value, theirs.value, rtol=1e-10)
    np.testing.assert_allclose(dense_square(ours.value, None), 0.0, atol=1e-9)
