"""SparseInteriorPoint on sif2jax's constrained problems (CUTEst in JAX).

The default suite solves two small ones to their known optimal objective; every problem
with at most 5000 variables runs in the slow suite (``pytest -m slow``): a solve either
ends with the first-order conditions holding at the returned point, or reports a
``RESULTS`` failure.
"""

import sys
from pathlib import Path

import optimistix as optx
import pytest
from test_interior_point import check_kkt

from asdex_opt.constrained import SparseInteriorPoint, constrained_minimise

pytest.importorskip("sif2jax")
sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from cutest_constrained import MAX_N, inputs, problems

pytestmark = pytest.mark.usefixtures("x64")

PROBLEMS = problems(MAX_N)
SOLVER = SparseInteriorPoint()


@pytest.mark.parametrize(
    "name",
    [
        "HS35",  # bounds and an inequality
        "HS6",  # an equality
        *(pytest.param(n, marks=pytest.mark.slow)
          for n in ("HS7", "HS21", "HS71", "BT1", "HS27")),
    ],
)
def test_known_optimum(name):
    """The known optimal objective, and the first-order conditions."""
    problem = PROBLEMS[name]
    kwargs = inputs(problem)
    sol = constrained_minimise(problem.objective, SOLVER, problem.y0, problem.args, **kwargs)
    assert sol.result == optx.RESULTS.successful
    check_kkt(sol, problem.objective, problem.y0, problem.args, **kwargs)
    expected = float(problem.expected_objective_value)
    assert float(sol.stats["objective"]) == pytest.approx(expected, rel=1e-6, abs=1e-8)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_every_problem_up_to_5000_variables(name):
    """A solution satisfies the first-order conditions; anything else is a failure result."""
    problem = PROBLEMS[name]
    kwargs = inputs(problem)
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


@pytest.mark.slow
def test_restoration_at_an_almost_feasible_point_returns():
    """ZECEVIC4's line search fails at violation 8e-10 after a large drop of μ.

    Restoration starts there; it must not push the iterate away from its bounds (it
    did when its barrier outweighed the violation), and the solve ends at IPOPT's
    point (f = 165.9999988).
    """
    problem = PROBLEMS["ZECEVIC4"]
    kwargs = inputs(problem)
    sol = constrained_minimise(problem.objective, SOLVER, problem.y0, problem.args, **kwargs)
    assert int(sol.stats["restoration_steps"]) >= 1
    check_kkt(sol, problem.objective, problem.y0, problem.args, **kwargs)
    assert float(sol.stats["objective"]) == pytest.approx(165.9999988, rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "ipopt"),
    [
        ("LISWET1", 7.0967883737500035),  # 2000 inequalities, most active
        ("LISWET7", 98.97829432306422),
        ("YAO", 196.1774791175339),
        ("HS13", 0.9945785378415971),  # degenerate at the solution
    ],
)
def test_ipopt_objective(name, ipopt):
    """IPOPT's objective to 1e-6, as IPOPT reaches it: solved, not merely close.

    On the LISWET problems a ``δ_c`` kept in every step left the linearised constraints
    violated by about ``δ_c |Δy|`` with multipliers near 1e4, and the solve ended,
    status 0, at another objective.
    """
    problem = PROBLEMS[name]
    kwargs = inputs(problem)
    sol = constrained_minimise(problem.objective, SOLVER, problem.y0, problem.args, **kwargs)
    assert float(sol.stats["objective"]) == pytest.approx(ipopt, rel=1e-6)
