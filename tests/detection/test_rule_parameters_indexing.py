"""Gather, scatter and dynamic slices with random dimension numbers, modes and indices.

Indices are known (constants), unknown (a non-differentiated argument, drawn anew at
every point) or bounded (that argument clipped to constant bounds). Known indices must
give the numeric pattern exactly; the others a superset of it at every drawn index.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st
from jax import lax
from rule_checks import PROFILES, check_rule, run_property

import asdex

Mode = lax.GatherScatterMode
MODES = {"clip": Mode.CLIP, "fill": Mode.FILL_OR_DROP, "promise": Mode.PROMISE_IN_BOUNDS}
KINDS = ("known", "unknown", "bounded")


def _subset(data, items, label, ordered=False, max_size=None):
    chosen = data.draw(st.lists(st.sampled_from(items), unique=True, max_size=max_size)
                       if items else st.just([]), label=label)
    return chosen if ordered else sorted(chosen)


def _index_source(data, shape, limits, mode):
    """Index values of `shape` whose last axis runs over `limits` (highest in-bounds start).

    Returns the kind and a function `(x, *extras) -> indices`, and the extras' sampler.
    """
    kind = data.draw(st.sampled_from(KINDS), label="indices")
    limits = np.asarray(limits, np.int64)
    slack = 0 if mode == "promise" else 2
    low, high = -slack, limits + slack

    def draw_values(rng):
        return (rng.integers(low, high + 1, shape) if math.prod(shape) else
                np.zeros(shape, np.int64)).astype(np.int32)

    if kind == "known":
        seed = data.draw(st.integers(0, 2**16), label="index seed")
        values = jnp.asarray(draw_values(np.random.default_rng(seed)))
        return kind, (lambda *extras: values), None
    if kind == "unknown":
        return kind, (lambda idx: idx), (lambda rng: (draw_values(rng),))
    lo = data.draw(st.integers(-slack, 1), label="lower bound")
    width = data.draw(st.integers(0, 2), label="bound width")

    def clipped(idx):
        return jnp.clip(idx, lo, jnp.minimum(lo + width, jnp.asarray(high, jnp.int32)))

    return kind, clipped, (lambda rng: (draw_values(rng),))


def gather_case(data):
    """Operand shape, indices shape, dimension numbers and slice sizes of a valid gather."""
    rank = data.draw(st.integers(1, 3), label="operand rank")
    shape = list(data.draw(st.lists(st.integers(0, 4), min_size=rank, max_size=rank),
                           label="operand shape"))
    dims = list(range(rank))
    batching = _subset(data, dims, "operand_batching_dims", max_size=2)
    for d in batching:
        shape[d] = max(shape[d], 1)
    rest = [d for d in dims if d not in batching]
    index_map = _subset(data, rest, "start_index_map", ordered=True)
    collapsed = _subset(data, [d for d in rest if shape[d] >= 1], "collapsed_slice_dims")
    sizes = [1 if d in batching or d in collapsed else data.draw(st.integers(0, shape[d]))
             for d in dims]
    batch_rank = data.draw(st.integers(len(batching), len(batching) + 2), label="batch rank")
    batch_shape = [data.draw(st.integers(0, 3)) for _ in range(batch_rank)]
    positions = data.draw(st.permutations(range(batch_rank)), label="indices batching")
    index_batching = list(positions[:len(batching)])
    for d, p in zip(batching, index_batching, strict=True):
        batch_shape[p] = shape[d]
    offset_count = rank - len(collapsed) - len(batching)
    offset_dims = sorted(data.draw(st.permutations(range(batch_rank + offset_count)))
                         [:offset_count])
    dn = lax.GatherDimensionNumbers(
        offset_dims=tuple(offset_dims), collapsed_slice_dims=tuple(collapsed),
        start_index_map=tuple(index_map), operand_batching_dims=tuple(batching),
        start_indices_batching_dims=tuple(index_batching),
    )
    limits = [shape[d] - sizes[d] for d in index_map]
    return tuple(shape), (*batch_shape, len(index_map)), dn, tuple(sizes), limits


@pytest.mark.parametrize("examples", PROFILES)
def test_gather_dimension_numbers(examples):
    def check(data):
        shape, indices_shape, dn, sizes, limits = gather_case(data)
        mode = data.draw(st.sampled_from(sorted(MODES)), label="mode")
        kind, indices, extras = _index_source(data, indices_shape, limits, mode)

        def f(x, *more):
            return lax.gather(x, indices(*more), dn, sizes, mode=MODES[mode])

        check_rule(data, f, np.ones(shape), extras, exact=kind == "known")

    run_property(examples, check)


def scatter_case(data, single: bool):
    """Operand shape, indices and updates shapes and dimension numbers of a valid scatter.

    With `single`, the indices hold one index vector (their batch sides are 1).
    """
    rank = data.draw(st.integers(1, 3), label="operand rank")
    shape = list(data.draw(st.lists(st.integers(0, 4), min_size=rank, max_size=rank),
                           label="operand shape"))
    dims = list(range(rank))
    batching = _subset(data, dims, "operand_batching_dims", max_size=2)
    for d in batching:
        shape[d] = 1 if single else max(shape[d], 1)
    rest = [d for d in dims if d not in batching]
    index_map = _subset(data, rest, "scatter_dims_to_operand_dims", ordered=True)
    inserted = _subset(data, [d for d in rest if shape[d] >= 1], "inserted_window_dims")
    window_dims = [d for d in rest if d not in inserted]
    window = {d: data.draw(st.integers(0, shape[d])) for d in window_dims}
    batch_rank = data.draw(st.integers(len(batching), len(batching) + 2), label="batch rank")
    batch_shape = [1 if single else data.draw(st.integers(0, 3)) for _ in range(batch_rank)]
    positions = data.draw(st.permutations(range(batch_rank)), label="indices batching")
    index_batching = list(positions[:len(batching)])
    for d, p in zip(batching, index_batching, strict=True):
        batch_shape[p] = shape[d]
    updates_rank = batch_rank + len(window_dims)
    window_axes = sorted(data.draw(st.permutations(range(updates_rank)))[:len(window_dims)])
    updates_shape, scatter_sides = [], iter(batch_shape)
    window_sides = iter(window[d] for d in window_dims)
    for a in range(updates_rank):
        updates_shape.append(next(window_sides) if a in window_axes else next(scatter_sides))
    dn = lax.ScatterDimensionNumbers(
        update_window_dims=tuple(window_axes), inserted_window_dims=tuple(inserted),
        scatter_dims_to_operand_dims=tuple(index_map), operand_batching_dims=tuple(batching),
        scatter_indices_batching_dims=tuple(index_batching),
    )
    limits = [shape[d] - window.get(d, 1) for d in index_map]
    return tuple(shape), (*batch_shape, len(index_map)), tuple(updates_shape), dn, limits


SCATTERS = {
    "set": lax.scatter, "add": lax.scatter_add, "sub": lax.scatter_sub,
    "mul": lax.scatter_mul, "min": lax.scatter_min, "max": lax.scatter_max,
}


@pytest.mark.parametrize("examples", PROFILES)
def test_scatter_dimension_numbers(examples):
    def check(data):
        op = data.draw(st.sampled_from(sorted(SCATTERS)), label="op")
        # JAX differentiates scatter-mul only for unique indices: give it one.
        single = op == "mul"
        shape, indices_shape, updates_shape, dn, limits = scatter_case(data, single)
        mode = data.draw(st.sampled_from(sorted(MODES)), label="mode")
        kind, indices, extras = _index_source(data, indices_shape, limits, mode)
        size = math.prod(shape)

        def f(x, *more):
            operand = x[:size].reshape(shape)
            updates = x[size:].reshape(updates_shape)
            return SCATTERS[op](operand, indices(*more), updates, dn, mode=MODES[mode],
                                unique_indices=single)

        # Plain scatter with repeated indices keeps one of the colliding updates (which
        # one is up to the backend); min/max select. XLA on CPU also keeps only one of the
        # updates that collide when the index vector is empty, even for add: detection
        # follows the StableHLO semantics there, a superset of what XLA computes.
        collisions_dropped = not dn.scatter_dims_to_operand_dims and math.prod(
            indices_shape[:-1]) > 1
        exact = kind == "known" and op in ("add", "sub", "mul") and not collisions_dropped
        check_rule(data, f, np.ones(size + math.prod(updates_shape)), extras,
                   exact=exact, hessian_exact=exact)

    run_property(examples, check)


@pytest.mark.parametrize("examples", PROFILES)
def test_dynamic_slice_and_update(examples):
    def check(data):
        shape = data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple),
                          label="shape")
        sizes = tuple(data.draw(st.integers(0, side)) for side in shape)
        kind, starts, extras = _index_source(
            data, (len(shape),), [s - w for s, w in zip(shape, sizes, strict=True)], "clip")
        size, window = math.prod(shape), math.prod(sizes)

        def f(x, *more):
            operand = x[:size].reshape(shape)
            update = x[size:].reshape(sizes)
            index = starts(*more)
            begin = [index[d] for d in range(len(shape))]
            return (lax.dynamic_slice(operand, begin, sizes),
                    lax.dynamic_update_slice(operand, update, begin))

        check_rule(data, f, np.ones(size + window), extras, exact=kind == "known")

    run_property(examples, check)


@pytest.mark.parametrize(
    ("operand_size", "updates_shape", "window_axes", "inserted"),
    [(2, (2,), (), (0,)), (3, (3,), (), (0,)), (1, (1, 2), (0,), ())],
)
def test_scatter_add_without_index_vector_contains_what_xla_computes(
    operand_size, updates_shape, window_axes, inserted
):
    # XLA on CPU lays colliding updates out elementwise or keeps one of them here.
    dn = lax.ScatterDimensionNumbers(
        update_window_dims=window_axes, inserted_window_dims=inserted,
        scatter_dims_to_operand_dims=(),
    )
    scatter_positions = math.prod(updates_shape) // (1 if not window_axes else updates_shape[0])
    indices = jnp.zeros((scatter_positions, 0), jnp.int32)

    def f(x):
        updates = x[operand_size:].reshape(updates_shape)
        return lax.scatter_add(x[:operand_size], indices, updates, dn)

    x = np.arange(1.0, 1.0 + operand_size + math.prod(updates_shape), dtype=np.float32)
    numeric = np.asarray(jax.jit(jax.jacfwd(f))(x)) != 0
    detected = asdex.jacobian_sparsity(f, x).todense().astype(bool)
    assert not (numeric & ~detected).any()
