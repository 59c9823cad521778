"""Folding sums, scalings and diagonals of sparse Lineax operators into one sparse matrix."""

import functools as ft

import jax.numpy as jnp
import lineax as lx
import numpy as np
from jaxtyping import Array

from asdex_opt._lineax._operator import SparseMatrixLinearOperator, canonical_entries

__all__ = ["fold_sparse"]

_TAG_CHECKS = (
    (lx.is_symmetric, lx.symmetric_tag),
    (lx.is_diagonal, lx.diagonal_tag),
    (lx.is_tridiagonal, lx.tridiagonal_tag),
    (lx.has_unit_diagonal, lx.unit_diagonal_tag),
    (lx.is_lower_triangular, lx.lower_triangular_tag),
    (lx.is_upper_triangular, lx.upper_triangular_tag),
    (lx.is_positive_semidefinite, lx.positive_semidefinite_tag),
    (lx.is_negative_semidefinite, lx.negative_semidefinite_tag),
)


def fold_sparse(
    operator: lx.AbstractLinearOperator, tags: object = ()
) -> SparseMatrixLinearOperator:
    """Fold an expression of sparse operators into one `SparseMatrixLinearOperator`.

    Understands `SparseMatrixLinearOperator`, sums (`AddLinearOperator`, also from
    ``a - b``), scalings (`MulLinearOperator`, `DivLinearOperator`), negations,
    `TaggedLinearOperator`, tridiagonal operators, any operator Lineax reports as
    diagonal (`IdentityLinearOperator`, `DiagonalLinearOperator`, ...), and
    compositions with a diagonal operator on either side (row or column scaling).
    The nonzeros of the parts are concatenated and summed into one static structure
    (planned on the host when tracing), so folding is cheap and works under ``jit``.
    The result keeps every Lineax tag that Lineax infers for ``operator`` (e.g.
    symmetric when all parts are), plus ``tags``.

    Args:
        operator: The operator expression, acting on flat vectors.
        tags: Extra Lineax tags the caller asserts for the result, e.g.
            ``lx.positive_semidefinite_tag`` for ``H + λI`` with ``λ > 0`` (Lineax
            stores the scalar as an array and so cannot know its sign).

    Returns:
        A single sparse operator with the same matrix.

    Raises:
        TypeError: If some part is neither sparse, diagonal nor tridiagonal.

    Examples:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from jax.experimental.sparse import BCOO
        >>> from asdex_opt.lineax import SparseMatrixLinearOperator, fold_sparse
        >>> H = SparseMatrixLinearOperator(BCOO.fromdense(jnp.eye(3)), lx.symmetric_tag)
        >>> I = lx.IdentityLinearOperator(H.in_structure())
        >>> fold_sparse(H + 0.5 * I).as_matrix()[0, 0]
        Array(1.5, dtype=float32)
    """
    data, indices = _fold(operator)
    inferred = {tag for check, tag in _TAG_CHECKS if check(operator)}
    structure, data = canonical_entries(data, indices, _shape(operator))
    return SparseMatrixLinearOperator.from_structure(data, structure, inferred | _as_set(tags))


def _as_set(tags: object) -> set[object]:
    try:
        return set(tags)  # type: ignore[call-overload]
    except TypeError:
        return {tags}


def _shape(operator: lx.AbstractLinearOperator) -> tuple[int, int]:
    return operator.out_size(), operator.in_size()


# A folded part: its stored values and their (constant, NumPy) indices.
_Part = tuple[Array, np.ndarray]


def _scaled(part: _Part, factor) -> _Part:
    data, indices = part
    return data * factor, indices


def _from_bands(bands, offsets) -> _Part:
    datas, indices = [], []
    for band, offset in zip(bands, offsets, strict=True):
        k = np.arange(band.shape[0])
        rows, cols = (k, k + offset) if offset >= 0 else (k - offset, k)
        datas.append(band)
        indices.append(np.stack([rows, cols], axis=1))
    return jnp.concatenate(datas), np.concatenate(indices)


@ft.singledispatch
def _fold(operator: lx.AbstractLinearOperator) -> _Part:
    if lx.is_diagonal(operator):
        return _from_bands([lx.diagonal(operator)], [0])
    raise TypeError(
        f"`fold_sparse` cannot fold a {type(operator).__name__}: only sparse, diagonal "
        "and tridiagonal operators, their sums, scalings, negations, and compositions "
        "with a diagonal operator are supported."
    )


@_fold.register(SparseMatrixLinearOperator)
def _(operator):
    return operator.data, operator.structure.indices


@_fold.register(lx.TridiagonalLinearOperator)
def _(operator):
    return _from_bands(lx.tridiagonal(operator), [0, -1, 1])


@_fold.register(lx.TaggedLinearOperator)
def _(operator):
    return _fold(operator.operator)


@_fold.register(lx.AddLinearOperator)
def _(operator):
    (first, first_at), (second, second_at) = _fold(operator.operator1), _fold(operator.operator2)
    dtype = jnp.result_type(first.dtype, second.dtype)
    data = jnp.concatenate([first.astype(dtype), second.astype(dtype)])
    return data, np.concatenate([first_at, second_at])


@_fold.register(lx.MulLinearOperator)
def _(operator):
    return _scaled(_fold(operator.operator), operator.scalar)


@_fold.register(lx.DivLinearOperator)
def _(operator):
    return _scaled(_fold(operator.operator), 1 / operator.scalar)


@_fold.register(lx.NegLinearOperator)
def _(operator):
    return _scaled(_fold(operator.operator), -1)


@_fold.register(lx.ComposedLinearOperator)
def _(operator):
    left, right = operator.operator1, operator.operator2
    if lx.is_diagonal(left):
        data, indices = _fold(right)
        factor = lx.diagonal(left)[np.clip(indices[:, 0], 0, left.out_size() - 1)]
    elif lx.is_diagonal(right):
        data, indices = _fold(left)
        factor = lx.diagonal(right)[np.clip(indices[:, 1], 0, right.in_size() - 1)]
    else:
        raise TypeError(
            "`fold_sparse` folds a composition `A @ B` only when `A` or `B` is diagonal "
            "(a product of two general sparse matrices can fill in)."
        )
    return data * factor, indices
