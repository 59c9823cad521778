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


def test_jitted_helper_called_in_a_loop_on_constants_and_inputs():
    # the same inner jaxpr (and its literals) is walked once per call: cached literal
    # states and dead-code passes must not carry one call's values into the next
    @jax.jit
    def piece(t, x):
        return jnp.where(t > 0.5, x * (t - 0.5), 0.0 * x) + jnp.where(t < -0.5, -x, 0.0)

    def f(x):
        ts = np.linspace(-1.0, 1.0, 9)
        return jnp.stack([piece(ts[i], x[i % 3]) for i in range(9)])

    x = jnp.linspace(0.1, 0.9, 3)
    expected = np.asarray(jax.jacfwd(f)(x)) != 0
    assert expected.any() and not expected.all()
    assert_pattern(f, x, expected=expected)
    np.testing.assert_array_equal(jacobian_sparsity(f, x).todense(), expected)


def test_hessian_of_a_helper_called_on_constants():
    @jax.jit
    def weight(t):
        return jnp.where(t > 0.0, t * t, 0.0)

    def f(x):
        return sum(weight(float(t)) * x[i] * x[(i + 1) % 4]
                   for i, t in enumerate((-1.0, 0.5, -0.5, 2.0)))

    expected = np.asarray(jax.hessian(f)(jnp.linspace(0.1, 0.9, 4))) != 0
    assert expected.any()
    np.testing.assert_array_equal(hessian_sparsity(f, jnp.ones(4)).todense(), expected)


def test_constant_outputs_do_not_alias_between_detections():
    first = jacobian_sparsity(lambda x: jnp.zeros(3) * 2.0, jnp.ones(3))
    second = jacobian_sparsity(lambda x: x[::-1] * 2.0, jnp.ones(3))
    again = jacobian_sparsity(lambda x: jnp.zeros(3) * 2.0, jnp.ones(3))
    np.testing.assert_array_equal(first.todense(), np.zeros((3, 3)))
    np.testing.assert_array_equal(again.todense(), np.zeros((3, 3)))
    np.testing.assert_array_equal(second.todense(), np.eye(3)[::-1])



def test_detection_keeps_no_jaxpr_afterwards():
    from asdex.detection import _interpreter

    helper = jax.jit(lambda v: v * jnp.arange(1.0, 4.0))

    def f(x):
        return helper(helper(x)) + 1.0

    np.testing.assert_array_equal(jacobian_sparsity(f, jnp.ones(3)).todense(), np.eye(3))
    np.testing.assert_array_equal(hessian_sparsity(lambda x: jnp.sum(f(x) ** 2), jnp.ones(3))
                                  .todense(), np.eye(3))
    # The walk caches hold jaxprs (and, through them, inner closed jaxprs' constants).
    assert not _interpreter._LIVE and not _interpreter._LITERALS
