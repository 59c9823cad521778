"""`jacobian_sparsity`: arguments, pytrees, layout and errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from detection_helpers import assert_sound

from asdex.detection import jacobian_sparsity


def test_argnums_orders_columns():
    def f(x, y):
        return x * y[0]

    p01 = jacobian_sparsity(f, jnp.ones(2), jnp.ones(3), argnums=(0, 1)).todense()
    p10 = jacobian_sparsity(f, jnp.ones(2), jnp.ones(3), argnums=(1, 0)).todense()
    np.testing.assert_array_equal(p01, [[1, 0, 1, 0, 0], [0, 1, 1, 0, 0]])
    np.testing.assert_array_equal(p10, [[1, 0, 0, 1, 0], [1, 0, 0, 0, 1]])


def test_pattern_records_layout():
    args = ({"b": jnp.ones((2, 2)), "a": jnp.ones(3)}, jnp.ones(4))
    p = jacobian_sparsity(lambda d, z: d["a"].sum() * z, *args, argnums=(1, 0))
    assert p.shape == (4, 4 + 3 + 4)
    assert p.argnums == (1, 0)
    assert p.leaf_shapes == ((4,), (3,), (2, 2))
    assert len(p.input_avals) == 2


def test_negative_argnums_and_int_argnums():
    p = jacobian_sparsity(lambda x, y: x + y, jnp.ones(2), jnp.ones(2), argnums=-1)
    assert p.argnums == 1
    np.testing.assert_array_equal(p.todense(), np.eye(2))


def test_pytree_inputs_and_outputs():
    def f(params, x):
        return {"out": jnp.tanh(params["w"] @ x), "reg": jnp.sum(params["w"] ** 2)}

    params = {"w": jnp.linspace(0.1, 0.6, 6).reshape(2, 3)}
    assert_sound(f, params, jnp.ones(3), argnums=(0, 1), exact=True)


def test_has_aux_ignores_aux():
    def f(x):
        return x[::-1], {"aux": jnp.sin(x)}

    p = jacobian_sparsity(f, jnp.ones(3), has_aux=True)
    np.testing.assert_array_equal(p.todense(), np.eye(3)[::-1])


def test_scalar_and_python_number_inputs():
    p = jacobian_sparsity(lambda x, y: x * y, 2.0, jnp.ones(3), argnums=(0, 1))
    np.testing.assert_array_equal(p.todense(), [[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 1]])


def test_non_differentiated_non_array_arguments_are_closed_over():
    def f(x, mode):
        return x * 2 if mode == "double" else x

    p = jacobian_sparsity(f, jnp.ones(2), "double")
    np.testing.assert_array_equal(p.todense(), np.eye(2))


def test_constant_output_has_no_nonzeros():
    p = jacobian_sparsity(lambda x: jnp.zeros(3), jnp.ones(2))
    assert p.shape == (3, 2) and p.nnz == 0


def test_integer_inputs_have_zero_derivative():
    p = jacobian_sparsity(lambda x: x * 2, jnp.arange(3))
    assert p.nnz == 0


@pytest.mark.parametrize(
    ("argnums", "error", "message"),
    [(2, ValueError, "out of range"), ((0, 0), ValueError, "twice"),
     ((), ValueError, "at least one"), ("0", TypeError, "ints")],
)
def test_bad_argnums(argnums, error, message):
    with pytest.raises(error, match=message):
        jacobian_sparsity(lambda x, y: x + y, jnp.ones(2), jnp.ones(2), argnums=argnums)


def test_non_array_leaf_in_differentiated_argument():
    with pytest.raises(TypeError, match="Positional argument 0"):
        jacobian_sparsity(lambda d: d["x"], {"x": jnp.ones(2), "name": "oops"})


def test_non_array_output():
    with pytest.raises(TypeError):
        jacobian_sparsity(lambda x: "not an array", jnp.ones(2))


def test_has_aux_needs_a_pair():
    with pytest.raises(TypeError, match="pair"):
        jacobian_sparsity(lambda x: x, jnp.ones(2), has_aux=True)


def test_missing_sample_arguments():
    with pytest.raises(ValueError, match="sample arguments"):
        jacobian_sparsity(lambda: jnp.ones(2))


def test_unknown_primitive_names_itself_and_the_remedy():
    from jax.extend.core import Primitive

    prim = Primitive("my_mystery_op")
    prim.def_impl(lambda x: x)
    prim.def_abstract_eval(lambda x: x)
    with pytest.raises(NotImplementedError, match=r"my_mystery_op.*register_rule"):
        jacobian_sparsity(lambda x: prim.bind(x), jnp.ones(2))


def test_user_registered_rule():
    from jax.extend.core import Primitive

    from asdex.detection import Broadcast, Output, register_rule

    prim = Primitive("my_reverse_op")
    prim.def_impl(lambda x: x[::-1])
    prim.def_abstract_eval(lambda x: x)

    def rule(eqn):
        size = eqn.operands[0].size
        return [Output(maps=((0, Broadcast(np.arange(size)[::-1])),))]

    register_rule(prim, rule)
    p = jacobian_sparsity(lambda x: prim.bind(x) * 2.0, jnp.ones(3))
    np.testing.assert_array_equal(p.todense(), np.eye(3)[::-1])


def test_computed_indices_stay_exact():
    n = 6

    def f(x):
        return x[(jnp.arange(n) + 1) % n] - x

    expected = np.roll(np.eye(n), 1, axis=1) + np.eye(n)
    np.testing.assert_array_equal(jacobian_sparsity(f, jnp.ones(n)).todense(), expected)


def test_detection_inside_jit_traced_caller():
    @jax.jit
    def g(x):
        p = jacobian_sparsity(lambda z: z[::-1] * 2, jnp.ones(3))
        return x * p.nnz

    assert float(g(1.0)) == 3.0
