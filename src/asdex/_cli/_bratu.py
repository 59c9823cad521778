"""The demo's problem: the 2-D Bratu reaction-diffusion equation on the unit square."""

from __future__ import annotations

import jax
import jax.numpy as jnp

LAMBDA = 6.0
"""Reaction strength λ, below the fold near 6.81 past which no solution exists."""


def bratu_residual(u: jax.Array, size: int, lam: float = LAMBDA) -> jax.Array:
    """The discrete equations `Δu + λ eᵘ = 0` on an interior grid, `u = 0` on the boundary.

    Five-point Laplacian with spacing `h = 1 / (size + 1)`, every equation multiplied by
    `h²` so that the residual is of order one.

    Args:
        u: The `size²` interior unknowns, row by row.
        size: The grid's interior points per side.
        lam: The reaction strength λ.

    Returns:
        The `size²` residuals.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex._cli._bratu import bratu_residual
        >>> bratu_residual(jnp.zeros(4), 2, lam=9.0).tolist()
        [1.0, 1.0, 1.0, 1.0]
    """
    h = 1.0 / (size + 1)
    grid = jnp.pad(u.reshape(size, size), 1)
    centre = grid[1:-1, 1:-1]
    neighbours = grid[:-2, 1:-1] + grid[2:, 1:-1] + grid[1:-1, :-2] + grid[1:-1, 2:]
    return (neighbours - 4.0 * centre + h**2 * lam * jnp.exp(centre)).ravel()
