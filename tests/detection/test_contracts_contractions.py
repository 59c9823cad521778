"""Pins the jaxpr layouts that the contraction, window and linalg rules rely on.

If one of these fails after a JAX upgrade, update the rule that reads the layout.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax._src.lax import linalg as lax_linalg


def _all_eqns(jaxpr):
    for eqn in jaxpr.eqns:
        yield eqn
        if eqn.primitive.name == "jit":
            yield from _all_eqns(eqn.params["jaxpr"].jaxpr)


def only_eqn(f, *args, name):
    """The one equation of primitive `name` in the jaxpr of `f` (looking inside `jit`)."""
    eqns = [e for e in _all_eqns(jax.make_jaxpr(f)(*args).jaxpr) if e.primitive.name == name]
    assert len(eqns) == 1, [e.primitive.name for e in jax.make_jaxpr(f)(*args).jaxpr.eqns]
    return eqns[0]


def shapes(vars_):
    return [tuple(v.aval.shape) for v in vars_]


def test_dot_general_layout():
    eqn = only_eqn(lambda a, b: jnp.einsum("bij,bjk->bik", a, b), jnp.ones((2, 3, 4)),
                   jnp.ones((2, 4, 5)), name="dot_general")
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    assert (tuple(lc), tuple(rc), tuple(lb), tuple(rb)) == ((2,), (1,), (0,), (0,))
    # result layout: batch, lhs free, rhs free
    eqn = only_eqn(lambda a, b: lax.dot_general(a, b, (((0,), (2,)), ((2,), (0,)))),
                   jnp.ones((4, 3, 2)), jnp.ones((2, 5, 4)), name="dot_general")
    assert shapes(eqn.outvars) == [(2, 3, 5)]


def test_conv_layout():
    eqn = only_eqn(
        lambda a, b: lax.conv_general_dilated(
            a, b, (1, 2), ((1, 0), (0, -1)), (2, 1), (1, 2), ("NHWC", "HWIO", "NCHW"),
            feature_group_count=1, batch_group_count=1),
        jnp.ones((2, 5, 6, 3)), jnp.ones((2, 3, 3, 4)), name="conv_general_dilated")
    p = eqn.params
    spec = p["dimension_numbers"]
    assert (spec.lhs_spec, spec.rhs_spec, spec.out_spec) == ((0, 3, 1, 2), (3, 2, 0, 1),
                                                             (0, 1, 2, 3))
    assert tuple(p["window_strides"]) == (1, 2)
    assert [tuple(x) for x in p["padding"]] == [(1, 0), (0, -1)]
    assert tuple(p["lhs_dilation"]) == (2, 1) and tuple(p["rhs_dilation"]) == (1, 2)
    assert p["feature_group_count"] == 1 and p["batch_group_count"] == 1


def test_reduce_window_layouts():
    x = jnp.ones((4, 5))
    for op, init, name in ((lax.add, 0.0, "reduce_window_sum"),
                           (lax.max, -jnp.inf, "reduce_window_max"),
                           (lax.min, jnp.inf, "reduce_window_min")):
        eqn = only_eqn(lambda x, op=op, init=init: lax.reduce_window(
            x, init, op, (2, 2), (1, 2), ((0, 1), (1, 0)), (1, 2), (2, 1)), x, name=name)
        assert len(eqn.invars) == 1
        p = eqn.params
        assert (tuple(p["window_dimensions"]), tuple(p["window_strides"])) == ((2, 2), (1, 2))
        assert [tuple(x) for x in p["padding"]] == [(0, 1), (1, 0)]
        assert (tuple(p["base_dilation"]), tuple(p["window_dilation"])) == ((1, 2), (2, 1))
    eqn = only_eqn(lambda x: lax.reduce_window((x, x), (1.0, 0.0),
                                               lambda a, b: (a[0] * b[0], a[1] + b[1]),
                                               (2, 2), (1, 1), "VALID"), x, name="reduce_window")
    assert shapes(eqn.invars) == [(4, 5), (4, 5), (), ()]  # (*operands, *init_values)
    assert {"jaxpr", "consts", "window_dimensions", "base_dilation"} <= set(eqn.params)
    assert len(eqn.params["jaxpr"].eqns) == 2


def test_select_and_scatter_and_gather_layouts():
    x = jnp.ones((4, 6))

    def pool(y):
        return lax.reduce_window(y, -jnp.inf, lax.max, (2, 3), (2, 3), "VALID")

    eqn = only_eqn(jax.grad(lambda y: pool(y).sum()), x, name="select_and_scatter_add")
    assert shapes(eqn.invars) == [(2, 2), (4, 6)]  # (source, operand)
    assert {"window_dimensions", "window_strides", "padding"} <= set(eqn.params)
    eqn = only_eqn(lambda y, t: jax.jvp(pool, (y,), (t,))[1], x, x,
                   name="select_and_gather_add")
    assert shapes(eqn.invars) == [(4, 6), (4, 6)]  # (tangents, operand)
    assert {"window_dimensions", "window_strides", "padding", "base_dilation",
            "window_dilation"} <= set(eqn.params)


def test_linalg_layouts():
    a = jnp.ones((2, 4, 3))
    s = jnp.ones((2, 3, 3))
    eqn = only_eqn(lambda a, b: lax_linalg.triangular_solve(a, b, left_side=True), s,
                   jnp.ones((2, 3, 5)), name="triangular_solve")
    assert shapes(eqn.invars) == [(2, 3, 3), (2, 3, 5)]  # (a, b)
    assert {"left_side", "lower", "transpose_a", "unit_diagonal"} <= set(eqn.params)
    eqn = only_eqn(lax_linalg.lu, a, name="lu")
    assert shapes(eqn.outvars) == [(2, 4, 3), (2, 3), (2, 4)]  # lu, pivots, permutation
    assert [np.dtype(v.aval.dtype).kind for v in eqn.outvars] == ["f", "i", "i"]
    eqn = only_eqn(lambda a: lax_linalg.qr(a, full_matrices=False), a, name="qr")
    assert shapes(eqn.outvars) == [(2, 4, 3), (2, 3, 3)]  # q, r
    assert {"pivoting", "full_matrices"} <= set(eqn.params)
    eqn = only_eqn(lax_linalg.tridiagonal_solve, jnp.ones((2, 3)), jnp.ones((2, 3)),
                   jnp.ones((2, 3)), jnp.ones((2, 3, 4)), name="tridiagonal_solve")
    assert shapes(eqn.invars) == [(2, 3), (2, 3), (2, 3), (2, 3, 4)]  # dl, d, du, b
    eqn = only_eqn(lambda x: lax_linalg.cholesky(x, symmetrize_input=False), s,
                   name="cholesky")
    assert shapes(eqn.outvars) == [(2, 3, 3)]
    for f, name in ((lax_linalg.eigh, "eigh"), (lax_linalg.svd, "svd"),
                    (lax_linalg.eig, "eig"), (lax_linalg.schur, "schur"),
                    (lax_linalg.hessenberg, "hessenberg"),
                    (lax_linalg.tridiagonal, "tridiagonal")):
        eqn = only_eqn(f, s, name=name)
        assert all(v.aval.shape[0] == 2 for v in eqn.outvars)  # leading batch dimension


def test_fft_layout():
    eqn = only_eqn(lambda x: jnp.fft.rfftn(x, axes=(1, 2)), jnp.ones((2, 4, 6)), name="fft")
    assert tuple(eqn.params["fft_lengths"]) == (4, 6)  # the trailing axes
    assert shapes(eqn.outvars) == [(2, 4, 4)]
