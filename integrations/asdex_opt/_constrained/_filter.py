"""The filter of Wächter and Biegler's line search, as fixed-size arrays.

The filter is a set of pairs ``(θ_j, φ_j)`` (constraint violation, barrier objective);
a trial point is rejected when, for some pair, ``θ ≥ (1 - gamma_θ) θ_j`` and
``φ ≥ φ_j - gamma_φ θ_j``. Entries live in arrays of a fixed capacity (``+inf`` marks an
empty slot, which rejects nothing), so the filter can be carried by ``lax.while_loop``;
when it is full the oldest entry is overwritten.
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

__all__ = ["Filter", "GAMMA_PHI", "GAMMA_THETA"]

GAMMA_THETA = 1e-5
GAMMA_PHI = 1e-8


class Filter(eqx.Module):
    """Pairs ``(θ_j, φ_j)`` that trial points must improve on.

    Examples:
        >>> import jax.numpy as jnp
        >>> f = Filter.empty(4, jnp.float32).add(jnp.array(1.0), jnp.array(0.0))
        >>> bool(f.acceptable(jnp.array(2.0), jnp.array(1.0)))
        False
        >>> bool(f.acceptable(jnp.array(0.5), jnp.array(1.0)))
        True
    """

    theta: Array
    phi: Array
    count: Array

    @classmethod
    def empty(cls, capacity: int, dtype: jnp.dtype) -> "Filter":
        """A filter with no entries."""
        full = jnp.full(capacity, jnp.inf, dtype)
        return cls(full, full, jnp.array(0, jnp.int32))

    def reset(self) -> "Filter":
        """The empty filter of the same capacity."""
        return Filter.empty(self.theta.size, self.theta.dtype)

    def add(self, theta: Array, phi: Array) -> "Filter":
        """The filter with ``(θ, φ)`` added (its margins are applied when testing)."""
        slot = self.count % self.theta.size
        return Filter(self.theta.at[slot].set(theta), self.phi.at[slot].set(phi), self.count + 1)

    def acceptable(self, theta: Array, phi: Array) -> Array:
        """Whether ``(θ, φ)`` is acceptable to every entry."""
        blocked = (theta >= (1 - GAMMA_THETA) * self.theta) & (
            phi >= self.phi - GAMMA_PHI * self.theta
        )
        return ~jnp.any(blocked)
