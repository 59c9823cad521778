"""Exact sparse derivatives for IPOPT (through cyipopt), built by asdex.

`IpoptProblem` holds the callbacks ``cyipopt.Problem`` expects (objective, gradient,
constraints, Jacobian with ``jacobianstructure``, Hessian of the Lagrangian with
``hessianstructure``) for the same ``(fn, y0, args, equality, inequality, bounds)``
inputs as `asdex_opt.constrained.constrained_minimise`: every callback is jitted, and
the Jacobian and Hessian are exact and sparse, their patterns detected and colored
once. `minimize_ipopt` runs IPOPT on them.

cyipopt is an optional dependency: install the IPOPT library first (Debian/Ubuntu:
``apt-get install coinor-libipopt-dev pkg-config``; conda: ``conda install -c
conda-forge ipopt``), then ``pip install -e ".[ipopt]"``. This module imports without
it; only `IpoptProblem.cyipopt_problem` and `minimize_ipopt` need it.

Examples:
    >>> import jax.numpy as jnp
    >>> from asdex_opt.ipopt import IpoptProblem
    >>> nlp = IpoptProblem(lambda y, _: jnp.sum(y**2), jnp.ones(3),
    ...                    equality=lambda y, _: y[0] + y[1] - 1.0)
    >>> nlp.jacobianstructure()
    (array([0, 0]), array([0, 1]))
    >>> nlp.hessianstructure()
    (array([0, 1, 2]), array([0, 1, 2]))
"""

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jaxtyping import PyTree

from asdex_opt._constrained._problem import ConstrainedProblem

__all__ = ["IpoptProblem", "minimize_ipopt"]

_INF = 2e19  # IPOPT treats bounds beyond 1e19 as infinite


