"""A sparse direct Lineax solver: SuperLU on the host, with ordering and factorization reuse."""

import concurrent.futures
import threading
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from jaxtyping import Array

from asdex_opt._lineax._definite import POSITIVE_DEFINITE, claims_positive_definite
from asdex_opt._lineax._direct import AbstractSparseDirectSolver, SparseSolveState

__all__ = ["SparseLU"]


def _dense_threshold(n: int) -> float:
    """Degree above which a row counts as dense (AMD's default, ``10 √n``, at least 16)."""
    return max(16.0, 10.0 * np.sqrt(n))


def _superlu_ordering(pattern: scipy.sparse.csc_matrix, permc_spec: str) -> np.ndarray:
    """SuperLU's fill-reducing ordering (with its elimination-tree postorder) of a pattern.

    SciPy exposes SuperLU's orderings only through a factorization, so this factors a
    diagonally dominant matrix with ``pattern`` plus the diagonal as its pattern,
    incompletely (``spilu`` dropping almost everything, so the factorization is cheap;
    its ordering is the one ``splu`` would use). Returns ``order`` such that
    ``A[order][:, order]`` is the permuted matrix.
    """
    coo = pattern.tocoo()
    off = coo.row != coo.col
    rows, cols = coo.row[off], coo.col[off]
    n = pattern.shape[0]
    degree = np.bincount(rows, minlength=n) + np.bincount(cols, minlength=n)
    diagonal = np.arange(n)
    synthetic = scipy.sparse.csc_matrix(
        (np.r_[-np.ones(rows.size), degree + 1.0], (np.r_[rows, diagonal], np.r_[cols, diagonal])),
        shape=(n, n),
    )
    ilu = scipy.sparse.linalg.spilu(synthetic, drop_tol=0.9, fill_factor=1.0, permc_spec=permc_spec)
    return np.argsort(ilu.perm_c)


def _fill_reducing_ordering(pattern: scipy.sparse.csc_matrix) -> np.ndarray:
    """A symmetric fill-reducing permutation ``order`` for the square ``pattern``.

    A symmetric pattern (Hessians, PDE Jacobians) gets a minimum-degree ordering of
    ``A + Aᵀ``, which fills in about half as much as COLAMD; as in AMD, dense rows and
    columns (degree above `_dense_threshold`) are left out of it and ordered last, since
    minimum degree takes time quadratic in their number of entries (SuperLU's ordering
    of an arrowhead matrix took about 25 ms for n = 5000 and 0.4 s for n = 20 000) while
    ordering them last loses little sparsity (none for an arrowhead). Other patterns get
    COLAMD.

    Examples:
        >>> n = 300
        >>> arrow = scipy.sparse.eye(n, format="lil")
        >>> arrow[0, :] = arrow[:, 0] = 1
        >>> _fill_reducing_ordering(arrow.tocsc())[-1]  # the dense row and column last
        np.int64(0)
    """
    n = pattern.shape[0]
    pattern = (pattern != 0).astype(np.int8).tocsc()
    if (pattern != pattern.T).nnz:
        return _superlu_ordering(pattern, "COLAMD")
    degree = np.diff(pattern.indptr)
    dense = degree > _dense_threshold(n)
    sparse = np.flatnonzero(~dense)
    if sparse.size == 0:
        return np.arange(n)
    inner = _superlu_ordering(pattern[sparse][:, sparse], "MMD_AT_PLUS_A")
    return np.concatenate([sparse[inner], np.flatnonzero(dense)])


class _Pattern:
    """The symbolic part of a sparse LU, shared by all matrices with one sparsity pattern.

    Holds the fill-reducing ordering (computed once per pattern) and the map from the
    BCOO entries (with duplicates and out-of-range padding) to the compressed columns
    of the permuted matrix ``A[order][:, order]``, so a new matrix with this pattern
    costs one ``bincount`` to assemble and a SuperLU factorization with the ``NATURAL``
    ordering.
    """

    def __init__(self, indices: np.ndarray, shape: tuple[int, int]):
        self.indices, self.shape = indices.copy(), shape
        n = shape[0]
        rows, cols = indices[:, 0].astype(np.int64), indices[:, 1].astype(np.int64)
        inside = (rows >= 0) & (rows < n) & (cols >= 0) & (cols < n)
        self.keep = None if inside.all() else np.flatnonzero(inside)
        rows, cols = rows[inside], cols[inside]
        pattern = scipy.sparse.csc_matrix((np.ones(rows.size, np.int8), (rows, cols)), shape)
        self.order = _fill_reducing_ordering(pattern)
        position = np.argsort(self.order)
        keys, self.slots = np.unique(position[cols] * n + position[rows], return_inverse=True)
        self.row_indices = (keys % n).astype(np.int32)
        counts = np.bincount(keys // n, minlength=n)
        self.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)

    def matches(self, indices: np.ndarray, shape: tuple[int, int]) -> bool:
        return self.shape == shape and np.array_equal(self.indices, indices)

    def assemble(self, data: np.ndarray) -> scipy.sparse.csc_matrix:
        """The permuted matrix with the BCOO values ``data`` (duplicates summed)."""
        if self.keep is not None:
            data = data[self.keep]
        size = self.row_indices.size
        values = np.bincount(self.slots, weights=data.real, minlength=size)
        if np.iscomplexobj(data):
            values = values + 1j * np.bincount(self.slots, weights=data.imag, minlength=size)
        return scipy.sparse.csc_matrix((values, self.row_indices, self.indptr), self.shape)


