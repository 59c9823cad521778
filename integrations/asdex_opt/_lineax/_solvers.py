"""Sparse Lineax solvers: direct (SuperLU on the host) and preconditioned Krylov."""

import threading
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from jaxtyping import Array, PyTree

from ._fold import fold_sparse
from ._operator import SparseMatrixLinearOperator

__all__ = ["Preconditioned", "SparseLU", "jacobi_preconditioner"]


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

    Example:
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
    """A host-side SuperLU factorization of ``A[order][:, order]`` and its values."""

    def __init__(self, pattern: _Pattern, data: np.ndarray):
        self.pattern, self.data = pattern, data.copy()
        try:
            self.lu = scipy.sparse.linalg.splu(pattern.assemble(data), permc_spec="NATURAL")
        except RuntimeError:  # SuperLU: "Factor is exactly singular"
            self.lu = None
            self.min_pivot_ratio = 0.0
        else:
            pivots = np.abs(self.lu.U.diagonal())
            self.min_pivot_ratio = pivots.min() / pivots.max() if pivots.max() > 0 else 0.0

    def solve(self, b: np.ndarray, trans: str) -> np.ndarray:
        """Solves ``A x = b`` (``trans="N"``) or ``Aᵀ x = b`` (``"T"``)."""
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

    def get(self, data, indices, shape) -> _Factorization:
        with self.lock:
            pattern = _find(self.patterns, lambda p: p.matches(indices, shape))
            if pattern is not None:
                entry = _find(
                    self.entries,
                    lambda e: e.pattern is pattern and np.array_equal(e.data, data),
                )
                if entry is not None:
                    return entry
        if pattern is None:
            pattern = _Pattern(indices, shape)
            with self.lock:
                _insert(self.patterns, pattern, self.max_patterns)
        entry = _Factorization(pattern, data)
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


class _SparseLUState(eqx.Module):
    operator: SparseMatrixLinearOperator
    transpose: bool = eqx.field(static=True)


