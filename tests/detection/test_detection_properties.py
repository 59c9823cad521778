"""Property tests: random compositions of primitives, detected pattern vs numeric Jacobian.

Smooth, cancellation-free programs must give exactly the numeric pattern at random
points; programs with piecewise or data-dependent steps must give a superset.
"""

import jax
import jax.numpy as jnp
import numpy as np
from detection_helpers import numeric_jacobian_pattern
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asdex.detection import jacobian_sparsity

N = 8

SMOOTH_UNARY = {
    "sin": jnp.sin,
    "exp": lambda v: jnp.exp(0.1 * v),
    # Scaled like `exp`: float32 `tanh` saturates to exactly 1 beyond about 8, where its
    # numeric derivative is exactly zero although the pattern says otherwise.
    "tanh": lambda v: jnp.tanh(0.1 * v),
    "square": lambda v: v * v + 1.0,
    "roll": lambda v: jnp.roll(v, 3),
    "reverse": lambda v: v[::-1],
    # Padded with 1, not 0: a structural zero times (or over) x_i has a derivative that
    # is exactly zero, which the engine cannot see for partly known arrays (a zero-pad
    # shift followed by `div` by x was a "spurious" counterexample found by hypothesis).
    "shift": lambda v: jnp.pad(v[1:], (0, 1), constant_values=1.0),
    "transpose": lambda v: v.reshape(2, N // 2).T.ravel(),
    "cumsum": jnp.cumsum,
    "pairsum": lambda v: jnp.repeat(v.reshape(N // 2, 2).sum(1), 2),
    "gather": lambda v: v[jnp.array([3, 1, 4, 1, 5, 2, 6, 5])],
    "scatter": lambda v: jnp.zeros(N).at[jnp.array([0, 2, 4, 6, 1, 3, 5, 7])].set(v),
    "conv": lambda v: jnp.convolve(v, jnp.array([1.0, 2.0, 3.0]), mode="same"),
    "band_matvec": lambda v: (jnp.eye(N) + jnp.eye(N, k=2)) @ v,
    "cond_known": lambda v: jax.lax.cond(True, jnp.sin, jnp.cos, v),
    "fori": lambda v: jax.lax.fori_loop(0, 2, lambda i, c: c + 0.1 * jnp.roll(c, 1) ** 2, v),
}
SMOOTH_BINARY = {
    "add": lambda a, b: a + 2.0 * b,
    "mul": lambda a, b: a * b + a,
    "div": lambda a, b: a / (2.0 + b * b),
    "scale_by_sum": lambda a, b: a * jnp.sum(b[:2]),
}
PIECEWISE_UNARY = {
    "relu": jax.nn.relu,
    "max_pairs": lambda v: jnp.repeat(v.reshape(N // 2, 2).max(1), 2),
    "sort": jnp.sort,
    "abs": jnp.abs,
    "argmax_take": lambda v: v * v[jnp.argmax(v)],
    "where": lambda v: jnp.where(v > 0.5, v, jnp.roll(v, 1)),
    "dynamic_slice": lambda v: jnp.tile(jax.lax.dynamic_slice(v, (jnp.argmin(v) % 4,), (4,)), 2),
    "while": lambda v: jax.lax.while_loop(lambda c: c[0] < 3.0, lambda c: c * 1.5, v + 1.0),
}


def program(steps, unary, binary):
    def f(x):
        values = [x]
        for kind, name, i, j in steps:
            a = values[i % len(values)]
            if kind == "unary":
                values.append(unary[name](a))
            else:
                values.append(binary[name](a, values[j % len(values)]))
        return values[-1]

    return f


def steps_strategy(unary, binary):
    step = st.one_of(
        st.tuples(st.just("unary"), st.sampled_from(sorted(unary)), st.integers(0, 9),
                  st.integers(0, 9)),
        st.tuples(st.just("binary"), st.sampled_from(sorted(binary)), st.integers(0, 9),
                  st.integers(0, 9)),
    )
    return st.lists(step, min_size=1, max_size=5)


PROPERTY_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(steps_strategy(SMOOTH_UNARY, SMOOTH_BINARY))
def test_smooth_programs_are_exact(steps):
    f = program(steps, SMOOTH_UNARY, SMOOTH_BINARY)
    x = jnp.linspace(0.2, 0.9, N)
    detected = jacobian_sparsity(f, x).todense().astype(bool)
    numeric = numeric_jacobian_pattern(f, x)
    assert not (numeric & ~detected).any(), f"missed: {np.argwhere(numeric & ~detected)}"
    assert not (detected & ~numeric).any(), f"spurious: {np.argwhere(detected & ~numeric)}"


@PROPERTY_SETTINGS
@given(steps_strategy({**SMOOTH_UNARY, **PIECEWISE_UNARY}, SMOOTH_BINARY))
def test_all_programs_are_sound(steps):
    unary = {**SMOOTH_UNARY, **PIECEWISE_UNARY}
    f = program(steps, unary, SMOOTH_BINARY)
    x = jnp.linspace(0.2, 0.9, N)
    detected = jacobian_sparsity(f, x).todense().astype(bool)
    numeric = numeric_jacobian_pattern(f, x, num_points=3)
    assert not (numeric & ~detected).any(), f"missed: {np.argwhere(numeric & ~detected)}"
