"""The one interface through which the interior-point method factors and solves.

A KKT solver is built once for a `KKTStructure` (host-side analysis allowed there) and
then, inside ``jit``, ``factor(data)`` returns a factorization that reports its inertia
``(positive, negative, zero)`` and solves with as many right-hand sides as the line
search needs (the step, second-order corrections).
"""

from typing import Any, Protocol

import equinox as eqx
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array

from asdex_opt._constrained._kkt import KKTStructure
from asdex_opt.lineax import SparseLDL, SparseMatrixLinearOperator, SparseStructure

INERTIA = "inertia"  # SparseLDL's key of (positive, negative, zero) in a solve's stats

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
        regularise: Whether pivots are taken in a fixed order (no pivoting): the
            least-squares multiplier system then gets a small ``δ_c`` so that it is
            quasi-definite.
    """

    regularise: bool

    def factor(self, data: Array) -> Factorization:
        """Factor the matrix whose stored lower-triangle entries are ``data``."""
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
    operator: SparseMatrixLinearOperator
    solver: SparseLDL = eqx.field(static=True)  # its options never enter a loop's carry
    state: Any

    def _solve(self, rhs: Array) -> lx.Solution:
        return lx.linear_solve(self.operator, rhs, self.solver, state=self.state, throw=False)

    @property
    def inertia(self) -> tuple[Array, Array, Array]:
        """``SparseLDL``'s ``stats["inertia"]`` (the unused solve is compiled away)."""
        return self._solve(jnp.zeros(self.operator.in_size(), self.operator.data.dtype)).stats[
            INERTIA
        ]

    def solve(self, rhs: Array) -> Array:
        return self._solve(rhs).value


class SparseKKTSolver:
    """The supernodal sparse ``LDLᵀ`` of `asdex_opt.lineax` (``SparseLDL``), with inertia.

    The pattern is analysed once per problem (fill-reducing ordering, supernodes, a
    plan of batched dense operations) when the first solve is traced; each
    factorization runs inside ``jit`` through ``SparseLDL``'s public interface: its
    ``init`` factors (the Lineax state, reused for every right-hand side of the step and
    its second-order corrections) and a solve's ``stats["inertia"]`` holds the pivots'
    signs. Pivots are taken in the analysed order without pivoting, which is stable for
    quasi-definite matrices: a constraint eliminated before its variables meets an
    exactly zero pivot, after which the interior-point method regularises the
    constraint block (``δ_c > 0``), and it checks the residual of every step. Only
    exactly zero or non-finite pivots count as zero
    (``pivot_rtol=0``): ``SparseLDL``'s default relative threshold would flag the small
    ``-δ_c`` pivots of constraints eliminated before their variables. ``SparseLDL``'s
    own refinement is off (``refinement_steps=0``): the interior-point method refines
    every solve itself, against the matrix with and without ``δ_c``.

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
        # The stored lower triangle stands for the symmetric matrix (SparseLDL reads a
        # lower-triangle pattern as such); the operator is only ever handed to SparseLDL.
        indices = np.stack([structure.rows, structure.cols], axis=1)
        self.structure = SparseStructure(indices, (structure.size, structure.size))
        self.solver = SparseLDL(pivot_rtol=0.0, refinement_steps=0)

    def factor(self, data: Array) -> _LDLFactorization:
        """The ``LDLᵀ`` factorization of the matrix whose stored entries are ``data``."""
        operator = SparseMatrixLinearOperator.from_structure(data, self.structure, lx.symmetric_tag)
        return _LDLFactorization(operator, self.solver, self.solver.init(operator, {}))
