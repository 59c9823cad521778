"""Call primitives and custom derivative rules."""

import jax
import jax.numpy as jnp
import numpy as np
from detection_helpers import assert_pattern, assert_sound

from asdex.detection import hessian_sparsity, jacobian_sparsity


def test_jit_and_checkpoint_are_transparent():
    f = jax.jit(lambda x: jax.checkpoint(lambda y: jnp.sin(y)[::-1])(x) * 2.0)
    assert_pattern(f, jnp.linspace(0.1, 0.5, 4), expected=np.eye(4)[::-1])


def test_straight_through_estimator_follows_its_rule():
    @jax.custom_jvp
    def ste(x):
        return jnp.round(x)

    ste.defjvp(lambda p, t: (ste(p[0]), t[0]))
    assert_pattern(lambda x: ste(x[::-1]), jnp.linspace(0.1, 0.9, 3), expected=np.eye(3)[::-1])


def test_custom_vjp_follows_its_backward_rule():
    @jax.custom_vjp
    def g(x):
        return jnp.round(x)

    g.defvjp(lambda x: (jnp.round(x), None), lambda _, ct: (jnp.cumsum(ct),))
    expected = np.triu(np.ones((3, 3)))
    np.testing.assert_array_equal(jacobian_sparsity(g, jnp.ones(3)).todense(), expected)
    np.testing.assert_array_equal(np.asarray(jax.jacrev(g)(jnp.ones(3))) != 0, expected)


def test_rule_that_calls_its_own_function_terminates():
    # optimistix's inexact_asarray has this shape: the rule calls the function on t
    @jax.custom_jvp
    def ident(x):
        return x

    ident.defjvp(lambda p, t: (ident(p[0]), ident(t[0])))
    assert_pattern(lambda x: ident(x[::-1]) ** 2, jnp.linspace(0.1, 0.9, 3),
                   expected=np.eye(3)[::-1])
    hessian = hessian_sparsity(lambda x: jnp.sum(ident(x[1:] * x[:-1]) ** 2), jnp.ones(4))
    np.testing.assert_array_equal(hessian.todense(), np.eye(4) + np.eye(4, k=1) + np.eye(4, k=-1))


def test_nn_functions_with_custom_rules():
    for fn in [jax.nn.relu, jax.nn.silu, jax.nn.softplus, jnp.logaddexp.reduce]:
        assert_sound(lambda x, fn=fn: jnp.atleast_1d(fn(x)), jnp.linspace(-0.5, 0.5, 4))


def test_custom_jvp_with_integer_results_before_float_ones():
    """The rule's tangents come one per result (float0 for integers): each float result
    gets its own (diffrax's BacksolveAdjoint returns counters before its states)."""
    @jax.custom_jvp
    def g(x):
        return jnp.int32(3), jnp.cumsum(x), x.size

    @g.defjvp
    def g_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        zero = np.zeros((), jax.dtypes.float0)
        return g(x), (zero, jnp.cumsum(t)[::-1], zero)

    x = jnp.linspace(0.1, 0.9, 4)
    # the primal's cumsum, and the rule's reversed one: row i reads x[:max(i, 3 - i) + 1]
    i, j = np.indices((4, 4))
    detected = jacobian_sparsity(lambda x: g(x)[1], x).todense().astype(bool)
    np.testing.assert_array_equal(detected, j <= np.maximum(i, 3 - i))
