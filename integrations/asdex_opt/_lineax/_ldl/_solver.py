"""`SparseLDL`: the Lineax solver over the supernodal LDLᵀ factorization."""

import collections
import os
import threading
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array

from asdex_opt._lineax._definite import INERTIA, AbstractSparseSolver
from asdex_opt._lineax._fold import fold_sparse
from asdex_opt._lineax._ldl._numeric import Factor, factorize, solve
from asdex_opt._lineax._ldl._operands import operands
from asdex_opt._lineax._ldl._symbolic import Analysis, analyse, pattern_key
from asdex_opt._lineax._operator import SparseMatrixLinearOperator
from asdex_opt._lineax._structure import SparseStructure

__all__ = ["INERTIA", "SparseLDL", "cached_analysis", "check_memory", "memory_limit"]

_ANALYSES: collections.OrderedDict[bytes, Analysis] = collections.OrderedDict()
_LOCK = threading.Lock()
_MAX_ANALYSES = 16


def cached_analysis(n: int, rows: np.ndarray, cols: np.ndarray) -> Analysis:
    """`analyse` of the pattern, computed once per pattern (a small LRU cache).

    Examples:
        >>> import numpy as np
        >>> a = cached_analysis(2, np.array([0, 1, 1]), np.array([0, 0, 1]))
        >>> a is cached_analysis(2, np.array([0, 1, 1]), np.array([0, 0, 1]))
        True
    """
    key = pattern_key(n, rows, cols)
    with _LOCK:
        if key in _ANALYSES:
            _ANALYSES.move_to_end(key)
            return _ANALYSES[key]
    analysis = analyse(n, rows, cols, key=key)
    with _LOCK:
        _ANALYSES[key] = analysis
        while len(_ANALYSES) > _MAX_ANALYSES:
            _ANALYSES.popitem(last=False)
    return analysis


def memory_limit() -> int:
    """Return the bytes the factor may take: half the machine's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def check_memory(analysis: Analysis, dtype: np.dtype) -> None:
    """Raise a `ValueError` if the factor of this analysis would not fit in memory.

    Examples:
        >>> import numpy as np
        >>> from asdex_opt._lineax._ldl import analyse
        >>> check_memory(analyse(2, np.array([0, 1]), np.array([0, 1])), np.float64)
    """
    needed = analysis.stored * np.dtype(dtype).itemsize
    limit = memory_limit()
    if needed > limit:
        raise ValueError(
            f"`SparseLDL` would store {analysis.stored:,} entries ({needed / 1e9:.1f} GB) "
            f"for this {analysis.n:,} x {analysis.n:,} pattern ({analysis.nnz_factor:,} "
            f"entries of L in the {analysis.ordering} order, in dense fronts), more than "
            f"the {limit / 1e9:.1f} GB (half this machine's memory) it may use: the "
            "pattern fills in nearly densely. Use `asdex_opt.lineax.SparseLU` (SuperLU, "
            "with its own ordering), or a dense solver such as `lineax.LU` if n is small."
        )


class _LDLState(eqx.Module):
    analysis: Analysis = eqx.field(static=True)
    factor: Factor
    data: Array


def _pattern(operator: SparseMatrixLinearOperator) -> tuple[np.ndarray, np.ndarray]:
    """The static pattern (rows, cols) of the operator's stored entries."""
    structure = getattr(operator, "structure", None)
    if structure is not None:
        indices = structure.indices
    elif isinstance(operator.indices, jax.core.Tracer):
        raise ValueError(
            "`SparseLDL` analyses the sparsity pattern when tracing, but this operator's "
            "indices are traced. Build it with `SparseMatrixLinearOperator.from_structure`"
            " (a static structure), or close over the operator instead of passing it into "
            "`jax.jit` as an argument."
        )
    else:
        indices = np.asarray(operator.indices)
    return indices[:, 0].astype(np.int64), indices[:, 1].astype(np.int64)


