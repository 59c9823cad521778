import jax
import jax.numpy as jnp
import numpy as np
import pytest
from detection_helpers import assert_pattern, assert_sound
from jax import lax

from asdex.detection import jacobian_sparsity

REDUCTIONS = [
    lambda x: jnp.sum(x.reshape(3, 4), axis=0),
    lambda x: jnp.sum(x.reshape(3, 4), axis=1),
    lambda x: jnp.prod(x.reshape(4, 3), axis=0),
    lambda x: jnp.mean(x.reshape(3, 4), axis=1, keepdims=True),
    lambda x: jax.nn.logsumexp(x.reshape(3, 4), axis=1),
    lambda x: jax.nn.softmax(x.reshape(3, 4), axis=0).ravel(),
    lambda x: jnp.linalg.norm(x.reshape(3, 4), axis=1),
    lambda x: jnp.var(x.reshape(2, 6), axis=1),
    lambda x: jnp.cumsum(x.reshape(3, 4), axis=1).ravel(),
    lambda x: jnp.cumsum(x[::-1])[::-1],
    lambda x: jnp.cumprod(x.reshape(3, 4), axis=0).ravel(),
    lambda x: lax.cumlogsumexp(x.reshape(4, 3), axis=1).ravel(),
]


@pytest.mark.parametrize("fn", REDUCTIONS)
def test_reductions_are_exact(fn):
    assert_sound(fn, jnp.linspace(0.1, 1.2, 12) ** 1.5, exact=True)


def test_max_depends_on_its_whole_group():
    # Piecewise: at a point only the maximum shows; globally every element may be it.
    f = lambda x: jnp.max(x.reshape(2, 3, 2), axis=(0, 2))  # noqa: E731
    expected = np.zeros((3, 12))
    for i in range(12):
        expected[(i // 2) % 3, i] = 1
    assert_pattern(f, jnp.linspace(0.1, 1.2, 12), expected=expected)


def test_cumulative_max_is_lower_triangular_per_line():
    expected = np.kron(np.eye(3), np.tril(np.ones((4, 4))))
    assert_pattern(lambda x: lax.cummax(x.reshape(3, 4), axis=1).ravel(), jnp.ones(12),
                   expected=expected)
    rev = np.kron(np.triu(np.ones((3, 3))), np.eye(4))
    assert_pattern(lambda x: lax.cummin(x.reshape(3, 4), axis=0, reverse=True).ravel(),
                   jnp.ones(12), expected=rev)


def test_sort_and_top_k_stay_within_lines():
    x = jnp.linspace(0.1, 1.2, 12)
    assert_pattern(lambda x: jnp.sort(x.reshape(3, 4), axis=1).ravel(), x,
                   expected=np.kron(np.eye(3), np.ones((4, 4))))
    assert_pattern(lambda x: jnp.sort(x.reshape(3, 4), axis=0).ravel(), x,
                   expected=np.kron(np.ones((3, 3)), np.eye(4)))
    assert_pattern(lambda x: lax.top_k(x.reshape(3, 4), 2)[0].ravel(), x,
                   expected=np.kron(np.eye(3), np.ones((2, 4))))


def test_full_sum_depends_on_everything():
    assert_pattern(lambda x: jnp.sum(x**2), jnp.ones(4), expected=np.ones((1, 4)))


def test_argmax_and_bool_reductions_have_zero_derivative():
    x = jnp.ones((3, 4))
    for fn in [jnp.argmax, lambda x: jnp.argmin(x, axis=1) * 1.0, lambda x: jnp.any(x > 0) * 1.0,
               lambda x: jnp.all(x > 0, axis=0) * 1.0, lambda x: jnp.argsort(x, axis=1) * 1.0]:
        assert jacobian_sparsity(fn, x).nnz == 0


def test_multi_operand_sort_moves_values_with_keys():
    def f(x):
        keys, values = x[:4], x[4:]
        return lax.sort((keys, values), num_keys=1)[1]

    expected = np.concatenate([np.zeros((4, 4)), np.ones((4, 4))], axis=1)
    assert_pattern(f, jnp.linspace(0.1, 0.8, 8), expected=expected)


def test_top_k_indices_are_bounded():
    def f(x):
        _, idx = lax.top_k(x, 2)
        return jnp.take(x, idx)

    assert_sound(f, jnp.linspace(0.1, 1.0, 5))


def test_generic_reduce_approx_top_k_and_composite():
    def f(x):
        m = x.reshape(3, 4)
        a, b = lax.reduce((m, m * 2), (0.0, 1.0), lambda p, q: (p[0] + q[0], p[1] * q[1]), (1,))
        return jnp.concatenate([a, b])

    expected = np.kron(np.eye(3), np.ones((1, 4)))
    assert_pattern(f, jnp.linspace(0.1, 1.2, 12), expected=np.vstack([expected, expected]))
    assert_pattern(lambda x: lax.approx_max_k(x.reshape(3, 4), 2)[0].ravel(), jnp.ones(12),
                   expected=np.kron(np.eye(3), np.ones((2, 4))))
    # JAX cannot differentiate a composite; its pattern is that of its decomposition
    comp = lax.composite(lambda x: jnp.sin(x)[::-1], name="asdex.test_reverse")
    np.testing.assert_array_equal(jacobian_sparsity(comp, jnp.ones(4)).todense(), np.eye(4)[::-1])
