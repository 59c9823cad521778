"""A Lineax linear operator backed by a 2-D ``jax.experimental.sparse.BCOO`` matrix."""

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jax.experimental import sparse as jsparse
from jaxtyping import Array

from ._structure import SparseStructure
from ._take import gather_entries, take

__all__ = ["SparseMatrixLinearOperator"]


def _frozenset(tags: object) -> frozenset[object]:
    try:
        return frozenset(tags)  # type: ignore[arg-type]
    except TypeError:
        return frozenset([tags])


class SparseMatrixLinearOperator(lx.AbstractLinearOperator):
    """Wraps a 2-D sparse BCOO matrix of shape ``(m, n)`` into a Lineax operator.

    The operator maps vectors of shape ``(n,)`` to vectors of shape ``(m,)``, like
    ``lineax.MatrixLinearOperator`` but storing only the nonzeros. Duplicate indices
    mean a sum, as everywhere in ``jax.experimental.sparse``; out-of-range (padding)
    indices are ignored. ``tags`` (``lineax.symmetric_tag``,
    ``lineax.positive_semidefinite_tag``, ...) declare properties that are not checked.
    An operator built with `from_structure` also carries its nonzero layout as a static
    `SparseStructure`, which lets solvers plan their work once, when tracing.

    Every Lineax dispatch function (``linearise``, ``materialise``, ``diagonal``,
    ``tridiagonal``, ``conj`` and the ``is_*``/``has_unit_diagonal`` queries) is
    registered for this class; ``materialise`` keeps the matrix sparse.

    Attributes:
        data: The stored values.
        indices: Their ``(nse, 2)`` indices, or ``None`` when ``structure`` holds them
            (then they are constants, not pytree leaves).
        shape: The matrix shape.
        tags: Lineax tags.
        structure: The static layout of the indices, or ``None`` if unknown.

    Examples:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from jax.experimental.sparse import BCOO
        >>> A = BCOO.fromdense(jnp.array([[2.0, 1.0], [1.0, 3.0]]))
        >>> op = SparseMatrixLinearOperator(A, lx.symmetric_tag)
        >>> op.mv(jnp.ones(2))
        Array([3., 4.], dtype=float32)
    """

    data: Array
    indices: Array | None
    shape: tuple[int, int] = eqx.field(static=True)
    tags: frozenset[object] = eqx.field(static=True)
    structure: SparseStructure | None = eqx.field(static=True)

    def __init__(
        self,
        matrix: jsparse.BCOO,
        tags: object = (),
        *,
        structure: SparseStructure | None = None,
    ):
        """Wraps ``matrix``; see the class docstring.

        ``structure``, if given, must describe ``matrix.indices`` exactly (checked
        unless the indices are traced); `from_structure` builds both together.
        """
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
        if not jnp.issubdtype(matrix.dtype, jnp.inexact):
            matrix = jsparse.BCOO(
                (matrix.data.astype(jnp.float32), matrix.indices), shape=matrix.shape
            )
        if structure is not None:
            _check_structure(matrix, structure)
        self.data = matrix.data
        # A static structure holds the indices: they are then constants, not leaves.
        self.indices = None if structure is not None else matrix.indices
        self.shape = (int(matrix.shape[0]), int(matrix.shape[1]))
        self.tags = _frozenset(tags)
        self.structure = structure

    @property
    def matrix(self) -> jsparse.BCOO:
        """The sparse matrix (indices from the structure when there is one)."""
        indices = self.indices
        if indices is None:
            index_dtype = np.int32 if max(self.shape) < 2**31 else np.int64
            indices = jnp.asarray(self.structure.indices.astype(index_dtype))
        return jsparse.BCOO((self.data, indices), shape=self.shape)

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
            An operator whose ``structure`` is set.

        Examples:
            >>> import jax.numpy as jnp, numpy as np
            >>> s = SparseStructure(np.array([[0, 0], [1, 1]]), (2, 2))
            >>> op = SparseMatrixLinearOperator.from_structure(jnp.array([2.0, 3.0]), s)
            >>> op.mv(jnp.ones(2))
            Array([2., 3.], dtype=float32)
        """
        if jnp.shape(data) != (structure.nse,):
            raise ValueError(
                f"`from_structure` needs data of shape ({structure.nse},), got {jnp.shape(data)}."
            )
        matrix = jsparse.BCOO((data, structure.indices), shape=structure.shape)
        return cls(matrix, tags, structure=structure)

    def mv(self, vector: Array) -> Array:
        """Sparse matrix-vector product."""
        return self.matrix @ vector

    def as_matrix(self) -> Array:
        """The dense matrix (duplicates summed)."""
        return self.matrix.todense()

    def transpose(self) -> "SparseMatrixLinearOperator":
        """The transposed operator (itself when symmetric)."""
        if lx.is_symmetric(self):
            return self
        tags = lx.transpose_tags(self.tags)
        if self.structure is not None:
            return SparseMatrixLinearOperator.from_structure(
                self.data, self.structure.transposed, tags
            )
        return SparseMatrixLinearOperator(self.matrix.T, tags)

    def in_structure(self) -> jax.ShapeDtypeStruct:
        """``ShapeDtypeStruct((n,), dtype)``."""
        return jax.ShapeDtypeStruct((self.shape[1],), self.data.dtype)

    def out_structure(self) -> jax.ShapeDtypeStruct:
        """``ShapeDtypeStruct((m,), dtype)``."""
        return jax.ShapeDtypeStruct((self.shape[0],), self.data.dtype)


def _check_structure(matrix: jsparse.BCOO, structure: SparseStructure) -> None:
    mismatch = tuple(matrix.shape) != structure.shape or matrix.nse != structure.nse
    checkable = not isinstance(matrix.indices, jax.core.Tracer)
    if not mismatch and checkable and matrix.indices is not structure.indices:
        mismatch = not np.array_equal(np.asarray(matrix.indices), structure.indices)
    if mismatch:
        raise ValueError(
            f"The sparse structure {structure} does not describe the matrix's indices "
            f"(shape {matrix.shape}, {matrix.nse} stored entries)."
        )


def _band(operator: SparseMatrixLinearOperator, offset: int) -> Array:
    """The diagonal ``A[i, i + offset]`` as a dense vector, summing duplicate entries."""
    m, n = operator.matrix.shape
    length = max(0, min(m, n - offset) if offset >= 0 else min(m + offset, n))
    rows, cols = operator.matrix.indices[:, 0], operator.matrix.indices[:, 1]
    keep = (cols - rows == offset) & (rows < m) & (cols < n)
    position = jnp.where(keep, jnp.minimum(rows, cols), length)
    values = jnp.where(keep, operator.data, 0)
    out = jnp.zeros(length, operator.data.dtype)
    return out.at[position].add(values, mode="drop")


@lx.linearise.register(SparseMatrixLinearOperator)
@lx.materialise.register(SparseMatrixLinearOperator)
def _(operator):
    return operator


@lx.diagonal.register(SparseMatrixLinearOperator)
def _(operator):
    if operator.structure is not None and operator.structure.diagonal_positions is not None:
        return take(operator.data, operator.structure.diagonal_positions)
    return _band(operator, 0)


@lx.tridiagonal.register(SparseMatrixLinearOperator)
def _(operator):
    if operator.structure is not None:
        data = operator.data
        plans = (operator.structure.band_plan(offset) for offset in (0, -1, 1))
        return tuple(gather_entries(data, plan) for plan in plans)
    return _band(operator, 0), _band(operator, -1), _band(operator, 1)


@lx.conj.register(SparseMatrixLinearOperator)
def _(operator):
    matrix = operator.matrix
    if operator.structure is not None:
        return SparseMatrixLinearOperator.from_structure(
            matrix.data.conj(), operator.structure, operator.tags
        )
    conj = jsparse.BCOO((matrix.data.conj(), matrix.indices), shape=matrix.shape)
    return SparseMatrixLinearOperator(conj, operator.tags)


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
    # A static structure is known when tracing, so it can answer this static query.
    return operator.structure is not None and operator.structure.is_tridiagonal


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
