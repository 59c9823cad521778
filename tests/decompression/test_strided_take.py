"""Constant-index reads as strided slices: always equal to the gather they replace."""

import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from asdex.decompression._gather import MAX_PERIOD, periodic_strides, strided_take


@st.composite
def periodic_indices(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    period = draw(st.integers(1, MAX_PERIOD))
    count = draw(st.integers(2, 6))
    starts = np.array(draw(st.lists(st.integers(0, 20), min_size=period, max_size=period)))
    strides = np.array(draw(st.lists(st.integers(0, 5), min_size=period, max_size=period)))
    indices = (starts + np.arange(count)[:, None] * strides).reshape(-1)
    return indices, int(indices.max()) + 1


@settings(max_examples=12, deadline=None)
@given(periodic_indices())
def test_periodic_indices_are_found_and_read_as_the_gather_reads_them(case):
    indices, size = case
    flat = jnp.arange(size, dtype=jnp.float32) * 3.0 + 1.0
    starts, strides = periodic_strides(indices)
    table = indices.reshape(-1, starts.size)
    np.testing.assert_array_equal(table, starts + np.arange(table.shape[0])[:, None] * strides)
    np.testing.assert_array_equal(strided_take(flat, indices), flat[indices])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=60))
def test_any_indices_read_as_the_gather_reads_them(indices):
    indices = np.array(indices)
    flat = jnp.arange(31, dtype=jnp.float32) - 7.0
    np.testing.assert_array_equal(strided_take(flat, indices), flat[indices])


def test_aperiodic_and_decreasing_indices_have_no_strides():
    assert periodic_strides(np.array([0, 1, 3, 7, 8, 9, 2, 5])) is None
    assert periodic_strides(np.arange(40)[::-1]) is None


def test_the_smallest_period_is_found():
    starts, strides = periodic_strides(np.array([0, 8, 8, 9, 2, 10, 10, 11, 4, 12, 12, 13]))
    np.testing.assert_array_equal(starts, [0, 8, 8, 9])
    np.testing.assert_array_equal(strides, [2, 2, 2, 2])
