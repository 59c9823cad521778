"""Test problems shared by the benchmarks: each a JAX function and a sample input."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def brusselator_2d(grid: int):
    """Right-hand side of the 2-D Brusselator on a periodic `grid x grid` mesh.

    Two species (u, v), a 5-point Laplacian and the reaction terms; `n = 2 grid^2`.
    """
    alpha, a, b = 10.0, 3.4, 1.0
    h = 1.0 / grid
    coords = jnp.linspace(0.0, 1.0, grid)
    xx, yy = jnp.meshgrid(coords, coords, indexing="ij")
    forcing = jnp.where(((xx - 0.3) ** 2 + (yy - 0.6) ** 2) <= 0.01, 5.0, 0.0)

    def laplacian(w):
        return (
            jnp.roll(w, 1, 0) + jnp.roll(w, -1, 0) + jnp.roll(w, 1, 1) + jnp.roll(w, -1, 1)
            - 4.0 * w
        ) / h**2

    def rhs(y):
        u, v = y[0], y[1]
        du = alpha * laplacian(u) + b + u**2 * v - (a + 1.0) * u + forcing
        dv = alpha * laplacian(v) + a * u - u**2 * v
        return jnp.stack([du, dv])

    return rhs, jnp.ones((2, grid, grid))


def conv_net_1d(length: int, channels: int = 4, width: int = 3):
    """A three-layer 1-D convolutional net as a function of its input signal."""
    keys = jax.random.split(jax.random.key(0), 3)
    shapes = [(channels, 1, width), (channels, channels, width), (1, channels, width)]
    kernels = [jax.random.normal(k, s) for k, s in zip(keys, shapes, strict=True)]

    def net(x):
        h = x[None, None, :]
        for i, kernel in enumerate(kernels):
            h = jax.lax.conv_general_dilated(h, kernel, (1,), "SAME")
            if i < len(kernels) - 1:
                h = jnp.tanh(h)
        return h[0, 0]

    return net, jnp.ones(length)


def banded_stencil(n: int, half_bandwidth: int = 2):
    """A nonlinear banded stencil: `y_i = sum_k sin(x_{i+k}) x_i` for |k| <= half_bandwidth."""

    def stencil(x):
        padded = jnp.pad(x, half_bandwidth)
        total = sum(
            jnp.sin(padded[half_bandwidth + k : half_bandwidth + k + n])
            for k in range(-half_bandwidth, half_bandwidth + 1)
        )
        return total * x

    return stencil, jnp.ones(n)