class _Factorization:
    """A host-side SuperLU factorization of ``A[order][:, order]`` and its values.

    With ``diagonal_pivots`` (for matrices that claim to be positive definite) SuperLU
    keeps to the diagonal like a Cholesky factorization; ``positive_definite`` then says
    whether it could and found only positive pivots (Sylvester's criterion).
    """

    def __init__(self, pattern: _Pattern, data: np.ndarray, diagonal_pivots: bool = False):
        self.pattern, self.data = pattern, data.copy()
        self.diagonal_pivots = diagonal_pivots
        self.positive_definite = False
        options = {"SymmetricMode": True} if diagonal_pivots else None
        try:
            self.lu = scipy.sparse.linalg.splu(
                pattern.assemble(data),
                permc_spec="NATURAL",
                diag_pivot_thresh=0.0 if diagonal_pivots else None,
                options=options,
            )
        except RuntimeError:  # SuperLU: "Factor is exactly singular"
            self.lu = None
            self.min_pivot_ratio = 0.0
            return
        diagonal = self.lu.U.diagonal()
        pivots = np.abs(diagonal)
        self.min_pivot_ratio = pivots.min() / pivots.max() if pivots.max() > 0 else 0.0
        if diagonal_pivots:
            symmetric = np.array_equal(self.lu.perm_r, self.lu.perm_c)
            self.positive_definite = bool(symmetric and np.all(diagonal.real > 0))

    def solve(self, b: np.ndarray, trans: str) -> np.ndarray:
        """Solve ``A x = b`` (``trans="N"``) or ``Aᵀ x = b`` (``"T"``)."""
        order = self.pattern.order
        permuted = self.lu.solve(b[order], trans=trans)
        x = np.empty_like(permuted)
        x[order] = permuted
        return x


class _FactorizationCache:
    """Small LRU caches of sparsity patterns and of factorizations.

    A pattern (with its ordering) is found by exact equality of the indices, a
    factorization by its pattern and exact equality of the values. Solves with the same
    matrix (repeated right-hand sides, the transposed solves of reverse-mode
    differentiation, ``vmap`` over right-hand sides) then factor once, and new matrices
    with a known pattern (the shifted systems of a Newton step, the Hessians of later
    steps) reuse the ordering.
    """

    def __init__(self, maxsize: int, max_patterns: int):
        self.maxsize, self.max_patterns = maxsize, max_patterns
        self.patterns: list[_Pattern] = []
        self.entries: list[_Factorization] = []
        self.lock = threading.Lock()

    def get(self, data, indices, shape, diagonal_pivots: bool) -> _Factorization:
        with self.lock:
            pattern = _find(self.patterns, lambda p: p.matches(indices, shape))
            if pattern is not None:
                entry = _find(
                    self.entries,
                    lambda e: (
                        e.pattern is pattern
                        and e.diagonal_pivots == diagonal_pivots
                        and np.array_equal(e.data, data)
                    ),
                )
                if entry is not None:
                    return entry
        if pattern is None:
            pattern = _Pattern(indices, shape)
            with self.lock:
                _insert(self.patterns, pattern, self.max_patterns)
        entry = _Factorization(pattern, data, diagonal_pivots)
        with self.lock:
            _insert(self.entries, entry, self.maxsize)
        return entry


def _find(entries: list, predicate):
    """The first entry satisfying ``predicate``, moved to the front (most recent)."""
    for k, entry in enumerate(entries):
        if predicate(entry):
            entries.insert(0, entries.pop(k))
            return entry
    return None


def _insert(entries: list, entry, maxsize: int) -> None:
    entries.insert(0, entry)
    del entries[maxsize:]


_CACHE = _FactorizationCache(maxsize=4, max_patterns=4)

