"""Linear algebra and FFT: exact structure where known, dense within each batch element."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
import pytest
from jax._src.lax import linalg as lax_linalg

from asdex.detection import Curvature, jacobian_sparsity
from asdex.detection._registry import lookup

N = 4
BATCH = 2


def detected(f, *args, argnums=0):
    return jacobian_sparsity(f, *args, argnums=argnums).todense().astype(bool)


def flat_output(f):
    """`f` with its (pytree of) float outputs raveled into one vector."""

    def g(*args):
        leaves = jax.tree_util.tree_leaves(f(*args))
        return jnp.concatenate([jnp.ravel(x) for x in leaves
                                if jnp.issubdtype(x.dtype, jnp.inexact)])

    return g


def numeric(f, *args, argnums=0):
    argnums_t = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    jac = jax.jacfwd(f, argnums=argnums_t)(*args)
    m = int(np.prod(jnp.shape(f(*args))))
    return np.concatenate([np.asarray(j).reshape(m, -1) for j in jac], axis=1) != 0


def check(f, *args, argnums=0, exact=False):
    """Sound against `jax.jacfwd` at `args` (and equal to it when `exact`)."""
    d, n = detected(f, *args, argnums=argnums), numeric(f, *args, argnums=argnums)
    assert not (n & ~d).any(), f"missed {np.argwhere(n & ~d)[:5].tolist()}"
    if exact:
        assert not (d & ~n).any(), f"spurious {np.argwhere(d & ~n)[:5].tolist()}"
    return d


def assert_no_cross_batch(pattern, out_per_batch, in_per_batch, batches=BATCH):
    """Output rows of batch `b` only depend on input columns of batch `b`."""
    rows = np.arange(pattern.shape[0]) // out_per_batch
    cols = np.arange(pattern.shape[1]) // in_per_batch
    r, c = np.nonzero(pattern)
    assert np.array_equal(rows[r], cols[c])
    assert pattern.shape == (out_per_batch * batches, in_per_batch * batches)


def spd(key, *batch, n=N):
    m = jax.random.normal(key, (*batch, n, n))
    return m @ jnp.swapaxes(m, -1, -2) + n * jnp.eye(n)


def general(key, *batch, m=N, n=N):
    return jax.random.normal(key, (*batch, m, n)) + 3 * jnp.eye(m, n)


KEY = jax.random.key(0)


def test_cholesky_is_exact_and_batched():
    a = spd(KEY, BATCH)
    p = check(flat_output(lax_linalg.cholesky), a, exact=True)  # symmetrizes its input
    assert_no_cross_batch(p, N * N, N * N)
    p = check(lambda a: lax_linalg.cholesky(a, symmetrize_input=False).ravel(), a, exact=True)
    # L[i, j] (j <= i) depends on a[p, q], p <= i, q <= j; zero above the diagonal
    block = p[: N * N, : N * N].reshape(N, N, N, N)
    i, j, pp, q = np.indices((N,) * 4)
    np.testing.assert_array_equal(block, (j <= i) & (pp <= i) & (q <= j))


@pytest.mark.parametrize(
    ("left_side", "lower", "transpose_a", "unit_diagonal"),
    list(itertools.product([True, False], repeat=4)),
)
def test_triangular_solve_is_exact(left_side, lower, transpose_a, unit_diagonal):
    a = general(KEY, BATCH)
    b = jax.random.normal(jax.random.key(1), (BATCH, N, 3) if left_side else (BATCH, 3, N))

    def f(a, b):
        return lax_linalg.triangular_solve(a, b, left_side=left_side, lower=lower,
                                           transpose_a=transpose_a, unit_diagonal=unit_diagonal)

    p = check(f, a, b, argnums=(0, 1), exact=True)
    a_part, b_part = p[:, : a.size], p[:, a.size:]
    assert_no_cross_batch(a_part, 3 * N, N * N)
    assert_no_cross_batch(b_part, 3 * N, 3 * N)
    # the left-side solution's column j depends on column j of b only
    x_cols = np.arange(3 * N) % 3 if left_side else np.arange(3 * N) // N
    b_cols = np.arange(3 * N) % 3 if left_side else np.arange(3 * N) // N
    r, c = np.nonzero(b_part[: 3 * N, : 3 * N])
    if left_side:
        assert np.array_equal(x_cols[r], b_cols[c])
    else:  # a right-side solution's row i depends on row i of b only
        assert np.array_equal(r // N, c // N)


def test_tridiagonal_solve_is_exact():
    m, k = 5, 3
    dl = jax.random.normal(jax.random.key(1), (BATCH, m))
    d = 4 + jax.random.normal(jax.random.key(2), (BATCH, m))
    du = jax.random.normal(jax.random.key(3), (BATCH, m))
    b = jax.random.normal(jax.random.key(4), (BATCH, m, k))
    p = check(lax_linalg.tridiagonal_solve, dl, d, du, b, argnums=(0, 1, 2, 3), exact=True)
    b_part = p[:, 3 * BATCH * m:]
    assert_no_cross_batch(b_part, m * k, m * k)
    r, c = np.nonzero(b_part)
    assert np.array_equal(r % k, c % k)
    assert not p[:, 0].any() and not p[:, 2 * BATCH * m + m - 1].any()  # dl[0], du[-1]


@pytest.mark.parametrize("full_matrices", [False, True])
@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4)])
def test_qr_structure(full_matrices, shape):
    a = general(KEY, BATCH, m=shape[0], n=shape[1])
    m, n = shape

    def f(a):
        return lax_linalg.qr_p.bind(a, pivoting=False, full_matrices=full_matrices,
                                    use_magma=False)

    check(flat_output(f), a)
    q_shape, r_shape = (s.shape for s in jax.eval_shape(f, a))
    q = detected(lambda a: f(a)[0].ravel(), a)
    r = detected(lambda a: f(a)[1].ravel(), a)
    assert_no_cross_batch(q, q.shape[0] // BATCH, m * n)
    assert_no_cross_batch(r, r.shape[0] // BATCH, m * n)
    a_col = np.arange(m * n) % n
    # the first column of Q depends on the first column of a only
    q0 = q[: q.size // q.shape[1] // BATCH].reshape(q_shape[-2], q_shape[-1], -1)[:, 0, : m * n]
    assert (q0 == (a_col == 0)[None, :]).all()
    # R is upper triangular; R[0, 0] depends on the first column of a only
    r0 = r[: r.shape[0] // BATCH, : m * n].reshape(r_shape[-2], r_shape[-1], -1)
    i, j = np.indices(r_shape[-2:])
    assert not r0[i > j].any()
    assert (r0[0, 0] == (a_col == 0)).all()


DENSE = {
    "lu": lambda a: lax_linalg.lu(a),
    "eigh": lambda a: lax_linalg.eigh(a),
    "svd": lambda a: lax_linalg.svd(a, full_matrices=False),
    "qr_pivoting": lambda a: lax_linalg.qr(a, pivoting=True, full_matrices=False),
    "householder_product": lambda a: lax_linalg.householder_product(*lax_linalg.geqrf(a)),
    "hessenberg": lambda a: lax_linalg.hessenberg(a),
    "tridiagonal": lambda a: lax_linalg.tridiagonal(a),
    "schur": lambda a: lax_linalg.schur(a),
    "geqp3": lambda a: lax_linalg.geqp3(a, jnp.zeros(a.shape[:-1], jnp.int32)),
}


@pytest.mark.parametrize("name", sorted(DENSE))
def test_factorizations_dense_within_batch(name):
    a = spd(KEY, BATCH) + 0.3 * jax.random.normal(jax.random.key(5), (BATCH, N, N))
    if name == "eigh":
        a = spd(KEY, BATCH)
    outputs = jax.eval_shape(DENSE[name], a)
    for k, out in enumerate(jax.tree_util.tree_leaves(outputs)):
        if not jnp.issubdtype(out.dtype, jnp.inexact):
            continue
        leaf = lambda a, k=k: jnp.ravel(jax.tree_util.tree_leaves(DENSE[name](a))[k])  # noqa: E731
        p = detected(leaf, a)
        assert_no_cross_batch(p, out.size // BATCH, N * N)
        assert p.any()
    if name == "qr_pivoting":
        return  # JAX's own JVP of pivoted QR fails on batched inputs (jax 0.10.2)
    try:
        check(flat_output(DENSE[name]), a)
    except NotImplementedError as error:  # JAX has no JVP for some of them
        assert "Differentiation rule" in str(error)


def test_eig_and_ormqr_dense_within_batch():
    a = spd(KEY, BATCH) + 0.3 * jax.random.normal(jax.random.key(5), (BATCH, N, N))
    p = detected(lambda a: jnp.abs(lax_linalg.eig(a)[0]), a)
    assert_no_cross_batch(p, N, N * N)
    c = jnp.ones((BATCH, N, 2))
    f = lambda a, c: lax_linalg.ormqr(*lax_linalg.geqrf(a), c, left=True, transpose=False)  # noqa: E731
    assert_no_cross_batch(detected(f, a, c, argnums=1), 2 * N, 2 * N)


def test_lu_pivots_to_permutation_has_no_derivative():
    p = detected(lambda a: lax_linalg.lu_pivots_to_permutation(
        lax_linalg.lu(a)[1], N).astype(jnp.float32), general(KEY))
    assert not p.any()


@pytest.mark.parametrize(
    ("f", "kept"),
    [
        (lambda x: jnp.fft.fft(x), 12),
        (lambda x: jnp.fft.rfft2(x).real, 3),
        (lambda x: jnp.fft.irfft(x), 12),
        (lambda x: jnp.fft.ifftn(x, axes=(2,)).imag, 12),
        (lambda x: jnp.fft.fftn(x, axes=(1, 2)), 3),
    ],
)
def test_fft_dense_along_transformed_axes(f, kept):
    x = jax.random.normal(KEY, (3, 4, 6))
    p = check(lambda x: jnp.real(f(x)).ravel(), x)
    assert_no_cross_batch(p, p.shape[0] // kept, 24 * 3 // kept, batches=kept)


def test_fft_exact_pattern():
    x = jax.random.normal(KEY, (3, 8))
    p = check(lambda x: jnp.abs(jnp.fft.rfft(x)).ravel(), x, exact=True)
    np.testing.assert_array_equal(p, np.kron(np.eye(3), np.ones((5, 8))).astype(bool))


ENTRY_POINTS = {
    "solve": (lambda a, b: jnp.linalg.solve(a, b), 2),
    "inv": (lambda a, b: jnp.linalg.inv(a), 1),
    "det": (lambda a, b: jnp.linalg.det(a), 1),
    "slogdet": (lambda a, b: jnp.linalg.slogdet(a)[1], 1),
    "cho_solve": (lambda a, b: jsl.cho_solve(jsl.cho_factor(a), b), 2),
    "lu_solve": (lambda a, b: jsl.lu_solve(jsl.lu_factor(a), b), 2),
    "eigh": (lambda a, b: jnp.linalg.eigh(a)[0], 1),
    "svd": (lambda a, b: jnp.linalg.svd(a, compute_uv=False), 1),
    "qr": (lambda a, b: jnp.linalg.qr(a)[1], 1),
    "pinv": (lambda a, b: jnp.linalg.pinv(a), 1),
    "solve_triangular": (lambda a, b: jsl.solve_triangular(a, b, lower=True), 2),
    "expm": (lambda a, b: jsl.expm(0.1 * a), 1),
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_entry_points_sound_and_batched(name):
    f, nargs = ENTRY_POINTS[name]
    a = spd(KEY, BATCH)
    b = jax.random.normal(jax.random.key(7), (BATCH, N, 1))
    batched = jax.vmap(lambda a, b: jnp.ravel(f(a, b)))
    g = lambda a, b: batched(a, b).ravel()  # noqa: E731
    argnums = (0, 1) if nargs == 2 else 0
    p = check(g, a, b, argnums=argnums)
    out = g(a, b).size // BATCH
    assert_no_cross_batch(p[:, : a.size], out, N * N)
    if nargs == 2:
        assert_no_cross_batch(p[:, a.size:], out, N)


def test_curvatures():
    assert lookup("fft").curvature is Curvature.ZERO
    for name in ("cholesky", "triangular_solve", "lu", "qr", "eigh", "svd",
                 "tridiagonal_solve"):
        assert lookup(name).curvature is Curvature.NONLINEAR


def test_large_structured_maps_fall_back_to_dense_in_batch(monkeypatch):
    from asdex.detection._rules import linalg

    a = general(KEY, BATCH)
    b = jnp.ones((BATCH, N, 2))

    def f(a):
        return lax_linalg.triangular_solve(a, b, left_side=True, lower=True)

    def g(a):
        return lax_linalg.cholesky(a, symmetrize_input=False)

    exact_f, exact_g = detected(f, a), detected(g, a)
    monkeypatch.setattr(linalg, "MAX_STRUCTURED_ENTRIES", 10)
    coarse_f, coarse_g = detected(f, a), detected(g, a)
    assert not (exact_f & ~coarse_f).any() and not (exact_g & ~coarse_g).any()
    lower_a = np.tril(np.ones((N, N), bool)).ravel()
    block = np.kron(np.eye(BATCH, dtype=bool), np.outer(np.ones(2 * N, bool), lower_a))
    np.testing.assert_array_equal(coarse_f, block)
    lower_l = np.tril(np.ones((N, N), bool)).ravel()
    np.testing.assert_array_equal(
        coarse_g, np.kron(np.eye(BATCH, dtype=bool), np.outer(lower_l, np.ones(N * N, bool))))
