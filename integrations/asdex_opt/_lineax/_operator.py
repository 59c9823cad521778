"""A Lineax linear operator for a sparse matrix: its data and one static structure."""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jax.experimental import sparse as jsparse
from jaxtyping import Array

from asdex_opt._lineax._structure import SparseStructure
from asdex_opt._lineax._take import gather_entries, take
from asdex_opt._warnings import warn_at_user

__all__ = ["DenseMaterialisationWarning", "SparseMatrixLinearOperator", "canonical_entries"]

# Dense materialisations at least this large draw a `DenseMaterialisationWarning`.
_DENSE_WARNING_ENTRIES = 10**6


class DenseMaterialisationWarning(UserWarning):
    """Warned when a large sparse operator is turned into a dense matrix."""


def _frozenset(tags: object) -> frozenset[object]:
    try:
        return frozenset(tags)  # type: ignore[arg-type]
    except TypeError:
        return frozenset([tags])


class SparseMatrixLinearOperator(lx.AbstractLinearOperator):
    """A sparse matrix of shape ``(m, n)`` as a Lineax operator: data plus a static structure.

    The operator maps vectors of shape ``(n,)`` to vectors of shape ``(m,)``, like
    ``lineax.MatrixLinearOperator`` but storing only the nonzeros: ``data[k]`` is the
    entry at ``(structure.rows[k], structure.cols[k])`` of a `SparseStructure` (sorted,
    unique, known when tracing), which lets solvers plan their work once. ``tags``
    (``lineax.symmetric_tag``, ``lineax.positive_semidefinite_tag``, ...) declare
    properties that are not checked.

    Built from a 2-D ``jax.experimental.sparse.BCOO`` matrix, whose indices must then be
    known when tracing (concrete, not traced): duplicate entries are summed and
    out-of-range (padding) entries dropped. `from_structure` builds one from the data
    of a known structure, inside ``jit`` too.

    Every Lineax dispatch function (``linearise``, ``materialise``, ``diagonal``,
    ``tridiagonal``, ``conj`` and the ``is_*``/``has_unit_diagonal`` queries) is
    registered for this class; ``materialise`` keeps the matrix sparse.

    Attributes:
        data: The stored values, one per entry of ``structure``.
        structure: Where they are (static).
        tags: Lineax tags (static).

    Examples:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from jax.experimental.sparse import BCOO
        >>> from asdex_opt.lineax import SparseMatrixLinearOperator
        >>> A = BCOO.fromdense(jnp.array([[2.0, 1.0], [1.0, 3.0]]))
        >>> op = SparseMatrixLinearOperator(A, lx.symmetric_tag)
        >>> op.mv(jnp.ones(2))
        Array([3., 4.], dtype=float32)
    """

    data: Array
    structure: SparseStructure = eqx.field(static=True)
    tags: frozenset[object] = eqx.field(static=True)

    def __init__(self, matrix: jsparse.BCOO, tags: object = ()):
        """Wrap ``matrix``, whose indices must be concrete; see the class docstring."""
        if not isinstance(matrix, jsparse.BCOO):
            raise TypeError(
                "`SparseMatrixLinearOperator` expects a `jax.experimental.sparse.BCOO` "
                f"matrix, got {type(matrix).__name__}. Use `BCOO.fromdense` for a dense "
                "array, or `lineax.MatrixLinearOperator` to keep it dense."
            )
        if matrix.ndim != 2 or matrix.n_batch != 0 or matrix.n_dense != 0:
            raise ValueError(
                "`SparseMatrixLinearOperator` expects a 2-D BCOO matrix with no batch or "
                f"dense dimensions; got shape {matrix.shape} with n_batch={matrix.n_batch}"
                f" and n_dense={matrix.n_dense}."
            )
        if isinstance(matrix.indices, jax.core.Tracer):
            raise ValueError(
                "`SparseMatrixLinearOperator` needs the BCOO matrix's indices when "
                "tracing, but they are traced (the matrix was passed into `jax.jit` or "
                "built there). Build the operator outside `jit` and pass the operator in "
                "(its structure is static), or use `SparseMatrixLinearOperator."
                "from_structure` with a `SparseStructure`."
            )
        shape = (int(matrix.shape[0]), int(matrix.shape[1]))
        indices = np.asarray(matrix.indices)
        self.structure, self.data = canonical_entries(matrix.data, indices, shape)
        self.tags = _frozenset(tags)

    @property
    def shape(self) -> tuple[int, int]:
        """The matrix shape ``(m, n)``."""
        return self.structure.shape

    @property
    def matrix(self) -> jsparse.BCOO:
        """The sparse matrix as a BCOO with constant, sorted and unique indices."""
        index_dtype = np.int32 if max(self.shape) < 2**31 else np.int64
        indices = jnp.asarray(self.structure.indices.astype(index_dtype))
        return jsparse.BCOO(
            (self.data, indices), shape=self.shape, indices_sorted=True, unique_indices=True
        )

    @classmethod
    def from_structure(
        cls, data: Array, structure: SparseStructure, tags: object = ()
    ) -> "SparseMatrixLinearOperator":
        """The operator with nonzeros ``data`` at the (static) ``structure``.

        Args:
            data: ``(structure.nse,)`` values of the stored entries.
            structure: Where they are.
            tags: Lineax tags, as for the constructor.

        Returns:
            The operator.

        Examples:
            >>> import jax.numpy as jnp, numpy as np
            >>> from asdex_opt.lineax import SparseMatrixLinearOperator, SparseStructure
            >>> s = SparseStructure(np.array([[0, 0], [1, 1]]), (2, 2))
            >>> op = SparseMatrixLinearOperator.from_structure(jnp.array([2.0, 3.0]), s)
            >>> op.mv(jnp.ones(2))
            Array([2., 3.], dtype=float32)
        """
        if jnp.shape(data) != (structure.nse,):
            raise ValueError(
                f"`from_structure` needs data of shape ({structure.nse},), got {jnp.shape(data)}."
            )
        if not jnp.issubdtype(jnp.result_type(data), jnp.inexact):
            data = jnp.asarray(data, jnp.float32)
        # The fields are set as Equinox's own unflattening sets them: no BCOO to check.
        operator = object.__new__(cls)
        object.__setattr__(operator, "data", data)
        object.__setattr__(operator, "structure", structure)
        object.__setattr__(operator, "tags", _frozenset(tags))
        return operator

    def mv(self, vector: Array) -> Array:
        """Sparse matrix-vector product."""
        return self.matrix @ vector

    def as_matrix(self) -> Array:
        """The dense matrix; warns when it holds a million entries or more.

        Lineax's dense solvers call this, including the one ``lineax.linear_solve``
        picks when no solver is given (``AutoLinearSolver``: ``LU``, ``Cholesky`` or
        ``QR``, except for diagonal and tridiagonal operators, which it solves by
        their bands). Pass a sparse solver instead, e.g.
        ``choose_solver(operator.structure)``.
        """
        m, n = self.shape
        if m * n >= _DENSE_WARNING_ENTRIES:
            warn_at_user(
                f"A {m}x{n} `SparseMatrixLinearOperator` is being materialised as a dense "
                f"matrix ({m * n:.2e} entries), e.g. by `lineax.linear_solve(operator, b)` "
                "without a solver (Lineax's `AutoLinearSolver` picks a dense LU, Cholesky "
                "or QR). Pass a sparse solver: `asdex_opt.lineax.choose_solver("
                "operator.structure)` (a direct solve chosen from the pattern), "
                "`asdex_opt.lineax.SparseLU()`, or `Preconditioned(lineax.CG(...))`.",
                DenseMaterialisationWarning,
            )
        return self.matrix.todense()

    def transpose(self) -> "SparseMatrixLinearOperator":
        """The transposed operator (itself when symmetric)."""
        if lx.is_symmetric(self):
            return self
        data = take(self.data, self.structure.transpose_order)
        return SparseMatrixLinearOperator.from_structure(
            data, self.structure.transposed, lx.transpose_tags(self.tags)
        )

    def in_structure(self) -> jax.ShapeDtypeStruct:
        """``ShapeDtypeStruct((n,), dtype)``."""
        return jax.ShapeDtypeStruct((self.shape[1],), self.data.dtype)

    def out_structure(self) -> jax.ShapeDtypeStruct:
        """``ShapeDtypeStruct((m,), dtype)``."""
        return jax.ShapeDtypeStruct((self.shape[0],), self.data.dtype)


