"""The gather/scatter rules against JAX itself, over random dimension numbers and modes.

For random geometries (batching dims, collapsed/inserted dims, windows, index order),
random per-element index bounds and every mode, the rule's dependency map must equal
the union, over every index array within the bounds, of the dependencies that JAX's own
gather/scatter produce for that index array.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax import lax

from asdex.detection import Equation, Operand
from asdex.detection._maps import apply_map, identity_pattern
from asdex.detection._registry import lookup
from asdex.detection._rules.indexing import boxes

MODES = [lax.GatherScatterMode.CLIP, lax.GatherScatterMode.FILL_OR_DROP,
         lax.GatherScatterMode.PROMISE_IN_BOUNDS]
SCATTERS = {
    "scatter": lax.scatter, "scatter-add": lax.scatter_add, "scatter-sub": lax.scatter_sub,
    "scatter-mul": lax.scatter_mul, "scatter-min": lax.scatter_min,
    "scatter-max": lax.scatter_max,
}


@dataclasses.dataclass(frozen=True)
class Geometry:
    shape: tuple[int, ...]
    offset_dims: tuple[int, ...]
    collapsed: tuple[int, ...]
    index_map: tuple[int, ...]
    operand_batching: tuple[int, ...]
    indices_batching: tuple[int, ...]
    slice_sizes: tuple[int, ...]
    batch_shape: tuple[int, ...]

    @property
    def gather_dnums(self):
        return lax.GatherDimensionNumbers(
            offset_dims=self.offset_dims, collapsed_slice_dims=self.collapsed,
            start_index_map=self.index_map, operand_batching_dims=self.operand_batching,
            start_indices_batching_dims=self.indices_batching)

    @property
    def scatter_dnums(self):
        return lax.ScatterDimensionNumbers(
            update_window_dims=self.offset_dims, inserted_window_dims=self.collapsed,
            scatter_dims_to_operand_dims=self.index_map,
            operand_batching_dims=self.operand_batching,
            scatter_indices_batching_dims=self.indices_batching)

    @property
    def indices_shape(self):
        return (*self.batch_shape, len(self.index_map))

    @property
    def limits(self):
        return [self.shape[d] - self.slice_sizes[d] for d in self.index_map]

    def gather(self, operand, indices, mode):
        return lax.gather(operand, indices, self.gather_dnums, self.slice_sizes, mode=mode,
                          fill_value=-1 if jnp.issubdtype(operand.dtype, jnp.integer) else None)

    @property
    def window_shape(self):
        spec = jax.eval_shape(lambda o, i: self.gather(o, i, MODES[0]),
                              jax.ShapeDtypeStruct(self.shape, jnp.float32),
                              jax.ShapeDtypeStruct(self.indices_shape, jnp.int32))
        return spec.shape


@st.composite
def geometries(draw):
    rank = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    order = draw(st.permutations(range(rank)))
    n_batching = draw(st.integers(0, min(1, rank - 1)))
    n_index = draw(st.integers(1, rank - n_batching))
    operand_batching = tuple(sorted(order[:n_batching]))
    index_map = tuple(order[n_batching:n_batching + n_index])
    collapsed = tuple(sorted(d for d in index_map if draw(st.booleans())))
    slice_sizes = tuple(
        1 if d in operand_batching or d in collapsed else draw(st.integers(1, shape[d]))
        for d in range(rank)
    )
    extra = draw(st.lists(st.integers(1, 3), max_size=2))
    dims = [*extra, *(shape[d] for d in operand_batching)]
    perm = draw(st.permutations(range(len(dims))))
    batch_shape = tuple(dims[p] for p in perm)
    indices_batching = tuple(perm.index(len(extra) + k) for k in range(n_batching))
    n_window = rank - len(collapsed) - n_batching
    out_rank = len(batch_shape) + n_window
    offset_dims = tuple(sorted(draw(st.permutations(range(out_rank)))[:n_window]))
    return Geometry(shape, offset_dims, collapsed, index_map, operand_batching,
                    indices_batching, slice_sizes, batch_shape)


def index_bounds(geometry, rng, known, unknown):
    """Random per-element bounds around (and past) the in-bounds starts."""
    if unknown:
        return None
    limits = np.array(geometry.limits)
    lower = rng.integers(-2, limits + 2, size=geometry.indices_shape)
    width = 0 if known else rng.integers(0, 3, size=geometry.indices_shape)
    return lower, lower + width


def index_arrays(geometry, bounds):
    """Index arrays that together take every value within the bounds, per element."""
    if bounds is None:
        lower = np.broadcast_to(np.full(len(geometry.index_map), -1), geometry.indices_shape)
        upper = np.broadcast_to(np.array(geometry.limits) + 1, geometry.indices_shape)
    else:
        lower, upper = bounds
    widest = int((upper - lower).max()) + 1
    for shift in itertools.product(range(widest), repeat=len(geometry.index_map)):
        yield np.minimum(lower + np.array(shift), upper).astype(np.int32)


def gather_oracle(geometry, indices, mode):
    size = math.prod(geometry.shape)
    ids = jnp.arange(size, dtype=jnp.int32).reshape(geometry.shape)
    moved = np.asarray(geometry.gather(ids, indices, mode)).reshape(-1)
    dense = np.zeros((moved.size, size), bool)
    dense[np.nonzero(moved >= 0)[0], moved[moved >= 0]] = True
    return dense


def landing_oracle(geometry, indices, mode):
    """`[position, update element]`: whether the update element lands on the position."""
    m = math.prod(geometry.window_shape)
    one_hot = jnp.eye(m, dtype=jnp.int32).reshape(m, *geometry.window_shape)
    scatter = jax.vmap(lambda u: lax.scatter_add(
        jnp.zeros(geometry.shape, jnp.int32), indices, u, geometry.scatter_dnums, mode=mode))
    return np.asarray(scatter(one_hot)).reshape(m, -1).T != 0


def survivor_oracle(geometry, indices, mode):
    size = math.prod(geometry.shape)
    ids = jnp.arange(size, dtype=jnp.int32).reshape(geometry.shape)
    out = lax.scatter(ids, indices, jnp.full(geometry.window_shape, -1, jnp.int32),
                      geometry.scatter_dnums, mode=mode)
    return np.diag(np.asarray(out).reshape(-1) >= 0)


CASES = st.sampled_from(["known", "bounded", "unknown"])
FAST = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(geometries(), st.sampled_from(MODES), CASES, st.integers(0, 2**32 - 1))
def test_gather_equals_union_over_indices(geometry, mode, case, seed):
    bounds = index_bounds(geometry, np.random.default_rng(seed), case == "known",
                          case == "unknown")
    size = math.prod(geometry.shape)
    expected = None
    for indices in index_arrays(geometry, bounds):
        dense = gather_oracle(geometry, indices, mode)
        expected = dense if expected is None else expected | dense
    fn = lambda o, i: geometry.gather(o, i, mode)  # noqa: E731
    (eqn,) = jax.make_jaxpr(fn)(jnp.zeros(geometry.shape),
                                jnp.zeros(geometry.indices_shape, jnp.int32)).eqns
    got = _rule_dense(eqn, geometry, bounds, 0, expected.shape[0], size)
    np.testing.assert_array_equal(got, expected)
    if case == "known":  # with a known value, the rule evaluates JAX on ids instead
        got = _rule_dense(eqn, geometry, bounds, 0, expected.shape[0], size, known=True)
        np.testing.assert_array_equal(got, expected)


@FAST
@given(geometries(), st.sampled_from(MODES), CASES, st.integers(0, 2**32 - 1))
def test_gather_value_bounds_are_tight(geometry, mode, case, seed):
    rng = np.random.default_rng(seed)
    bounds = index_bounds(geometry, rng, case == "known", case == "unknown")
    values = rng.integers(-5, 6, size=geometry.shape).astype(np.int32)
    gathered = np.stack([np.asarray(geometry.gather(jnp.asarray(values), indices, mode))
                         for indices in index_arrays(geometry, bounds)])
    fn = lambda o, i: geometry.gather(o, i, mode)  # noqa: E731
    (eqn,) = jax.make_jaxpr(fn)(values, jnp.zeros(geometry.indices_shape, jnp.int32)).eqns
    equation = _equation(eqn, geometry, bounds, known=case == "known")
    operands = (Operand(geometry.shape, np.dtype(np.int32), value=values), equation.operands[1])
    equation = dataclasses.replace(equation, operands=operands, out_dtypes=(np.dtype(np.int32),))
    (output,) = lookup(eqn.primitive).rule(equation)
    np.testing.assert_array_equal(output.lower, gathered.min(0))
    np.testing.assert_array_equal(output.upper, gathered.max(0))


@FAST
@given(geometries(), st.sampled_from(MODES), CASES, st.sampled_from(sorted(SCATTERS)),
       st.integers(0, 2**32 - 1))
def test_scatter_equals_union_over_indices(geometry, mode, case, name, seed):
    bounds = index_bounds(geometry, np.random.default_rng(seed), case == "known",
                          case == "unknown")
    size = math.prod(geometry.shape)
    m = math.prod(geometry.window_shape)
    landing = np.zeros((size, m), bool)
    survives = np.zeros((size, size), bool)
    for indices in index_arrays(geometry, bounds):
        landing |= landing_oracle(geometry, indices, mode)
        survives |= survivor_oracle(geometry, indices, mode)
    fn = lambda o, i, u: SCATTERS[name](o, i, u, geometry.scatter_dnums, mode=mode)  # noqa: E731
    (eqn,) = jax.make_jaxpr(fn)(jnp.zeros(geometry.shape),
                                jnp.zeros(geometry.indices_shape, jnp.int32),
                                jnp.zeros(geometry.window_shape)).eqns
    np.testing.assert_array_equal(_rule_dense(eqn, geometry, bounds, 2, size, m), landing)
    operand = _rule_dense(eqn, geometry, bounds, 0, size, size)
    if name != "scatter":
        np.testing.assert_array_equal(operand, np.eye(size, dtype=bool))
    elif case == "known" or math.prod(geometry.batch_shape) == 1:
        np.testing.assert_array_equal(operand, survives)
    else:  # one shared shift per index array does not reach every joint assignment
        assert (operand >= survives).all()


@pytest.mark.parametrize("full", [False, True])
def test_too_large_boxes_fall_back_to_groups(monkeypatch, full):
    geometry = Geometry((4, 5), (), (1,), (1,), (0,), (0,), (1, 1), (4,))
    lower = np.full((4, 1), 0 if full else 1)
    upper = np.full((4, 1), 4 if full else 2)
    fn = lambda o, i: geometry.gather(o, i, MODES[0])  # noqa: E731
    (eqn,) = jax.make_jaxpr(fn)(jnp.zeros((4, 5)), jnp.zeros((4, 1), jnp.int32)).eqns
    exact = _rule_dense(eqn, geometry, (lower, upper), 0, 4, 20)
    monkeypatch.setattr(boxes, "MAX_BOX_ENTRIES", 0)
    coarse = _rule_dense(eqn, geometry, (lower, upper), 0, 4, 20)
    rows = np.kron(np.eye(4, dtype=bool), np.ones((1, 5), bool))
    np.testing.assert_array_equal(coarse, rows)  # row-local, whole rows
    np.testing.assert_array_equal(exact, rows if full else rows & (np.arange(20) % 5 < 3)
                                  & (np.arange(20) % 5 > 0))


def _equation(eqn, geometry, bounds, known=False):
    lower, upper = (None, None) if bounds is None else bounds
    value = lower.astype(np.int32) if known else None
    operands = [Operand(tuple(v.aval.shape), v.aval.dtype) for v in eqn.invars]
    operands[1] = Operand(geometry.indices_shape, np.dtype(np.int32), value=value,
                          lower=lower, upper=upper)
    return Equation(eqn.primitive, dict(eqn.params), tuple(operands),
                    (tuple(eqn.outvars[0].aval.shape),), (np.dtype(np.float32),))


def _dense(dependency, out_size, n):
    if dependency is None:
        return np.zeros((out_size, n), bool)
    return apply_map(dependency, identity_pattern(0, n, n), out_size).toarray()


def _rule_dense(eqn, geometry, bounds, operand_index, out_size, n, known=False):
    (output,) = lookup(eqn.primitive).rule(_equation(eqn, geometry, bounds, known))
    return _dense(dict(output.maps).get(operand_index), out_size, n)