class IpoptProblem:
    """The callbacks of ``cyipopt.Problem``, with exact sparse derivatives from asdex.

    Constraints are ``g(x) = [equality; inequality]`` with bounds ``cl = [0; 0]``,
    ``cu = [0; inf]``; ``x`` is the flat vector of ``y``'s floating-point leaves
    (``ravel_pytree`` order). IPOPT's multipliers ``mult_g`` follow its convention
    ``∇f + ∇g mult_g - z_L + z_U = 0``.

    Args:
        fn: The scalar objective ``fn(y, args)``.
        y0: A sample ``y`` (any pytree); its structure, shapes and dtypes are used.
        args: Passed to ``fn`` and the constraint functions.
        equality: ``equality(y, args) = 0``, a pytree of arrays.
        inequality: ``inequality(y, args) ≥ 0``, a pytree of arrays.
        bounds: ``(lower, upper)``, pytrees like ``y0`` (or ``None`` for a side).

    Attributes:
        n: Number of variables.
        m: Number of constraints.
        x0: The flat starting point.
        lb: Variable lower bounds (``-2e19`` for none).
        ub: Variable upper bounds (``2e19`` for none).
        cl: Constraint lower bounds.
        cu: Constraint upper bounds.
    """

    def __init__(
        self,
        fn: Callable[[PyTree, Any], Any],
        y0: PyTree,
        args: PyTree = None,
        *,
        equality: Callable[[PyTree, Any], PyTree] | None = None,
        inequality: Callable[[PyTree, Any], PyTree] | None = None,
        bounds: tuple[PyTree, PyTree] | None = None,
    ):
        problem = ConstrainedProblem(fn, y0, args, equality, inequality, bounds, False)
        self._problem = problem
        dyn = problem.dynamic
        self.n, self.m = problem.n, problem.num_constraints
        self.x0 = np.asarray(problem.flatten(y0), np.float64)
        self.lb = np.nan_to_num(np.asarray(problem.lower, np.float64), neginf=-_INF)
        self.ub = np.nan_to_num(np.asarray(problem.upper, np.float64), posinf=_INF)
        self.cl = np.zeros(self.m)
        self.cu = np.concatenate(
            [np.zeros(problem.num_equality), np.full(problem.num_inequality, _INF)]
        )
        dtype = problem.dtype
        self._objective = jax.jit(lambda x: problem.objective(x.astype(dtype), dyn)[0])
        self._gradient = jax.jit(lambda x: problem.gradient(x.astype(dtype), dyn)[1])
        self._constraints = jax.jit(lambda x: problem.constraints(x.astype(dtype), dyn))
        self._jacobian = jax.jit(lambda x: problem.jacobian(x.astype(dtype), dyn)[1])
        self._hessian = jax.jit(lambda x, lam, s: problem.hessian(x.astype(dtype), s, lam, dyn))

    def objective(self, x: np.ndarray) -> float:
        """``f(x)``."""
        return float(self._objective(x))

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """``∇f(x)``."""
        return np.asarray(self._gradient(x), np.float64)

    def constraints(self, x: np.ndarray) -> np.ndarray:
        """``g(x) = [equality; inequality]``."""
        return np.asarray(self._constraints(x), np.float64)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """The nonzeros of ``∇g(x)ᵀ`` in the order of `jacobianstructure`."""
        return np.asarray(self._jacobian(x), np.float64)

    def jacobianstructure(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)`` of the Jacobian's nonzeros."""
        return self._problem.jac_rows, self._problem.jac_cols

    def hessian(self, x: np.ndarray, lagrange: np.ndarray, obj_factor: float) -> np.ndarray:
        """Lower-triangle nonzeros of ``∇²(obj_factor f + lagrangeᵀ g)(x)``."""
        return np.asarray(self._hessian(x, np.asarray(lagrange), obj_factor), np.float64)

    def hessianstructure(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, cols)`` of the Hessian's lower-triangle nonzeros."""
        return self._problem.hess_rows, self._problem.hess_cols

    def unflatten(self, x: np.ndarray) -> PyTree:
        """The pytree ``y`` of a flat ``x``."""
        return self._problem.unflatten(x.astype(self._problem.dtype))

    def cyipopt_problem(self) -> Any:
        """A ``cyipopt.Problem`` over these callbacks (needs cyipopt)."""
        try:
            import cyipopt
        except ImportError as error:
            raise ImportError(
                "asdex_opt.ipopt needs cyipopt: install the IPOPT library (e.g. "
                "`apt-get install coinor-libipopt-dev pkg-config`), then "
                '`pip install -e ".[ipopt]"`.'
            ) from error
        return cyipopt.Problem(
            n=self.n, m=self.m, problem_obj=self, lb=self.lb, ub=self.ub, cl=self.cl, cu=self.cu
        )


def minimize_ipopt(
    fn: Callable[[PyTree, Any], Any],
    y0: PyTree,
    args: PyTree = None,
    *,
    equality: Callable[[PyTree, Any], PyTree] | None = None,
    inequality: Callable[[PyTree, Any], PyTree] | None = None,
    bounds: tuple[PyTree, PyTree] | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[PyTree, dict[str, Any]]:
    """Solve the problem with IPOPT, using exact sparse derivatives from asdex.

    Args:
        fn: The scalar objective ``fn(y, args)``.
        y0: The starting point (any pytree).
        args: Passed to ``fn`` and the constraint functions.
        equality: ``equality(y, args) = 0``.
        inequality: ``inequality(y, args) ≥ 0``.
        bounds: ``(lower, upper)``, pytrees like ``y0``.
        options: IPOPT options, e.g. ``{"tol": 1e-8, "print_level": 0}``.

    Returns:
        ``(y, info)``: the solution shaped like ``y0`` and cyipopt's ``info`` dict
        (``obj_val``, ``status``, ``status_msg``, ``mult_g``, ``mult_x_L``,
        ``mult_x_U``, ...).
    """
    nlp = IpoptProblem(fn, y0, args, equality=equality, inequality=inequality, bounds=bounds)
    solver = nlp.cyipopt_problem()
    for key, value in {"print_level": 0, **(options or {})}.items():
        solver.add_option(key, value)
    x, info = solver.solve(nlp.x0)
    return nlp.unflatten(np.asarray(x)), info
