"""The shifted Newton direction reads SparseLDL's inertia (no definiteness side channel)."""

import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
from jax.experimental import sparse as jsparse

from asdex_opt._lineax._definite import positive_definite, reports_definiteness, reports_inertia
from asdex_opt._lineax._newton import shifted_newton_direction
from asdex_opt.lineax import SparseLDL, SparseLU, SparseMatrixLinearOperator

pytestmark = pytest.mark.usefixtures("x64_module")


def _chain(diagonal: np.ndarray) -> np.ndarray:
    n = diagonal.size
    return np.diag(diagonal) + np.diag(np.full(n - 1, 0.5), 1) + np.diag(np.full(n - 1, 0.5), -1)


def test_capabilities_are_declared():
    assert reports_inertia(SparseLDL()) and not reports_inertia(SparseLU())
    assert reports_definiteness(SparseLDL()) and not SparseLDL.reports_definiteness


def test_shift_until_inertia_is_positive_definite():
    rng = np.random.default_rng(0)
    grad = jnp.asarray(rng.standard_normal(12))
    # Indefinite: the direction needs a shift that makes H + τI positive definite.
    indefinite = _chain(np.r_[np.full(6, 2.0), np.full(6, -1.5)])
    hessian = SparseMatrixLinearOperator(jsparse.BCOO.fromdense(jnp.asarray(indefinite)))
    p, tau, finite = shifted_newton_direction(grad, hessian, SparseLDL())
    shifted = indefinite + float(tau) * np.eye(12)
    assert bool(finite) and np.linalg.eigvalsh(shifted).min() > 0
    np.testing.assert_allclose(np.asarray(p), np.linalg.solve(shifted, grad), rtol=1e-10)
    # Positive definite: no shift, the Newton direction itself.
    definite = _chain(np.full(12, 2.0))
    hessian = SparseMatrixLinearOperator(jsparse.BCOO.fromdense(jnp.asarray(definite)))
    p, tau, _ = shifted_newton_direction(grad, hessian, SparseLDL())
    assert float(tau) == 0.0
    np.testing.assert_allclose(np.asarray(p), np.linalg.solve(definite, grad), rtol=1e-10)
    # The inertia says "not positive definite" for a negative definite matrix.
    tags = (lx.symmetric_tag, lx.positive_semidefinite_tag)
    negative = SparseMatrixLinearOperator(jsparse.BCOO.fromdense(jnp.asarray(-definite)), tags)
    solution = lx.linear_solve(negative, grad, SparseLDL(), throw=False)
    assert [int(i) for i in solution.stats["inertia"]] == [0, 12, 0]
    assert not bool(positive_definite(SparseLDL(), solution))
