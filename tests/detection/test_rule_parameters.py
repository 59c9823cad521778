"""Data movement, reductions, cumulative ops and sorting with random shapes and parameters.

Every family draws its shapes (zero sides included) and the parameters that reorder or
select elements at random, and compares the detected Jacobian and Hessian patterns
with the numeric ones of `jax.jacfwd` / `jax.hessian` (see `rule_checks`).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st
from jax import lax
from rule_checks import PROFILES, check_rule, run_property, shapes


def _factor_shape(data: st.DataObject, size: int, max_rank: int = 4) -> tuple[int, ...]:
    """A random shape with `size` elements."""
    rank = data.draw(st.integers(1, max_rank), label="rank")
    if size == 0:
        sides = data.draw(st.lists(st.integers(0, 3), min_size=rank, max_size=rank))
        sides[data.draw(st.integers(0, rank - 1))] = 0
        return tuple(sides)
    sides = [1] * rank
    factor, rest = 2, size
    while rest > 1:
        while rest % factor == 0:
            sides[data.draw(st.integers(0, rank - 1))] *= factor
            rest //= factor
        factor += 1
    return tuple(sides)


@pytest.mark.parametrize("examples", PROFILES)
def test_reshape_dimensions(examples):
    def check(data):
        shape = data.draw(shapes(1, 4), label="shape")
        dims = data.draw(st.none() | st.permutations(range(len(shape))).map(tuple), label="dims")
        new = _factor_shape(data, math.prod(shape))
        check_rule(data, lambda x: lax.reshape(x, new, dimensions=dims), np.ones(shape))

    run_property(examples, check)


@pytest.mark.parametrize("examples", PROFILES)
def test_transpose_and_rev(examples):
    def check(data):
        shape = data.draw(shapes(1, 4), label="shape")
        perm = data.draw(st.permutations(range(len(shape))).map(tuple), label="perm")
        flips = data.draw(st.sets(st.integers(0, len(shape) - 1)).map(sorted), label="rev")
        check_rule(data, lambda x: lax.rev(lax.transpose(x, perm), flips), np.ones(shape))

    run_property(examples, check)


@pytest.mark.parametrize("examples", PROFILES)
def test_broadcast_squeeze_expand(examples):
    def check(data):
        shape = data.draw(shapes(0, 3, max_side=3), label="shape")
        rank = data.draw(st.integers(len(shape), len(shape) + 2), label="out rank")
        dims = sorted(data.draw(st.sets(st.integers(0, max(rank - 1, 0)), min_size=len(shape),
                                        max_size=len(shape)), label="broadcast_dimensions"))
        out = [data.draw(st.integers(0, 3)) for _ in range(rank)]
        for side, d in zip(shape, dims, strict=True):
            if side != 1 or data.draw(st.booleans(), label="keep 1"):
                out[d] = side
        ones = [d for d in range(rank) if out[d] == 1]
        squeezed = data.draw(st.sets(st.sampled_from(ones)) if ones else st.just(set()))
        expanded = data.draw(st.sets(st.integers(0, rank - len(squeezed))), label="expand")

        def f(x):
            y = lax.broadcast_in_dim(x, tuple(out), tuple(dims))
            y = lax.squeeze(y, tuple(sorted(squeezed)))
            return lax.expand_dims(y, tuple(sorted(expanded)))

        check_rule(data, f, np.ones(shape))

    run_property(examples, check)


@pytest.mark.parametrize("examples", PROFILES)
def test_slice_strides(examples):
    def check(data):
        shape = data.draw(shapes(1, 3, max_side=6), label="shape")
        starts, limits, strides = [], [], []
        for side in shape:
            a = data.draw(st.integers(0, side))
            starts.append(a)
            limits.append(data.draw(st.integers(a, side)))
            strides.append(data.draw(st.integers(1, 3)))
        check_rule(data, lambda x: lax.slice(x, starts, limits, strides), np.ones(shape))

    run_property(examples, check)


@pytest.mark.parametrize("examples", PROFILES)
def test_pad_negative_and_interior(examples):
    def check(data):
        shape = data.draw(shapes(1, 3), label="shape")
        config = []
        for side in shape:
            interior = data.draw(st.integers(0, 2))
            dilated = max(side + (side - 1) * interior, 0)
            lo = data.draw(st.integers(-dilated, 3))
            hi = data.draw(st.integers(-(dilated + min(lo, 0)), 3))
            config.append((lo, hi, interior))
        traced_value = data.draw(st.booleans(), label="padding value depends on x")

        def f(x):
            value = jnp.sum(x) * 0.5 + 1.0 if traced_value else 2.0
            return lax.pad(x, jnp.asarray(value, x.dtype), config)

        check_rule(data, f, np.ones(shape))

    run_property(examples, check)


@pytest.mark.parametrize("examples", PROFILES)
def test_concatenate_split_stack_tile(examples):
    def check(data):
        shape = data.draw(shapes(1, 3), label="shape")
        axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
        sizes = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3), label="sizes")
        constant = data.draw(st.lists(st.booleans(), min_size=len(sizes), max_size=len(sizes)),
                             label="constant operands")
        part_shapes = [(*shape[:axis], size, *shape[axis + 1:]) for size in sizes]
        total = sum(sizes)
        cuts = sorted(data.draw(st.lists(st.integers(0, total), max_size=3), label="cuts"))
        pieces = np.diff([0, *cuts, total]).tolist()
        stack_axis = data.draw(st.integers(0, len(shape)), label="stack axis")
        reps = data.draw(st.lists(st.integers(0, 2), min_size=len(shape), max_size=len(shape)),
                         label="reps")
        n = sum(math.prod(s) for s, c in zip(part_shapes, constant, strict=True) if not c)

        def f(x):
            parts, offset = [], 0
            for part_shape, const in zip(part_shapes, constant, strict=True):
                size = math.prod(part_shape)
                if const:
                    parts.append(jnp.full(part_shape, 3.0))
                else:
                    parts.append(x[offset:offset + size].reshape(part_shape))
                    offset += size
            joined = lax.concatenate(parts, axis)
            stacked = jnp.stack([joined, 2.0 * joined], axis=stack_axis)
            return (*lax.split(joined, pieces, axis=axis), stacked,
                    *jnp.unstack(joined, axis=axis), jnp.tile(joined, reps))

        check_rule(data, f, np.ones(n))

    run_property(examples, check)


CUMULATIVE = {
    "cumsum": lax.cumsum,
    "cumprod": lax.cumprod,
    "cummax": lax.cummax,
    "cummin": lax.cummin,
    "cumlogsumexp": lax.cumlogsumexp,
}


@pytest.mark.parametrize("examples", PROFILES)
def test_cumulative_axis_and_reverse(examples):
    def check(data):
        shape = data.draw(shapes(1, 3), label="shape")
        name = data.draw(st.sampled_from(sorted(CUMULATIVE)), label="op")
        axis = data.draw(st.integers(0, len(shape) - 1), label="axis")
        reverse = data.draw(st.booleans(), label="reverse")
        # cummax/cummin select one element per result: the Hessian of a curved sum
        # couples only that element, detection couples the whole prefix.
        selects = name in ("cummax", "cummin")
        check_rule(data, lambda x: CUMULATIVE[name](x, axis=axis, reverse=reverse), np.ones(shape),
                   exact=not selects)

    run_property(examples, check)


@pytest.mark.parametrize("examples", PROFILES)
def test_sort_dimension_and_keys(examples):
    def check(data):
        shape = data.draw(shapes(1, 3), label="shape")
        dimension = data.draw(st.integers(0, len(shape) - 1), label="dimension")
        count = data.draw(st.integers(1, 3), label="operands")
        num_keys = data.draw(st.integers(1, count), label="num_keys")

        def f(x):
            operands = tuple(jnp.sin((k + 1) * x) for k in range(count))
            return lax.sort(operands, dimension=dimension, num_keys=num_keys)

        check_rule(data, f, np.ones(shape), exact=False)

    run_property(examples, check)


TOP_K = {
    "top_k": lambda x, k, axis: lax.top_k(x, k, axis=axis)[0],
    "approx_max_k": lambda x, k, axis: lax.approx_max_k(x, k, reduction_dimension=axis)[0],
    "approx_min_k": lambda x, k, axis: lax.approx_min_k(x, k, reduction_dimension=axis)[0],
}


@pytest.mark.parametrize("examples", PROFILES)
def test_top_k_axis(examples):
    def check(data):
        shape = data.draw(shapes(1, 3), label="shape")
        axis = data.draw(st.integers(-len(shape), len(shape) - 1), label="axis")
        name = data.draw(st.sampled_from(sorted(TOP_K)), label="op")
        if name != "top_k" and shape[axis] == 0:
            name = "top_k"  # approx_*_k wants k >= 1
        k = data.draw(st.integers(0 if name == "top_k" else 1, shape[axis]), label="k")
        check_rule(data, lambda x: TOP_K[name](x, k, axis), np.ones(shape), exact=False)

    run_property(examples, check)


REDUCTIONS = {"sum": jnp.sum, "max": jnp.max, "min": jnp.min, "prod": jnp.prod}


@pytest.mark.parametrize("examples", PROFILES)
def test_reductions_axes(examples):
    def check(data):
        shape = data.draw(shapes(1, 3), label="shape")
        name = data.draw(st.sampled_from(sorted(REDUCTIONS)), label="op")
        axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1)), label="axes")))
        if name in ("max", "min") and any(shape[a] == 0 for a in axes):
            axes = tuple(a for a in axes if shape[a] != 0)

        check_rule(data, lambda x: REDUCTIONS[name](x, axis=axes), np.ones(shape),
                   exact=name in ("sum", "prod"))

    run_property(examples, check)


@pytest.mark.parametrize("examples", PROFILES)
def test_generic_reduce_and_argmax(examples):
    def check(data):
        shape = data.draw(shapes(1, 3, min_side=1), label="shape")
        axis = data.draw(st.integers(0, len(shape) - 1), label="axis")

        def f(x):
            y = lax.reduce((x, 2.0 * x), (jnp.float32(0.0), jnp.float32(1.0)),
                           lambda a, b: (a[0] + b[0], a[1] * b[1]), (axis,))
            picked = jnp.take_along_axis(x, jnp.expand_dims(jnp.argmax(x, axis), axis), axis)
            return (*y, picked)

        check_rule(data, f, np.ones(shape), exact=False)

    run_property(examples, check)
