"""Indexing programs: detected patterns against `jax.jacfwd` and exact expectations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from asdex.detection import jacobian_sparsity

N = 8


def detected(f, x):
    return np.asarray(jacobian_sparsity(f, x).todense(), bool)


def numeric(f, x, points=3):
    """Union of the nonzeros of the Jacobian at a few random points."""
    points = jax.random.normal(jax.random.key(0), (points, *x.shape), x.dtype)
    jacs = np.asarray(jax.jit(jax.vmap(jax.jacfwd(f)))(points)).reshape(len(points), -1, x.size)
    return (jacs != 0).any(axis=0)


def check(f, x, expected=None, exact=True):
    """Detected ⊇ numeric; == numeric if `exact`; == `expected` if given."""
    got, num = detected(f, x), numeric(f, x)
    assert got.shape == num.shape
    missed = num & ~got
    assert not missed.any(), f"missed nonzeros at {np.argwhere(missed)[:5].tolist()}"
    if exact:
        np.testing.assert_array_equal(got, num)
    if expected is not None:
        np.testing.assert_array_equal(got, np.asarray(expected, bool))
    return got


def rows_of(sources, n=N):
    """Expected pattern whose row `i` holds the columns `sources[i]`."""
    dense = np.zeros((len(sources), n), bool)
    for i, cols in enumerate(sources):
        dense[i, list(cols)] = True
    return dense


x = jnp.arange(1.0, N + 1)
X = jnp.arange(1.0, 21.0).reshape(4, 5)


# --- gather ------------------------------------------------------------------------------


def test_constant_fancy_index_negative_and_repeated():
    idx = jnp.array([0, -1, 3, 3, -8])
    check(lambda x: x[idx], x, rows_of([[0], [7], [3], [3], [0]]))


@pytest.mark.parametrize("index", [slice(2, 5), slice(None, None, 2), slice(None, None, -3)])
def test_slices(index):
    check(lambda x: x[index], x, np.eye(N, dtype=bool)[index])


def test_take_with_modes():
    idx = jnp.array([-1, 2, 9])
    check(lambda x: jnp.take(x, idx, mode="clip"), x, rows_of([[0], [2], [7]]))
    check(lambda x: jnp.take(x, idx, mode="fill"), x, rows_of([[7], [2], []]))  # -1 wraps
    check(lambda x: jnp.take(x, idx, mode="wrap"), x, rows_of([[7], [2], [1]]))


def test_arange_stencil_is_exact():
    i = jnp.arange(N)
    f = lambda x: x[(i + 1) % N] - 2 * x + x[(i - 1) % N]  # noqa: E731
    check(f, x, rows_of([[(k - 1) % N, k, (k + 1) % N] for k in range(N)]))


def test_2d_fancy_indexing_and_newaxis():
    rows, cols = jnp.array([0, 3, 3]), jnp.array([4, 0, -1])
    check(lambda X: X[rows, cols], X, rows_of([[4], [15], [19]], 20))
    check(lambda X: X[:, None, 1:3], X)
    check(lambda x: x[:, None] * x[None, :], x)


def test_diagonal_and_triu():
    check(lambda X: jnp.diagonal(X), X, rows_of([[0], [6], [12], [18]], 20))
    check(lambda X: jnp.diagonal(X, offset=1), X, rows_of([[1], [7], [13], [19]], 20))
    check(lambda X: jnp.triu(X), X, np.diag(np.triu(np.ones((4, 5))).reshape(-1)))


def test_where_with_constant_mask():
    mask = jnp.arange(N) % 3 == 0
    f = lambda z: jnp.where(mask, z[:N], z[N:])  # noqa: E731
    check(f, jnp.arange(2.0 * N), rows_of([[k if k % 3 == 0 else N + k] for k in range(N)],
                                          2 * N))


def test_take_along_axis_with_argmax_is_row_local():
    f = lambda X: jnp.take_along_axis(X, jnp.argmax(X, axis=1, keepdims=True), axis=1)  # noqa: E731
    got = check(f, X, exact=False)
    np.testing.assert_array_equal(got, np.kron(np.eye(4, dtype=bool), np.ones((1, 5), bool)))


def test_index_with_argmax_depends_on_everything():
    got = check(lambda x: x[jnp.argmax(x)], x, exact=False)
    assert got.all()


def test_index_with_bounded_arithmetic():
    # argmax // 4 is in [0, 1]: the result depends on x[0] and x[1] only, through the index
    got = check(lambda x: x[lax.div(jnp.argmax(x), 4)] * 1.0, x, exact=False)
    np.testing.assert_array_equal(got, rows_of([[0, 1]]))


def test_indices_read_from_constants_with_bounded_positions():
    perm = jnp.array([5, 6, 7, 0, 1, 2, 3, 4])
    got = check(lambda x: x[perm[jnp.argmax(x[:3])]] * 1.0, x, exact=False)
    np.testing.assert_array_equal(got, rows_of([[5, 6, 7]]))
    table = jnp.array([[4, 3, 2, 1, 0]] * 4)

    def f(X):
        cols = jnp.take_along_axis(table, jnp.argmax(X[:, :2], axis=1, keepdims=True), axis=1)
        return jnp.take_along_axis(X, cols, axis=1)

    got = check(f, X, exact=False)
    np.testing.assert_array_equal(got, rows_of([[5 * r + 3, 5 * r + 4] for r in range(4)], 20))


def test_vmapped_gathers_use_batching_dims():
    cols = jnp.array([4, 0, 2, 2])
    check(lambda X: jax.vmap(lambda r, i: r[i])(X, cols), X,
          rows_of([[4], [5], [12], [17]], 20))
    f = lambda X: jax.vmap(lambda r: r[jnp.argmax(r[:3])])(X)  # noqa: E731
    got = check(f, X, exact=False)
    np.testing.assert_array_equal(got, np.kron(np.eye(4, dtype=bool), [[1, 1, 1, 0, 0]]))


# --- dynamic_slice -----------------------------------------------------------------------


def test_dynamic_slice_known_start():
    check(lambda x: lax.dynamic_slice(x, (2,), (3,)), x, rows_of([[2], [3], [4]]))
    check(lambda x: lax.dynamic_slice(x, (7,), (3,)), x, rows_of([[5], [6], [7]]))  # clamped


def test_dynamic_slice_start_from_argmax_and_clamp():
    got = check(lambda x: lax.dynamic_slice(x, (jnp.argmax(x),), (3,)), x, exact=False)
    # start in [0, 7], clamped to [0, 5]: element k reads x[k .. k + 5]
    np.testing.assert_array_equal(got, rows_of([range(k, k + 6) for k in range(3)]))
    start = lambda x: jnp.clip(jnp.argmax(x), 2, 3)  # noqa: E731
    got = check(lambda x: lax.dynamic_slice(x, (start(x),), (3,)) * 1.0, x, exact=False)
    np.testing.assert_array_equal(got, rows_of([[k + 2, k + 3] for k in range(3)]))


def test_dynamic_slice_2d_with_one_traced_start():
    f = lambda X: lax.dynamic_slice(X, (1, lax.div(jnp.argmax(X[0]), 3)), (2, 3))  # noqa: E731
    got = check(f, X, exact=False)
    expected = [[5 * (1 + r) + c, 5 * (1 + r) + c + 1] for r in range(2) for c in range(3)]
    np.testing.assert_array_equal(got, rows_of(expected, 20))


def test_roll_with_traced_shift_is_dense():
    got = check(lambda x: jnp.roll(x, jnp.argmax(x)), x, exact=False)
    assert got.all()


# --- dynamic_update_slice ----------------------------------------------------------------


def test_dynamic_update_slice_known_start():
    f = lambda z: lax.dynamic_update_slice(z[:N], z[N:N + 3], (6,))  # noqa: E731
    check(f, jnp.arange(11.0), rows_of([[0], [1], [2], [3], [4], [8], [9], [10]], 11))


def test_dynamic_update_slice_bounded_start_keeps_only_uncovered_operand():
    start = lambda z: lax.div(jnp.argmax(z[:N]), 4)  # in [0, 1]  # noqa: E731
    f = lambda z: lax.dynamic_update_slice(z[:N], z[N:N + 3], (start(z),))  # noqa: E731
    got = check(f, jnp.arange(11.0), exact=False)
    # windows [0, 2] or [1, 3]: positions 1 and 2 are always overwritten
    expected = [[0, 8], [8, 9], [9, 10], [3, 10], [4], [5], [6], [7]]
    np.testing.assert_array_equal(got, rows_of(expected, 11))


# --- scatter -----------------------------------------------------------------------------

IDX = jnp.array([1, 1, 4, -1])


def z_split(z):
    return z[:N], z[N:]


Z = jnp.arange(1.0, N + 5)


def test_scatter_set_with_repeated_indices():
    f = lambda z: (lambda x, y: x.at[IDX].set(y))(*z_split(z))  # noqa: E731
    got = check(f, Z, exact=False)  # the winner of a repeated index is up to the backend
    expected = [[0], [8, 9], [2], [3], [10], [5], [6], [11]]
    np.testing.assert_array_equal(got, rows_of(expected, N + 4))


@pytest.mark.parametrize("method", ["add", "subtract", "min", "max"])
def test_scatter_combining_with_repeated_indices(method):
    f = lambda z: (lambda x, y: getattr(x.at[IDX], method)(y))(*z_split(z))  # noqa: E731
    expected = [[0], [1, 8, 9], [2], [3], [4, 10], [5], [6], [7, 11]]
    got = check(f, Z, exact=method in ("add", "subtract"))
    np.testing.assert_array_equal(got, rows_of(expected, N + 4))


def test_scatter_mul_with_constant_updates():
    check(lambda x: x.at[IDX].mul(jnp.array([2.0, 3.0, 0.5, 4.0])), x, np.eye(N, dtype=bool))


def test_scatter_drop_mode_out_of_bounds():
    f = lambda z: (lambda x, y: x.at[jnp.array([2, 9, -9, 5])].set(y, mode="drop"))(*z_split(z))  # noqa: E731
    # -9 is normalized to -1 (dropped); 9 is out of bounds (dropped)
    expected = [[0], [1], [8], [3], [4], [11], [6], [7]]
    check(f, Z, rows_of(expected, N + 4))


def test_scatter_with_argmax_index():
    f = lambda z: (lambda x, y: x.at[lax.div(jnp.argmax(x), 4)].set(y[0]))(*z_split(z))  # noqa: E731
    got = check(f, Z, exact=False)
    expected = [[0, 8], [1, 8], [2], [3], [4], [5], [6], [7]]
    np.testing.assert_array_equal(got, rows_of(expected, N + 4))


def test_vmapped_scatter_uses_batching_dims():
    idx = jnp.array([[0, 0], [4, 1], [2, 2], [3, 0]])

    def f(z):
        X, U = z[:20].reshape(4, 5), z[20:].reshape(4, 2)
        return jax.vmap(lambda r, i, u: r.at[i].add(u))(X, idx, U)

    got = check(f, jnp.arange(28.0))
    expected = [[5 * r + c] + [20 + 2 * r + k for k in range(2) if idx[r, k] == c]
                for r in range(4) for c in range(5)]
    np.testing.assert_array_equal(got, rows_of(expected, 28))


def test_scatter_apply_keeps_the_operand():
    dn = lax.ScatterDimensionNumbers((), (0,), (0,))
    f = lambda x: lax.scatter_apply(x, jnp.array([[1], [3]]), jnp.sin, dn, update_shape=(2,))  # noqa: E731
    got = np.asarray(jacobian_sparsity(f, x).todense(), bool)  # JAX has no JVP for it
    np.testing.assert_array_equal(got, np.eye(N, dtype=bool))


# --- scale -------------------------------------------------------------------------------


def test_large_known_and_bounded_indices_are_fast():
    n = 10**6
    perm = jnp.asarray(np.random.default_rng(0).permutation(n))
    pattern = jacobian_sparsity(lambda x: x[perm], jnp.zeros(n))
    assert pattern.nnz == n
    f = lambda X: jnp.take_along_axis(X, jnp.argmax(X, axis=1, keepdims=True), axis=1)  # noqa: E731
    pattern = jacobian_sparsity(f, jnp.zeros((1000, 1000)))
    assert pattern.nnz == 10**6
