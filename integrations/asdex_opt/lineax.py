"""Sparse Lineax operators and solvers.

* `SparseMatrixLinearOperator`: a ``lineax.AbstractLinearOperator`` backed by a 2-D
  ``jax.experimental.sparse.BCOO`` matrix, registered for every Lineax dispatch function;
  with a static `SparseStructure` (its nonzero layout, known when tracing) solvers plan
  their work once.
* `sparse_jacobian_operator`, `sparse_hessian_operator`: such operators from asdex's
  sparse Jacobians and Hessians.
* `fold_sparse`: turns ``H + λI`` (and other sums, scalings and diagonal scalings of
  sparse operators) into one sparse operator.
* `SparseLU`: a direct sparse solver (SuperLU on the host, usable inside ``jit``) with
  factorization reuse; `BlockDiagonalLU`: a direct solve, all in JAX, for matrices that
  are block diagonal with small blocks up to a permutation; `BorderedBlockLU`: the same
  for such blocks bordered by a few dense rows and columns (arrowhead patterns), by a
  Schur complement; `TridiagonalLU`: ``lineax.Tridiagonal``. The direct solvers
  report in ``stats["positive_definite"]`` whether an operator tagged symmetric and
  positive semidefinite is positive definite. `Preconditioned` and
  `jacobi_preconditioner`: Krylov solves (``lineax.CG``/``GMRES``/``BiCGStab``)
  preconditioned from the sparse matrix.

Examples:
    >>> import jax.numpy as jnp, lineax as lx
    >>> from asdex_opt.lineax import SparseLU, fold_sparse, sparse_hessian_operator
    >>> f = lambda x, _: jnp.sum((x[1:] - x[:-1]) ** 2) + jnp.sum(x**4)
    >>> H = sparse_hessian_operator(f, jnp.ones(5))
    >>> I = lx.IdentityLinearOperator(H.in_structure())
    >>> step = lx.linear_solve(fold_sparse(H + 1e-3 * I), jnp.ones(5), SparseLU()).value
"""

from ._lineax._ad import sparse_hessian_operator, sparse_jacobian_operator
from ._lineax._block_diagonal import BlockDiagonalLU
from ._lineax._bordered import BorderedBlockLU
from ._lineax._fold import fold_sparse
from ._lineax._krylov import Preconditioned, jacobi_preconditioner
from ._lineax._operator import SparseMatrixLinearOperator
from ._lineax._structure import SparseStructure
from ._lineax._superlu import SparseLU
from ._lineax._tridiagonal import TridiagonalLU

__all__ = [
    "SparseMatrixLinearOperator",
    "SparseStructure",
    "sparse_jacobian_operator",
    "sparse_hessian_operator",
    "fold_sparse",
    "SparseLU",
    "BlockDiagonalLU",
    "BorderedBlockLU",
    "TridiagonalLU",
    "Preconditioned",
    "jacobi_preconditioner",
]
