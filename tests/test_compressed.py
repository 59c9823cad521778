"""The compressed API: B row by row against JAX's products, and decompress(B) against JAX."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import asdex


def residual(x):
    return jnp.concatenate([x[1:] * x[:-1] - jnp.sin(x[:-1]), x[:1] ** 3, x[-2:].sum()[None]])


def objective(x):
    return jnp.sum((x[1:] - x[:-1] ** 2) ** 2) + jnp.sum(jnp.cos(x) * x[::-1])


def _seeds(colors, num_colors, first=0):
    return np.asarray(colors)[None, :] == np.arange(first, first + num_colors)[:, None]


X = jnp.linspace(0.3, 1.7, 9)


def _jacobian_coloring(kind):
    pattern = asdex.jacobian_sparsity(residual, X)
    if kind == "bidirectional":
        return asdex.jacobian_coloring_from_sparsity(pattern, method="bidirectional")
    return asdex.jacobian_coloring_from_sparsity(pattern, mode=kind)


@pytest.mark.parametrize("kind", ["fwd", "rev"])
def test_compressed_jacobian_rows_are_products(kind):
    coloring = _jacobian_coloring(kind)
    B = jax.jit(asdex.compressed_jacobian_from_coloring(residual, coloring))(X)
    J = jax.jacfwd(residual)(X)
    seeds = _seeds(coloring.colors, coloring.num_colors).astype(J.dtype)
    expected = seeds @ J.T if kind == "fwd" else seeds @ J
    assert B.shape == (coloring.num_colors, J.shape[0] if kind == "fwd" else J.shape[1])
    np.testing.assert_allclose(B, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["fwd", "rev", "bidirectional"])
@pytest.mark.parametrize("output_format", ["bcoo", "dense"])
def test_decompress_jacobian(kind, output_format):
    coloring = _jacobian_coloring(kind)
    value, B = asdex.value_and_compressed_jacobian_from_coloring(residual, coloring)(X)
    np.testing.assert_allclose(value, residual(X), rtol=1e-6)
    J = jax.jacfwd(residual)(X)
    matrix = jax.jit(asdex.decompress, static_argnums=2)(B, coloring, output_format)
    dense = matrix.todense() if output_format == "bcoo" else matrix
    np.testing.assert_allclose(dense, J, rtol=1e-5, atol=1e-6)
    data = jax.jit(asdex.decompress_data)(B, coloring)
    rows, cols = coloring.sparsity.rows, coloring.sparsity.cols
    np.testing.assert_allclose(data, J[rows, cols], rtol=1e-5, atol=1e-6)


def test_bidirectional_b_is_a_pair_of_jvps_and_vjps():
    coloring = _jacobian_coloring("bidirectional")
    B_fwd, B_rev = asdex.compressed_jacobian_from_coloring(residual, coloring)(X)
    m = coloring.sparsity.m
    col_colors, row_colors = coloring.colors[m:], coloring.colors[:m]
    num_col = int(col_colors.max(initial=-1)) + 1
    J = np.asarray(jax.jacfwd(residual)(X))
    np.testing.assert_allclose(B_fwd, _seeds(col_colors, num_col) @ J.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        B_rev, _seeds(row_colors, coloring.num_colors - num_col, num_col) @ J,
        rtol=1e-5, atol=1e-6,
    )


@pytest.mark.parametrize("method", ["star", "acyclic"])
@pytest.mark.parametrize("mode", ["fwd_over_rev", "rev_over_fwd", "rev_over_rev"])
def test_compressed_hessian(method, mode):
    pattern = asdex.hessian_sparsity(objective, X)
    coloring = asdex.hessian_coloring_from_sparsity(pattern, mode=mode, method=method)
    H = jax.hessian(objective)(X)
    value, B = jax.jit(asdex.value_and_compressed_hessian_from_coloring(objective, coloring))(X)
    np.testing.assert_allclose(value, objective(X), rtol=1e-6)
    seeds = _seeds(coloring.colors, coloring.num_colors).astype(H.dtype)
    np.testing.assert_allclose(B, seeds @ H, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(asdex.decompress(B, coloring, "dense"), H, rtol=1e-4, atol=1e-5)
    data = asdex.decompress_data(B, coloring)
    np.testing.assert_allclose(data, H[coloring.sparsity.rows, coloring.sparsity.cols],
                               rtol=1e-4, atol=1e-5)


def test_detect_and_compress_in_one_call():
    fn = asdex.compressed_jacobian(residual, X, mode="rev")
    np.testing.assert_allclose(asdex.decompress(fn(X), fn.coloring).todense(),
                               jax.jacfwd(residual)(X), rtol=1e-5, atol=1e-6)
    fn = asdex.value_and_compressed_jacobian(lambda x: (residual(x), x.sum()), X, has_aux=True)
    (value, aux), B = fn(X)
    np.testing.assert_allclose(aux, X.sum(), rtol=1e-6)
    np.testing.assert_allclose(asdex.decompress(B, fn.coloring, "dense"),
                               jax.jacfwd(residual)(X), rtol=1e-5, atol=1e-6)
    fn = asdex.compressed_hessian(objective, X)
    np.testing.assert_allclose(asdex.decompress(fn(X), fn.coloring, "dense"),
                               jax.hessian(objective)(X), rtol=1e-4, atol=1e-5)
    fn = asdex.value_and_compressed_hessian(objective, X)
    value, B = fn(X)
    np.testing.assert_allclose(value, objective(X), rtol=1e-6)
    assert B.shape == (fn.coloring.num_colors, X.size)


def test_multi_argument_blocks_flatten_to_one_matrix():
    def f(u, v):
        return {"a": u[1:] * v[:-1], "b": (u * v).reshape(2, 3)}

    u, v = jnp.arange(1.0, 7.0), jnp.arange(2.0, 8.0)
    fn = asdex.compressed_jacobian(f, u, v, argnums=(0, 1))
    flat = lambda w: jax.flatten_util.ravel_pytree(f(w[:6], w[6:]))[0]  # noqa: E731
    np.testing.assert_allclose(asdex.decompress(fn(u, v), fn.coloring, "dense"),
                               jax.jacfwd(flat)(jnp.concatenate([u, v])), rtol=1e-6)


def test_decompress_errors():
    coloring = _jacobian_coloring("fwd")
    B = asdex.compressed_jacobian_from_coloring(residual, coloring)(X)
    with pytest.raises(ValueError, match=r"shape \(num_colors, 10\)"):
        asdex.decompress(B.T, coloring)
    with pytest.raises(ValueError, match="output_format"):
        asdex.decompress(B, coloring, "csr")
    with pytest.raises(TypeError, match="ColoredPattern"):
        asdex.decompress(B, coloring.sparsity)
    with pytest.raises(TypeError, match=r"pair \(B_fwd, B_rev\)"):
        asdex.decompress(B, _jacobian_coloring("bidirectional"))
    hessian = asdex.hessian_coloring(objective, X)
    with pytest.raises(ValueError, match="Jacobian coloring"):
        asdex.compressed_jacobian_from_coloring(residual, hessian)
    with pytest.raises(ValueError, match="Hessian coloring"):
        asdex.compressed_hessian_from_coloring(objective, coloring)
