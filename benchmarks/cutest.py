"""sif2jax (CUTEst) problems and the solvers of the performance-profile benchmark.

Problems are imported one module at a time: `import sif2jax` builds every problem of
every category (minutes on a loaded machine: CLEUVEN7 assembles a matrix entry by entry
at import), so the packages are registered empty and only the requested module runs.

Run as a script, it is one solve of `bench_profile.py`: a fresh process, so that the
first call pays detection, coloring, tracing and compilation ("cold"), then repeated
calls ("warm"); it prints one JSON line.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import importlib.util
import itertools
import json
import math
import pathlib
import re
import sys
import time
import types
import warnings
from collections.abc import Callable
from typing import Any

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

SIF = pathlib.Path(importlib.util.find_spec("sif2jax").origin).parent
GTOL = 1e-6
"""Success: max |∇f| (least squares: max |Jᵀr|; roots: max |F|) at most this."""
CATEGORIES = {
    "unconstrained": ("_unconstrained_minimisation", "unconstrained_minimisation_problems"),
    "equations": ("_nonlinear_equations", "nonlinear_equations_problems"),
    "constrained": ("_constrained_minimisation", "constrained_minimisation_problems"),
    "constrained QP": ("_quadratic_problems", "constrained_quadratic_problems"),
}


def _register_packages() -> None:
    if "sif2jax" in sys.modules:
        return
    for name, path in [("sif2jax", SIF), ("sif2jax.cutest", SIF / "cutest")] + [
        (f"sif2jax.cutest.{package}", SIF / "cutest" / package)
        for package, _ in CATEGORIES.values()
    ]:
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules[name] = module
    base = importlib.import_module("sif2jax._problem")
    for name in dir(base):
        if name.startswith("Abstract"):  # the problems import these from the top level
            setattr(sys.modules["sif2jax"], name, getattr(base, name))


def catalogue(category: str) -> dict[str, str]:
    """The problems sif2jax lists in `category`: class name -> module name."""
    package, listing = CATEGORIES[category]
    tree = ast.parse((SIF / "cutest" / package / "__init__.py").read_text())
    modules = {
        alias.asname or alias.name: node.module
        for node in tree.body if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    listed = next(
        node.value for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == listing
    )
    return {call.func.id: modules[call.func.id] for call in listed.elts}


def problem_class(category: str, name: str) -> type:
    """The sif2jax class `name` of `category`, importing only its module."""
    _register_packages()
    package, _ = CATEGORIES[category]
    module = importlib.import_module(f"sif2jax.cutest.{package}.{catalogue(category)[name]}")
    return getattr(module, name)


def num_variables(problem) -> int:
    return int(jax.flatten_util.ravel_pytree(problem.y0)[0].size)


def variable_dimension(cls: type) -> bool:
    """Whether the SIF classification says the number of variables is free ("-V-")."""
    match = re.search(r"[A-Z]{3}\d-[A-Z]{2}-(V|\d+)-", cls.__doc__ or "")
    return bool(match and match[1] == "V")


def sized(category: str, name: str, target: int) -> tuple[Any, dict[str, int]]:
    """An instance with n close to `target` where the SIF file lets n vary, else the default.

    Returns the instance and the size field set (empty when n is fixed). The size field
    is the integer field that changes the number of variables; its value is chosen by
    bisection for the largest n not above `target` (n may be e.g. a square or a multiple).
    """
    cls = problem_class(category, name)
    default = cls()
    if not variable_dimension(cls):
        return default, {}
    n0 = num_variables(default)
    for field in dataclasses.fields(cls):
        value = getattr(default, field.name, None)
        if field.name == "y0_iD" or type(value) is not int:
            continue
        if not any(_changes_n(cls, field.name, probe, n0) for probe in (target, value + 2)):
            continue

        def size(v, field=field):
            try:
                return num_variables(cls(**{field.name: v}))
            except Exception:
                return math.inf

        lo, hi = 1, max(target, 2)
        if size(hi) <= target:
            return cls(**{field.name: hi}), {field.name: hi}
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if size(mid) <= target else (lo, mid)
        return cls(**{field.name: lo}), {field.name: lo}
    return default, {}


def _changes_n(cls: type, field: str, value: int, n0: int) -> bool:
    try:
        return num_variables(cls(**{field: value})) != n0
    except Exception:
        return False


@dataclasses.dataclass
class Task:
    """One problem as flat functions of a flat vector, and how success is judged."""

    f: Callable  # objective (unconstrained) or residuals (least squares / roots)
    y0: jax.Array
    expected: float | None

    def measure(self, category: str, y) -> tuple[float, float]:
        """(objective, optimality) at y: f and max|∇f|, ½|r|² and max|Jᵀr|, or max|F|."""
        @jax.jit
        def measured(y):
            if category == "unconstrained":
                value, grad = jax.value_and_grad(self.f)(y)
                return value, jnp.max(jnp.abs(grad))
            r, vjp = jax.vjp(self.f, y)
            optimality = jnp.abs(r) if category == "root" else jnp.abs(vjp(r)[0])
            return 0.5 * jnp.sum(r**2), jnp.max(optimality)

        value, optimality = measured(jnp.asarray(y, dtype=self.y0.dtype))
        return float(value), float(optimality)


def task(category: str, problem) -> Task:
    """The flat functions of a sif2jax problem for `category`.

    "unconstrained": the objective; "least squares" and "root": the equality residuals
    of a nonlinear-equations problem (the objective is a constant there).
    """
    flat, unravel = jax.flatten_util.ravel_pytree(problem.y0)
    flat = flat.astype(jnp.float64)
    expected = problem.expected_objective_value
    if category == "unconstrained":
        args = problem.args

        def f(y):
            return problem.objective(unravel(y), args)
    else:
        free, start = free_variables(problem, flat)
        runs = _runs(free, flat.size)

        def f(y):
            full = jnp.concatenate([y[a:b] if held is None else start[held:held + b - a]
                                    for a, b, held in runs]) if len(runs) > 1 else y
            return jax.flatten_util.ravel_pytree(problem.constraint(unravel(full))[0])[0]
        flat = start[free]
        expected = 0.0
    try:
        expected = None if expected is None else float(jnp.sum(jnp.asarray(expected)))
    except (TypeError, ValueError):
        expected = None
    return Task(f, flat, expected)


def free_variables(problem, y0: jax.Array) -> tuple[np.ndarray, jax.Array]:
    """The free variables of a nonlinear-equations problem, and its start with the rest held.

    Boundary values of discretised equations (BDVALUES, ARTIF, the DRCAVTYs) are written
    in SIF as variables whose lower and upper bounds are equal: they are held at that
    value and the problem is solved over the others. Returns the indices of the free
    variables and the flat start `y0` with the fixed ones set to their value. Any other
    finite bound raises ValueError: the benchmark's solvers are unconstrained.
    """
    bounds = getattr(problem, "bounds", None)
    if bounds is None:
        return np.arange(y0.size), y0
    lower, upper = (np.asarray(jax.flatten_util.ravel_pytree(b)[0], dtype=np.float64)
                    for b in bounds)
    fixed = np.isfinite(lower) & (lower == upper)
    if np.any((np.isfinite(lower) | np.isfinite(upper)) & ~fixed):
        raise ValueError("bounds on the variables that do not fix them; the benchmark's "
                         "solvers are unconstrained")
    return np.flatnonzero(~fixed), jnp.where(fixed, lower, y0)


def _runs(free: np.ndarray, n: int) -> list[tuple[int, int, int | None]]:
    """The full vector as runs of free and held variables: (start, stop, held).

    A free run reads ``y[start:stop]``; a held run (held = its offset in the full vector)
    reads the held values. Static slices, not an index array: a solver that traces the
    arrays its function closes over (optimistix) would make an index array unreadable
    to sparsity detection, and the detected pattern dense.
    """
    is_free = np.zeros(n, bool)
    is_free[free] = True
    edges = [0, *(np.flatnonzero(is_free[1:] != is_free[:-1]) + 1).tolist(), n]
    runs, k = [], 0
    for lo, hi in itertools.pairwise(edges):
        runs.append((k, k + hi - lo, None) if is_free[lo] else (lo, hi, lo))
        k += (hi - lo) * bool(is_free[lo])
    return runs


Solve = Callable[[], tuple[Any, int]]
"""One whole solve from the standard start: (final point, steps)."""


def _optx(kind: str, solver, t: Task, max_steps: int) -> Solve:
    import optimistix as optx

    call = {"unconstrained": optx.minimise, "least squares": optx.least_squares,
            "root": optx.root_find}[kind]

    @jax.jit
    def run(y0):
        sol = call(lambda y, _: t.f(y), solver, y0, max_steps=max_steps, throw=False)
        return sol.value, sol.stats["num_steps"]

    return lambda: run(t.y0)


def _optax(optimizer, t: Task, max_steps: int) -> Solve:
    """An Optax optimizer in a `lax.while_loop` until max|∇f| ≤ GTOL."""
    import optax

    value_and_grad = optax.value_and_grad_from_state(t.f)

    def body(carry):
        y, state, k, value, grad = carry
        updates, state = optimizer.update(grad, state, y, value=value, grad=grad,
                                          value_fn=t.f)
        y = optax.apply_updates(y, updates)
        value, grad = value_and_grad(y, state=state)
        return y, state, k + 1, value, grad

    @jax.jit
    def run(y0):
        value, grad = jax.value_and_grad(t.f)(y0)
        carry = (y0, optimizer.init(y0), 0, value, grad)
        y, _, k, _, _ = jax.lax.while_loop(
            lambda c: (c[2] < max_steps) & (jnp.max(jnp.abs(c[4])) > GTOL), body, carry)
        return y, k

    return lambda: run(t.y0)


def _sparse_hessian(f: Callable, y0) -> Callable:
    """A jitted function returning the asdex Hessian as a BCOO matrix."""
    import asdex

    return jax.jit(asdex.hessian(f, y0))


def _scipy_minimize(method: str, t: Task, max_steps: int) -> Solve:
    import scipy.optimize
    import scipy.sparse

    fun, grad = jax.jit(t.f), jax.jit(jax.grad(t.f))
    options: dict[str, Any] = {"maxiter": max_steps, "gtol": GTOL}
    if method == "trust-krylov":
        hvp = jax.jit(lambda y, v: jax.jvp(jax.grad(t.f), (y,), (v,))[1])
        extra = {"hessp": lambda x, p: np.asarray(hvp(x, p))}
    else:
        hessian = _sparse_hessian(t.f, t.y0)

        def hess(x):
            h = hessian(jnp.asarray(x))
            rows, cols = np.asarray(h.indices).T
            return scipy.sparse.csr_matrix((np.asarray(h.data), (rows, cols)), h.shape)

        extra = {"hess": hess}
        options.update(xtol=1e-14)

    def run():
        result = scipy.optimize.minimize(
            lambda x: float(fun(x)), np.asarray(t.y0), jac=lambda x: np.asarray(grad(x)),
            method=method, options=options, **extra)
        return result.x, int(result.nit)

    return run


def _ipopt(t: Task, max_steps: int) -> Solve:
    """IPOPT (cyipopt) with the exact sparse Hessian and its structure from asdex."""
    import cyipopt

    fun, grad = jax.jit(t.f), jax.jit(jax.grad(t.f))
    hessian = _sparse_hessian(t.f, t.y0)
    n = t.y0.size

    class Unconstrained:
        def __init__(self):
            indices = np.asarray(hessian(t.y0).indices)
            self.lower = indices[:, 0] >= indices[:, 1]
            self.structure = tuple(indices[self.lower].T)
            self.iterations = 0

        def objective(self, x):
            return float(fun(x))

        def gradient(self, x):
            return np.asarray(grad(x))

        def constraints(self, x):
            return np.zeros(0)

        def jacobian(self, x):
            return np.zeros(0)

        def jacobianstructure(self):
            return np.zeros(0, int), np.zeros(0, int)

        def hessianstructure(self):
            return self.structure

        def hessian(self, x, lagrange, obj_factor):
            return obj_factor * np.asarray(hessian(jnp.asarray(x)).data)[self.lower]

        def intermediate(self, alg_mod, iter_count, *values):
            self.iterations = iter_count
            return True

    def run():
        problem = Unconstrained()
        nlp = cyipopt.Problem(n=n, m=0, problem_obj=problem, lb=None, ub=None, cl=[], cu=[])
        for option, value in [("print_level", 0), ("sb", "yes"), ("max_iter", max_steps),
                              ("tol", 1e-8), ("nlp_scaling_method", "none"),
                              ("acceptable_iter", 0)]:
            nlp.add_option(option, value)
        x, _ = nlp.solve(np.asarray(t.y0))
        return x, problem.iterations

    return run


def _scipy_least_squares(t: Task, max_steps: int) -> Solve:
    import scipy.optimize
    import scipy.sparse

    import asdex

    fun = jax.jit(t.f)
    jacobian = jax.jit(asdex.jacobian(t.f, t.y0))

    def jac(x):
        j = jacobian(jnp.asarray(x))
        rows, cols = np.asarray(j.indices).T
        return scipy.sparse.csr_matrix((np.asarray(j.data), (rows, cols)), j.shape)

    def run():
        result = scipy.optimize.least_squares(
            lambda x: np.asarray(fun(x)), np.asarray(t.y0), jac=jac, method="trf",
            tr_solver="lsmr", ftol=1e-12, xtol=1e-12, gtol=1e-12, max_nfev=max_steps)
        return result.x, int(result.nfev)

    return run


def _scipy_root(t: Task, max_steps: int) -> Solve:
    import scipy.optimize

    import asdex

    fun = jax.jit(t.f)
    jacobian = jax.jit(asdex.jacobian(t.f, t.y0))

    def run():
        result = scipy.optimize.root(
            lambda x: np.asarray(fun(x)), np.asarray(t.y0),
            jac=lambda x: np.asarray(jacobian(jnp.asarray(x)).todense()), method="hybr",
            options={"xtol": 1e-12, "maxfev": max_steps})
        return result.x, int(result.nfev)

    return run


def _asdex_opt(name: str):
    import asdex_opt

    return getattr(asdex_opt, name)


def solvers(kind: str) -> dict[str, tuple[Callable[[Task, int], Solve], int | None]]:
    """Solver name -> (build its solve, largest n it runs at or None) for `kind`."""
    tol = (1e-12, 1e-12)
    if kind == "unconstrained":
        import optax
        import optimistix as optx

        return {
            "SparseNewton": (lambda t, s: _optx(kind, _asdex_opt("SparseNewton")(*tol), t, s),
                             None),
            "SparseNewton (Watchdog)": (lambda t, s: _optx(kind, _asdex_opt("SparseNewton")(
                *tol, search=_asdex_opt("Watchdog")()), t, s), None),
            "SparseNewton (NonmonotoneArmijo)": (lambda t, s: _optx(
                kind, _asdex_opt("SparseNewton")(*tol, search=_asdex_opt("NonmonotoneArmijo")()),
                t, s), None),
            "SparseNewton (monotone Armijo)": (lambda t, s: _optx(
                kind, _asdex_opt("SparseNewton")(
                    *tol, search=_asdex_opt("NonmonotoneArmijo")(memory=1)), t, s), None),
            "SparseTrustRegionNewton": (lambda t, s: _optx(
                kind, _asdex_opt("SparseTrustRegionNewton")(*tol), t, s), None),
            "asdex_opt.sparse_newton (Optax)": (
                lambda t, s: _optax(_asdex_opt("sparse_newton")(), t, s), None),
            "optx.BFGS": (lambda t, s: _optx(kind, optx.BFGS(*tol), t, s), 2000),
            "optx.LBFGS": (lambda t, s: _optx(kind, optx.LBFGS(*tol), t, s), None),
            "optax.lbfgs": (lambda t, s: _optax(optax.lbfgs(), t, s), None),
            "scipy trust-krylov (HVP)": (
                lambda t, s: _scipy_minimize("trust-krylov", t, s), None),
            "scipy trust-constr (asdex Hessian)": (
                lambda t, s: _scipy_minimize("trust-constr", t, s), None),
            "IPOPT (asdex Hessian)": (_ipopt, None),
        }
    import optimistix as optx

    if kind == "least squares":
        return {
            "SparseGaussNewton": (lambda t, s: _optx(
                kind, _asdex_opt("SparseGaussNewton")(*tol), t, s), None),
            "SparseLevenbergMarquardt": (lambda t, s: _optx(
                kind, _asdex_opt("SparseLevenbergMarquardt")(*tol), t, s), None),
            "optx.GaussNewton (dense)": (lambda t, s: _optx(
                kind, optx.GaussNewton(*tol), t, s), 2000),
            "optx.LevenbergMarquardt (dense)": (lambda t, s: _optx(
                kind, optx.LevenbergMarquardt(*tol), t, s), 2000),
            "scipy least_squares trf (asdex Jacobian)": (_scipy_least_squares, None),
        }
    return {
        "SparseNewtonRootFinder": (lambda t, s: _optx(
            kind, _asdex_opt("SparseNewtonRootFinder")(*tol), t, s), None),
        "optx.Newton (dense)": (lambda t, s: _optx(kind, optx.Newton(*tol), t, s), 2000),
        "scipy root hybr (asdex Jacobian, densified)": (_scipy_root, None),
    }


SECOND_ORDER_STEPS, FIRST_ORDER_STEPS = 2000, 20000
FIRST_ORDER = ("optx.BFGS", "optx.LBFGS", "optax.lbfgs")


def max_steps(solver: str) -> int:
    """The step limit of a solver: quasi-Newton methods get ten times Newton's."""
    return FIRST_ORDER_STEPS if solver in FIRST_ORDER else SECOND_ORDER_STEPS