class SparseLDL(AbstractSparseSolver[_LDLState]):
    """Supernodal sparse ``LDLᵀ`` for symmetric matrices, all inside ``jit``, with inertia.

    The sparsity pattern is analysed once, on the host, when the solve is traced (and
    cached by pattern): a fill-reducing ordering, nested dissection (vertex separators
    from breadth-first level structures; shallow elimination trees) or approximate
    minimum degree (least fill on irregular patterns, deep trees), whichever the
    plan's cost model prefers (reverse Cuthill-McKee is evaluated too where its
    envelope is smaller), the elimination tree and column counts. Then one of two
    numeric plans, by the number of scalar updates the factorization makes
    (``Σ_k c_k (c_k + 1) / 2`` over the columns of ``L``, ``c_k`` entries below the
    diagonal):

    * at most ``5e6`` (small fronts: most sparse Hessians, bands, 2-D grids up to
      about ``10⁴``), a level-scheduled scalar factorization: ``L`` is stored
      without padding; the columns of one level of the elimination tree, once
      final, are divided by their pivots (one slice) and send their updates to
      their ancestors as a batch of two gathers, a product and one scatter, and
      the solves go over the entries of ``L`` by level the same way; the levels
      form a few runs per phase (a large level is one batch of its own, the others
      share a loop over blocks of one size);
    * above, supernodes with relaxed amalgamation whose dense fronts are padded to
      size classes (fitted to their largest front, in whole tiles) cut into chunks
      of equal shape, one loop per size class over its chunks of batched dense
      operations (assembly by precomputed scatters, tiled partial ``LDLᵀ`` of each
      front, Schur complements added into the parents' fronts, triangular solves by
      one product per front).

    Either way the number of compiled operations does not grow with ``n``; no host
    callback, any device, ``jax.vmap`` over matrices with one pattern batches them into
    one program. The plan's index arrays do grow with ``n``: inside ``jit`` they are
    constants of the program, unless the solver comes from `from_structure` and is
    passed in as an argument, which keeps the compile time flat.
    A pattern whose dense fronts would take more than half the machine's memory is
    refused with a `ValueError` that points to `SparseLU`.

    Pivots are taken in the analysed order, without pivoting: this is stable for
    positive definite matrices and for quasi-definite ones (Vanderbei 1995), such as
    the regularised KKT systems ``[[H + δI, Aᵀ], [A, -εI]]`` of interior-point
    methods. The solve's ``stats["inertia"]`` holds the numbers of positive, negative
    and zero pivots, which by Sylvester's law of inertia are those of the matrix's
    eigenvalues when no pivot is zero: the matrix is positive definite exactly when
    the inertia is ``(n, 0, 0)``. This is the solver's public contract
    (``reports_inertia = True``): the shifted Newton direction and the interior-point
    method read ``stats["inertia"]``. A pivot whose magnitude is at most ``pivot_rtol``
    times the largest one, or one that is not finite, counts as zero and makes the
    solve return ``lineax.RESULTS.singular`` (an error with ``throw=True``).

    The operator must be a square `SparseMatrixLinearOperator` (or one that
    `fold_sparse` folds into one, such as ``H + λ I``) that is symmetric (tagged
    ``lineax.symmetric_tag`` or positive/negative semidefinite) and whose pattern is
    known when tracing (a static `SparseStructure`, or concrete indices). Its pattern
    may hold the whole symmetric matrix or only its lower triangle; a missing
    diagonal is added. The matrix is real; transposed and conjugated solves reuse the
    factorization.

    Without pivoting, a quasi-definite matrix with tiny regularisation (``ε`` of
    ``1e-8`` to ``1e-12``) can lose digits to element growth when its ``-εI`` pivots
    come early in the order; iterative refinement against the original matrix
    (``x += solve(b - A x)``, at most ``refinement_steps`` steps, each kept only if it
    lowers the residual, none once the residual is at rounding level) recovers them.
    A well-conditioned positive definite solve is usually at rounding level already
    and then costs one extra matrix-vector product.

    Attributes:
        pivot_rtol: Relative size below which a pivot counts as zero, relative to the
            largest entry of the matrix; ``None`` means ``√n`` times the machine
            epsilon of the matrix's dtype.
        refinement_steps: At most this many steps of iterative refinement (0: none).
        analysis: The analysis of the one pattern this solver solves (`from_structure`),
            or ``None``: every pattern it meets, analysed when tracing.
        arrays: That analysis's index arrays (``None`` with ``analysis``).

    Examples:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from jax.experimental.sparse import BCOO
        >>> from asdex_opt.lineax import SparseMatrixLinearOperator
        >>> from asdex_opt._lineax._ldl import SparseLDL
        >>> A = jnp.array([[4.0, 1.0, 0.0], [1.0, -3.0, 1.0], [0.0, 1.0, 2.0]])
        >>> op = SparseMatrixLinearOperator(BCOO.fromdense(A), lx.symmetric_tag)
        >>> solution = lx.linear_solve(op, jnp.array([5.0, -1.0, 3.0]), SparseLDL())
        >>> solution.value
        Array([1., 1., 1.], dtype=float32)
        >>> [int(count) for count in solution.stats["inertia"]]
        [2, 1, 0]
    """

    pivot_rtol: float | None = eqx.field(default=None, static=True)
    refinement_steps: int = eqx.field(default=3, static=True)
    analysis: Analysis | None = eqx.field(default=None, static=True)
    arrays: dict[str, Array] | None = None
    reports_definiteness: ClassVar[bool] = False
    reports_inertia: ClassVar[bool] = True

    @classmethod
    def from_structure(
        cls, structure: SparseStructure, pivot_rtol: float | None = None, refinement_steps: int = 3
    ) -> "SparseLDL":
        """Return the solver with the analysis of this pattern and its index arrays.

        Call it outside ``jit`` and pass the solver into the jitted function as an
        argument: the plan's index arrays, which grow with the pattern, are then
        arguments of the program rather than constants compiled into it, so the
        program compiles in about the same time for every ``n``. The solver may then
        only solve operators with this pattern.

        Examples:
            >>> import jax, jax.numpy as jnp, lineax as lx, numpy as np
            >>> from asdex_opt.lineax import SparseLDL, SparseMatrixLinearOperator
            >>> from asdex_opt.lineax import SparseStructure
            >>> structure = SparseStructure(np.array([[0, 0], [1, 0], [1, 1]]), (2, 2))
            >>> solver = SparseLDL.from_structure(structure)
            >>> @jax.jit
            ... def run(data, b, solver):
            ...     operator = SparseMatrixLinearOperator.from_structure(
            ...         data, structure, lx.symmetric_tag)
            ...     return lx.linear_solve(operator, b, solver).value
            >>> run(jnp.array([2.0, 1.0, 3.0]), jnp.array([3.0, 4.0]), solver)
            Array([1., 1.], dtype=float32)
        """
        analysis = cached_analysis(structure.shape[0], structure.rows, structure.cols)
        arrays = {name: jnp.asarray(array) for name, array in operands(analysis).items()}
        return cls(pivot_rtol, refinement_steps, analysis, arrays)

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]) -> _LDLState:
        """Analyse the pattern (once per pattern) and factor the matrix."""
        del options
        if operator.in_size() != operator.out_size():
            raise ValueError(
                "`SparseLDL` may only be used for linear solves with square operators; got "
                f"an operator of shape ({operator.out_size()}, {operator.in_size()})."
            )
        if not lx.is_symmetric(operator):
            raise ValueError(
                "`SparseLDL` needs a symmetric operator (tagged `lineax.symmetric_tag`, or "
                "positive/negative semidefinite). Use `asdex_opt.lineax.SparseLU` for "
                "unsymmetric operators."
            )
        if not isinstance(operator, SparseMatrixLinearOperator):
            operator = fold_sparse(operator)
        if jnp.issubdtype(operator.data.dtype, jnp.complexfloating):
            raise ValueError("`SparseLDL` supports real matrices only; use `SparseLU`.")
        n = operator.in_size()
        rows, cols = _pattern(operator)
        if self.analysis is None:
            analysis = cached_analysis(n, rows, cols)
        elif self.analysis.key == pattern_key(n, rows, cols):
            analysis = self.analysis
        else:
            raise ValueError(
                "This `SparseLDL` was built by `SparseLDL.from_structure` for another "
                "sparsity pattern than the operator's. Build it from the operator's "
                "structure, or use `SparseLDL()`, which analyses every pattern it meets."
            )
        dtype = operator.data.dtype
        check_memory(analysis, dtype)
        rtol = np.sqrt(n) * np.finfo(dtype).eps if self.pivot_rtol is None else self.pivot_rtol
        factor = factorize(analysis, operator.data, float(rtol), self.arrays)
        return _LDLState(analysis, factor, operator.data)

    def compute(
        self, state: _LDLState, vector: Array, options: dict[str, Any]
    ) -> tuple[Array, lx.RESULTS, dict[str, Any]]:
        """Solve with the factorization; report the inertia in ``stats``."""
        del options
        factor = state.factor
        dtype = jnp.result_type(vector.dtype, factor.pivots[0].dtype)
        cast = jax.tree.map(lambda leaf: leaf.astype(dtype), (factor.fronts, factor.pivots))
        cast = Factor(*cast, factor.inertia, factor.singular, factor.arrays)
        vector = vector.astype(dtype)
        solution = self._refined_solve(state, cast, vector)
        result = lx.RESULTS.where(factor.singular, lx.RESULTS.singular, lx.RESULTS.successful)
        return solution, result, {INERTIA: factor.inertia}

    def _refined_solve(self, state: _LDLState, factor: Factor, vector: Array) -> Array:
        """Solve, then refine by steps ``x += solve(b - A x)`` against the original matrix.

        At most `refinement_steps`; a step is kept only if it lowers ``‖b - A x‖``, and
        they stop once the residual is at the rounding level ``√n ε (max|A| ‖x‖ + ‖b‖)``
        or falls by less than half. The first solve is the loop's first step (from
        ``x = 0``), so that the solve is compiled once.
        """
        if self.refinement_steps == 0:
            return solve(state.analysis, factor, vector)
        rows, cols, place = factor.arrays["lower"]
        values = state.data.astype(vector.dtype)[place]
        mirrored = jnp.where(rows != cols, values, 0)
        eps = jnp.finfo(vector.dtype).eps * np.sqrt(vector.size)
        scale = jnp.max(jnp.abs(values), initial=0.0)

        def residual(x):
            # The symmetric matrix of the lower entries (the ones factored).
            product = jnp.zeros_like(x).at[rows].add(values * x[cols])
            product = product.at[cols].add(mirrored * x[rows])
            r = vector - product
            return r, jnp.linalg.norm(r)

        def cond(carry):
            x, _, norm, previous, step = carry
            level = eps * (scale * jnp.linalg.norm(x) + jnp.linalg.norm(vector))
            refine = (norm > level) & (norm < 0.5 * previous)
            return (step == 0) | ((step <= self.refinement_steps) & refine)

        def body(carry):
            x, r, norm, _, step = carry
            candidate = x + solve(state.analysis, factor, r)
            r_candidate, norm_candidate = residual(candidate)
            keep = (step == 0) | (norm_candidate < norm)
            return (
                jnp.where(keep, candidate, x),
                jnp.where(keep, r_candidate, r),
                jnp.where(keep, norm_candidate, norm),
                jnp.where(step == 0, jnp.inf, norm),
                step + 1,
            )

        norm = jnp.linalg.norm(vector)
        init = (jnp.zeros_like(vector), vector, norm, norm, jnp.zeros((), jnp.int32))
        return jax.lax.while_loop(cond, body, init)[0]

    def transpose(self, state: _LDLState, options: dict[str, Any]):
        """The matrix is symmetric: the same factorization."""
        return state, options

    def conj(self, state: _LDLState, options: dict[str, Any]):
        """The matrix is real: the same factorization."""
        return state, options

    def assume_full_rank(self) -> bool:
        """Only nonsingular operators are supported."""
        return True
