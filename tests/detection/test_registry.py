"""The primitive table: one entry per primitive holding every fact, and known values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from asdex.detection import Evaluation, Identity, Output, _registry, register_rule
from asdex.detection._interpreter import constant_state, propagate
from asdex.detection._registry import lookup
from asdex.detection._rules.contractions import dot_general_terms


def _identity_rule(eqn):
    return [Output(maps=((0, Identity()),))]


@pytest.fixture
def table(monkeypatch):
    """A private copy of the table, so that registrations do not leak."""
    monkeypatch.setattr(_registry, "_TABLE", dict(_registry._TABLE))


def test_registering_a_primitive_twice_is_an_error(table):
    register_rule("my_twice_registered_op", _identity_rule)
    with pytest.raises(ValueError, match=r"my_twice_registered_op.*override=True"):
        register_rule("my_twice_registered_op", _identity_rule)


def test_override_replaces_an_entry(table):
    def other(eqn):
        return [Output()]

    register_rule("sin", other, override=True)
    assert lookup("sin").rule is other


def test_each_fact_lives_in_the_entry():
    for name in ("jit", "pjit", "closed_call", "core_call", "composite", "remat2",
                 "checkpoint"):
        assert lookup(name).transparent, name
    for name in ("cond", "while", "scan", "custom_jvp_call", "custom_vjp_call"):
        entry = lookup(name)
        assert not entry.transparent and entry.second_order is not None, name
    for name in ("pure_callback", "io_callback", "rng_uniform", "platform_index"):
        assert lookup(name).evaluation is Evaluation.NEVER, name
    for name in ("mul", "max", "select_n", "convert_element_type", "reduce_max", "copy"):
        assert lookup(name).trusts_zeros, name
    for name in ("add", "sub", "reduce_sum", "dot_general", "exp"):
        assert not lookup(name).trusts_zeros, name
    assert lookup("dot_general").curvature is dot_general_terms
    assert lookup("broadcast_in_dim").evaluation is Evaluation.MOVED
    assert lookup("add").evaluation is Evaluation.ELEMENTWISE


def _known_values(f, *args):
    """Values the engine knows for the outputs of `f` (no differentiated inputs)."""
    closed = jax.make_jaxpr(f)(*args)
    inputs = [constant_state(np.asarray(a), 1) for a in args]
    return [s.operand.value for s in propagate(closed.jaxpr, closed.consts, inputs, 1)]


KNOWN = {
    "iota 2-d": lambda a: lax.broadcasted_iota(jnp.int32, (3, 4), 1),
    "integer division rounds toward zero": lambda a: lax.div(a - 7, jnp.int32(3)),
    "remainder keeps the sign": lambda a: lax.rem(a - 7, jnp.int32(3)),
    "float to int truncates": lambda a: (a * 0.7 - 2.0).astype(jnp.int32),
    "scalar broadcast in a comparison": lambda a: jnp.where(a > 4, a, -a),
    "select among three": lambda a: lax.select_n(a % 3, a, a * 2, -a),
    "bool to float": lambda a: (a > 3).astype(jnp.float32) * 2.5,
    "sin": lambda a: jnp.sin(a.astype(jnp.float32)),
    "float division and integer powers": lambda a: (a - 3.3) / (a * 0.7 + 1.1) + (a * 0.37) ** 3
    - lax.integer_pow(a * 0.9 + 0.5, -2) + lax.sqrt(a * 1.7),
    "integer powers wrap": lambda a: lax.integer_pow(a * 1000 + 7, 5),
    "float to int out of range": lambda a: (a * 3e8).astype(jnp.int32),
    "subnormals flushed to zero": lambda a: ((a * 1e-20) * 1e-20 == 0) * 2
    + (a * 1e-40 > 0),
    "pad with negative and interior padding": lambda a: lax.pad(a, jnp.int32(-1),
                                                                [(-1, 2, 1)]),
    "concatenate and slice": lambda a: jnp.concatenate([a[::2], a[1:3], a[::-1]]),
    "broadcast and transpose": lambda a: jnp.broadcast_to(a, (2, 10)).T.reshape(5, 4),
    "gather with known indices": lambda a: a[(a * 3) % 10],
    "gather that fills": lambda a: a.at[a + 5].get(mode="fill", fill_value=-3),
    "gather that clips": lambda a: a.at[a * 2 - 4].get(mode="clip"),
    "scatter with known indices": lambda a: a.at[(a * 3) % 10].set(-a),
    "scatter with colliding indices": lambda a: a.at[a % 4].set(a * 2),
    "dynamic slice": lambda a: lax.dynamic_slice(a, (a[3],), (4,)),
    "dynamic update slice": lambda a: lax.dynamic_update_slice(a, -a[:3], (a[8],)),
}


@pytest.mark.parametrize("name", list(KNOWN))
def test_known_values_are_what_jax_computes(name):
    f = KNOWN[name]
    a = jnp.arange(10, dtype=jnp.int32)
    (value,) = _known_values(f, a)
    expected = np.asarray(f(a))
    assert value is not None
    assert value.dtype == expected.dtype
    np.testing.assert_array_equal(value, expected)


@pytest.mark.parametrize("size", [1, 100, 1024, 1025])
def test_elementwise_evaluation_at_any_size(size):
    a = jnp.arange(size, dtype=jnp.float32) - 3.5

    def f(a):
        return jnp.exp(a) * a - jnp.floor(a / 2.0)

    (value,) = _known_values(f, a)
    # `exp` may round differently by an ulp at another vector width, as compiled code
    # may; such values are approximate to the engine (their zeros are not trusted).
    np.testing.assert_allclose(value, np.asarray(f(a)), rtol=1e-6)
    (floors,) = _known_values(lambda a: jnp.floor(a / 2.0) * a, a)
    np.testing.assert_array_equal(floors, np.asarray(jnp.floor(a / 2.0) * a))
