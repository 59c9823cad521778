"""SparseInteriorPoint on sif2jax's constrained problems (CUTEst in JAX).

The default suite solves two small ones to their known optimal objective; every problem
with at most 5000 variables runs in the slow suite (``pytest -m slow``): a solve either
ends with the first-order conditions holding at the returned point, or reports a
``RESULTS`` failure.
"""

import jax
import optimistix as optx
import pytest
from test_interior_point import check_kkt

from asdex_opt.constrained import SparseInteriorPoint, constrained_minimise

sif2jax = pytest.importorskip("sif2jax")
pytestmark = pytest.mark.usefixtures("x64")

PROBLEMS = {type(p).__name__: p for p in sif2jax.constrained_minimisation_problems}
MAX_N = 5000
SOLVER = SparseInteriorPoint()


def _inputs(problem):
    eq, ineq = problem.constraint(problem.y0)
    return {
        "equality": None if eq is None else (lambda y, a: problem.constraint(y)[0]),
        "inequality": None if ineq is None else (lambda y, a: problem.constraint(y)[1]),
        "bounds": problem.bounds,
    }


@pytest.mark.parametrize(
    "name",
    [
        "HS35",  # bounds and an inequality
        "HS6",  # an equality
        *(pytest.param(n, marks=pytest.mark.slow) for n in ("HS7", "HS21", "HS71", "BT1")),
    ],
)
def test_known_optimum(name):
    """The known optimal objective, and the first-order conditions."""
    problem = PROBLEMS[name]
    kwargs = _inputs(problem)
    sol = constrained_minimise(problem.objective, SOLVER, problem.y0, problem.args, **kwargs)
    assert sol.result == optx.RESULTS.successful
    check_kkt(sol, problem.objective, problem.y0, problem.args, **kwargs)
    expected = float(problem.expected_objective_value)
    assert float(sol.stats["objective"]) == pytest.approx(expected, rel=1e-6, abs=1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_every_problem_up_to_5000_variables(name):
    """A solution satisfies the first-order conditions; anything else is a failure result."""
    problem = PROBLEMS[name]
    if jax.eval_shape(lambda: problem.y0).size > MAX_N:
        pytest.skip(f"more than {MAX_N} variables")
    kwargs = _inputs(problem)
    try:
        sol = constrained_minimise(
            problem.objective, SOLVER, problem.y0, problem.args, throw=False, **kwargs
        )
    except ValueError as error:  # the front door rejects it, e.g. a constant constraint
        pytest.skip(str(error))
    if sol.result == optx.RESULTS.successful:
        check_kkt(sol, problem.objective, problem.y0, problem.args, **kwargs, tol=1e-5)
    else:
        assert int(sol.stats["status"]) != 0
