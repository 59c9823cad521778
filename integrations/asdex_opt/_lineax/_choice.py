"""Solver choice: the one place where the default solver of a sparse system is decided."""

import lineax as lx
import numpy as np

from asdex_opt._lineax._block_diagonal import BlockDiagonalLU
from asdex_opt._lineax._bordered import BorderedBlockLU
from asdex_opt._lineax._structure import SparseStructure
from asdex_opt._lineax._superlu import SparseLU
from asdex_opt._lineax._tridiagonal import TridiagonalLU

__all__ = ["choose_solver"]


def choose_solver(structure: SparseStructure) -> lx.AbstractLinearSolver:
    """The default direct solver for a square matrix of this structure (plus its diagonal).

    `BlockDiagonalLU` (dense LU of every block, in JAX) when the pattern splits into
    connected components of at most 16 variables, e.g. separable or block-separable
    objectives; `BorderedBlockLU` (in JAX too) when it does so after setting aside at
    most 16 variables coupled to more than 16 others (arrowhead patterns);
    `TridiagonalLU` (``lineax.Tridiagonal``, LAPACK's ``gtsv``) for a tridiagonal
    pattern in the given order, e.g. a chain; `SparseLU` (SuperLU on the host)
    otherwise. All four report whether a matrix that claims positive definiteness has
    it. Every asdex_opt front end asks here, so a new solver is plugged in here only.

    Examples:
        >>> import numpy as np
        >>> from asdex_opt.lineax import SparseStructure, choose_solver
        >>> s = SparseStructure(np.array([[0, 1], [1, 0]]), (4, 4))
        >>> type(choose_solver(s)).__name__
        'BlockDiagonalLU'
    """
    n = structure.shape[0]
    if structure.shape != (n, n):
        raise ValueError(f"`choose_solver` needs a square structure, got {structure}.")
    rows, cols = structure.rows, structure.cols
    block = BlockDiagonalLU.from_pattern(rows, cols, n)
    if block is not None:
        return block
    bordered = BorderedBlockLU.from_pattern(rows, cols, n)
    if bordered is not None:
        return bordered
    if np.all(np.abs(rows - cols) <= 1):
        return TridiagonalLU()
    return SparseLU()
