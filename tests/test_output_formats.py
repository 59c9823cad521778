"""Host output formats: NumPy and SciPy results equal the device ones; traced, a clear error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse

import asdex

HOST = ["numpy_dense", "scipy_coo", "scipy_csr", "scipy_csc"]
SCIPY_TYPES = {"scipy_coo": scipy.sparse.coo_array, "scipy_csr": scipy.sparse.csr_array,
               "scipy_csc": scipy.sparse.csc_array}


def f(u, v):
    return {"a": u[1:] * v[:-1], "b": jnp.outer(jnp.sin(u[:2]), v[:3])}


U, V = jnp.linspace(0.5, 1.5, 5), jnp.linspace(1.0, 2.0, 5)


@pytest.mark.parametrize("output_format", HOST)
def test_jacobian_host_formats(output_format):
    jac = asdex.jacobian(f, U, V, argnums=(0, 1), output_format=output_format)(U, V)
    expected = jax.jacrev(f, (0, 1))(U, V)
    for key in ("a", "b"):
        for i in range(2):
            block, reference = jac[key][i], np.asarray(expected[key][i])
            if output_format == "numpy_dense":
                assert isinstance(block, np.ndarray)
                dense = block
            else:
                assert isinstance(block, SCIPY_TYPES[output_format])
                out_size = reference.size // U.size
                assert block.shape == (out_size, U.size)
                dense = block.toarray().reshape(reference.shape)
            np.testing.assert_allclose(dense, reference, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("output_format", HOST)
def test_hessian_and_decompress_host_formats(output_format):
    def g(x):
        return jnp.sum(x[1:] ** 2 * x[:-1])

    x = jnp.linspace(0.5, 1.5, 6)
    value, hess = asdex.value_and_hessian(g, x, output_format=output_format)(x)
    dense = hess if output_format == "numpy_dense" else hess.toarray()
    np.testing.assert_allclose(dense, jax.hessian(g)(x), rtol=1e-5)
    np.testing.assert_allclose(value, g(x), rtol=1e-6)
    fn = asdex.compressed_hessian(g, x)
    matrix = asdex.decompress(fn(x), fn.coloring, output_format)
    dense = matrix if output_format == "numpy_dense" else matrix.toarray()
    np.testing.assert_allclose(dense, jax.hessian(g)(x), rtol=1e-5)


@pytest.mark.parametrize("output_format", HOST)
def test_host_formats_refuse_tracing(output_format):
    x = jnp.ones(4)
    jac_fn = asdex.jacobian(jnp.sin, x, output_format=output_format)
    with pytest.raises(TypeError, match=r"host.*'bcoo' or 'dense'"):
        jax.jit(jac_fn)(x)
    coloring = asdex.jacobian_coloring(jnp.sin, x)
    B = asdex.compressed_jacobian_from_coloring(jnp.sin, coloring)(x)
    with pytest.raises(TypeError, match="cannot be done inside a JAX transformation"):
        jax.jit(lambda B: asdex.decompress(B, coloring, output_format))(B)
