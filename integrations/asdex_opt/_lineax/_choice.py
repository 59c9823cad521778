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

_LDL_MAX_SCALAR_WORK = 1_000_000
"""`SparseLDL`'s scalar plan pays up to this cost (`LevelPlan.work`, in updates)."""

_LDL_MIN_FILL = 50.0
"""Above that cost, it pays when ``L`` holds at least this many entries per column..."""

_LDL_MAX_PADDING = 40.0
"""... and, with dense fronts, these store at most this many entries per entry of ``L``."""


def _ldl_pays(structure: SparseStructure) -> bool:
    """Return whether the symbolic analysis predicts `SparseLDL` near SuperLU's speed on CPU.

    The thresholds follow ``benchmarks/results/factorization.md``: with the scalar
    plan, SparseLDL is faster than `SparseLU` or within 1.3x on the small-front
    Hessians (DIXMAAN, BROYDN7D, FREUROTH, SBRYBND), where SuperLU's host round trip
    dominates, and slower on 2-D grids of 10⁴, bands of width 10 and NONCVXUN, where
    the factorization makes millions of updates on short columns; where ``L`` is dense
    per column (3-D grids, KKT matrices in the minimum-degree order) the scalar plan
    comes near or beats SuperLU, and so do dense fronts unless padded beyond 40x. The
    analysis is cached: `SparseLDL` reuses it.
    """
    n = structure.shape[0]
    analysis = cached_analysis(n, structure.rows, structure.cols)
    if analysis.levels is not None and analysis.levels.work <= _LDL_MAX_SCALAR_WORK:
        return True
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
    inertia) replaces `SparseLU` where its symbolic analysis predicts it near or above
    SuperLU's speed on CPU: a scalar plan of small cost (at most 1e6 update slots,
    each loop step counted as 4096: small-front Hessians), or a factor holding at
    least 50 entries of ``L`` per column (3-D grids, KKT matrices), whose dense
    fronts, if any, are padded at most 40x. Without the flag the choice ignores
    symmetry.

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
