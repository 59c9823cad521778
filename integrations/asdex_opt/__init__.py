"""asdex_opt: sparse second-order optimization for Equinox, Lineax, Optimistix and Optax.

Built on asdex's public API: sparsity is detected and colored once, then every step
computes exact sparse Jacobians or Hessians at the cost of their colors.
"""

from asdex_opt.constrained import SparseInteriorPoint, constrained_minimise
from asdex_opt.equinox import (
    filter_hessian,
    filter_jacfwd,
    filter_jacobian,
    filter_jacrev,
    filter_ravel_pytree,
    filter_value_and_hessian,
    filter_value_and_jacobian,
)
from asdex_opt.lineax import (
    Preconditioned,
    SparseLDL,
    SparseLU,
    SparseMatrixLinearOperator,
    fold_sparse,
    jacobi_preconditioner,
    sparse_hessian_operator,
    sparse_jacobian_operator,
)
from asdex_opt.optax import (
    scale_by_sparse_gauss_newton,
    scale_by_sparse_newton,
    sparse_gauss_newton,
    sparse_newton,
)
from asdex_opt.optimistix import (
    NonmonotoneArmijo,
    SparseGaussNewton,
    SparseLevenbergMarquardt,
    SparseNewton,
    SparseNewtonRootFinder,
    SparseTrustRegionNewton,
    Watchdog,
    Wolfe,
)

__all__ = [
    # Equinox
    "filter_hessian",
    "filter_jacfwd",
    "filter_jacobian",
    "filter_jacrev",
    "filter_ravel_pytree",
    "filter_value_and_hessian",
    "filter_value_and_jacobian",
    # Lineax
    "Preconditioned",
    "SparseLU",
    "SparseLDL",
    "SparseMatrixLinearOperator",
    "fold_sparse",
    "jacobi_preconditioner",
    "sparse_hessian_operator",
    "sparse_jacobian_operator",
    # Optimistix
    "NonmonotoneArmijo",
    "SparseGaussNewton",
    "SparseLevenbergMarquardt",
    "SparseNewton",
    "SparseNewtonRootFinder",
    "SparseTrustRegionNewton",
    "Watchdog",
    "Wolfe",
    # Constrained
    "SparseInteriorPoint",
    "constrained_minimise",
    # Optax
    "scale_by_sparse_gauss_newton",
    "scale_by_sparse_newton",
    "sparse_gauss_newton",
    "sparse_newton",
]
