"""Pin the jaxpr layouts that the engine, the call rules and the data-movement,
elementwise and reduction rules rely on: a JAX upgrade that changes them fails here."""

import jax
import jax.numpy as jnp
import pytest
from jax import lax
from jax.extend import core

from asdex.detection import registered_primitives


def equations(f, *args):
    return jax.make_jaxpr(f)(*args).jaxpr.eqns


def only(f, *args, name):
    found = [e for e in equations(f, *args) if e.primitive.name == name]
    assert found, f"expected a '{name}' equation"
    return found[0]


def test_jaxpr_types_come_from_jax_extend():
    closed = jax.make_jaxpr(lambda x: x * 2.0)(1.0)
    assert isinstance(closed, core.ClosedJaxpr)
    (eqn,) = closed.jaxpr.eqns
    assert isinstance(eqn.invars[1], core.Literal)
    assert hasattr(eqn, "effects") and hasattr(eqn.primitive, "multiple_results")
    _, b = jax.make_jaxpr(lambda x: lax.sort_key_val(x, x))(jnp.ones(2)).jaxpr.eqns[0].outvars
    assert isinstance(b, core.Var)


def test_get_bind_params_round_trip():
    eqn = only(lambda x: jnp.cumsum(x), jnp.ones(3), name="jit")
    params = eqn.primitive.get_bind_params(eqn.params)
    assert isinstance(params, dict | tuple)


@pytest.mark.parametrize(
    ("name", "f", "param", "kind"),
    [
        ("jit", lambda x: jnp.cumsum(x), "jaxpr", core.ClosedJaxpr),
        ("remat2", jax.checkpoint(lambda x: x * 2), "jaxpr", core.Jaxpr),
        ("custom_jvp_call", jax.nn.relu, "call_jaxpr", core.ClosedJaxpr),
    ],
)
def test_call_primitive_layouts(name, f, param, kind):
    eqn = only(f, jnp.ones(3), name=name)
    assert isinstance(eqn.params[param], kind)


def test_custom_vjp_layout():
    @jax.custom_vjp
    def g(x):
        return x

    g.defvjp(lambda x: (x, None), lambda _, ct: (ct,))
    eqn = only(g, jnp.ones(2), name="custom_vjp_call")
    assert isinstance(eqn.params["call_jaxpr"], core.ClosedJaxpr)
    assert {"fwd_jaxpr_thunk", "bwd", "num_consts"} <= set(eqn.params)


@pytest.mark.parametrize(
    ("name", "f", "params"),
    [
        ("broadcast_in_dim", lambda x: jnp.broadcast_to(x, (2, 3)), {"broadcast_dimensions"}),
        ("slice", lambda x: x[1:3], {"start_indices", "limit_indices", "strides"}),
        ("pad", lambda x: lax.pad(x, 0.0, [(1, 1, 0)]), {"padding_config"}),
        ("concatenate", lambda x: jnp.concatenate([x, x]), {"dimension"}),
        ("rev", lambda x: x[::-1], {"dimensions"}),
        ("transpose", lambda x: x.reshape(1, 3).T, {"permutation"}),
        ("split", lambda x: jnp.split(x, 3), {"axis", "sizes"}),
        ("stack", lambda x: jnp.stack([x, x]), {"axis"}),
        ("tile", lambda x: jnp.tile(x, 2), {"reps"}),
        ("unstack", lambda x: jnp.unstack(x.reshape(3, 1)), {"axis"}),
        ("reduce_sum", lambda x: x.sum(), {"axes"}),
        ("reduce_max", lambda x: x.max(), {"axes"}),
        ("argmax", lambda x: jnp.argmax(x), {"axes", "index_dtype"}),
        ("cumsum", lambda x: lax.cumsum(x), {"axis", "reverse"}),
        ("cummax", lambda x: lax.cummax(x), {"axis", "reverse"}),
        ("sort", lambda x: lax.sort(x), {"dimension", "num_keys"}),
        ("top_k", lambda x: lax.top_k(x, 2), set()),
        ("select_n", lambda x: lax.select_n(x > 0, x, x * 2), set()),
        ("integer_pow", lambda x: x**3, {"y"}),
    ],
)
def test_rule_param_layouts(name, f, params):
    eqn = only(f, jnp.ones(3), name=name)
    assert params <= set(eqn.params), f"{name} params are now {sorted(eqn.params)}"


def test_every_emitted_primitive_has_a_rule():
    """The primitives that common jax.numpy / jax.nn / jax.scipy programs emit."""
    import jax.scipy.special as jss

    def program(x):
        m = x.reshape(2, 3)
        return jnp.concatenate([
            jax.nn.softmax(m).ravel(), jss.gammaln(x + 1), jnp.cumsum(x), jnp.sort(x),
            jnp.linalg.norm(m, axis=1), jnp.roll(x, 2), jnp.where(x > 0, x, -x),
            jax.nn.gelu(x), jnp.clip(x, 0, 1), (m @ m.T).ravel(), jnp.take(x, jnp.array([2, 0])),
        ])

    found = set()

    def collect(jaxpr):
        for eqn in jaxpr.eqns:
            found.add(eqn.primitive.name)
            for value in eqn.params.values():
                inner = getattr(value, "jaxpr", value)
                if isinstance(inner, core.Jaxpr):
                    collect(inner)

    collect(jax.make_jaxpr(program)(jnp.ones(6)).jaxpr)
    missing = found - registered_primitives()
    assert not missing, f"no rule for {sorted(missing)}"
