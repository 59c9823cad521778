import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from asdex_opt.lineax import (
    SparseLU,
    SparseMatrixLinearOperator,
    sparse_hessian_operator,
    sparse_jacobian_operator,
)

ATOL = 1e-5


def residual(x, args):
    scale, shift = args
    return scale * x**2 + jnp.roll(x, 1) - shift * jnp.concatenate([x[1:], x[:1]])


def energy(x, args):
    return jnp.sum(x**4) + args * jnp.sum((x[1:] - x[:-1]) ** 2)


def test_sparse_jacobian_operator_matches_jacfwd():
    x = jnp.linspace(-1.0, 1.0, 7)
    args = (2.0, 0.5)
    op = sparse_jacobian_operator(residual, x, args)
    assert isinstance(op, SparseMatrixLinearOperator)
    expected = jax.jacfwd(residual)(x, args)
    np.testing.assert_allclose(op.as_matrix(), expected, atol=ATOL)
    assert op.matrix.nse < expected.size
    b = jnp.ones(7)
    np.testing.assert_allclose(
        lx.linear_solve(op, b, SparseLU()).value, jnp.linalg.solve(expected, b), rtol=1e-4
    )


def test_sparse_jacobian_operator_without_args_and_tags():
    x = jnp.arange(1.0, 5.0)
    op = sparse_jacobian_operator(lambda x, _: jnp.sin(x), x, tags=lx.diagonal_tag)
    np.testing.assert_allclose(lx.diagonal(op), jnp.cos(x), atol=ATOL)
    assert lx.is_diagonal(op)


def test_sparse_hessian_operator_matches_hessian():
    x = jnp.linspace(-1.0, 2.0, 6)
    op = sparse_hessian_operator(energy, x, 3.0, tags=lx.positive_semidefinite_tag)
    np.testing.assert_allclose(op.as_matrix(), jax.hessian(energy)(x, 3.0), atol=1e-4)
    assert lx.is_symmetric(op) and lx.is_positive_semidefinite(op)
    assert op.T is op


def test_bad_inputs():
    with pytest.raises(ValueError, match="1-D"):
        sparse_jacobian_operator(lambda x, _: x, jnp.ones((2, 2)))
    with pytest.raises(ValueError, match="1-D array"):
        sparse_jacobian_operator(lambda x, _: jnp.sum(x), jnp.ones(3))
    with pytest.raises(ValueError, match="scalar"):
        sparse_hessian_operator(lambda x, _: x, jnp.ones(3))
