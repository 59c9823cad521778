"""Definiteness reported by the direct solvers, for operators that claim it.

An operator tagged symmetric and positive semidefinite claims positive definiteness
for a solve (a singular one cannot be solved). A solver can say whether the claim
holds in one of two ways, each declared by a class variable of `AbstractSparseSolver`:

* ``reports_inertia = True`` (`SparseLDL`): ``stats["inertia"]`` holds the numbers of
  positive, negative and zero pivots of its ``LDLᵀ`` factorization; the matrix is
  positive definite exactly when the inertia is ``(n, 0, 0)``;
* ``reports_definiteness = True`` (the LU-based solvers): ``stats["positive_definite"]``
  holds the answer of a check like a Cholesky factorization's.

`positive_definite` reads whichever the solver declares: a minimiser that shifts
``H + τI`` until it is positive definite (Nocedal & Wright, Algorithm 3.3) relies on it.
"""

from typing import ClassVar, Generic, TypeVar

import jax.numpy as jnp
import lineax as lx
from equinox import AbstractClassVar
from jaxtyping import Array

__all__ = [
    "INERTIA",
    "POSITIVE_DEFINITE",
    "AbstractSparseSolver",
    "blocks_positive_definite",
    "claims_positive_definite",
    "entries_2x2",
    "positive_definite",
    "reports_definiteness",
]

POSITIVE_DEFINITE = "positive_definite"
"""The key of the definiteness flag in a solve's ``stats``."""

INERTIA = "inertia"
"""The key of ``(positive, negative, zero)`` pivot counts in a solve's ``stats``."""

_State = TypeVar("_State")


class AbstractSparseSolver(lx.AbstractLinearSolver[_State], Generic[_State]):
    """A Lineax solver of asdex_opt that declares what it reports about the matrix.

    Class variables:
        reports_definiteness: Whether a solve with an operator that claims positive
            definiteness (`claims_positive_definite`) also says whether the claim
            holds: a boolean scalar in ``stats["positive_definite"]``, read by
            `positive_definite`.
        reports_inertia: Whether every solve reports the inertia of the matrix in
            ``stats["inertia"]``.
    """

    reports_definiteness: AbstractClassVar[bool]
    reports_inertia: ClassVar[bool] = False


def reports_inertia(solver: lx.AbstractLinearSolver) -> bool:
    """Whether ``solver`` declares that it reports the inertia (static).

    Examples:
        >>> import lineax as lx
        >>> from asdex_opt._lineax._definite import reports_inertia
        >>> from asdex_opt.lineax import SparseLDL, SparseLU
        >>> reports_inertia(SparseLDL()), reports_inertia(SparseLU())
        (True, False)
    """
    return isinstance(solver, AbstractSparseSolver) and solver.reports_inertia


def reports_definiteness(solver: lx.AbstractLinearSolver) -> bool:
    """Whether ``solver`` declares that it reports definiteness, either way (static).

    Examples:
        >>> import lineax as lx
        >>> from asdex_opt._lineax._definite import reports_definiteness
        >>> from asdex_opt.lineax import SparseLU
        >>> reports_definiteness(SparseLU()), reports_definiteness(lx.LU())
        (True, False)
    """
    return isinstance(solver, AbstractSparseSolver) and (
        solver.reports_definiteness or solver.reports_inertia
    )


def positive_definite(solver: lx.AbstractLinearSolver, solution: lx.Solution) -> Array:
    """Whether the claimed positive definiteness holds, as ``solver`` reported it.

    From the inertia where the solver reports it (no negative and no zero pivot),
    else from its definiteness flag; ``True`` for a solver that reports neither.
    """
    if reports_inertia(solver):
        _, negative, zero = solution.stats[INERTIA]
        return (negative == 0) & (zero == 0)
    if reports_definiteness(solver):
        return solution.stats[POSITIVE_DEFINITE]
    return jnp.array(True)


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
