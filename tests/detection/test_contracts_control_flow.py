"""Pin the jaxpr layouts that the control-flow, random and misc rules rely on.

If a JAX (or Equinox) upgrade changes one of them, these fail before detection goes
silently wrong.
"""

from __future__ import annotations

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jax import lax
from jax.extend import core

X = jnp.ones(4)


def equations(f, *args):
    """Every equation of `f`'s jaxpr, sub-jaxprs included."""
    found = []

    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            found.append(eqn)
            for param in eqn.params.values():
                subs = param if isinstance(param, tuple) else (param,)
                for sub in subs:
                    if isinstance(sub, core.ClosedJaxpr):
                        walk(sub.jaxpr)

    walk(jax.make_jaxpr(f)(*args).jaxpr)
    return found


def only(f, name, *args):
    matches = [e for e in equations(f, *(args or (X,))) if e.primitive.name == name]
    assert matches, f"no '{name}' equation"
    return matches[0]


def test_cond_layout():
    eqn = only(lambda x: lax.cond(x[0] > 0, jnp.sin, jnp.cos, x), "cond")
    branches = eqn.params["branches"]
    assert isinstance(branches, tuple) and all(isinstance(b, core.ClosedJaxpr)
                                               for b in branches)
    assert eqn.invars[0].aval.dtype == jnp.int32  # the index comes first
    assert [v.aval for v in branches[0].jaxpr.invars] == [v.aval for v in eqn.invars[1:]]
    assert len(branches[1].jaxpr.outvars) == len(eqn.outvars)


def test_switch_clamps_its_index_before_cond():
    names = [e.primitive.name for e in equations(
        lambda x: lax.switch(x[0].astype(jnp.int32), [jnp.sin, jnp.cos, jnp.tan], x), X)]
    assert names.index("clamp") < names.index("cond")


def test_while_layout():
    eqn = only(lambda x: lax.while_loop(lambda c: c[1] < x[0], lambda c: (c[0] * x, c[1] + 1.0),
                                        (x, 0.0)), "while")
    params = eqn.params
    assert {"cond_jaxpr", "body_jaxpr", "cond_nconsts", "body_nconsts"} <= set(params)
    cond, body = params["cond_jaxpr"], params["body_jaxpr"]
    assert isinstance(cond, core.ClosedJaxpr) and isinstance(body, core.ClosedJaxpr)
    num_carry = len(eqn.outvars)
    assert len(eqn.invars) == params["cond_nconsts"] + params["body_nconsts"] + num_carry
    assert len(cond.jaxpr.invars) == params["cond_nconsts"] + num_carry
    assert len(body.jaxpr.invars) == params["body_nconsts"] + num_carry
    assert len(body.jaxpr.outvars) == num_carry
    assert cond.jaxpr.outvars[0].aval.dtype == jnp.bool_


def test_fori_loop_with_traced_bounds_is_a_while_with_a_counter():
    eqn = only(lambda x: lax.fori_loop(jnp.int32(0), jnp.int32(3), lambda i, y: y * 2.0, x),
               "while")
    assert eqn.invars[0].aval.dtype == jnp.int32


def test_scan_layout():
    def f(x):
        return lax.scan(lambda c, xi: (c * xi + x[0], c), 1.0, x, reverse=True, unroll=2)

    eqn = only(f, "scan")
    params = eqn.params
    assert {"jaxpr", "num_consts", "num_carry", "length", "reverse", "unroll"} <= set(params)
    assert isinstance(params["jaxpr"], core.ClosedJaxpr)
    assert params["length"] == 4 and params["reverse"] is True
    num_consts, num_carry = params["num_consts"], params["num_carry"]
    xs = eqn.invars[num_consts + num_carry:]
    assert all(v.aval.shape[0] == params["length"] for v in xs)
    body = params["jaxpr"].jaxpr
    assert len(body.invars) == len(eqn.invars)
    assert body.invars[-1].aval.shape == xs[-1].aval.shape[1:]
    ys = eqn.outvars[num_carry:]
    assert ys[0].aval.shape == (4, *body.outvars[num_carry].aval.shape)


