"""Rows are empty where a result is constant because a known value makes it so.

`c / x` where `c` is a known zero, `x ** 0`, `lax.integer_pow(x, 0)`, `0 * x`, and
`c ** y` where the base is a known 0 or 1: the Jacobian rows (and Hessian entries)
there must be empty, as `jax.jacfwd` / `jax.hessian` find them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st
from jax import lax
from rule_checks import PROFILES, check_rule, run_property

import asdex


def _known(data, size, label):
    """A constant with zeros, ones and other values, and a way of building it in JAX."""
    values = np.asarray(data.draw(st.lists(st.sampled_from([0.0, 1.0, 2.0, -0.5]),
                                           min_size=size, max_size=size), label=label),
                        np.float32)
    built = data.draw(st.sampled_from(["literal", "scatter", "where"]), label=f"{label} built by")

    def constant():
        if built == "literal":
            return jnp.asarray(values)
        if built == "scatter":
            nonzero = np.flatnonzero(values)
            return jnp.zeros(size).at[nonzero].set(values[nonzero])
        return jnp.where(jnp.arange(size) % 1 == 0, jnp.asarray(values), 7.0)

    return values, constant


CASES = {
    "c / x": lambda c, x: c / x,
    "c / x broadcast": lambda c, x: c[:, None] / x[None, :],
    "0 * x": lambda c, x: (c * 0.0) * x,
    "c * x": lambda c, x: c * x,
    "x * c": lambda c, x: x * c,
    "x ** c": lambda c, x: jnp.abs(x) ** c,
    "c ** x": lambda c, x: jnp.abs(c) ** x,
    "x ** 0": lambda c, x: x**0,
    "x ** 0.0": lambda c, x: x**0.0,
    "integer_pow(x, 0)": lambda c, x: lax.integer_pow(x, 0) * c,
    "exp(c / x)": lambda c, x: jnp.exp(c / x),
}


@pytest.mark.parametrize("examples", PROFILES)
def test_known_zero_values_give_empty_rows(examples):
    def check(data):
        size = data.draw(st.integers(0, 5), label="size")
        name = data.draw(st.sampled_from(sorted(CASES)), label="case")
        _, constant = _known(data, size, "c")

        check_rule(data, lambda x: CASES[name](constant(), x), np.ones(size))

    run_property(examples, check)


def _rows(pattern):
    return pattern.todense().astype(bool).any(axis=1)


def test_quotient_rows_follow_the_zeros_of_the_numerator():
    c = jnp.array([0.0, 1.0, 0.0, 2.0])
    x = jnp.ones(4)
    rows = _rows(asdex.jacobian_sparsity(lambda x: c / x, x))
    np.testing.assert_array_equal(rows, [False, True, False, True])
    numeric = np.asarray(jax.jacfwd(lambda x: c / x)(x + 0.5)) != 0
    np.testing.assert_array_equal(rows, numeric.any(axis=1))


def test_zero_powers_are_constant():
    x = jnp.ones(3)
    for f in (lambda x: x**0, lambda x: lax.integer_pow(x, 0), lambda x: x**0.0):
        assert asdex.jacobian_sparsity(f, x).nnz == 0
        assert asdex.hessian_sparsity(lambda x, f=f: jnp.sum(jnp.exp(f(x))), x).nnz == 0


def test_hessian_of_a_quotient_with_a_known_zero():
    c = jnp.array([0.0, 3.0, 0.0])
    f = lambda x: jnp.sum(c / x) + jnp.sum(jnp.zeros(3).at[1].set(1.0) * x**3)  # noqa: E731
    detected = asdex.hessian_sparsity(f, jnp.ones(3)).todense().astype(bool)
    numeric = np.asarray(jax.hessian(f)(jnp.array([1.5, 2.0, 2.5]))) != 0
    np.testing.assert_array_equal(detected, numeric)
    np.testing.assert_array_equal(detected, np.diag([False, True, False]))
