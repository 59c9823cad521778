"""Sparse Lineax operators and solvers.

* `SparseMatrixLinearOperator`: a ``lineax.AbstractLinearOperator`` holding a sparse
  matrix's data and one static `SparseStructure` (its sorted nonzero layout, known when
  tracing), registered for every Lineax dispatch function. ``lineax.linear_solve``
  without a solver would solve it densely (Lineax's ``AutoLinearSolver``), so a large
  one warns (`DenseMaterialisationWarning`): pass a sparse solver (`choose_solver`).
* `sparse_jacobian_operator`, `sparse_hessian_operator`: such operators from asdex's
  sparse Jacobians and Hessians.
* `fold_sparse`: turns ``H + λI`` (and other sums, scalings and diagonal scalings of
  sparse operators) into one sparse operator.
* `SparseLU`: a direct sparse solver (SuperLU on the host, usable inside ``jit``) with
  factorization reuse; `BlockDiagonalLU`: a direct solve, all in JAX, for matrices that
  are block diagonal with small blocks up to a permutation; `BorderedBlockLU`: the same
  for such blocks bordered by a few dense rows and columns (arrowhead patterns), by a
  Schur complement; `TridiagonalLU`: an ``LDLᵀ`` in JAX under a definiteness claim,
  else ``lineax.Tridiagonal``. These direct solvers
  declare ``reports_definiteness``: for an operator tagged symmetric and positive
  semidefinite they say whether it is positive definite. `choose_solver` picks one
  from a structure. `Preconditioned` and `jacobi_preconditioner`: Krylov solves
  (``lineax.CG``/``GMRES``/``BiCGStab``) preconditioned from the sparse matrix.

Examples:
    >>> import jax.numpy as jnp, lineax as lx
    >>> from asdex_opt.lineax import SparseLU, fold_sparse, sparse_hessian_operator
    >>> f = lambda x, _: jnp.sum((x[1:] - x[:-1]) ** 2) + jnp.sum(x**4)
    >>> H = sparse_hessian_operator(f, jnp.ones(5))
    >>> I = lx.IdentityLinearOperator(H.in_structure())
    >>> step = lx.linear_solve(fold_sparse(H + 1e-3 * I), jnp.ones(5), SparseLU()).value
"""

from collections.abc import Callable
from typing import Any

import jax
from jaxtyping import Array, PyTree

import asdex
from asdex_opt._lineax._block_diagonal import BlockDiagonalLU
from asdex_opt._lineax._bordered import BorderedBlockLU
from asdex_opt._lineax._choice import choose_solver
from asdex_opt._lineax._fold import fold_sparse
from asdex_opt._lineax._krylov import Preconditioned, jacobi_preconditioner
from asdex_opt._lineax._ldl import SparseLDL
from asdex_opt._lineax._operator import DenseMaterialisationWarning, SparseMatrixLinearOperator
from asdex_opt._lineax._structure import SparseStructure
from asdex_opt._lineax._superlu import SparseLU
from asdex_opt._lineax._tridiagonal import TridiagonalLU
from asdex_opt._problem import (
    HessianEvaluator,
    JacobianEvaluator,
    detect_hessian,
    detect_jacobian,
    flatten,
)

__all__ = [
    "SparseMatrixLinearOperator",
    "SparseStructure",
    "DenseMaterialisationWarning",
    "sparse_jacobian_operator",
    "sparse_hessian_operator",
    "fold_sparse",
    "choose_solver",
    "SparseLU",
    "SparseLDL",
    "BlockDiagonalLU",
    "BorderedBlockLU",
    "TridiagonalLU",
    "Preconditioned",
    "jacobi_preconditioner",
]


def _check_vector(fn: Callable, x: Array, args: PyTree[Any], what: str, out_ndim: int) -> None:
    if getattr(x, "ndim", None) != 1:
        raise ValueError(
            f"`{what}` expects `x` to be a 1-D array, got {jax.typeof(x)}. Flatten a "
            "pytree with `jax.flatten_util.ravel_pytree` (or use `asdex_opt.filter_*`)."
        )
    out = jax.eval_shape(fn, x, args)
    if getattr(out, "ndim", None) != out_ndim:
        kind = "a 1-D array" if out_ndim == 1 else "a scalar"
        raise ValueError(f"`{what}` expects `fn(x, args)` to return {kind}, got {out}.")