class SparseLU(lx.AbstractLinearSolver[_SparseLUState]):
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

    An exactly singular factorization, or one whose smallest pivot is below
    ``pivot_rtol`` times its largest, returns ``lineax.RESULTS.singular`` (an error
    when ``throw=True``). Non-square operators raise a ``ValueError`` at once, like
    ``lineax.LU``.

    Attributes:
        pivot_rtol: Relative pivot size below which the matrix counts as numerically
            singular; ``None`` means ``n * eps`` of float64. ``0.0`` accepts any nonzero
            pivot.

    Example:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from jax.experimental.sparse import BCOO
        >>> A = SparseMatrixLinearOperator(BCOO.fromdense(jnp.array([[4.0, 1.0], [0.0, 2.0]])))
        >>> lx.linear_solve(A, jnp.array([1.0, 2.0]), SparseLU()).value
        Array([0., 1.], dtype=float32)
    """

    pivot_rtol: float | None = None

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        """Folds the operator into one sparse matrix; the factorization is lazy."""
        del options
        if operator.in_size() != operator.out_size():
            raise ValueError(
                "`SparseLU` may only be used for linear solves with square operators; got "
                f"an operator of shape ({operator.out_size()}, {operator.in_size()}). Use "
                "`Preconditioned(lx.GMRES(...))` on the normal equations, or a "
                "least-squares solver, for non-square systems."
            )
        if not isinstance(operator, SparseMatrixLinearOperator):
            operator = fold_sparse(operator)
        return _SparseLUState(operator, transpose=False)

    def compute(
        self, state: _SparseLUState, vector: Array, options: dict[str, Any]
    ) -> tuple[Array, lx.RESULTS, dict[str, Any]]:
        """Solves against ``vector``, factoring on the first use of this matrix."""
        del options
        matrix = state.operator.matrix
        n = matrix.shape[0]
        pivot_rtol = n * np.finfo(np.float64).eps if self.pivot_rtol is None else self.pivot_rtol
        trans = "T" if state.transpose else "N"

        def host_solve(data, indices, b):
            data, indices, b = np.asarray(data), np.asarray(indices), np.asarray(b)
            factorization = _CACHE.get(data, indices, matrix.shape)
            if factorization.lu is None or factorization.min_pivot_ratio <= pivot_rtol:
                return np.full(b.shape, np.nan, b.dtype), np.bool_(True)
            x = factorization.solve(b, trans)
            return x.astype(b.dtype, copy=False), np.bool_(False)

        vector = vector.astype(jnp.result_type(vector.dtype, matrix.dtype))
        out_shape = (
            jax.ShapeDtypeStruct(vector.shape, vector.dtype),
            jax.ShapeDtypeStruct((), jnp.bool_),
        )
        solution, singular = jax.pure_callback(
            host_solve,
            out_shape,
            matrix.data,
            matrix.indices,
            vector,
            vmap_method="sequential",
        )
        result = lx.RESULTS.where(singular, lx.RESULTS.singular, lx.RESULTS.successful)
        return solution, result, {}

    def transpose(self, state: _SparseLUState, options: dict[str, Any]):
        """Same factorization, solved with the transposed matrix."""
        del options
        return _SparseLUState(state.operator, transpose=not state.transpose), {}

    def conj(self, state: _SparseLUState, options: dict[str, Any]):
        """The conjugated matrix (a new factorization when complex)."""
        del options
        return _SparseLUState(lx.conj(state.operator), transpose=state.transpose), {}

    def assume_full_rank(self) -> bool:
        """Only nonsingular operators are supported."""
        return True


def jacobi_preconditioner(operator: lx.AbstractLinearOperator) -> lx.AbstractLinearOperator:
    """The Jacobi (inverse-diagonal) preconditioner of an operator.

    Zero diagonal entries are replaced by one. For a positive or negative semidefinite
    operator the result is ``diag(1 / |d|)``, tagged positive semidefinite as
    ``lineax.CG`` requires (CG solves ``-A x = -b`` for negative definite ``A``).

    Args:
        operator: Any square operator supported by ``lineax.diagonal``.

    Returns:
        A diagonal operator, to pass as ``options={"preconditioner": ...}``.

    Example:
        >>> import jax.numpy as jnp
        >>> from jax.experimental.sparse import BCOO
        >>> A = SparseMatrixLinearOperator(BCOO.fromdense(jnp.array([[4.0, 1.0], [1.0, 2.0]])))
        >>> lx.diagonal(jacobi_preconditioner(A))
        Array([0.25, 0.5 ], dtype=float32)
    """
    diag = lx.diagonal(operator)
    definite = lx.is_positive_semidefinite(operator) or lx.is_negative_semidefinite(operator)
    if definite:
        diag = jnp.abs(diag)
    inverse = jnp.where(diag == 0, 1, 1 / jnp.where(diag == 0, 1, diag))
    preconditioner = lx.DiagonalLinearOperator(inverse)
    if definite:
        return lx.TaggedLinearOperator(preconditioner, lx.positive_semidefinite_tag)
    return preconditioner


_PRECONDITIONERS = {"jacobi": jacobi_preconditioner}


class _PreconditionedState(eqx.Module):
    inner: PyTree[Any]
    preconditioner: lx.AbstractLinearOperator


class Preconditioned(lx.AbstractLinearSolver[_PreconditionedState]):
    """An iterative Lineax solver with a preconditioner built from the operator.

    Wraps ``lineax.CG``, ``lineax.GMRES`` or ``lineax.BiCGStab``: at ``init`` the
    preconditioner is built once from the operator (for ``"jacobi"``, from its diagonal,
    which is cheap for a `SparseMatrixLinearOperator` or a sum like ``H + λI``) and then
    passed to every solve, including the transposed solves of differentiation.

    Attributes:
        solver: The inner Krylov solver.
        preconditioner: Which preconditioner to build; only ``"jacobi"`` for now.

    Example:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from jax.experimental.sparse import BCOO
        >>> A = BCOO.fromdense(jnp.array([[4.0, 1.0], [1.0, 2.0]]))
        >>> op = SparseMatrixLinearOperator(A, lx.positive_semidefinite_tag)
        >>> solver = Preconditioned(lx.CG(rtol=1e-6, atol=1e-6))
        >>> lx.linear_solve(op, jnp.array([5.0, 3.0]), solver).value
        Array([1., 1.], dtype=float32)
    """

    solver: lx.AbstractLinearSolver
    preconditioner: Literal["jacobi"] = "jacobi"

    def __check_init__(self):
        if self.preconditioner not in _PRECONDITIONERS:
            raise ValueError(
                f"Unknown preconditioner {self.preconditioner!r}; expected one of "
                f"{sorted(_PRECONDITIONERS)}."
            )

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        """Builds the preconditioner and the inner solver's state."""
        if "preconditioner" in options:
            raise ValueError(
                "`Preconditioned` builds its own preconditioner; pass "
                "`options={'preconditioner': ...}` to the inner solver directly instead."
            )
        preconditioner = _PRECONDITIONERS[self.preconditioner](operator)
        return _PreconditionedState(self.solver.init(operator, options), preconditioner)

    def compute(
        self, state: _PreconditionedState, vector: PyTree[Array], options: dict[str, Any]
    ) -> tuple[PyTree[Array], lx.RESULTS, dict[str, Any]]:
        """Runs the inner solver with the preconditioner (CG: see `_preconditioned_cg`)."""
        if type(self.solver) is lx.CG:
            operator, is_nsd = state.inner  # the state of `lineax.CG.init`
            return _preconditioned_cg(
                self.solver, operator, is_nsd.value, state.preconditioner, vector, options
            )
        options = {**options, "preconditioner": state.preconditioner}
        return self.solver.compute(state.inner, vector, options)

    def transpose(self, state: _PreconditionedState, options: dict[str, Any]):
        """Transposes the inner state and the preconditioner."""
        inner, options = self.solver.transpose(state.inner, options)
        return _PreconditionedState(inner, state.preconditioner.transpose()), options

    def conj(self, state: _PreconditionedState, options: dict[str, Any]):
        """Conjugates the inner state and the preconditioner."""
        inner, options = self.solver.conj(state.inner, options)
        return _PreconditionedState(inner, lx.conj(state.preconditioner)), options

    def assume_full_rank(self) -> bool:
        """As the inner solver."""
        return self.solver.assume_full_rank()