def canonical_entries(
    data: Array, indices: np.ndarray, shape: tuple[int, int]
) -> tuple[SparseStructure, Array]:
    """The structure of constant ``indices`` and ``data`` summed into its entries.

    Duplicates are summed and out-of-range (padding) entries dropped; integer data
    becomes float32.
    """
    if not jnp.issubdtype(jnp.result_type(data), jnp.inexact):
        data = jnp.asarray(data, jnp.float32)
    structure, target = SparseStructure.canonical(indices, shape)
    if target is not None:
        data = jax.ops.segment_sum(
            jnp.where(jnp.asarray(target >= 0), data, 0),
            jnp.asarray(np.maximum(target, 0)),
            num_segments=structure.nse,
        )
    return structure, data


@lx.linearise.register(SparseMatrixLinearOperator)
@lx.materialise.register(SparseMatrixLinearOperator)
def _(operator):
    return operator


@lx.diagonal.register(SparseMatrixLinearOperator)
def _(operator):
    positions = operator.structure.diagonal_positions
    if positions is not None:
        return take(operator.data, positions)
    return gather_entries(operator.data, operator.structure.band_plan(0))


@lx.tridiagonal.register(SparseMatrixLinearOperator)
def _(operator):
    plans = (operator.structure.band_plan(offset) for offset in (0, -1, 1))
    return tuple(gather_entries(operator.data, plan) for plan in plans)


