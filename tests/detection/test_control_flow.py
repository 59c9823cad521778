"""cond, switch, while, fori_loop, scan and custom_linear_solve against jax.jacfwd."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from detection_helpers import assert_pattern, assert_sound
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax

from asdex.detection import jacobian_sparsity
from asdex.detection._rules import control_flow

N = 10
X = jnp.linspace(0.3, 1.2, N)


def laplacian(x):
    """Three-point stencil with zero Dirichlet boundaries (bandwidth 1)."""
    padded = jnp.pad(x, 1)
    return padded[:-2] - 2.0 * x + padded[2:]


def euler_step(x):
    return x + 0.1 * laplacian(x) + 0.01 * jnp.sin(x)


def band(n, k):
    i, j = np.indices((n, n))
    return np.abs(i - j) <= k


# --- fori_loop / while with known trip counts: exact ------------------------------------


@pytest.mark.parametrize("steps", [0, 1, 2, 3, 5])
def test_fori_loop_static_trip_count_is_exact(steps):
    def f(x):
        return lax.fori_loop(0, steps, lambda i, x: euler_step(x), x)

    assert "scan" in str(jax.make_jaxpr(f)(X)) or steps == 0
    assert_pattern(f, X, expected=band(N, steps))


@pytest.mark.parametrize("steps", [1, 3, 4])
def test_fori_loop_traced_trip_count_lowers_to_while_and_is_exact(steps):
    def f(x):
        return lax.fori_loop(jnp.int32(0), jnp.int32(steps), lambda i, x: euler_step(x), x)

    assert "while" in str(jax.make_jaxpr(f)(X))
    assert_pattern(f, X, expected=band(N, steps))


def test_fori_loop_uses_the_known_counter_for_indexing():
    # step i touches only element i: exact only if i is known at every step
    def f(x):
        return lax.fori_loop(0, 4, lambda i, x: x.at[i + 1].add(x[i] ** 2), x)

    expected = np.eye(N, dtype=bool)
    for i in range(4):
        expected[i + 1] |= expected[i]
    assert_pattern(f, X, expected=expected)


def test_while_over_the_unroll_budget_falls_back_to_a_sound_fixed_point(monkeypatch):
    monkeypatch.setattr(control_flow, "MAX_UNROLLED_EQUATIONS", 1)

    def f(x):
        return lax.fori_loop(jnp.int32(0), jnp.int32(2), lambda i, x: euler_step(x), x)

    detected = assert_sound(f, X)
    np.testing.assert_array_equal(detected, np.ones((N, N), bool))


# --- while with data-dependent trip counts: fixed point ---------------------------------


def test_while_with_data_dependent_trip_count_takes_the_fixed_point():
    def f(x):
        def body(carry):
            x, t = carry
            return euler_step(x), t + jnp.abs(x[0]) + 0.5

        return lax.while_loop(lambda c: c[1] < 2.0, body, (x, 0.0))[0]

    assert_pattern(f, X, expected=np.ones((N, N), bool))


def test_while_fixed_point_keeps_loop_invariant_values():
    shift = (np.arange(N) + 2) % N  # a known permutation carried unchanged

    def f(x):
        def body(carry):
            x, perm, t = carry
            return x[perm] * 1.1, perm, t + jnp.abs(x[0]) + 0.5

        return lax.while_loop(lambda c: c[2] < 3.0, body, (x, jnp.asarray(shift), 0.0))[0]

    i, j = np.indices((N, N))
    assert_pattern(f, X, expected=(i - j) % 2 == 0)


def test_while_fixed_point_of_independent_carries_stays_separate():
    def f(x):
        def body(carry):
            a, b, t = carry
            return a * 1.5, jnp.roll(b, 1), t + jnp.abs(a[0])

        a, b, _ = lax.while_loop(lambda c: c[2] < 3.0, body, (x[:5], x[5:], 0.0))
        return jnp.concatenate([a, b])

    expected = np.zeros((N, N), bool)
    expected[:5, :5] = np.eye(5, dtype=bool)
    expected[5:, 5:] = True
    assert_pattern(f, X, expected=expected)


def test_while_that_never_runs_returns_its_init():
    def f(x):
        return lax.while_loop(lambda c: False, lambda c: jnp.roll(c, 1), x)

    assert_pattern(f, X, expected=np.eye(N, dtype=bool))


def test_nested_loops():
    def f(x):
        def outer(i, x):
            return lax.fori_loop(0, 2, lambda j, y: euler_step(y), x)

        return lax.fori_loop(0, 2, outer, x)

    assert_pattern(f, X, expected=band(N, 4))


def test_while_inside_scan():
    def f(x):
        def step(c, xi):
            y = lax.while_loop(lambda s: s[1] < 1.0, lambda s: (s[0] * xi, s[1] + jnp.abs(xi)),
                               (c, 0.0))[0]
            return y, y

        return lax.scan(step, 1.0, x)[1]

    assert_pattern(f, X, expected=np.tril(np.ones((N, N), bool)))


# --- scan -------------------------------------------------------------------------------


def carried_product(c, xi):
    return c * xi + jnp.sin(xi), c * xi


@pytest.mark.parametrize("unroll", [1, 3])
def test_scan_with_xs_and_ys(unroll):
    def f(x):
        final, ys = lax.scan(carried_product, 1.0, x, unroll=unroll)
        return jnp.concatenate([ys, final[None]])

    assert_pattern(f, X, expected=np.tril(np.ones((N + 1, N), bool)))


def test_reverse_scan():
    def f(x):
        return lax.scan(carried_product, 1.0, x, reverse=True)[1]

    assert_pattern(f, X, expected=np.triu(np.ones((N, N), bool)))


def test_scan_with_constants_and_several_carries():
    def f(x):
        def step(carry, xi):
            a, b = carry
            return (b, a + xi * x[0]), a

        (a, b), ys = lax.scan(step, (x[1], x[2]), x[3:7])
        return jnp.concatenate([ys, jnp.stack([a, b])])

    assert_sound(f, X, exact=True)


def test_scan_fallback_is_sound_and_respects_reverse(monkeypatch):
    monkeypatch.setattr(control_flow, "MAX_UNROLLED_EQUATIONS", 1)

    def f(x):
        final, ys = lax.scan(lambda c, xi: (c + xi, xi * 2.0), 0.0, x, reverse=True)
        return jnp.concatenate([ys, final[None]])

    detected = assert_sound(f, X)
    # without steps, each ys[t] may come from any xs slice; the carry is exact
    np.testing.assert_array_equal(detected, np.ones((N + 1, N), bool))


def test_scan_fallback_keeps_separate_carries_separate(monkeypatch):
    monkeypatch.setattr(control_flow, "MAX_UNROLLED_EQUATIONS", 1)
    x = jnp.linspace(0.3, 1.2, 8).reshape(4, 2)

    def f(x):
        return lax.scan(lambda c, xi: (c * xi, c), jnp.ones(2), x)[0]

    expected = np.zeros((2, 8), bool)
    expected[0, 0::2] = True
    expected[1, 1::2] = True
    assert_pattern(f, x, expected=expected)


def test_scan_of_length_zero():
    def f(x):
        final, ys = lax.scan(lambda c, xi: (c + xi, xi * c), x[0], jnp.zeros((0,)))
        return jnp.concatenate([final[None], ys])

    assert_pattern(f, X, expected=np.eye(1, N, dtype=bool))


def test_checkpoint_inside_scan():
    def f(x):
        step = jax.checkpoint(lambda c, xi: (jnp.sin(c) * xi, c * xi))
        return lax.scan(step, 1.0, x)[1]

    assert_pattern(f, X, expected=np.tril(np.ones((N, N), bool)))


def test_scan_over_matrix_rows_with_stencil_carry():
    xs = jnp.linspace(0.1, 0.9, 3 * N).reshape(3, N)

    def f(xs):
        return lax.scan(lambda c, row: (euler_step(c) * row, c), jnp.ones(N), xs)[0]

    assert_sound(f, xs, exact=True)


@settings(max_examples=8, deadline=None)
@given(length=st.integers(1, 6), reverse=st.booleans(), unroll=st.integers(1, 3),
       fallback=st.booleans())
def test_scan_property(length, reverse, unroll, fallback):
    x = jnp.linspace(0.2, 1.0, 2 * length).reshape(length, 2)

    def f(x):
        def step(c, xi):
            return jnp.roll(c, 1) * xi + jnp.cos(xi), c[0] * xi[1]

        final, ys = lax.scan(step, jnp.ones(2), x, reverse=reverse, unroll=unroll)
        return jnp.concatenate([final, ys])

    saved = control_flow.MAX_UNROLLED_EQUATIONS
    control_flow.MAX_UNROLLED_EQUATIONS = 1 if fallback else saved
    try:
        assert_sound(f, x, exact=not fallback)
    finally:
        control_flow.MAX_UNROLLED_EQUATIONS = saved


# --- cond / switch ----------------------------------------------------------------------


def test_cond_with_unknown_predicate_is_the_union_of_branches():
    def f(x):
        return lax.cond(x[0] > 0.5, lambda x: x * 2.0, lambda x: jnp.roll(x, 1), x)

    expected = np.eye(N, dtype=bool) | np.roll(np.eye(N, dtype=bool), 1, axis=0)
    detected = jacobian_sparsity(f, X).todense().astype(bool)
    np.testing.assert_array_equal(detected, expected)
    assert_sound(f, X)


def test_cond_with_known_index_takes_its_branch():
    def f(x):
        index = jnp.argmax(jnp.array([0.0, 3.0, 1.0]))  # known: 1
        return lax.switch(index, [lambda x: x * 2.0, lambda x: jnp.roll(x, 1), jnp.cumsum], x)

    assert_pattern(f, X, expected=np.roll(np.eye(N, dtype=bool), 1, axis=0))


def test_switch_with_bounded_index_unions_only_reachable_branches():
    def f(x):
        index = jnp.argmax(x[:2]) + 1  # 1 or 2
        return lax.switch(index, [jnp.cumsum, lambda x: x * 2.0, lambda x: jnp.roll(x, 1)], x)

    expected = np.eye(N, dtype=bool) | np.roll(np.eye(N, dtype=bool), 1, axis=0)
    detected = jacobian_sparsity(f, X).todense().astype(bool)
    np.testing.assert_array_equal(detected, expected)


def test_cond_joins_known_values_of_branches():
    # both branches return the same index: the gather after the cond stays exact
    def f(x):
        i = lax.cond(x[0] > 0.5, lambda: jnp.int32(3), lambda: jnp.int32(3))
        j = lax.cond(x[1] > 0.5, lambda: jnp.int32(2), lambda: jnp.int32(4))
        return jnp.stack([x[i], lax.dynamic_slice(x, (j,), (1,))[0]])

    expected = np.zeros((2, N), bool)
    expected[0, 3] = True
    expected[1, 2:5] = True
    detected = jacobian_sparsity(f, X).todense().astype(bool)
    np.testing.assert_array_equal(detected, expected)


def test_piecewise_function_with_conds():
    def f(x):
        def piece(xi, left, right):
            return lax.cond(xi > 0.7, lambda: xi * right, lambda: jnp.sin(left))

        return jax.vmap(piece)(x[1:-1], x[:-2], x[2:])

    detected = assert_sound(f, X)
    expected = np.zeros((N - 2, N), bool)
    for i in range(N - 2):
        expected[i, [i, i + 1, i + 2]] = True  # vmap turns the cond into a select
    np.testing.assert_array_equal(detected, expected)


def test_cond_index_has_zero_derivative():
    def f(x):
        return lax.cond(x[0] > 0.5, lambda y: y, lambda y: y * 2.0, x[1:])

    expected = np.eye(N - 1, N, k=1, dtype=bool)
    assert_pattern(f, X, expected=expected)


# --- custom_linear_solve ----------------------------------------------------------------


def tridiagonal(n):
    return 4.0 * np.eye(n) + np.eye(n, k=1) + np.eye(n, k=-1)


def test_cg_solution_depends_on_all_of_b():
    a = jnp.asarray(tridiagonal(6))

    def f(b):
        return jax.scipy.sparse.linalg.cg(lambda v: a @ v, b, tol=1e-10)[0]

    assert_pattern(f, jnp.linspace(0.5, 1.0, 6), expected=np.ones((6, 6), bool))


def test_custom_linear_solve_with_diagonal_matrix_is_exact():
    def f(b, d):
        def matvec(v):
            return d * v

        def solve(matvec, rhs):
            return rhs / d

        return lax.custom_linear_solve(matvec, b, solve, symmetric=True)

    b, d = jnp.linspace(0.5, 1.0, 5), jnp.linspace(2.0, 3.0, 5)
    eye = np.eye(5, dtype=bool)
    assert_pattern(f, b, d, argnums=(0, 1), expected=np.hstack([eye, eye]))


def test_custom_linear_solve_follows_the_matrix_operands():
    def f(diag, b):
        def matvec(v):
            return diag * v + 0.1 * jnp.roll(v, 1)

        def solve(matvec, rhs):
            return jax.scipy.sparse.linalg.cg(matvec, rhs, tol=1e-12)[0]

        return lax.custom_linear_solve(matvec, b, solve)

    diag = jnp.linspace(3.0, 4.0, 5)
    b = jnp.linspace(0.5, 1.0, 5)
    assert_sound(f, diag, b, argnums=(0, 1), exact=True)
