"""Sparse second-order solvers for Optimistix.

Every solver detects and colors the sparsity of its problem once, when it is
initialised (from the structure of ``y0`` and ``args``, never their values), and then
evaluates exact sparse Hessians or Jacobians with asdex at every accepted step:

* `SparseNewton` and `SparseTrustRegionNewton`: minimisers (``optimistix.minimise``)
  with the exact sparse Hessian, a line search or a trust region, safe with indefinite
  Hessians (an identity shift folded into the sparse matrix keeps every step downhill).
* `SparseGaussNewton` and `SparseLevenbergMarquardt`: least-squares solvers
  (``optimistix.least_squares``) with a sparse Jacobian and a sparse ``JᵀJ (+ λI)``.
* `SparseNewtonRootFinder`: Newton's method for ``optimistix.root_find``.
* The descents (`ShiftedNewtonDescent`, `ShiftedDampedNewtonDescent`,
  `GaussNewtonDescent`, `LevenbergMarquardtDescent`) and abstract solvers, to combine
  with other Optimistix searches, and two searches that let full Newton steps
  through along curved valleys: `NonmonotoneArmijo` (any line-search solver) and
  `Watchdog` (`SparseNewton`).

All take the usual ``rtol``, ``atol``, ``norm`` and ``linear_solver`` (a Lineax solver;
by default a direct one chosen from the pattern of the matrix solved, at ``init``:
`asdex_opt.lineax.BlockDiagonalLU` when it splits into small blocks,
`asdex_opt.lineax.BorderedBlockLU` when it does so once a few dense rows and columns
are set aside, both in JAX, `asdex_opt.lineax.TridiagonalLU` for a chain, and else
`asdex_opt.lineax.SparseLU`, SuperLU on the host).
``y0`` may be any pytree of arrays: it is flattened with ``jax.flatten_util.ravel_pytree``.

Examples:
    >>> import jax.numpy as jnp, optimistix as optx
    >>> from asdex_opt.optimistix import SparseNewton
    >>> fn = lambda x, _: jnp.sum((x[1:] - x[:-1] ** 2) ** 2) + jnp.sum((1 - x) ** 2)
    >>> sol = optx.minimise(fn, SparseNewton(rtol=1e-8, atol=1e-8), jnp.zeros(1000))
    >>> bool(jnp.allclose(sol.value, 1.0, atol=1e-4))
    True
"""

from ._optimistix._descents import (
    GaussNewtonDescent,
    LevenbergMarquardtDescent,
    ShiftedDampedNewtonDescent,
    ShiftedNewtonDescent,
)
from ._optimistix._least_squares import (
    AbstractSparseGaussNewton,
    SparseGaussNewton,
    SparseLevenbergMarquardt,
)
from ._optimistix._newton import AbstractSparseNewton, SparseNewton, SparseTrustRegionNewton
from ._optimistix._root import SparseNewtonRootFinder
from ._optimistix._searches import NonmonotoneArmijo, Watchdog

__all__ = [
    "SparseNewton",
    "SparseTrustRegionNewton",
    "SparseGaussNewton",
    "SparseLevenbergMarquardt",
    "SparseNewtonRootFinder",
    "AbstractSparseNewton",
    "AbstractSparseGaussNewton",
    "ShiftedNewtonDescent",
    "ShiftedDampedNewtonDescent",
    "GaussNewtonDescent",
    "LevenbergMarquardtDescent",
    "NonmonotoneArmijo",
    "Watchdog",
]