_SUPERLU_THREAD = concurrent.futures.ThreadPoolExecutor(
    max_workers=1, thread_name_prefix="asdex-superlu"
)
"""The one thread that creates, uses and frees every SuperLU factorization.

SciPy's SuperLU keeps track of its allocations per thread, and a factorization freed
in another thread than the one that made it keeps its memory for good. JAX runs host
callbacks on threads of its own pool, so a cached factorization evicted by a later
callback leaked its factors (several megabytes a solve); on this thread, every
factorization lives and dies in one place.
"""


class SparseLU(AbstractSparseDirectSolver):
    """Direct sparse LU solver (SciPy's SuperLU) for square nonsingular sparse operators.

    Works on a `SparseMatrixLinearOperator`, or on anything `fold_sparse` can fold
    into one (e.g. ``H + λ * I``). The factorization runs on the host through
    ``jax.pure_callback``, so the solver works inside ``jit``, ``vmap`` (sequentially)
    and under ``jax.grad``/``jax.jvp`` through `lineax.linear_solve`. Factorizations
    are kept in a small cache keyed by the exact matrix values, so repeated solves with
    the same matrix, including the transposed solves of reverse-mode differentiation,
    factor once. The fill-reducing ordering is computed once per sparsity pattern
    (minimum degree on ``A + Aᵀ`` with dense rows last for a symmetric pattern, COLAMD
    otherwise), so a new matrix with a known pattern, e.g. the next Hessian or shifted
    system of an optimizer, costs only its numerical factorization.

    An operator tagged symmetric and positive semidefinite is factored with diagonal
    pivots only, like a Cholesky factorization (stable for positive definite matrices),
    and the solve's ``stats["positive_definite"]`` says whether all pivots were
    positive, i.e. whether the claim holds.

    An exactly singular factorization, or one whose smallest pivot is below
    ``pivot_rtol`` times its largest, returns ``lineax.RESULTS.singular`` (an error
    when ``throw=True``). Non-square operators raise a ``ValueError`` at once, like
    ``lineax.LU``.

    Attributes:
        pivot_rtol: Relative pivot size below which the matrix counts as numerically
            singular; ``None`` means ``n * eps`` of float64. ``0.0`` accepts any nonzero
            pivot.

    Examples:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from jax.experimental.sparse import BCOO
        >>> from asdex_opt.lineax import SparseLU, SparseMatrixLinearOperator
        >>> A = SparseMatrixLinearOperator(BCOO.fromdense(jnp.array([[4.0, 1.0], [0.0, 2.0]])))
        >>> lx.linear_solve(A, jnp.array([1.0, 2.0]), SparseLU()).value
        Array([0., 1.], dtype=float32)
    """

    pivot_rtol: float | None = None

    non_square_hint: ClassVar[str] = (
        " Use `Preconditioned(lx.GMRES(...))` on the normal equations, or a least-squares "
        "solver, for non-square systems."
    )

    def compute(
        self, state: SparseSolveState, vector: Array, options: dict[str, Any]
    ) -> tuple[Array, lx.RESULTS, dict[str, Any]]:
        """Solve against ``vector``, factoring on the first use of this matrix."""
        del options
        matrix = state.operator.matrix
        n = matrix.shape[0]
        pivot_rtol = n * np.finfo(np.float64).eps if self.pivot_rtol is None else self.pivot_rtol
        trans = "T" if state.transpose else "N"
        diagonal_pivots = claims_positive_definite(state.operator)

        def host_solve(data, indices, b):
            data, indices, b = np.asarray(data), np.asarray(indices), np.asarray(b)
            return _SUPERLU_THREAD.submit(solve_here, data, indices, b).result()

        def solve_here(data, indices, b):
            factorization = _CACHE.get(data, indices, matrix.shape, diagonal_pivots)
            definite = np.bool_(factorization.positive_definite)
            if factorization.lu is None or factorization.min_pivot_ratio <= pivot_rtol:
                return np.full(b.shape, np.nan, b.dtype), np.bool_(True), definite
            x = factorization.solve(b, trans)
            return x.astype(b.dtype, copy=False), np.bool_(False), definite

        vector = vector.astype(jnp.result_type(vector.dtype, matrix.dtype))
        flag = jax.ShapeDtypeStruct((), jnp.bool_)
        out_shape = (jax.ShapeDtypeStruct(vector.shape, vector.dtype), flag, flag)
        solution, singular, definite = jax.pure_callback(
            host_solve,
            out_shape,
            matrix.data,
            matrix.indices,
            vector,
            vmap_method="sequential",
        )
        result = lx.RESULTS.where(singular, lx.RESULTS.singular, lx.RESULTS.successful)
        return solution, result, {POSITIVE_DEFINITE: definite} if diagonal_pivots else {}
