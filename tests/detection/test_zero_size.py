"""Zero-size operands and results: every rule family accepts them.

Hypothesis draws a shape with a zero side (the operand is empty) or an operation whose
result is empty, for each family; the detected patterns must have the numeric shape
`(m, n)` and agree with `jax.jacfwd` / `jax.hessian` (see `rule_checks`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st
from jax import lax
from rule_checks import PROFILES, check_rule, run_property, shapes


def empty_shapes(max_rank: int = 3):
    """Shapes of rank >= 1 with at least one zero side."""
    return shapes(1, max_rank).flatmap(
        lambda s: st.integers(0, len(s) - 1).map(lambda i: (*s[:i], 0, *s[i + 1:]))
    )


def _axis(data, shape):
    return data.draw(st.integers(0, len(shape) - 1), label="axis")


ELEMENTWISE = {
    "sin": jnp.sin,
    "mul_broadcast": lambda x: x * x[..., :1],
    "div": lambda x: 1.0 / (2.0 + x),
    "pow": lambda x: jnp.abs(x) ** 1.5,
    "integer_pow": lambda x: x**3,
    "where": lambda x: jnp.where(x > 0, x, -2.0 * x),
    "clamp": lambda x: jnp.clip(x, -0.5, 0.5),
    "max": lambda x: jnp.maximum(x, 0.5 * x),
}


@pytest.mark.parametrize("examples", PROFILES)
def test_elementwise(examples):
    def check(data):
        shape = data.draw(empty_shapes(), label="shape")
        name = data.draw(st.sampled_from(sorted(ELEMENTWISE)), label="op")
        check_rule(data, ELEMENTWISE[name], np.ones(shape))

    run_property(examples, check)


def _reduction(data, shape):
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1)), label="axes")))
    name = data.draw(st.sampled_from(["sum", "prod", "max", "argmax", "reduce"]), label="op")
    if name in ("max", "argmax") and any(shape[a] == 0 for a in axes):
        name = "sum"  # max over an empty axis has no identity in JAX
    if name == "argmax":
        axis = axes[0] if axes else 0
        if shape[axis] == 0:
            return jnp.sum, True
        return (lambda x: jnp.take_along_axis(
            x, jnp.expand_dims(jnp.argmax(x, axis), axis), axis)), False
    if name == "reduce":
        return (lambda x: lax.reduce(x, jnp.float32(1.0), lax.mul, axes)), True
    return (lambda x: {"sum": jnp.sum, "prod": jnp.prod, "max": jnp.max}[name](x, axis=axes),
            name != "max")


@pytest.mark.parametrize("examples", PROFILES)
def test_reductions(examples):
    def check(data):
        shape = data.draw(empty_shapes(), label="shape")
        f, exact = _reduction(data, shape)
        check_rule(data, f, np.ones(shape), exact=exact, hessian=exact)

    run_property(examples, check)


CUMULATIVE = [lax.cumsum, lax.cumprod, lax.cummax, lax.cummin, lax.cumlogsumexp]


@pytest.mark.parametrize("examples", PROFILES)
def test_cumulative_sort_top_k(examples):
    def check(data):
        shape = data.draw(empty_shapes(), label="shape")
        axis = _axis(data, shape)
        kind = data.draw(st.sampled_from(["cumulative", "sort", "top_k"]), label="kind")
        if kind == "cumulative":
            op = data.draw(st.sampled_from(CUMULATIVE), label="op")
            reverse = data.draw(st.booleans(), label="reverse")
            f = lambda x: op(x, axis=axis, reverse=reverse)  # noqa: E731
        elif kind == "sort":
            f = lambda x: lax.sort((x, 2.0 * x), dimension=axis, num_keys=1)  # noqa: E731
        else:
            k = data.draw(st.integers(0, shape[axis]), label="k")
            f = lambda x: lax.top_k(x, k, axis=axis)[0]  # noqa: E731
        check_rule(data, f, np.ones(shape), exact=False)

    run_property(examples, check)


def _indexing(data, shape):
    """An indexing operation with unknown indices `i` (a non-differentiated argument)."""
    axis = _axis(data, shape)
    kind = data.draw(st.sampled_from(["take", "empty_take", "scatter", "dynamic_slice",
                                      "dynamic_update_slice"]), label="kind")
    if kind == "take" and shape[axis]:
        return lambda x, i: jnp.take(x, i, axis=axis, mode="clip")
    if kind in ("take", "empty_take"):
        return lambda x, i: jnp.take(x, i[:0], axis=axis)
    if kind == "scatter":
        def scatter(x, i):
            i = i if shape[axis] else i[:0]  # JAX takes nothing from an empty axis
            updates = jnp.take(2.0 * x, i, axis=axis, mode="clip")
            return x.at[(slice(None),) * axis + (i,)].add(updates, mode="drop")
        return scatter
    sizes = [data.draw(st.integers(0, side)) for side in shape]

    def starts(i):
        return [i[0] if i.size else 0] * len(shape)

    if kind == "dynamic_slice":
        return lambda x, i: lax.dynamic_slice(x, starts(i), sizes)
    return lambda x, i: lax.dynamic_update_slice(x, jnp.zeros(sizes) + x.sum(), starts(i))


@pytest.mark.parametrize("examples", PROFILES)
def test_indexing(examples):
    def check(data):
        shape = data.draw(empty_shapes(), label="shape")
        f = _indexing(data, shape)
        count = data.draw(st.integers(0, 3), label="index count")

        def extras(rng):
            return (rng.integers(-1, 4, count).astype(np.int32),)

        check_rule(data, f, np.ones(shape), extras, exact=False)

    run_property(examples, check)


def _conv(x):
    lhs = x.reshape(x.shape[0], 1, math.prod(x.shape[1:]))
    kernels = jnp.full((1, 1, 2), 2.0), jnp.full((1, 1, 1), jnp.sum(x))
    return [lax.conv_general_dilated(lhs, k, (1,), "SAME") for k in kernels]


WINDOWS_AND_CONTRACTIONS = {
    "dot": lambda x: jnp.tensordot(x, jnp.sin(x), ([x.ndim - 1], [x.ndim - 1])),
    "contract_empty": lambda x: jnp.tensordot(x, jnp.cos(x), x.ndim),
    "batched_dot": lambda x: jnp.einsum("i...,i...->i", x, x[::-1]),
    "conv": _conv,
}


@pytest.mark.parametrize("examples", PROFILES)
def test_windows_and_contractions(examples):
    def check(data):
        shape = data.draw(empty_shapes(), label="shape")
        kind = data.draw(st.sampled_from(["window", *sorted(WINDOWS_AND_CONTRACTIONS)]),
                         label="kind")
        if kind == "window":
            window = tuple(data.draw(st.integers(1, 3)) for _ in shape)
            pad = tuple((data.draw(st.integers(0, 1)), data.draw(st.integers(0, 1)))
                        for _ in shape)
            name = data.draw(st.sampled_from(["sum", "max"]), label="reducer")
            init, reducer = (0.0, lax.add) if name == "sum" else (-jnp.inf, lax.max)

            def f(x):
                return lax.reduce_window(x, init, reducer, window, (1,) * len(shape), pad)
        else:
            f = WINDOWS_AND_CONTRACTIONS[kind]
        check_rule(data, f, np.ones(shape), exact=False)

    run_property(examples, check)


STRUCTURAL = {
    "reshape": lambda x: lax.reshape(x, (x.size,), dimensions=tuple(range(x.ndim))[::-1]),
    "transpose": lambda x: x.T,
    "rev": lambda x: x[::-1],
    "broadcast": lambda x: jnp.broadcast_to(x, (2, *x.shape)),
    "pad": lambda x: jnp.pad(x, 1, constant_values=2.0) * jnp.pad(x, 1),
    "concatenate": lambda x: jnp.concatenate([x, 3.0 * x], axis=0),
    "empty_slice": lambda x: x.reshape(-1)[1:1],
    "split": lambda x: lax.split(x, (0, x.shape[-1], 0), axis=x.ndim - 1),
    "stack": lambda x: jnp.stack([x, x], axis=-1),
    "tile": lambda x: jnp.tile(x, 2),
    "squeeze_expand": lambda x: jnp.squeeze(jnp.expand_dims(x, 0), 0),
}


@pytest.mark.parametrize("examples", PROFILES)
def test_structural(examples):
    def check(data):
        shape = data.draw(empty_shapes(), label="shape")
        name = data.draw(st.sampled_from(sorted(STRUCTURAL)), label="op")
        check_rule(data, STRUCTURAL[name], np.ones(shape))

    run_property(examples, check)


@pytest.mark.parametrize("examples", PROFILES)
def test_empty_results_of_nonempty_operands(examples):
    def check(data):
        shape = data.draw(shapes(1, 3, min_side=1), label="shape")
        axis = _axis(data, shape)
        kind = data.draw(st.sampled_from(["slice", "take", "top_k", "reshape"]), label="kind")

        def f(x):
            if kind == "slice":
                y = lax.slice_in_dim(x, 1, 1, axis=axis)
            elif kind == "take":
                y = jnp.take(x, jnp.zeros(0, jnp.int32), axis=axis)
            elif kind == "top_k":
                y = lax.top_k(x, 0, axis=axis)[0]
            else:
                y = jnp.zeros((0, 2)) * jnp.sum(x)
            return jnp.cumsum(jnp.sort(y, axis=0), axis=0), jax.nn.relu(y)

        check_rule(data, f, np.ones(shape))

    run_property(examples, check)