def _preconditioned_cg(
    cg: lx.CG,
    operator: lx.AbstractLinearOperator,
    is_nsd: bool,
    preconditioner: lx.AbstractLinearOperator,
    vector: PyTree[Array],
    options: dict[str, Any],
) -> tuple[PyTree[Array], lx.RESULTS, dict[str, Any]]:
    """Preconditioned CG with ``cg``'s tolerances and a scale-invariant breakdown test.

    The same iteration, stopping test and results as ``lineax.CG.compute``, except for
    its breakdown test ``|pᵀAp| ≤ 100 n ε |rᵀz|`` (``z = M⁻¹r``), which compares
    quantities of different scales once a preconditioner is used: ``pᵀAp / rᵀz`` is a
    Rayleigh quotient of ``M⁻¹A``, about 1 for a Jacobi-preconditioned matrix, while
    ``100 n ε`` exceeds 1 in float32 from n ≈ 84 000, so every solve "broke down" into
    NaN at its first step. Here a step breaks down only when the curvature ``pᵀAp`` is
    not positive (``A`` not positive definite), as in exact arithmetic.
    """
    y0 = options["y0"] if "y0" in options else jax.tree.map(jnp.zeros_like, vector)
    leaves = jax.tree.leaves(vector)
    size = sum(leaf.size for leaf in leaves)
    max_steps = 10 * size if cg.max_steps is None else cg.max_steps
    tolerances = (cg.atol, cg.rtol)
    has_scale = not all(isinstance(t, int | float) and t == 0 for t in tolerances)
    b_scale = jax.tree.map(lambda b: cg.atol + cg.rtol * jnp.abs(b), vector)

    def tree_dot(a, b):
        return sum(
            jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        )

    def axpy(alpha, x, y):
        return jax.tree.map(lambda u, v: alpha * u + v, x, y)

    def residual(y):
        return jax.tree.map(jnp.subtract, vector, operator.mv(y))

    def not_converged(r, diff, y):
        if not has_scale:
            return jnp.array(True)
        y_scale = jax.tree.map(lambda v: cg.atol + cg.rtol * jnp.abs(v), y)
        norm1 = cg.norm(jax.tree.map(jnp.divide, r, b_scale))
        norm2 = cg.norm(jax.tree.map(jnp.divide, diff, y_scale))
        return (norm1 > 1) | (norm2 > 1)

    def cond(carry):
        diff, y, r, _, gamma, step = carry
        return (gamma > 0) & (step < max_steps) & not_converged(r, diff, y)

    def body(carry):
        _, y, r, p, gamma, step = carry
        mat_p = operator.mv(p)
        curvature = tree_dot(mat_p, p)
        alpha = jnp.where(curvature > 0, gamma / curvature, jnp.nan)
        diff = jax.tree.map(lambda u: alpha * u, p)
        y = jax.tree.map(jnp.add, y, diff)
        step = step + 1
        if cg.stabilise_every is None:
            r = axpy(-alpha, mat_p, r)
        elif cg.stabilise_every == 1:
            r = residual(y)
        else:
            r = jax.lax.cond(
                step % cg.stabilise_every == 0,
                lambda: residual(y),
                lambda: axpy(-alpha, mat_p, r),
            )
        z = preconditioner.mv(r)
        gamma, gamma_prev = tree_dot(z, r), gamma
        p = axpy(gamma / gamma_prev, p, z)
        return diff, y, r, p, gamma, step

    r0 = residual(y0)
    p0 = preconditioner.mv(r0)
    infinite = jax.tree.map(lambda v: jnp.full_like(v, jnp.inf), y0)
    carry = (infinite, y0, r0, p0, tree_dot(p0, r0), jnp.array(0))
    _, solution, _, _, _, num_steps = jax.lax.while_loop(cond, body, carry)
    if cg.max_steps is None:
        failure = lx.RESULTS.singular
    elif has_scale:
        failure = lx.RESULTS.max_steps_reached
    else:
        failure = lx.RESULTS.successful
    result = lx.RESULTS.where(num_steps == max_steps, failure, lx.RESULTS.successful)
    if is_nsd:
        solution = jax.tree.map(jnp.negative, solution)
    return solution, result, {"num_steps": num_steps, "max_steps": cg.max_steps}