def _as_tags(tags: object) -> frozenset[object]:
    try:
        return frozenset(tags)  # type: ignore[arg-type]
    except TypeError:
        return frozenset([tags])


def _with_aux(fn: Callable) -> Callable:
    return lambda x, args: (fn(x, args), None)


def sparse_jacobian_operator(
    fn: Callable[[Array, PyTree[Any]], Array],
    x: Array,
    args: PyTree[Any] = None,
    *,
    tags: object = (),
    coloring: asdex.ColoredPattern | None = None,
) -> SparseMatrixLinearOperator:
    """The sparse Jacobian ``d fn(x, args) / dx`` as a Lineax operator.

    The sparse counterpart of ``lineax.JacobianLinearOperator(fn, x, args)``, but
    materialised: sparsity is detected and colored (arrays ``fn`` closes over and
    integer arrays in ``args`` are read as constants, so index arrays give exact
    patterns) and the matrix computed with one JVP or VJP per color. To evaluate many
    Jacobians of the same function, pass the ``coloring`` (``asdex.jacobian_coloring``)
    so that detection is not repeated.

    Args:
        fn: A function ``(x, args) -> y`` with 1-D ``x`` and ``y``.
        x: The point, a 1-D array.
        args: Other (non-differentiated) arguments of ``fn``.
        tags: Lineax tags for the operator.
        coloring: A precomputed colored Jacobian pattern of ``fn`` w.r.t. ``x``.

    Returns:
        A `SparseMatrixLinearOperator` of shape ``(y.size, x.size)``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt.lineax import sparse_jacobian_operator
        >>> op = sparse_jacobian_operator(lambda x, a: a * x**2, jnp.arange(3.0), 2.0)
        >>> op.as_matrix()[1, 1]
        Array(4., dtype=float32)
    """
    _check_vector(fn, x, args, "sparse_jacobian_operator", out_ndim=1)
    flat_fn, x_flat, dynamic = flatten(_with_aux(fn), x, args, ravel_out=True)
    coloring = detect_jacobian(flat_fn, x_flat, dynamic, coloring)
    jac = JacobianEvaluator(flat_fn, coloring, dynamic, normal=False)(x_flat, dynamic).jac
    return SparseMatrixLinearOperator.from_structure(jac.data, jac.structure, _as_tags(tags))


def sparse_hessian_operator(
    fn: Callable[[Array, PyTree[Any]], Array],
    x: Array,
    args: PyTree[Any] = None,
    *,
    tags: object = (),
    coloring: asdex.ColoredPattern | None = None,
) -> SparseMatrixLinearOperator:
    """The sparse Hessian of a scalar ``fn(x, args)`` w.r.t. ``x`` as a Lineax operator.

    Computed by star coloring, one Hessian-vector product per color (constants as in
    `sparse_jacobian_operator`), and tagged ``lineax.symmetric_tag`` (plus ``tags``,
    e.g. ``lineax.positive_semidefinite_tag`` for a convex ``fn``). Its structure
    stores the whole diagonal, so that ``fold_sparse(H + λI)`` keeps it.

    Args:
        fn: A scalar function ``(x, args) -> f`` with 1-D ``x``.
        x: The point, a 1-D array.
        args: Other (non-differentiated) arguments of ``fn``.
        tags: Extra Lineax tags for the operator.
        coloring: A precomputed colored Hessian pattern (``asdex.hessian_coloring``).

    Returns:
        A symmetric `SparseMatrixLinearOperator` of shape ``(x.size, x.size)``.

    Examples:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from asdex_opt.lineax import sparse_hessian_operator
        >>> op = sparse_hessian_operator(lambda x, _: jnp.sum(x**3), jnp.arange(3.0))
        >>> lx.diagonal(op)
        Array([ 0.,  6., 12.], dtype=float32)
    """
    _check_vector(fn, x, args, "sparse_hessian_operator", out_ndim=0)
    flat_fn, x_flat, dynamic = flatten(_with_aux(fn), x, args, ravel_out=False)
    coloring = detect_hessian(flat_fn, x_flat, dynamic, coloring)
    hessian = HessianEvaluator(flat_fn, coloring, dynamic)(x_flat, dynamic)
    return SparseMatrixLinearOperator.from_structure(
        hessian.data, hessian.structure, hessian.tags | _as_tags(tags)
    )
