import jax
import jax.numpy as jnp
import jax.scipy.special as jss
import numpy as np
import pytest
from detection_helpers import assert_pattern, assert_sound
from jax import lax

from asdex.detection import jacobian_sparsity

UNARY = [
    jnp.exp, jnp.log1p, jnp.sin, jnp.cos, jnp.tan, jnp.tanh, jnp.arcsinh, jnp.arctan,
    jnp.sqrt, jnp.cbrt, lax.rsqrt, jax.nn.sigmoid, jax.nn.softplus, jax.nn.gelu, jnp.abs,
    jss.erf, jss.erfc, lax.erf_inv, jss.gammaln, jss.digamma, jss.i0e, jss.i1e, jss.expit,
    lambda x: x**3, lambda x: x**2.5, lambda x: 1.0 / x, lambda x: -x, jnp.square,
    lambda x: lax.reduce_precision(x, exponent_bits=5, mantissa_bits=10),
    lambda x: jnp.clip(x, -0.5, 0.35), jax.nn.relu, jnp.expm1, jnp.log, jnp.arccos,
]


@pytest.mark.parametrize("fn", UNARY)
def test_unary_is_diagonal(fn):
    x = jnp.linspace(0.1, 0.4, 5)
    assert_pattern(fn, x, expected=np.eye(5))


BINARY = [
    jnp.add, jnp.subtract, jnp.multiply, jnp.divide, jnp.power, jnp.arctan2, jnp.maximum,
    jnp.minimum, jnp.remainder, jnp.hypot, jnp.logaddexp,
    lambda a, b: jss.gammainc(a + 2.0, b + 2.0), lambda a, b: jss.gammaincc(a + 2.0, b + 2.0),
    lambda a, b: jss.betainc(2.0, 3.0, a / 4.0) * b,
]


@pytest.mark.parametrize("fn", BINARY)
def test_binary_couples_same_element(fn):
    def f(x):
        return fn(x[:3] + 1.5, x[3:] + 1.5)

    expected = np.concatenate([np.eye(3), np.eye(3)], axis=1)
    assert_pattern(f, jnp.linspace(0.1, 0.6, 6), expected=expected)


def test_polygamma_and_zeta_follow_x():
    x = jnp.linspace(1.1, 2.0, 4)
    assert_pattern(lambda x: jss.polygamma(1, x), x, expected=np.eye(4))
    assert_pattern(lambda x: jss.zeta(x + 1.0, 2.0), x, expected=np.eye(4))


def test_scalar_broadcast_couples_everything():
    expected = np.eye(4)
    expected[:, 0] = 1
    assert_pattern(lambda x: x * x[0], jnp.ones(4), expected=expected)


def test_zero_derivative_ops_give_empty_patterns():
    x = jnp.linspace(-1.0, 1.0, 4)
    for fn in [jnp.sign, jnp.floor, jnp.ceil, jnp.round, lambda x: (x > 0).astype(float),
               lambda x: jax.lax.stop_gradient(x), lambda x: x.astype(jnp.int32) * 1.0,
               lambda x: jnp.isfinite(x) * 1.0]:
        assert jacobian_sparsity(fn, x).nnz == 0


def test_integer_bit_ops_have_no_dependencies():
    x = jnp.arange(4, dtype=jnp.float32)

    def f(x):
        i = x.astype(jnp.int32)
        j = (i << 1) ^ (i >> 1) | (i & 3)
        return x * lax.population_count(j) + lax.clz(j)

    assert_pattern(f, x, expected=np.eye(4))


def test_select_with_unknown_predicate_unions_cases():
    def f(x):
        return jnp.where(x[:3] > 0, x[:3], x[3:])

    assert_sound(f, jnp.linspace(-1, 1, 6))
    expected = np.concatenate([np.eye(3), np.eye(3)], axis=1)
    np.testing.assert_array_equal(jacobian_sparsity(f, jnp.ones(6)).todense(), expected)


def test_select_with_known_predicate_is_exact():
    mask = np.array([True, False, True])

    def f(x):
        return jnp.where(mask, x[:3], x[3:])

    expected = np.zeros((3, 6))
    expected[[0, 2], [0, 2]] = 1
    expected[1, 4] = 1
    assert_pattern(f, jnp.linspace(-1, 1, 6), expected=expected)


def test_clamp_and_nextafter():
    x = jnp.linspace(0.1, 0.5, 3)
    assert_pattern(lambda x: lax.clamp(0.2, x, 0.4), x, expected=np.eye(3))
    # JAX does not differentiate nextafter; its pattern follows its first operand.
    detected = jacobian_sparsity(lambda x: jnp.nextafter(x, 2.0 * x[::-1]), x).todense()
    np.testing.assert_array_equal(detected, np.eye(3))


def test_complex_parts():
    x = jnp.linspace(0.1, 0.5, 3)

    def f(x):
        z = lax.complex(x, 2.0 * x[::-1])
        return jnp.real(z * jnp.conj(z)) + jnp.imag(z)

    assert_sound(f, x, exact=True)


def test_bitcast_and_convert_keep_float_dependencies():
    x = jnp.linspace(0.1, 0.5, 3)
    assert_pattern(lambda x: x.astype(jnp.float16).astype(jnp.float32), x, expected=np.eye(3))
    assert jacobian_sparsity(lambda x: lax.bitcast_convert_type(x, jnp.int32) * 1.0, x).nnz == 0


def test_integer_pow_zero_is_constant():
    assert_sound(lambda x: lax.integer_pow(x, 0), jnp.ones(3))
