"""Definiteness reported by the direct solvers, for operators that claim it.

An operator tagged symmetric and positive semidefinite claims positive definiteness
for a solve (a singular one cannot be solved). The direct solvers check that claim
from their factorization, as a Cholesky factorization would, and report it in the
solve's ``stats["positive_definite"]``: a minimiser that shifts ``H + τI`` until it is
positive definite (Nocedal & Wright, Algorithm 3.3) reads it there.
"""

import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array

__all__ = [
    "POSITIVE_DEFINITE",
    "blocks_positive_definite",
    "claims_positive_definite",
    "entries_2x2",
]

POSITIVE_DEFINITE = "positive_definite"
"""The key of the definiteness flag in a solve's ``stats``."""


def claims_positive_definite(operator: lx.AbstractLinearOperator) -> bool:
    """Whether ``operator`` is tagged symmetric and positive semidefinite (static)."""
    return lx.is_symmetric(operator) and lx.is_positive_semidefinite(operator)


def entries_2x2(blocks: Array) -> tuple[Array, Array, Array, Array]:
    """The entries ``a, b, c, d`` of a batch ``(B, 2, 2)`` of blocks ``[[a, b], [c, d]]``.

    They are read as the columns of the ``(B, 4)`` view, which XLA simplifies through
    the strided slices that decompress a Hessian into such blocks (no copy in between).

    Examples:
        >>> import jax.numpy as jnp
        >>> [int(e[0]) for e in entries_2x2(jnp.arange(4).reshape(1, 2, 2))]
        [0, 1, 2, 3]
    """
    flat = blocks.reshape(blocks.shape[0], 4)
    return flat[:, 0], flat[:, 1], flat[:, 2], flat[:, 3]


def blocks_positive_definite(blocks: Array) -> Array:
    """Whether every matrix of a batch ``(B, s, s)`` of symmetric ones is positive definite.

    The pivots of symmetric Gaussian elimination without pivoting (the ``D`` of
    ``LDLᵀ``) are all positive exactly for a positive definite matrix (Sylvester's
    criterion); the elimination is unrolled over ``s`` and vectorised over the batch.

    Examples:
        >>> import jax.numpy as jnp
        >>> bool(blocks_positive_definite(jnp.array([[[2.0, 1.0], [1.0, 2.0]]])))
        True
        >>> bool(blocks_positive_definite(jnp.array([[[1.0, 2.0], [2.0, 1.0]]])))
        False
    """
    if blocks.shape[-1] == 2:
        a, b, c, d = entries_2x2(blocks)
        return jnp.all(a > 0) & jnp.all(d - (c / a) * b > 0)
    definite = jnp.array(True)
    for k in range(blocks.shape[-1]):
        pivot = blocks[:, k, k]
        definite = definite & jnp.all(pivot > 0)
        factors = blocks[:, k + 1 :, k] / pivot[:, None]
        blocks = blocks.at[:, k + 1 :, :].add(-factors[:, :, None] * blocks[:, k, None, :])
    return definite
