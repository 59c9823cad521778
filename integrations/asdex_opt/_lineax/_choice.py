"""Solver choice: the one place where the default solver of a sparse system is decided."""

import lineax as lx
import numpy as np

from asdex_opt._lineax._block_diagonal import BlockDiagonalLU
from asdex_opt._lineax._bordered import BorderedBlockLU
from asdex_opt._lineax._ldl import SparseLDL, cached_analysis
from asdex_opt._lineax._structure import SparseStructure
from asdex_opt._lineax._superlu import SparseLU
from asdex_opt._lineax._tridiagonal import TridiagonalLU

__all__ = ["choose_solver"]

_LDL_MIN_FILL = 50.0
"""`SparseLDL` pays when ``L`` holds at least this many entries per column (large fronts)."""

_LDL_MAX_PADDING = 40.0
"""... and its padded fronts store at most this many entries per entry of ``L``."""


def _ldl_pays(structure: SparseStructure) -> bool:
    """Return whether the symbolic analysis predicts `SparseLDL` near SuperLU's speed on CPU.

    The thresholds follow ``benchmarks/results/factorization.md``: SparseLDL comes near
    `SparseLU` only where ``L`` is dense per column (3-D Poisson, SPARSINE); on 2-D
    grids, bands and small-front Hessians it is slower, and random KKT patterns pad
    their fronts beyond 40x. The analysis is cached: `SparseLDL` reuses it.
    """
    n = structure.shape[0]
    analysis = cached_analysis(n, structure.rows, structure.cols)
    fill = analysis.nnz_factor / max(n, 1)
    padding = analysis.stored / max(analysis.nnz_factor, 1)
    return fill >= _LDL_MIN_FILL and padding <= _LDL_MAX_PADDING


def choose_solver(structure: SparseStructure, symmetric: bool = False) -> lx.AbstractLinearSolver:
    """Return the default direct solver for a square matrix of this structure (plus its diagonal).

    `BlockDiagonalLU` (dense LU of every block, in JAX) when the pattern splits into
    connected components of at most 16 variables, e.g. separable or block-separable
    objectives; `BorderedBlockLU` (in JAX too) when it does so after setting aside at
    most 16 variables coupled to more than 16 others (arrowhead patterns);
    `TridiagonalLU` (an unpivoted ``LDLᵀ`` in JAX under a definiteness claim,
    else ``lineax.Tridiagonal``, LAPACK's ``gtsv``) for a tridiagonal
    pattern in the given order, e.g. a chain; `SparseLU` (SuperLU on the host)
    otherwise. All four report whether a matrix that claims positive definiteness has
    it. Every asdex_opt front end asks here, so a new solver is plugged in here only.

    With ``symmetric=True`` (the caller knows the matrix is symmetric: a Hessian, ``JᵀJ``)
    the structured solvers keep their patterns, and `SparseLDL` (all in JAX, exact
    inertia) replaces `SparseLU` where its symbolic analysis predicts large fronts (at
    least 50 entries of ``L`` per column, padding at most 40x), the patterns on which
    the factorization benchmark measured it within 1.3x of `SparseLU` on CPU. Without
    the flag the choice ignores symmetry.

    Args:
        structure: The square sparsity structure.
        symmetric: Whether the matrices with this structure are symmetric.

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
    if symmetric and _ldl_pays(structure):
        return SparseLDL()
    return SparseLU()
