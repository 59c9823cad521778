"""The one interface through which the interior-point method factors and solves.

A KKT solver is built once for a `KKTStructure` (host-side analysis allowed there) and
then, inside ``jit``, ``factor(data)`` returns a factorization that reports its inertia
``(positive, negative, zero)`` and solves with as many right-hand sides as the line
search needs (the step, second-order corrections).
"""

from typing import Protocol

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array

from ._kkt import KKTStructure

__all__ = ["DenseKKTSolver", "Factorization", "KKTSolver"]


class Factorization(Protocol):
    """A factored KKT matrix."""

    inertia: tuple[Array, Array, Array]

    def solve(self, rhs: Array) -> Array:
        """The solution of ``K x = rhs``."""
        ...


class KKTSolver(Protocol):
    """Factors KKT matrices of one static structure."""

    def factor(self, data: Array) -> Factorization:
        """Factors the matrix whose stored lower-triangle entries are ``data``."""
        ...


class _EigenFactorization(eqx.Module):
    vectors: Array
    values: Array
    inertia: tuple[Array, Array, Array]

    def solve(self, rhs: Array) -> Array:
        values = jnp.where(self.values == 0, jnp.inf, self.values)
        return self.vectors @ ((self.vectors.T @ rhs) / values)


class DenseKKTSolver:
    """Dense symmetric eigendecomposition: exact inertia, for small problems and tests.

    Eigenvalues below ``size * eps * max|λ|`` in magnitude count as zero. The cost is
    cubic in the order of the KKT matrix and its memory quadratic, so this is the
    reference path for problems of up to a few hundred variables and constraints.

    Examples:
        >>> import numpy as np, jax.numpy as jnp
        >>> from asdex_opt._constrained._kkt import KKTStructure
        >>> kkt = KKTStructure(1, 1, 0, np.array([0]), np.array([0]),
        ...                    np.array([0]), np.array([0]))
        >>> data = kkt.assemble(jnp.array([2.0]), jnp.zeros(1), jnp.array([1.0]),
        ...                     jnp.array(0.0))
        >>> factor = DenseKKTSolver(kkt).factor(data)
        >>> [int(i) for i in factor.inertia]
        [1, 1, 0]
        >>> factor.solve(jnp.array([2.0, 1.0])).tolist()
        [1.0, 0.0]
    """

    def __init__(self, structure: KKTStructure):
        self.structure = structure

    def factor(self, data: Array) -> _EigenFactorization:
        """Eigendecomposition of the assembled matrix, with its inertia."""
        values, vectors = jnp.linalg.eigh(self.structure.dense(data))
        scale = jnp.max(jnp.abs(values), initial=0.0)
        tol = self.structure.size * jnp.finfo(values.dtype).eps * scale
        zero = (jnp.abs(values) <= tol) | ~jnp.isfinite(values)
        values = jnp.where(zero, 0.0, values)
        inertia = (
            jnp.sum(values > 0).astype(jnp.int32),
            jnp.sum(values < 0).astype(jnp.int32),
            jnp.sum(zero).astype(jnp.int32),
        )
        return _EigenFactorization(vectors, values, inertia)
