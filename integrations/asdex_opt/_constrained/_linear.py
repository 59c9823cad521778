"""The one interface through which the interior-point method factors and solves.

A KKT solver is built once for a `KKTStructure` (host-side analysis allowed there) and
then, inside ``jit``, ``factor(data)`` returns a factorization that reports its inertia
``(positive, negative, zero)`` and solves with as many right-hand sides as the line
search needs (the step, second-order corrections).
"""

from typing import Protocol

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from .._lineax._ldl import Analysis, cached_analysis
from .._lineax._ldl._numeric import Factor, factorize, solve
from ._kkt import KKTStructure

__all__ = ["DenseKKTSolver", "Factorization", "KKTSolver", "SparseKKTSolver"]


class Factorization(Protocol):
    """A factored KKT matrix."""

    inertia: tuple[Array, Array, Array]

    def solve(self, rhs: Array) -> Array:
        """The solution of ``K x = rhs``."""
        ...


class KKTSolver(Protocol):
    """Factors KKT matrices of one static structure.

    Attributes:
        regularise: Whether the constraint block needs ``δ_c > 0`` from the first
            attempt (a factorization without pivoting).
    """

    regularise: bool

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
        >>> [round(float(v), 4) for v in factor.solve(jnp.array([4.0, 1.0]))]
        [1.0, 2.0]
    """

    regularise = False

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


class _LDLFactorization(eqx.Module):
    analysis: Analysis = eqx.field(static=True)
    factor: Factor

    @property
    def inertia(self) -> tuple[Array, Array, Array]:
        """Signs of the pivots; only exactly zero or non-finite ones count as zero.

        (``SparseLDL``'s own count calls pivots below a relative tolerance zero, which
        flags the small ``-δ_c`` pivots of constraints eliminated before their
        variables; the accuracy of each step is checked by its residual instead.)
        """
        positive = negative = jnp.zeros((), jnp.int32)
        for batch, pivots in zip(self.analysis.batches, self.factor.pivots, strict=True):
            real = jnp.asarray(batch.pad == 0)
            good = real & jnp.isfinite(pivots)
            positive = positive + jnp.sum(good & (pivots > 0), dtype=jnp.int32)
            negative = negative + jnp.sum(good & (pivots < 0), dtype=jnp.int32)
        return positive, negative, self.analysis.n - positive - negative

    def solve(self, rhs: Array) -> Array:
        return solve(self.analysis, self.factor, rhs)


class SparseKKTSolver:
    """The supernodal sparse ``LDLᵀ`` of `asdex_opt.lineax` (``SparseLDL``), with inertia.

    The pattern is analysed once (fill-reducing ordering, supernodes, a plan of batched
    dense operations), here; ``factor`` runs inside ``jit``. Pivots are taken in the
    analysed order without pivoting, which is stable for quasi-definite matrices: the
    interior-point method therefore regularises the constraint block (``δ_c > 0``) from
    the first attempt and checks the residual of every step.

    Examples:
        >>> import numpy as np, jax.numpy as jnp
        >>> from asdex_opt._constrained._kkt import KKTStructure
        >>> kkt = KKTStructure(1, 1, 0, np.array([0]), np.array([0]),
        ...                    np.array([0]), np.array([0]))
        >>> data = kkt.assemble(jnp.array([2.0]), jnp.zeros(1), jnp.array([1.0]),
        ...                     jnp.array(0.0))
        >>> factor = SparseKKTSolver(kkt).factor(data)
        >>> [int(i) for i in factor.inertia]
        [1, 1, 0]
        >>> [round(float(v), 4) for v in factor.solve(jnp.array([4.0, 1.0]))]
        [1.0, 2.0]
    """

    regularise = True

    def __init__(self, structure: KKTStructure):
        self.analysis = cached_analysis(structure.size, structure.rows, structure.cols)

    def factor(self, data: Array) -> _LDLFactorization:
        """The ``LDLᵀ`` factorization; its pivots' signs give the inertia."""
        rtol = np.sqrt(self.analysis.n) * np.finfo(data.dtype).eps
        return _LDLFactorization(self.analysis, factorize(self.analysis, data, float(rtol)))
