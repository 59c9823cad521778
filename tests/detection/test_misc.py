"""Callbacks, compiler/runtime identities, platform_index and the Equinox primitives."""

from __future__ import annotations

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from detection_helpers import assert_pattern, assert_sound
from jax import lax
from jax.ad_checkpoint import checkpoint_name
from jax.experimental import io_callback

from asdex.detection import jacobian_sparsity

N = 6
X = jnp.linspace(0.5, 1.5, N)
EYE = np.eye(N, dtype=bool)


def detect(f, *args, argnums=0):
    return jacobian_sparsity(f, *args, argnums=argnums).todense().astype(bool)


# --- callbacks --------------------------------------------------------------------------


def test_pure_callback_is_all_to_all_and_never_called():
    calls = []

    def callback(x):
        calls.append(1)
        return np.sin(x)

    def f(x):
        known = jax.pure_callback(callback, jax.ShapeDtypeStruct((2,), jnp.float32),
                                  jnp.ones(2, jnp.float32))
        out = jax.pure_callback(callback, jax.ShapeDtypeStruct((3,), jnp.float32), x[:3])
        return jnp.concatenate([out, known, x[3:] * 2.0])

    detected = detect(f, X)
    expected = np.zeros((8, N), bool)
    expected[:3, :3] = True
    expected[5:, 3:] = np.eye(3, dtype=bool)
    np.testing.assert_array_equal(detected, expected)
    assert not calls


def test_pure_callback_integer_results_have_zero_derivative():
    def f(x):
        idx, y = jax.pure_callback(
            lambda x: (np.argsort(x).astype(np.int32), np.cumsum(x)),
            (jax.ShapeDtypeStruct((N,), jnp.int32), jax.ShapeDtypeStruct((N,), jnp.float32)),
            x)
        return y + idx

    np.testing.assert_array_equal(detect(f, X), np.ones((N, N), bool))


def test_pure_callback_with_custom_jvp_follows_the_rule():
    @jax.custom_jvp
    def sin(x):
        return jax.pure_callback(np.sin, jax.ShapeDtypeStruct(x.shape, x.dtype), x)

    @sin.defjvp
    def sin_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return sin(x), jnp.cos(x) * t

    # the primal callback is conservative (all-to-all); the rule is diagonal
    assert_sound(lambda x: sin(x), X)


def test_io_callback_is_all_to_all():
    def f(x):
        y = io_callback(lambda x: np.cos(x), jax.ShapeDtypeStruct((2,), jnp.float32), x[:2])
        return jnp.concatenate([y, x[2:]])

    expected = np.zeros((N, N), bool)
    expected[:2, :2] = True
    expected[2:, 2:] = np.eye(N - 2, dtype=bool)
    np.testing.assert_array_equal(detect(f, X), expected)


def test_debug_print_and_callback_have_no_effect_on_patterns():
    def f(x):
        jax.debug.print("x = {}", x)
        jax.debug.callback(lambda x: None, x)
        return x * 2.0

    np.testing.assert_array_equal(detect(f, X), EYE)


# --- identities -------------------------------------------------------------------------


@pytest.mark.parametrize("wrap", [
    lambda x: lax.optimization_barrier((x, x[::-1]))[1][::-1],
    lambda x: lax.with_sharding_constraint(x, jax.sharding.SingleDeviceSharding(
        jax.devices()[0])),
    lambda x: jax.device_put(x, jax.devices()[0]),
    lambda x: checkpoint_name(x, "saved"),
    lambda x: eqxi.nonbatchable(x),
    lambda x: eqxi.nondifferentiable_backward(x),
], ids=["optimization_barrier", "sharding_constraint", "device_put", "name",
        "nonbatchable", "nondifferentiable_backward"])
def test_identities(wrap):
    np.testing.assert_array_equal(detect(lambda x: jnp.sin(wrap(x)), X), EYE)


def test_identities_keep_known_index_values():
    def f(x):
        i = lax.optimization_barrier(jnp.int32(2))
        return x[eqxi.nonbatchable(i)][None]

    np.testing.assert_array_equal(detect(f, X), np.eye(1, N, k=2, dtype=bool))


# --- platform_index ---------------------------------------------------------------------


def test_platform_dependent_unions_every_platform():
    def f(x):
        return lax.platform_dependent(x, cpu=lambda x: x * 2.0,
                                      default=lambda x: jnp.roll(x, 1))

    assert "platform_index" in str(jax.make_jaxpr(f)(X))
    expected = EYE | np.roll(EYE, 1, axis=0)
    np.testing.assert_array_equal(detect(f, X), expected)


# --- Equinox primitives -----------------------------------------------------------------


def test_unvmap_reductions_have_zero_derivative():
    def f(x):
        flag = eqxi.unvmap_any(x > 1.0) | eqxi.unvmap_all(x > 0.0)
        return x * flag

    np.testing.assert_array_equal(detect(f, X), EYE)


def test_unvmap_max_is_bounded_by_its_operand():
    def f(x):
        i = eqxi.unvmap_max(jnp.argmax(x[:3]))  # in [0, 2]
        return lax.dynamic_slice(x, (i,), (1,))

    expected = np.zeros((1, N), bool)
    expected[0, :3] = True
    np.testing.assert_array_equal(detect(f, X), expected)


def test_error_if_is_the_identity():
    assert_pattern(lambda x: eqx.error_if(x, x < -10.0, "negative") * 2.0, X, expected=EYE)


def test_branched_error_if_is_the_identity():
    def f(x):
        return eqx.branched_error_if(x, x < -10.0, 0, ["negative"]) * 2.0

    assert_pattern(f, X, expected=EYE)


@pytest.mark.parametrize("kind", ["lax", "checkpointed", "bounded"])
def test_equinox_while_loop(kind):
    def f(x):
        def body(carry):
            y, i = carry
            return jnp.roll(y, 1) * 1.5, i + 1

        return eqxi.while_loop(lambda c: c[1] < 2, body, (x, 0), max_steps=4, kind=kind)[0]

    np.testing.assert_array_equal(detect(f, X), np.roll(EYE, 2, axis=0))


def test_equinox_scan_writes_buffers_with_maybe_set():
    def f(x):
        return eqxi.scan(lambda c, y: (c + y, c * y), 0.0, x, kind="checkpointed")[1]

    assert "maybe_set" in str(jax.make_jaxpr(f)(X))
    detected = detect(f, X)
    # ys[t] = (x[0] + ... + x[t-1]) * x[t]: the step count is known, so rows are exact
    expected = np.tril(np.ones((N, N), bool))
    np.testing.assert_array_equal(detected, expected)
