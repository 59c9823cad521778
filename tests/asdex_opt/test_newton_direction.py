"""The shifted Newton direction at special points: stationary and indefinite."""

import jax.numpy as jnp
import lineax as lx
import numpy as np
from jax.experimental import sparse as jsparse

from asdex_opt._lineax._newton import shifted_newton_direction
from asdex_opt.lineax import SparseMatrixLinearOperator


def _operator(dense):
    return SparseMatrixLinearOperator(jsparse.BCOO.fromdense(jnp.asarray(dense)), lx.symmetric_tag)


def test_stationary_point_needs_no_shift():
    hessian = _operator([[2.0, 0.0], [0.0, 3.0]])
    p, shift, finite = shifted_newton_direction(jnp.zeros(2), hessian, lx.LU())
    np.testing.assert_array_equal(p, 0.0)
    assert float(shift) == 0.0 and bool(finite)
    # Also for an indefinite Hessian: the shift starts where Nocedal-Wright start, no growth.
    p, shift, _ = shifted_newton_direction(
        jnp.zeros(2), _operator([[1.0, 0.0], [0.0, -1.0]]), lx.LU()
    )
    np.testing.assert_array_equal(p, 0.0)
    np.testing.assert_allclose(float(shift), 1e-3 + 1.0, rtol=1e-6)


def test_indefinite_hessian_is_shifted_until_descent():
    grad = jnp.array([1.0, 1.0])
    p, shift, _ = shifted_newton_direction(grad, _operator([[1.0, 0.0], [0.0, -1.0]]), lx.LU())
    assert float(shift) > 1.0 and float(jnp.vdot(grad, p)) > 0