def test_fori_loop_with_static_bounds_is_a_scan_with_a_counter():
    eqn = only(lambda x: lax.fori_loop(0, 3, lambda i, y: y * 2.0, x), "scan")
    assert eqn.params["length"] == 3 and eqn.params["num_carry"] == 2
    assert eqn.invars[eqn.params["num_consts"]].aval.dtype == jnp.int32


def test_custom_linear_solve_layout():
    def f(b):
        return lax.custom_linear_solve(lambda v: 2.0 * v, b, lambda mv, r: r / 2.0,
                                       symmetric=True)

    eqn = only(f, "custom_linear_solve")
    lengths, jaxprs = eqn.params["const_lengths"], eqn.params["jaxprs"]
    assert lengths._fields == ("matvec", "vecmat", "solve", "transpose_solve")
    assert jaxprs._fields == lengths._fields
    assert len(eqn.invars) == sum(lengths) + 1  # the consts, then the leaves of b
    assert isinstance(jaxprs.solve, core.ClosedJaxpr)
    assert len(jaxprs.matvec.jaxpr.invars) == lengths.matvec + 1
    assert len(jaxprs.solve.jaxpr.invars) == lengths.solve + 1


def test_random_layouts():
    gamma = only(lambda k, a: jax.random.gamma(k, a), "random_gamma", jax.random.key(0), X)
    assert gamma.outvars[0].aval.shape == gamma.invars[1].aval.shape
    assert not jnp.issubdtype(gamma.invars[0].aval.dtype, jnp.floating)
    for name, f in [
        ("random_bits", lambda k: jax.random.bits(k, (3,))),
        ("random_split", lambda k: jax.random.split(k)),
        ("random_fold_in", lambda k: jax.random.fold_in(k, 1)),
        ("random_wrap", lambda k: jax.random.wrap_key_data(jax.random.key_data(k))),
        ("random_unwrap", lambda k: jax.random.key_data(k)),
        ("random_clone", jax.random.clone),
    ]:
        eqn = only(f, name, jax.random.key(0))
        assert not any(jnp.issubdtype(v.aval.dtype, jnp.floating) for v in eqn.outvars)
    choice = only(lambda x: jax.random.choice(jax.random.key(0), x, (2,), p=x), "le_to")
    assert choice.outvars[0].aval.dtype == jnp.bool_
    uniform = only(lambda x: lax.rng_uniform(x[0], x[1], (3,)), "rng_uniform")
    assert [v.aval.shape for v in uniform.invars] == [(), ()]


def test_misc_layouts():
    barrier = only(lambda x: lax.optimization_barrier((x, x[:2])), "optimization_barrier")
    assert [v.aval for v in barrier.invars] == [v.aval for v in barrier.outvars]
    put = only(lambda x: jax.device_put(x, jax.devices()[0]), "device_put")
    assert [v.aval for v in put.invars] == [v.aval for v in put.outvars]
    platform = only(lambda x: lax.platform_dependent(x, cpu=jnp.sin, default=jnp.cos),
                    "platform_index")
    assert len(platform.params["platforms"]) == 2
    assert not platform.invars


def test_equinox_layouts():
    select = only(lambda x: eqxi.while_loop(lambda c: c[1] < 2, lambda c: (c[0] * 2.0, c[1] + 1),
                                            (x, 0), max_steps=3, kind="lax"), "select_if_vmap")
    assert select.outvars[0].aval == select.invars[1].aval  # select_if_vmap(pred, x, y)
    maybe_set = only(lambda x: eqxi.scan(lambda c, y: (c + y, c * y), 0.0, x,
                                         kind="checkpointed"), "maybe_set")
    assert callable(maybe_set.primitive.impl)
    assert maybe_set.outvars[0].aval == maybe_set.invars[1].aval  # maybe_set(pred, xs, x, *i)
    for name, f in [("unvmap_any", lambda x: eqxi.unvmap_any(x > 0)),
                    ("unvmap_all", lambda x: eqxi.unvmap_all(x > 0)),
                    ("unvmap_max", lambda x: eqxi.unvmap_max(x.astype(jnp.int32)))]:
        assert only(f, name).outvars[0].aval.shape == ()
    assert only(lambda x: eqx.error_if(x, x < 0, "no"), "pure_callback")
