"""Solver choice: the one place where the default solver of a sparse system is decided."""

import lineax as lx
import numpy as np
import scipy.sparse

from asdex_opt._lineax._block_diagonal import BlockDiagonalLU
from asdex_opt._lineax._bordered import BorderedBlockLU
from asdex_opt._lineax._ldl import Analysis, SparseLDL, cached_analysis
from asdex_opt._lineax._ldl._ordering import pattern_adjacency
from asdex_opt._lineax._ldl._trees import tree_and_counts
from asdex_opt._lineax._structure import SparseStructure
from asdex_opt._lineax._superlu import SparseLU, _fill_reducing_ordering
from asdex_opt._lineax._tridiagonal import TridiagonalLU

__all__ = ["choose_solver"]

# The cost model of one factorization + solve on CPU, in seconds (`predicted_times`):
# least-squares fits (relative error, nonnegative) to the minimum times of two runs of
# ``benchmarks/bench_solver_choice.py`` over 25 patterns on 2 shared cores at load
# average 11-14 (``benchmarks/results/solver_choice.md``).
_LDL_SCALAR = (9.0e-5, 1.43e-9)
"""`SparseLDL`'s scalar plan: a constant and a cost per update slot (`LevelPlan.work`)."""

_LDL_FRONTS = (0.0, 5.3e-10, 1.7e-5)
"""`SparseLDL`'s dense fronts: a constant, a cost per padded multiply-add and per pivot
eliminated in sequence (one step of a loop over a whole chunk of fronts)."""

_SUPERLU = (9.0e-4, 1.4e-7, 5.7e-10)
"""`SparseLU`: the host round trip, a cost per entry of ``L`` and per multiply-add of
the factorization, both in `SparseLU`'s own order (SuperLU without row interchanges)."""

_LDL_TIE = 1.3
"""`SparseLDL` is chosen while predicted at most this many times slower than `SparseLU`
(it runs inside jit, batches under vmap, runs on a GPU and gives the exact inertia)."""


def cost_features(analysis: Analysis, rows: np.ndarray, cols: np.ndarray) -> dict:
    """Return the symbolic analysis's inputs to the cost model.

    Args:
        analysis: The symbolic analysis of the pattern.
        rows: Row of each stored entry of the matrix.
        cols: Column of each stored entry.

    Returns:
        ``plan`` (``"scalar"`` or ``"fronts"``), ``nnz`` (stored entries), ``factor``
        (entries of ``L``), ``flops`` (multiply-adds of the factorization in the
        analysis's order: the sum over columns of the squared column count of ``L``),
        ``superlu_factor`` and ``superlu_flops`` (the same in `SparseLU`'s order),
        ``padded`` (the plan's work: update slots of the scalar plan, `LevelPlan.work`;
        the multiply-adds of the padded fronts) and ``pivots`` (pivots the front loops
        eliminate one after another, each over a whole chunk).

    Examples:
        >>> import numpy as np
        >>> from asdex_opt._lineax._ldl import analyse
        >>> rows, cols = np.array([0, 1, 1, 2, 2]), np.array([0, 0, 1, 1, 2])
        >>> cost_features(analyse(3, rows, cols), rows, cols)["flops"]  # counts 2, 2, 1
        9
    """
    indptr, indices = _graph(analysis.n, rows, cols)
    count = _column_counts(indptr, indices, analysis.order)
    superlu = _superlu_counts(indptr, indices)
    plan, padded, pivots = _plan_work(analysis)
    return {
        "plan": plan,
        "nnz": int(np.size(rows)),
        "factor": int(analysis.nnz_factor),
        "flops": int(np.sum(count**2)),
        "superlu_factor": int(superlu.sum()),
        "superlu_flops": int(np.sum(superlu**2)),
        "padded": padded,
        "pivots": pivots,
        "steps": 0 if analysis.levels is None else int(analysis.levels.steps),
    }


