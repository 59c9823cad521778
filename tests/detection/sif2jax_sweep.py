"""Compare detected Jacobian/Hessian patterns with numeric ones on sif2jax problems."""

from __future__ import annotations

import dataclasses

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Comparison:
    """How a detected pattern compares with numeric patterns at random points."""

    name: str
    n: int
    misses: int
    extra: int
    error: str | None = None

    @property
    def exact(self) -> bool:
        return self.error is None and self.misses == 0 and self.extra == 0


def numeric_pattern(jac_fn, y0, num_points: int = 2, seed: int = 0) -> np.ndarray:
    """Union of nonzero patterns of `jac_fn` at random points around `y0`."""
    key = jax.random.key(seed)
    found = None
    for _ in range(num_points):
        key, sub = jax.random.split(key)
        u = jax.random.uniform(sub, y0.shape, y0.dtype)
        y = y0 * (1.0 + 0.1 * u) + 0.05 * u
        dense = np.asarray(jac_fn(y))
        # NaN spreads through zeros (0 * NaN): it says nothing about the pattern
        nonzero = (dense != 0) & ~np.isnan(dense)
        found = nonzero if found is None else found | nonzero
    return found


def compare(name: str, detected: np.ndarray, numeric: np.ndarray) -> Comparison:
    """Count numeric nonzeros the detection missed and detected entries never seen."""
    detected = detected.astype(bool)
    return Comparison(
        name=name,
        n=detected.shape[1],
        misses=int((numeric & ~detected).sum()),
        extra=int((detected & ~numeric).sum()),
    )


def flat_constraints(problem):
    """The problem's constraints as one flat vector function of the flat variables."""
    flat_y0, unravel = jax.flatten_util.ravel_pytree(problem.y0)

    def constraints(y):
        eq, ineq = problem.constraint(unravel(y))
        parts = [jnp.ravel(c) for c in jax.tree_util.tree_leaves((eq, ineq))]
        return jnp.concatenate(parts) if parts else jnp.zeros(0)

    return constraints, jnp.asarray(flat_y0, dtype=jnp.float64)
