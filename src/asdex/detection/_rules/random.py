"""Random number generation: keys and random bits have zero derivative.

Keys, bits and the counters of the bit generators are integers or key types (the
engine empties their patterns); samples are computed from them by ordinary arithmetic.
`random_gamma` is reparameterized: each sample depends on its own shape parameter `a`.
`rng_uniform` is stateful: it is never evaluated, and depends on both its bounds.
"""

from __future__ import annotations

import numpy as np

from asdex.detection._maps import Broadcast, Identity
from asdex.detection._registry import register_rule
from asdex.detection._rule import Curvature, Equation, Evaluation, Output

KEYS_AND_BITS = (
    "random_seed", "random_bits", "random_split", "random_fold_in", "random_wrap",
    "random_unwrap", "random_clone", "iota_2x32_shape", "rng_bit_generator",
    "threefry2x32", "threefry4x32", "philox2x32", "philox4x32",
)
TOTAL_ORDER_COMPARISONS = ("eq_to", "le_to", "lt_to")
"""Comparisons in the total order of floats (boolean results), which
`jax.random.choice(..., p=...)` emits through `jnp.searchsorted`."""


def zero_rule(eqn: Equation) -> list[Output]:
    """Results with zero derivative."""
    return [Output() for _ in eqn.out_shapes]


def random_gamma_rule(eqn: Equation) -> list[Output]:
    """`random_gamma(key, a)`: elementwise in `a` (the key has zero derivative)."""
    return [Output(maps=((1, Identity()),))]


def rng_uniform_rule(eqn: Equation) -> list[Output]:
    """`rng_uniform(low, high)` with scalar bounds: every sample depends on both."""
    source = np.zeros(eqn.out_sizes[0], np.int64)
    return [Output(maps=((0, Broadcast(source)), (1, Broadcast(source))))]


for _name in KEYS_AND_BITS + TOTAL_ORDER_COMPARISONS:
    register_rule(_name, zero_rule, curvature=Curvature.ZERO)
register_rule("random_gamma", random_gamma_rule, curvature=Curvature.NONLINEAR)
register_rule("rng_uniform", rng_uniform_rule, curvature=Curvature.NONLINEAR,
              evaluation=Evaluation.NEVER)