def _graph(n: int, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the symmetric adjacency of the pattern (``indptr``, ``indices``, int64)."""
    graph, _ = pattern_adjacency(n, rows, cols)
    return graph.indptr, graph.indices


def _column_counts(indptr: np.ndarray, indices: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Return the column counts of ``L`` (diagonal included) in ``order``."""
    order = np.asarray(order, np.int64)
    return tree_and_counts(indptr, indices, order, np.iinfo(np.int64).max)[1].astype(np.int64)


def _superlu_counts(indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Return the column counts of ``L`` in `SparseLU`'s own fill-reducing order."""
    n = indptr.size - 1
    pattern = scipy.sparse.csc_matrix((np.ones(indices.size, np.int8), indices, indptr), (n, n))
    order = _fill_reducing_ordering(pattern + scipy.sparse.eye(n, dtype=np.int8))
    return _column_counts(indptr, indices, order)


def _plan_work(analysis: Analysis) -> tuple[str, int, int]:
    """Return the plan's name, its work and its pivots in sequence (`cost_features`)."""
    plan = "scalar" if analysis.levels is not None else "fronts"
    padded = 0 if analysis.levels is None else int(analysis.levels.work)
    pivots = 0
    for size_class in analysis.classes:
        eliminated = size_class.tile * size_class.tiles.astype(np.int64)
        padded += int(2 * size_class.width * size_class.size**2 * eliminated.sum())
        pivots += int(eliminated.sum())
    return plan, padded, pivots


def _predicted_ldl(plan: str, padded: int, pivots: int) -> float:
    """Return `SparseLDL`'s predicted seconds of a factorization + solve."""
    if plan == "scalar":
        base, slot = _LDL_SCALAR
        return base + slot * padded
    base, flop, pivot = _LDL_FRONTS
    return base + flop * padded + pivot * pivots


def _predicted_superlu(factor: int, flops: int) -> float:
    """Return `SparseLU`'s predicted seconds for ``factor`` entries of ``L`` and ``flops``."""
    trip, entry, flop = _SUPERLU
    return trip + entry * factor + flop * flops


def predicted_times(features: dict) -> tuple[float, float]:
    """Return the predicted seconds of a factorization + solve: ``(SparseLDL, SparseLU)``."""
    ldl = _predicted_ldl(features["plan"], features["padded"], features["pivots"])
    return ldl, _predicted_superlu(features["superlu_factor"], features["superlu_flops"])


def _ldl_pays(structure: SparseStructure) -> bool:
    """Return whether `SparseLDL` is predicted at most `_LDL_TIE` times slower than `SparseLU`.

    SuperLU's ordering is computed only where SuperLU's cheapest possible factor (``L``
    holding just the lower triangle and the diagonal, no multiply-add) does not already
    lose.
    """
    n = structure.shape[0]
    rows, cols = structure.rows, structure.cols
    analysis = cached_analysis(n, rows, cols)
    ldl = _predicted_ldl(*_plan_work(analysis))
    below = np.unique(rows[rows > cols] * np.int64(n) + cols[rows > cols]).size
    if ldl <= _LDL_TIE * _predicted_superlu(n + below, 0):
        return True
    superlu = _superlu_counts(*_graph(n, rows, cols))
    return ldl <= _LDL_TIE * _predicted_superlu(int(superlu.sum()), int(np.sum(superlu**2)))


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
    inertia) replaces `SparseLU` where a cost model predicts it at most 1.3x slower on
    CPU. The model takes the symbolic analysis (cached; `SparseLDL` reuses it): the
    scalar plan costs a constant plus its update slots (`LevelPlan.work`), dense fronts
    their padded multiply-adds plus each pivot eliminated in sequence; SuperLU a host
    round trip plus its entries of ``L`` and its multiply-adds in its own ordering.
    Small-front Hessians (DIXMAAN, BROYDN7D, SBRYBND) go to `SparseLDL`; wide 2-D fronts
    (``JᵀJ`` of DRCAVTY1, SPARSINE, large 2-D grids) and, by the model, 3-D grids and
    KKT patterns to `SparseLU`. Without the flag the choice ignores symmetry.

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
