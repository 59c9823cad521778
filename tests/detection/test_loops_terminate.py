"""Adversarial loops: detection ends within a time limit and contains the numeric pattern.

Every loop here has a data-dependent or very long trip count, and a carry whose known
values never settle (constant resets, counters, clipped counters, integer state, floats
halved at every step) or patterns that take many rounds to settle. Detection must end
(a per-test time limit, set by a signal) and its pattern must contain that of
`jax.jacfwd` at random points; Hessians likewise against forward-over-forward.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from detection_helpers import numeric_jacobian_pattern
from jax import lax

from asdex.detection import hessian_sparsity, jacobian_sparsity
from asdex.detection._rules import control_flow

LIMIT_S = 60
"""Seconds a detection may take: generous for a loaded machine, finite for a hang."""

N = 6
X = jnp.linspace(0.5, 1.0, N)


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise `TimeoutError` in the main thread if the block runs longer than `seconds`."""

    def fail(signum: int, frame: object) -> None:
        raise TimeoutError(f"detection did not end within {seconds} s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_time_limit_stops_a_hang():
    with pytest.raises(TimeoutError), time_limit(0.2):
        while True:
            pass


# --- the loops ------------------------------------------------------------------------------


def shrink(v):
    """A contraction that couples neighbours: the pattern grows by one band per step."""
    return 0.45 * v + 0.1 * jnp.roll(v, 1) + 0.05 * jnp.sin(v)


def big(v):
    return jnp.sum(v ** 2) > 1e-3


def constant_reset(x):
    """The issue's loop: the flag is reset to a constant, the predicate reads the data."""
    def body(c):
        v, _ = c
        return 0.5 * v, jnp.array(True)

    return lax.while_loop(lambda c: big(c[0]) & c[1], body, (x, x[0] > 0))[0]


def float_reset(x):
    """A float carry reset to a constant; another one halved at every step (never settles)."""
    def body(c):
        v, scale, h = c
        return shrink(v) * scale, jnp.ones(()), 0.5 * h

    return lax.while_loop(lambda c: big(c[0]) & (c[2] > 0), body, (x, x[1], jnp.ones(())))[0]


def counter(x):
    def body(c):
        i, v = c
        return i + 1, shrink(v)

    return lax.while_loop(lambda c: (c[0] < 50) & big(c[1]), body, (0, x))[1]


def clipped_counter(x):
    """A counter clipped to [0, 3] that indexes the carry."""
    def body(c):
        i, v = c
        return jnp.minimum(i + 1, 3), 0.5 * v.at[i].set(v[i] * v[i + 1])

    return lax.while_loop(lambda c: big(c[1]), body, (0, x))[1]


def wrapping_counter(x):
    """A counter reset to zero every fourth step, read by a `cond` and an index."""
    def body(c):
        i, v = c
        v = lax.cond(i % 2 == 0, lambda v: v * v[i], shrink, v)
        return jnp.where(i >= 3, 0, i + 1), 0.5 * v

    return lax.while_loop(lambda c: big(c[1]), body, (0, x))[1]


def integer_state(x):
    """Integer state driven by a recurrence (never repeats soon) indexing the carry."""
    def body(c):
        k, v = c
        return (3 * k + 1) % N, 0.5 * v.at[k].add(v[(k + 2) % N] ** 2)

    return lax.while_loop(lambda c: big(c[1]), body, (jnp.int32(1), x))[1]


def data_integer_state(x):
    """Integer state computed from the data: an unknown trip count that counts down."""
    def body(c):
        k, v = c
        return k - 1, shrink(v)

    k0 = jnp.floor(3 * x[0]).astype(jnp.int32)
    return lax.while_loop(lambda c: c[0] > 0, body, (k0, x))[1]


def nested_whiles(x):
    def inner(v):
        def body(c):
            j, w = c
            return j + 1, shrink(w)

        return lax.while_loop(lambda c: (c[0] < 3) & big(c[1]), body, (0, v))[1]

    def body(c):
        t, v = c
        return t + jnp.abs(v[0]) + 0.1, inner(v) * 1.5

    return lax.while_loop(lambda c: c[0] < 1.0, body, (jnp.zeros(()), x))[1]


def three_levels(x):
    """while(scan(while)), with resets at every level."""
    def innermost(v):
        return lax.while_loop(lambda c: big(c[0]) & c[1],
                              lambda c: (0.5 * c[0], jnp.array(True)), (v, v[0] > 0))[0]

    def step(c, row):
        v, _ = c
        return (innermost(v * row), jnp.array(False)), v[0]

    def body(c):
        v, t = c
        (v, _), ys = lax.scan(step, (v, True), jnp.ones((3, N)) + v)
        return shrink(v) + 0.01 * ys.sum(), t + 1

    return lax.while_loop(lambda c: big(c[0]) & (c[1] < 4), body, (x, 0))[0]


def fori_known(x):
    return lax.fori_loop(0, 4, lambda i, v: shrink(v).at[i].multiply(v[i + 1]), x)


def fori_unknown(x):
    upper = jnp.where(x[0] > 0, 4, 2)
    return lax.fori_loop(0, upper, lambda i, v: shrink(v).at[i].multiply(v[i + 1]), x)


def long_scan_with_reset(x):
    """Too long to unroll: a carry fixed point, with a reset flag and a wrapping counter."""
    def step(c, xt):
        v, flag, i = c
        v = jnp.where(flag, shrink(v) + 0.001 * xt, v)
        return (v.at[i].multiply(0.99), jnp.array(True), (i + 1) % N), v[0]

    v, _, _ = lax.scan(step, (x, x[0] > 0, 0), jnp.ones((30_000, N)) * x)[0]
    return v


def diffusion_while(x):
    """A pattern that settles only after as many rounds as the carry is long."""
    def body(c):
        v, t = c
        return 0.5 * v + 0.25 * jnp.roll(v, 1), t + jnp.abs(v[0]) + 0.01

    v = jnp.tile(x, 8)
    return lax.while_loop(lambda c: c[1] < 1.0, body, (v, jnp.zeros(())))[0]


def nested_known_trip_counts(x):
    """Nested loops with known trip counts: together far beyond the unrolling budget."""
    def outer(i, v):
        return lax.fori_loop(0, 300, lambda j, w: shrink(w), v) * v[i % N]

    return lax.fori_loop(0, 30, outer, x)


def known_long_loop(x):
    """A known predicate that holds for a million steps: more than any budget unrolls."""
    def body(c):
        i, v = c
        return i + 1, jnp.roll(v, 1) * 0.999999

    return lax.while_loop(lambda c: c[0] < 1_000_000, body, (0, x))[1]


LOOPS: list[Callable] = [
    constant_reset, float_reset, counter, clipped_counter, wrapping_counter, integer_state,
    data_integer_state, nested_whiles, three_levels, fori_known, fori_unknown,
    long_scan_with_reset, diffusion_while, nested_known_trip_counts, known_long_loop,
]


@pytest.fixture(autouse=True)
def _small_unrolling_budget(monkeypatch, request):
    """A small budget for the loops that a budget is meant to stop (termination does not
    depend on its size; the time to spend it does)."""
    if "known_long_loop" in request.node.name or "nested_known" in request.node.name:
        monkeypatch.setattr(control_flow, "MAX_UNROLLED_EQUATIONS", 2_000)


# --- Jacobians ------------------------------------------------------------------------------


@pytest.mark.parametrize("f", LOOPS, ids=lambda f: f.__name__)
def test_jacobian_detection_ends_and_is_sound(f):
    with time_limit(LIMIT_S):
        detected = jacobian_sparsity(f, X).todense().astype(bool)
    numeric = numeric_jacobian_pattern(f, X, num_points=3)
    assert detected.shape == numeric.shape
    missed = numeric & ~detected
    assert not missed.any(), f"missed nonzeros at {np.argwhere(missed)[:10].tolist()}"


def test_clipped_counter_keeps_its_bounds():
    """The counter's bounds [0, 3] settle: elements 5.. never mix with the others."""
    detected = jacobian_sparsity(clipped_counter, X).todense().astype(bool)
    assert not detected[N - 1, :N - 1].any() and detected[N - 1, N - 1]
    assert not detected[:N - 1, N - 1].any()


def test_constant_reset_is_exact():
    """The flag's knowledge settles (unknown, then reset to True: unknown) in one round;
    the pattern is the numeric one."""
    detected = jacobian_sparsity(constant_reset, X).todense().astype(bool)
    np.testing.assert_array_equal(detected, np.eye(N, dtype=bool))


# --- Hessians -------------------------------------------------------------------------------


def numeric_hessian_pattern(g, x, num_points: int = 3) -> np.ndarray:
    """Forward-over-forward Hessian nonzeros at random points (while loops have no
    reverse mode)."""
    hessian = jax.jit(jax.jacfwd(jax.jacfwd(g)))
    found = np.zeros((x.size, x.size), bool)
    for key in jax.random.split(jax.random.key(3), num_points):
        y = x * (1.0 + 0.2 * jax.random.uniform(key, x.shape))
        h = np.asarray(hessian(y))
        found |= (h != 0) & ~np.isnan(h)
    return found


@pytest.mark.parametrize("f", LOOPS, ids=lambda f: f.__name__)
def test_hessian_detection_ends_and_is_sound(f):
    def g(x):
        y = f(x)
        return jnp.sum(jnp.sin(y[:N]) * x[::-1]) + jnp.sum(y ** 3)

    with time_limit(LIMIT_S):
        detected = hessian_sparsity(g, X).todense().astype(bool)
    numeric = numeric_hessian_pattern(g, X)
    missed = numeric & ~detected
    assert not missed.any(), f"missed nonzeros at {np.argwhere(missed)[:10].tolist()}"
