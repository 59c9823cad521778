"""Contracts: the jaxpr layouts and XLA semantics that the indexing rules rely on.

If one of these fails after a JAX upgrade, the rules in
`asdex/detection/_rules/indexing/` must be revisited before the test is updated.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from asdex.detection import registered_primitives

GATHER_FIELDS = ("offset_dims", "collapsed_slice_dims", "start_index_map",
                 "operand_batching_dims", "start_indices_batching_dims")
SCATTER_FIELDS = ("update_window_dims", "inserted_window_dims", "scatter_dims_to_operand_dims",
                  "operand_batching_dims", "scatter_indices_batching_dims")
SCATTER_NAMES = {"set": "scatter", "add": "scatter-add", "subtract": "scatter-sub",
                 "mul": "scatter-mul", "min": "scatter-min", "max": "scatter-max"}


def only_eqn(f, *args, name):
    eqns = [e for e in jax.make_jaxpr(f)(*args).eqns if e.primitive.name == name]
    assert len(eqns) == 1, f"expected one '{name}' equation"
    return eqns[0]


def test_modes():
    assert {m.name for m in lax.GatherScatterMode} >= {"CLIP", "FILL_OR_DROP",
                                                       "PROMISE_IN_BOUNDS"}


def test_gather_layout():
    x, idx = jnp.zeros((3, 4, 5)), jnp.zeros((2, 6, 1), jnp.int32)
    eqn = only_eqn(lambda x, i: jax.vmap(lambda a, j: a[:, j[:, 0]])(x, i), x[:2], idx,
                   name="gather")
    operand, indices = eqn.invars
    params = eqn.params
    assert set(params) >= {"dimension_numbers", "slice_sizes", "mode", "fill_value"}
    dn = params["dimension_numbers"]
    assert tuple(dn._fields) == GATHER_FIELDS
    assert dn.operand_batching_dims and dn.start_indices_batching_dims
    assert isinstance(params["mode"], lax.GatherScatterMode)
    assert len(params["slice_sizes"]) == operand.aval.ndim
    # the index vector is the last axis of the indices
    assert indices.aval.shape[-1] == len(dn.start_index_map)


@pytest.mark.parametrize("method", sorted(SCATTER_NAMES))
def test_scatter_layout(method):
    x, idx = jnp.zeros(5), jnp.array([1, 1])
    eqn = only_eqn(lambda x, y: getattr(x.at[idx], method)(y), x, jnp.ones(2),
                   name=SCATTER_NAMES[method])
    assert len(eqn.invars) == 3  # operand, indices, updates
    indices = eqn.invars[1]
    params = eqn.params
    assert set(params) >= {"dimension_numbers", "mode", "update_jaxpr", "unique_indices"}
    assert tuple(params["dimension_numbers"]._fields) == SCATTER_FIELDS
    assert isinstance(params["mode"], lax.GatherScatterMode)
    assert indices.aval.shape[-1] == len(params["dimension_numbers"].scatter_dims_to_operand_dims)
    if method == "set":
        assert params["update_jaxpr"] is None


def test_scatter_apply_carries_an_update_jaxpr():
    dn = lax.ScatterDimensionNumbers((), (0,), (0,))
    eqn = only_eqn(lambda x: lax.scatter_apply(x, jnp.array([[1]]), jnp.sin, dn, update_shape=(1,)),
                   jnp.zeros(4), name="scatter")
    assert eqn.params["update_jaxpr"] is not None


def test_dynamic_slice_layouts():
    x = jnp.zeros((4, 5))
    eqn = only_eqn(lambda x, i: lax.dynamic_slice(x, (i, 1), (2, 3)), x, 0, name="dynamic_slice")
    assert len(eqn.invars) == 3 and tuple(eqn.params["slice_sizes"]) == (2, 3)
    eqn = only_eqn(lambda x, u, i: lax.dynamic_update_slice(x, u, (i, 1)), x,
                   jnp.zeros((2, 3)), 0, name="dynamic_update_slice")
    assert len(eqn.invars) == 4
    assert eqn.invars[1].aval.shape == (2, 3)


def test_rules_are_registered():
    names = {"gather", "dynamic_slice", "dynamic_update_slice", *SCATTER_NAMES.values()}
    assert names <= registered_primitives()


# --- XLA semantics the boxes model --------------------------------------------------------


def test_out_of_bounds_semantics():
    x = jnp.arange(6)
    dn = lax.GatherDimensionNumbers(offset_dims=(0,), collapsed_slice_dims=(),
                                    start_index_map=(0,))
    gather = lambda mode: lax.gather(x, jnp.array([4]), dn, (3,), mode=mode, fill_value=-1)  # noqa: E731
    # gathers clamp with CLIP and PROMISE_IN_BOUNDS; FILL_OR_DROP fills the whole window
    np.testing.assert_array_equal(gather("clip"), [3, 4, 5])
    np.testing.assert_array_equal(gather("promise_in_bounds"), [3, 4, 5])
    np.testing.assert_array_equal(gather("fill"), [-1, -1, -1])
    sdn = lax.ScatterDimensionNumbers(update_window_dims=(0,), inserted_window_dims=(),
                                      scatter_dims_to_operand_dims=(0,))
    scatter = lambda mode: lax.scatter(x, jnp.array([4]), -jnp.ones(3, int), sdn, mode=mode)  # noqa: E731
    # scatters clamp with CLIP; FILL_OR_DROP and PROMISE_IN_BOUNDS drop the whole window
    np.testing.assert_array_equal(scatter("clip"), [0, 1, 2, -1, -1, -1])
    np.testing.assert_array_equal(scatter("fill"), x)
    np.testing.assert_array_equal(scatter("promise_in_bounds"), x)
    # dynamic slices clamp
    np.testing.assert_array_equal(lax.dynamic_slice(x, (5,), (3,)), [3, 4, 5])
    np.testing.assert_array_equal(lax.dynamic_update_slice(x, -jnp.ones(2, int), (5,)),
                                  [0, 1, 2, 3, -1, -1])
