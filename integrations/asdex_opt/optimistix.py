"""Sparse second-order solvers for Optimistix.

Every solver detects and colors the sparsity of its problem once, when it is
initialised, and then evaluates exact sparse Hessians or Jacobians with asdex at every
accepted step. Detection reads the shapes and dtypes of ``y0`` and ``args`` and the
values of the constants of the problem that it can see: the arrays ``fn`` closes
over, and the integer and boolean arrays of ``args``, where they are not traced (so
that ``y[idx]`` gets its exact pattern, not a dense one). ``optimistix.minimise`` (and
``least_squares``, ``root_find``) is jitted, so the arrays of ``args`` are traced
there; with its default ``adjoint=optimistix.ImplicitAdjoint()`` so are those ``fn``
closes over. For index arrays, pass ``coloring=`` (e.g.
``asdex.hessian_coloring(lambda y: fn(y, args), y0)``, computed outside ``jit``), or
close over them and solve with ``adjoint=optimistix.RecursiveCheckpointAdjoint()``; a
traced integer array draws a warning saying so. Floating-point ``args`` are treated
as unknowns, so a pattern holds for every value of them.

* `SparseNewton` and `SparseTrustRegionNewton`: minimisers (``optimistix.minimise``)
  with the exact sparse Hessian, a line search or a trust region, safe with indefinite
  Hessians (an identity shift folded into the sparse matrix keeps every step downhill).
* `SparseGaussNewton` and `SparseLevenbergMarquardt`: least-squares solvers
  (``optimistix.least_squares``) with a sparse Jacobian and a sparse ``JᵀJ (+ λI)``.
* `SparseNewtonRootFinder`: Newton's method for ``optimistix.root_find``.
* The descents (`ShiftedNewtonDescent`, `ShiftedDampedNewtonDescent`,
  `GaussNewtonDescent`, `LevenbergMarquardtDescent`; the last two are
  of the kind `AbstractGaussNewtonDescent`, declaring whether they need ``JᵀJ``) and
  abstract solvers, to combine with other Optimistix searches; `Wolfe`, the default
  line search of `SparseNewton` (it needs the gradient at every trial, which
  `SparseNewton` evaluates); and two searches that let full Newton steps through
  along curved valleys: `NonmonotoneArmijo` (any line-search solver) and `Watchdog`,
  an `AbstractRevisingSearch` (a search that may send the solver back to an earlier
  point), which `SparseNewton` runs.

All take the usual ``rtol``, ``atol``, ``norm``, ``verbose`` (a bool, a frozenset of
entry names or a callable, as Optimistix solvers take it), ``coloring`` and
``linear_solver`` (a Lineax solver; by default a direct one chosen from the pattern of
the matrix solved by `asdex_opt.lineax.choose_solver`, at ``init``:
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

from asdex_opt._optimistix._descents import (
    AbstractGaussNewtonDescent,
    GaussNewtonDescent,
    LevenbergMarquardtDescent,
    ShiftedDampedNewtonDescent,
    ShiftedNewtonDescent,
    TruncatedNewtonDescent,
)
from asdex_opt._optimistix._least_squares import (
    AbstractSparseGaussNewton,
    SparseGaussNewton,
    SparseLevenbergMarquardt,
)
from asdex_opt._optimistix._newton import (
    AbstractSparseNewton,
    SparseNewton,
    SparseTrustRegionNewton,
)
from asdex_opt._optimistix._root import SparseNewtonRootFinder
from asdex_opt._optimistix._searches import (
    AbstractRevisingSearch,
    NonmonotoneArmijo,
    Point,
    TrustRegion,
    Watchdog,
    Wolfe,
)

__all__ = [
    "SparseNewton",
    "SparseTrustRegionNewton",
    "SparseGaussNewton",
    "SparseLevenbergMarquardt",
    "SparseNewtonRootFinder",
    "AbstractSparseNewton",
    "AbstractSparseGaussNewton",
    "AbstractGaussNewtonDescent",
    "AbstractRevisingSearch",
    "Point",
    "ShiftedNewtonDescent",
    "ShiftedDampedNewtonDescent",
    "TruncatedNewtonDescent",
    "GaussNewtonDescent",
    "LevenbergMarquardtDescent",
    "NonmonotoneArmijo",
    "TrustRegion",
    "Watchdog",
    "Wolfe",
]
