"""Draw the spy plots of the documentation's example problems into `docs/figures/`.

Run from the repository root after changing an example: `python docs/make_figures.py`.
Every figure is computed by asdex from the same functions the pages use.
"""

from __future__ import annotations

import pathlib

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import asdex

FIGURES = pathlib.Path(__file__).resolve().parent / "figures"


def tutorial_f(x):
    """The bidiagonal example of the getting-started tutorial."""
    return x[1:] ** 2 - 2.0 * x[:-1] + jnp.sin(x[1:] * x[:-1])


def brusselator(y, alpha=10.0, a=3.4, b=1.0):
    """The 2-D Brusselator right-hand side of the PDE how-to, on a periodic grid."""
    u, v = y[0], y[1]

    def laplacian(w):
        return (
            jnp.roll(w, 1, 0) + jnp.roll(w, -1, 0) + jnp.roll(w, 1, 1) + jnp.roll(w, -1, 1)
            - 4.0 * w
        )

    du = alpha * laplacian(u) + b + u**2 * v - (a + 1.0) * u
    dv = alpha * laplacian(v) + a * u - u**2 * v
    return jnp.stack([du, dv])


def least_squares(x):
    """The Broyden-tridiagonal least-squares objective of the Hessian how-to."""
    padded = jnp.pad(x, 1)
    r = (3.0 - 2.0 * x) * x - padded[:-2] - 2.0 * padded[2:] + 1.0
    return jnp.sum(r**2)


def save(fig, name: str) -> None:
    """Write `fig` to `docs/figures/<name>`."""
    fig.tight_layout()
    fig.savefig(FIGURES / name, dpi=110)
    plt.close(fig)
    print("wrote", FIGURES / name)


def main() -> None:
    """Draw every figure."""
    FIGURES.mkdir(exist_ok=True)

    coloring = asdex.jacobian_coloring(tutorial_f, jnp.zeros(10))
    fig, axes = plt.subplots(1, 2, figsize=(8, 4))
    asdex.spy(coloring, ax=axes[0])
    asdex.spy(coloring, ax=axes[1], compressed=True)
    axes[0].set_title("Jacobian, colored by column")
    axes[1].set_title("compressed: one column per JVP")
    save(fig, "tutorial_jacobian.png")

    coloring = asdex.jacobian_coloring(brusselator, jnp.ones((2, 8, 8)))
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5), width_ratios=(3, 1))
    asdex.spy(coloring, ax=axes[0])
    asdex.spy(coloring, ax=axes[1], compressed=True)
    axes[0].set_title(f"Brusselator 8x8: n = {coloring.sparsity.n}, nnz = {coloring.sparsity.nnz}")
    axes[1].set_title(f"{coloring.num_colors} JVPs")
    save(fig, "brusselator_jacobian.png")

    sparsity = asdex.hessian_sparsity(least_squares, jnp.ones(16))
    star = asdex.hessian_coloring_from_sparsity(sparsity)
    acyclic = asdex.hessian_coloring_from_sparsity(sparsity, method="acyclic")
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    asdex.spy(sparsity, ax=axes[0])
    asdex.spy(star, ax=axes[1])
    asdex.spy(acyclic, ax=axes[2])
    axes[0].set_title(f"Hessian pattern, nnz = {sparsity.nnz}")
    axes[1].set_title(f"star coloring: {star.num_colors} HVPs")
    axes[2].set_title(f"acyclic coloring: {acyclic.num_colors} HVPs")
    save(fig, "hessian_colorings.png")


if __name__ == "__main__":
    main()
