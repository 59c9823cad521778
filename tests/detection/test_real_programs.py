"""Real programs: sif2jax constraint Jacobians and the 2-D Brusselator."""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import sif2jax
from sif2jax_sweep import compare, flat_constraints, numeric_pattern

from asdex.detection import jacobian_sparsity

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from problems import banded_stencil, brusselator_2d, conv_net_1d

FAST_CONSTRAINED = [
    "HS104", "OET2", "HS71", "HS100", "BT1", "HS26", "ORTHREGB", "HS99", "DTOC1L", "MSS1",
    "HS119", "LUKVLE1", "HIMMELBK", "ROBOT", "ELEC", "GOFFIN",
]


def constrained_problems(names=None, max_n=400):
    for problem in sif2jax.constrained_minimisation_problems:
        if names is not None and problem.name not in names:
            continue
        flat_y0, _ = jax.flatten_util.ravel_pytree(problem.y0)
        if flat_y0.size <= max_n:
            yield problem


def check_constraints(problem):
    with jax.enable_x64(True):
        f, y0 = flat_constraints(problem)
        detected = jacobian_sparsity(f, y0).todense()
        numeric = numeric_pattern(jax.jit(jax.jacfwd(f)), y0)
    result = compare(problem.name, detected, numeric)
    assert result.misses == 0, f"{problem.name}: {result.misses} missed nonzeros"
    return result


@pytest.mark.parametrize("problem", list(constrained_problems(FAST_CONSTRAINED)),
                         ids=lambda p: p.name)
def test_sif2jax_constraint_jacobians(problem):
    check_constraints(problem)


@pytest.mark.slow
def test_all_sif2jax_constrained_problems_up_to_400_variables():
    results = [check_constraints(p) for p in constrained_problems()]
    exact = sum(r.exact for r in results)
    assert exact >= 0.95 * len(results), f"only {exact} of {len(results)} exact"


@pytest.mark.parametrize("grid", [4, 7])
def test_brusselator_is_exact(grid):
    rhs, y = brusselator_2d(grid)
    detected = jacobian_sparsity(rhs, y).todense()
    n = y.size
    assert detected.shape == (n, n)
    # each species couples to its 5-point stencil and to the other species at the node
    np.testing.assert_array_equal(detected.sum(axis=1), np.full(n, 6))
    numeric = jax.jacfwd(rhs)(y + jax.random.uniform(jax.random.key(1), y.shape)).reshape(n, n)
    np.testing.assert_array_equal(detected, np.asarray(numeric != 0))


def test_conv_net_and_stencil_are_sound_and_banded():
    for make, n, band in [(conv_net_1d, 32, 3), (banded_stencil, 32, 2)]:
        f, x = make(n)
        detected = jacobian_sparsity(f, x).todense()
        rows, cols = np.nonzero(detected)
        assert np.abs(rows - cols).max() == band
        numeric = np.asarray(jax.jacfwd(f)(x + 0.1 * jax.random.normal(jax.random.key(0), x.shape)))
        assert not ((numeric != 0) & (detected == 0)).any()
