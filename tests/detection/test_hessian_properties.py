"""Property tests: detected Hessian patterns contain the numeric ones of random programs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from asdex.detection import hessian_sparsity

N = 5

UNARY = [
    jnp.exp, jnp.sin, jnp.tanh, jnp.abs, jnp.negative, jnp.square,
    lambda v: v**3, lambda v: jnp.log1p(v**2), lambda v: 2.0 * v, lambda v: v / 3.0,
    lambda v: jnp.where(v > 0.5, v, -v), jnp.floor,
]
BINARY = [
    jnp.add, jnp.subtract, jnp.multiply, jnp.maximum,
    lambda a, b: a / (1.0 + b**2), lambda a, b: jnp.arctan2(a, 1.0 + b**2),
]


def _move(rng, v):
    """A data movement or reduction with constant parameters, back to size N."""
    kind = rng.integers(5)
    if kind == 0:
        return v[rng.integers(0, N, N)]
    if kind == 1:
        return jnp.roll(v, int(rng.integers(1, N)))
    if kind == 2:
        return jnp.cumsum(v)
    if kind == 3:
        return jnp.full(N, jnp.sum(v[: int(rng.integers(1, N + 1))]))
    return jnp.concatenate([v[1:], v[:1] * v[2:3]])


def random_program(seed: int):
    rng = np.random.default_rng(seed)
    steps = [(int(rng.integers(3)), int(rng.integers(12)), int(rng.integers(6)), seed + k)
             for k in range(int(rng.integers(2, 7)))]
    weights = rng.integers(0, 2, N).astype(float)
    weights[rng.integers(N)] = 1.0

    def f(x):
        values = [x]
        for kind, u, b, sub in steps:
            step_rng = np.random.default_rng(sub)
            a = values[step_rng.integers(len(values))]
            if kind == 0:
                values.append(UNARY[u](a))
            elif kind == 1:
                values.append(BINARY[b](a, values[step_rng.integers(len(values))]))
            else:
                values.append(_move(step_rng, a))
        return jnp.sum(weights * values[-1]) + jnp.sum(values[-2] * weights[::-1])

    return f


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_random_programs_contain_the_numeric_hessian(seed):
    f = random_program(seed)
    detected = hessian_sparsity(f, jnp.ones(N)).todense().astype(bool)
    np.testing.assert_array_equal(detected, detected.T)
    hessian = jax.jit(jax.hessian(f))
    rng = np.random.default_rng(seed)
    for _ in range(2):
        h = np.asarray(hessian(jnp.asarray(rng.uniform(-2, 2, N), jnp.float32)))
        # Where a program overflows, AD gives NaN for structural zeros too (0 · inf).
        missed = np.isfinite(h) & (h != 0) & ~detected
        assert not missed.any(), f"missed {np.argwhere(missed)}"