@lx.conj.register(SparseMatrixLinearOperator)
def _(operator):
    return SparseMatrixLinearOperator.from_structure(
        operator.data.conj(), operator.structure, operator.tags
    )


def _is_real(operator: SparseMatrixLinearOperator) -> bool:
    return not jnp.issubdtype(operator.data.dtype, jnp.complexfloating)


@lx.is_symmetric.register(SparseMatrixLinearOperator)
def _(operator):
    if lx.symmetric_tag in operator.tags or lx.diagonal_tag in operator.tags:
        return True
    definite = {lx.positive_semidefinite_tag, lx.negative_semidefinite_tag}
    return bool(definite & operator.tags) and _is_real(operator)


@lx.is_diagonal.register(SparseMatrixLinearOperator)
def _(operator):
    return lx.diagonal_tag in operator.tags or operator.shape == (1, 1)


@lx.is_tridiagonal.register(SparseMatrixLinearOperator)
def _(operator):
    if lx.tridiagonal_tag in operator.tags or lx.diagonal_tag in operator.tags:
        return True
    # The static structure is known when tracing, so it can answer this static query.
    return operator.structure.is_tridiagonal


def _tag_check(tag: object):
    def check(operator: SparseMatrixLinearOperator) -> bool:
        return tag in operator.tags

    return check


for _dispatch, _tag in (
    (lx.has_unit_diagonal, lx.unit_diagonal_tag),
    (lx.is_lower_triangular, lx.lower_triangular_tag),
    (lx.is_upper_triangular, lx.upper_triangular_tag),
    (lx.is_positive_semidefinite, lx.positive_semidefinite_tag),
    (lx.is_negative_semidefinite, lx.negative_semidefinite_tag),
):
    _dispatch.register(SparseMatrixLinearOperator, _tag_check(_tag))
