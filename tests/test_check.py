import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

import asdex


def f(x):
    return x[1:] * x[:-1] + jnp.sin(x[:-1])


@pytest.mark.parametrize("method", ["matvec", "dense"])
def test_correct_patterns_pass(method):
    x = jnp.linspace(0.1, 1.0, 6)
    asdex.check_jacobian_correctness(f, x, method=method)
    asdex.check_hessian_correctness(lambda x: jnp.sum(f(x) ** 2), x, method=method)


@pytest.mark.parametrize("method", ["matvec", "dense"])
def test_missing_nonzero_raises(method):
    x = jnp.linspace(0.1, 1.0, 6)
    coloring = asdex.jacobian_coloring(f, x)
    rows, cols = coloring.sparsity.rows[1:], coloring.sparsity.cols[1:]
    broken = asdex.jacobian_coloring_from_sparsity(
        dataclasses.replace(coloring.sparsity, rows=rows, cols=cols), mode="fwd"
    )
    with pytest.raises(asdex.VerificationError, match="misses nonzeros"):
        asdex.check_jacobian_correctness(f, x, coloring=broken, method=method)

    def g(x):
        return jnp.sum(x**2 * jnp.roll(x, 1))

    hess = asdex.hessian_coloring(g, x)
    diagonal = asdex.SparsityPattern.from_dense(np.eye(6))
    broken = asdex.hessian_coloring_from_sparsity(
        dataclasses.replace(hess.sparsity, rows=diagonal.rows, cols=diagonal.cols)
    )
    with pytest.raises(asdex.VerificationError):
        asdex.check_hessian_correctness(g, x, coloring=broken, method=method)


def test_verification_error_is_an_assertion():
    assert issubclass(asdex.VerificationError, AssertionError)


@pytest.mark.parametrize("method", ["matvec", "dense"])
def test_coloring_as_trailing_positional_argument(method):
    x = jnp.linspace(0.1, 1.0, 6)
    coloring = asdex.jacobian_coloring(f, x)
    asdex.check_jacobian_correctness(f, x, coloring, method=method)
    asdex.check_jacobian_correctness(f, x, coloring, num_probes=2, rtol=1e-4, atol=1e-6,
                                     seed=3)
    broken = asdex.jacobian_coloring_from_sparsity(
        dataclasses.replace(coloring.sparsity, rows=coloring.sparsity.rows[1:],
                            cols=coloring.sparsity.cols[1:]), mode="fwd"
    )
    with pytest.raises(asdex.VerificationError):
        asdex.check_jacobian_correctness(f, x, broken, method=method)

    def g(x):
        return jnp.sum(x**2 * jnp.roll(x, 1))

    asdex.check_hessian_correctness(g, x, asdex.hessian_coloring(g, x), method=method)
    diagonal = asdex.hessian_coloring_from_sparsity(np.eye(6))
    with pytest.raises(asdex.VerificationError):
        asdex.check_hessian_correctness(g, x, diagonal, method=method)


def test_coloring_with_several_arguments():
    def h(u, v):
        return u[1:] * v[:-1]

    u, v = jnp.arange(1.0, 5.0), jnp.arange(2.0, 6.0)
    coloring = asdex.jacobian_coloring(h, u, v, argnums=(0, 1))
    asdex.check_jacobian_correctness(h, u, v, coloring)
    asdex.check_jacobian_correctness(h, u, v, argnums=(0, 1))


def test_coloring_given_twice_or_without_arguments():
    x = jnp.ones(3)
    coloring = asdex.jacobian_coloring(jnp.sin, x)
    with pytest.raises(TypeError, match="pass it once"):
        asdex.check_jacobian_correctness(jnp.sin, x, coloring, coloring=coloring)
    with pytest.raises(TypeError, match="arguments of f"):
        asdex.check_hessian_correctness(jnp.sum, coloring)
