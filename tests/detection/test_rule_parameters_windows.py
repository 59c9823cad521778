"""Windows and contractions with random geometry and dimension numbers.

`reduce_window` (sum, max, min and a custom reducer), its derivatives
(`select_and_gather_add`, `select_and_scatter_add`), `conv_general_dilated` and
`dot_general`, with both operands depending on the input or one known and holding
zeros (zero-skipping).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume
from hypothesis import strategies as st
from jax import lax
from rule_checks import PROFILES, check_rule, run_property, shapes

REDUCERS = {
    "sum": (0.0, lax.add),
    "max": (-np.inf, lax.max),
    "min": (np.inf, lax.min),
    "prod": (1.0, lax.mul),
}


def _window_geometry(data, shape, negative_padding=False):
    """Window dimensions, strides, padding and dilations with a valid result shape."""
    low = -1 if negative_padding else 0
    window = tuple(data.draw(st.integers(1, 3)) for _ in shape)
    strides = tuple(data.draw(st.integers(1, 3)) for _ in shape)
    padding = tuple((data.draw(st.integers(low, 2)), data.draw(st.integers(low, 2)))
                    for _ in shape)
    base = tuple(data.draw(st.integers(1, 2)) for _ in shape)
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in shape)
    for side, w, (lo, hi), b, r in zip(shape, window, padding, base, dilation, strict=True):
        dilated = (side - 1) * b + 1 if side else 0
        assume(dilated + lo + hi >= (w - 1) * r + 1)
    return window, strides, padding, base, dilation


@pytest.mark.parametrize("examples", PROFILES)
def test_reduce_window_geometry(examples):
    def check(data):
        shape = data.draw(shapes(1, 3, min_side=1), label="shape")
        name = data.draw(st.sampled_from(sorted(REDUCERS)), label="reducer")
        window, strides, padding, base, dilation = _window_geometry(data, shape)
        init, reducer = REDUCERS[name]

        def f(x):
            return lax.reduce_window(x, init, reducer, window, strides, padding, base, dilation)

        selects = name in ("max", "min")
        # JAX has no second derivative of a dilated max/min window, nor can it batch
        # the derivative of a custom reducer (which `jax.hessian` does).
        dilated = any(d > 1 for d in (*base, *dilation))
        check_rule(data, f, np.ones(shape), exact=not selects,
                   hessian=not (selects and dilated) and name != "prod")

    run_property(examples, check)


@pytest.mark.parametrize("examples", PROFILES)
def test_max_pool_derivatives(examples):
    def check(data):
        shape = data.draw(shapes(1, 2, min_side=1), label="shape")
        window, strides, padding, base, dilation = _window_geometry(data, shape)

        def pool(y, base=base, dilation=dilation):
            return lax.reduce_window(y, -np.inf, lax.max, window, strides, padding, base,
                                     dilation)

        def f(x):
            _, tangent = jax.jvp(pool, (x,), (jnp.sin(x),))  # select_and_gather_add
            # JAX transposes max windows only without dilation
            _, pull = jax.vjp(lambda y: pool(y, None, None), x)
            (cotangent,) = pull(jnp.cos(pool(x, None, None)))  # select_and_scatter_add
            return tangent, cotangent

        dilated = any(d > 1 for d in (*base, *dilation))
        check_rule(data, f, np.ones(shape), exact=False, hessian=not dilated)

    run_property(examples, check)


def _spec(data, letters, label):
    return "".join(data.draw(st.permutations(letters), label=label))


def _conv_case(data):
    spatial = "HW"[:data.draw(st.integers(1, 2), label="spatial rank")]
    lhs_spec = _spec(data, "NC" + spatial, "lhs spec")
    rhs_spec = _spec(data, "OI" + spatial, "rhs spec")
    out_spec = _spec(data, "NC" + spatial, "out spec")
    feature_groups = data.draw(st.integers(1, 2), label="feature_group_count")
    batch_groups = 1 if feature_groups > 1 else data.draw(st.integers(1, 2), label="batch groups")
    per_group = data.draw(st.integers(1, 2), label="input features per group")
    out_features = data.draw(st.integers(1, 2)) * feature_groups * batch_groups
    batch = data.draw(st.integers(0, 2)) * batch_groups
    if batch_groups > 1:
        batch = max(batch, batch_groups)
    sides = {s: data.draw(st.integers(1, 4)) for s in spatial}
    windows = {s: data.draw(st.integers(1, 3)) for s in spatial}
    lhs_sizes = {"N": batch, "C": per_group * feature_groups, **sides}
    rhs_sizes = {"O": out_features, "I": per_group, **windows}
    lhs_shape = tuple(lhs_sizes[c] for c in lhs_spec)
    rhs_shape = tuple(rhs_sizes[c] for c in rhs_spec)
    # the geometry is given in the order of the spatial letters in rhs_spec
    order = [c for c in rhs_spec if c in spatial]
    strides = tuple(data.draw(st.integers(1, 2)) for _ in order)
    padding = tuple((data.draw(st.integers(-1, 2)), data.draw(st.integers(-1, 2)))
                    for _ in order)
    lhs_dilation = tuple(data.draw(st.integers(1, 2)) for _ in order)
    rhs_dilation = tuple(data.draw(st.integers(1, 2)) for _ in order)
    for c, (lo, hi), b, r in zip(order, padding, lhs_dilation, rhs_dilation, strict=True):
        assume((sides[c] - 1) * b + 1 + lo + hi >= (windows[c] - 1) * r + 1)
    params = dict(
        window_strides=strides, padding=padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=(lhs_spec, rhs_spec, out_spec),
        feature_group_count=feature_groups, batch_group_count=batch_groups,
    )
    return lhs_shape, rhs_shape, params


def _operands(data, lhs_shape, rhs_shape):
    """Which operand is a known constant with zeros (if any), and the input size."""
    known = data.draw(st.sampled_from(["none", "lhs", "rhs"]), label="known operand")
    seed = data.draw(st.integers(0, 2**16), label="constant seed")
    rng = np.random.default_rng(seed)
    shape = lhs_shape if known == "lhs" else rhs_shape
    constant = rng.uniform(0.5, 1.5, shape) * (rng.uniform(size=shape) < 0.6)
    constant = jnp.asarray(constant, jnp.float32)
    lhs_size, rhs_size = math.prod(lhs_shape), math.prod(rhs_shape)

    def split(x):
        if known == "lhs":
            return constant, x.reshape(rhs_shape)
        if known == "rhs":
            return x.reshape(lhs_shape), constant
        return x[:lhs_size].reshape(lhs_shape), x[lhs_size:].reshape(rhs_shape)

    size = {"lhs": rhs_size, "rhs": lhs_size, "none": lhs_size + rhs_size}[known]
    return split, size


@pytest.mark.parametrize("examples", PROFILES)
def test_conv_dimension_numbers(examples):
    def check(data):
        lhs_shape, rhs_shape, params = _conv_case(data)
        split, size = _operands(data, lhs_shape, rhs_shape)

        def f(x):
            return lax.conv_general_dilated(*split(x), **params)

        check_rule(data, f, np.ones(size))

    run_property(examples, check)


@pytest.mark.parametrize("examples", PROFILES)
def test_dot_general_dimension_numbers(examples):
    def check(data):
        sides = st.integers(0, 3)
        batch = data.draw(st.lists(sides, max_size=2), label="batch sides")
        contract = data.draw(st.lists(sides, max_size=2), label="contracting sides")
        lhs_free = data.draw(st.lists(sides, max_size=2), label="lhs free sides")
        rhs_free = data.draw(st.lists(sides, max_size=2), label="rhs free sides")
        lhs_dims = [("b", i) for i in range(len(batch))] + [("c", i) for i in
                    range(len(contract))] + [("f", i) for i in range(len(lhs_free))]
        rhs_dims = [("b", i) for i in range(len(batch))] + [("c", i) for i in
                    range(len(contract))] + [("f", i) for i in range(len(rhs_free))]
        lhs_dims = data.draw(st.permutations(lhs_dims), label="lhs layout")
        rhs_dims = data.draw(st.permutations(rhs_dims), label="rhs layout")
        side = {"b": batch, "c": contract}
        lhs_shape = tuple({**side, "f": lhs_free}[k][i] for k, i in lhs_dims)
        rhs_shape = tuple({**side, "f": rhs_free}[k][i] for k, i in rhs_dims)
        dn = (
            (tuple(lhs_dims.index(("c", i)) for i in range(len(contract))),
             tuple(rhs_dims.index(("c", i)) for i in range(len(contract)))),
            (tuple(lhs_dims.index(("b", i)) for i in range(len(batch))),
             tuple(rhs_dims.index(("b", i)) for i in range(len(batch)))),
        )
        split, size = _operands(data, lhs_shape, rhs_shape)

        def f(x):
            return lax.dot_general(*split(x), dn)

        check_rule(data, f, np.ones(size))

    run_property(examples, check)