def solve(kind: str, category: str, name: str, size: dict[str, int], solver: str,
          budget: float, partial: Callable[[dict], None] | None = None) -> dict:
    """Cold solve, then warm solves for `budget` seconds (1 to 5): the result row.

    `partial`, when given, receives the row of the cold solve alone (warm = None) before
    the warm solves start, so that a solve killed during them still reports.
    """
    warnings.filterwarnings("ignore")
    cls = problem_class(category, name)
    t = task(kind, cls(**size))
    build, _ = solvers(kind)[solver]
    jax.block_until_ready(t.y0)  # the JAX runtime starts before the clock does
    start = time.perf_counter()
    run = build(t, max_steps(solver))
    y, steps = run()
    jax.block_until_ready(y)
    cold = time.perf_counter() - start
    if partial is not None:
        value, optimality = t.measure(kind, y)
        partial({"steps": int(steps), "cold": cold, "warm": None, "f": value,
                 "optimality": optimality, "converged": optimality <= GTOL,
                 "expected": t.expected, "n": int(t.y0.size)})
    warm = math.inf
    for _ in range(5):
        start = time.perf_counter()
        y, steps = run()
        jax.block_until_ready(y)
        warm = min(warm, time.perf_counter() - start)
        if warm * 2 > budget:
            break
    value, optimality = t.measure(kind, y)
    return {"steps": int(steps), "cold": cold, "warm": warm, "f": value,
            "optimality": optimality, "converged": optimality <= GTOL,
            "expected": t.expected, "n": int(t.y0.size)}


def main() -> None:
    parser = argparse.ArgumentParser(description="One solve of bench_profile.py.")
    parser.add_argument("--kind", required=True)
    parser.add_argument("--category", required=True)
    parser.add_argument("--problem", required=True)
    parser.add_argument("--size", default="{}", help="JSON dict of the size field")
    parser.add_argument("--solver", required=True)
    parser.add_argument("--budget", type=float, default=1.0)
    cli = parser.parse_args()
    row = solve(cli.kind, cli.category, cli.problem, json.loads(cli.size), cli.solver,
                cli.budget)
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
