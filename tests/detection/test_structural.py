import jax
import jax.numpy as jnp
import numpy as np
import pytest
from detection_helpers import assert_pattern, assert_sound
from jax import lax

MOVES = [
    lambda x: x.reshape(3, 4).T,
    lambda x: jnp.transpose(x.reshape(2, 3, 2), (2, 0, 1)),
    lambda x: x[2:9:3],
    lambda x: x[::-1],
    lambda x: jnp.flip(x.reshape(3, 4), axis=1),
    lambda x: jnp.pad(x, (2, 1)),
    lambda x: jnp.pad(x.reshape(3, 4), ((1, 0), (0, 2)), constant_values=1.0),
    lambda x: lax.pad(x, 0.0, [(-2, 1, 1)]),
    lambda x: jnp.concatenate([x[:3], x[5:], x[:2]]),
    lambda x: jnp.stack([x[:4], x[4:8]], axis=1),
    lambda x: jnp.tile(x[:3], 3),
    lambda x: jnp.broadcast_to(x[:4], (3, 4)),
    lambda x: jnp.expand_dims(x, 0)[:, 3:5],
    lambda x: jnp.squeeze(x.reshape(1, 12, 1)),
    lambda x: jnp.roll(x, 3),
    lambda x: jnp.split(x, 3)[1],
    lambda x: jnp.unstack(x.reshape(3, 4))[2],
    lambda x: jnp.array_split(x, [5])[1] * 2.0,
    lambda x: jnp.repeat(x[:3], 2),
    lambda x: jnp.diagonal(x[:9].reshape(3, 3)),
    lambda x: jnp.triu(x[:9].reshape(3, 3)),
    lambda x: jnp.rot90(x.reshape(3, 4)),
    lambda x: jnp.copy(x),
    lambda x: jnp.atleast_2d(x)[0, ::2],
]


@pytest.mark.parametrize("fn", MOVES)
def test_data_movement_is_exact(fn):
    assert_sound(fn, jnp.linspace(0.1, 1.2, 12), exact=True)


def test_roll_is_a_permutation():
    expected = np.roll(np.eye(5), 1, axis=0)
    assert_pattern(lambda x: jnp.roll(x, 1), jnp.ones(5), expected=expected)


def test_broadcast_in_dim_column():
    def f(x):
        return lax.broadcast_in_dim(x, (2, 3), (0,))

    expected = np.repeat(np.eye(2), 3, axis=0)
    assert_pattern(f, jnp.ones(2), expected=expected)


def test_padding_value_dependency():
    def f(x):
        return lax.pad(x[:2], x[2], [(1, 1, 1)])

    expected = np.array([[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1]])
    assert_pattern(f, jnp.ones(3), expected=expected)


def test_multiple_inputs_and_pytree_outputs():
    def f(x, y):
        return {"a": x[::-1] * y[0], "b": jnp.concatenate([y, x])}

    assert_sound(f, jnp.ones(3), jnp.ones(2), argnums=(0, 1), exact=True)


def test_vmapped_movement():
    def f(x):
        return jax.vmap(lambda r: jnp.roll(r, 1)[::-1])(x.reshape(3, 4)).ravel()

    assert_sound(f, jnp.linspace(0.1, 1.2, 12), exact=True)
