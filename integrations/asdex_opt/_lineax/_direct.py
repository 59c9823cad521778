"""What the direct sparse solvers share: one square sparse matrix as state."""

from typing import Any, ClassVar

import equinox as eqx
import lineax as lx

from asdex_opt._lineax._definite import AbstractSparseSolver
from asdex_opt._lineax._fold import fold_sparse
from asdex_opt._lineax._operator import SparseMatrixLinearOperator

__all__ = ["AbstractSparseDirectSolver", "SparseSolveState"]


class SparseSolveState(eqx.Module):
    """The matrix to solve with, and whether to solve with its transpose."""

    operator: SparseMatrixLinearOperator
    transpose: bool = eqx.field(static=True)


class AbstractSparseDirectSolver(AbstractSparseSolver[SparseSolveState]):
    """A direct solver of square sparse systems, with or without the transpose.

    ``init`` folds the operator into one `SparseMatrixLinearOperator`; ``transpose``
    and ``conj`` only flag or conjugate it. Subclasses implement ``compute``, which
    reads ``state.transpose``, and report definiteness (``reports_definiteness``).
    """

    reports_definiteness: ClassVar[bool] = True
    non_square_hint: ClassVar[str] = ""

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        """Fold the operator into one sparse matrix."""
        del options
        if operator.in_size() != operator.out_size():
            raise ValueError(
                f"`{type(self).__name__}` may only be used for linear solves with square "
                f"operators; got an operator of shape ({operator.out_size()}, "
                f"{operator.in_size()}).{self.non_square_hint}"
            )
        if not isinstance(operator, SparseMatrixLinearOperator):
            operator = fold_sparse(operator)
        return SparseSolveState(operator, transpose=False)

    def transpose(self, state: SparseSolveState, options: dict[str, Any]):
        """The same matrix, solved transposed."""
        del options
        return SparseSolveState(state.operator, transpose=not state.transpose), {}

    def conj(self, state: SparseSolveState, options: dict[str, Any]):
        """The conjugated matrix."""
        del options
        return SparseSolveState(lx.conj(state.operator), transpose=state.transpose), {}

    def assume_full_rank(self) -> bool:
        """Only nonsingular operators are supported."""
        return True
