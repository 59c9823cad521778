"""Real Equinox and Diffrax programs: detection succeeds and contains the numeric pattern."""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asdex.detection import jacobian_sparsity

KEY = jax.random.key(0)


def numeric_pattern(f, x, jacobian=jax.jacfwd, points=2):
    """Union over random points near `x` of the nonzeros of the dense Jacobian."""
    found = None
    for k in jax.random.split(jax.random.key(1), points):
        leaves, tree = jax.tree_util.tree_flatten(x)
        keys = jax.random.split(k, len(leaves))
        point = jax.tree_util.tree_unflatten(tree, [
            leaf + 0.1 * jax.random.normal(kk, leaf.shape) for kk, leaf in zip(keys, leaves,
                                                                                strict=True)])
        jac = jax.jit(jacobian(f))(point)
        rows = int(np.prod(jax.eval_shape(f, point).shape))
        dense = np.concatenate([np.asarray(b).reshape(rows, -1)
                                for b in jax.tree_util.tree_leaves(jac)], axis=1) != 0
        found = dense if found is None else found | dense
    return found


def check(f, x, jacobian=jax.jacfwd, exact=False):
    detected = jacobian_sparsity(f, x).todense().astype(bool)
    numeric = numeric_pattern(f, x, jacobian)
    missed = numeric & ~detected
    assert not missed.any(), f"missed {np.argwhere(missed)[:10].tolist()}"
    if exact:
        np.testing.assert_array_equal(detected, numeric)
    return detected


# --- Equinox modules --------------------------------------------------------------------


def test_mlp_input_jacobian():
    mlp = eqx.nn.MLP(4, 3, 8, 2, key=KEY)
    detected = check(mlp, jax.random.normal(KEY, (4,)))
    assert detected.all()


def test_mlp_parameter_jacobian_via_partition():
    mlp = eqx.nn.MLP(4, 3, 8, 2, key=KEY)
    params, static = eqx.partition(mlp, eqx.is_inexact_array)
    x = jax.random.normal(KEY, (4,))
    detected = check(lambda p: eqx.combine(p, static)(x), params)
    # the last layer's weights: output i depends on row i only
    last = params.layers[-1]
    offset = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)) - last.weight.size \
        - last.bias.size
    weights = detected[:, offset:offset + last.weight.size].reshape(3, 3, 8)
    for i in range(3):
        assert weights[i, i].all() and not np.delete(weights[i], i, axis=0).any()


def test_filter_jit_mlp():
    mlp = eqx.nn.MLP(3, 2, 4, 1, activation=jnp.tanh, key=KEY)
    check(eqx.filter_jit(mlp), jax.random.normal(KEY, (3,)), exact=True)


def test_conv2d_input_jacobian_is_exact():
    conv = eqx.nn.Conv2d(2, 3, 3, padding=1, key=KEY)
    check(conv, jax.random.normal(KEY, (2, 5, 5)), exact=True)


def test_cnn_input_jacobian():
    k1, k2 = jax.random.split(KEY)
    cnn = eqx.nn.Sequential([
        eqx.nn.Conv1d(1, 3, 3, padding=1, key=k1),
        eqx.nn.Lambda(jnp.tanh),
        eqx.nn.Conv1d(3, 2, 3, padding=1, key=k2),
        eqx.nn.MaxPool1d(2, 2),
    ])
    x = jax.random.normal(KEY, (1, 12))
    detected = check(cnn, x)
    assert detected.sum() < detected.size // 2  # local receptive fields


def test_conv1d_parameter_jacobian_is_exact():
    conv = eqx.nn.Conv1d(2, 3, 3, key=KEY)
    params, static = eqx.partition(conv, eqx.is_inexact_array)
    x = jax.random.normal(KEY, (2, 7))
    check(lambda p: eqx.combine(p, static)(x), params, exact=True)


def test_layernorm_and_dropout():
    norm = eqx.nn.LayerNorm(6)
    dropout = eqx.nn.Dropout(0.5)
    check(lambda x: dropout(norm(x), key=KEY), jax.random.normal(KEY, (6,)))


def test_gru_cell():
    cell = eqx.nn.GRUCell(4, 3, key=KEY)
    check(lambda x: cell(x[:4], x[4:]), jax.random.normal(KEY, (7,)), exact=True)


# --- Diffrax ----------------------------------------------------------------------------

N = 12


def heat(t, y, args):
    padded = jnp.pad(y, 1)
    return padded[:-2] - 2.0 * y + padded[2:]


def band(k):
    i, j = np.indices((N, N))
    return np.abs(i - j) <= k


def test_tsit5_step_on_the_heat_equation_is_exact():
    term = diffrax.ODETerm(heat)
    solver = diffrax.Tsit5()

    def step(y):
        state = solver.init(term, 0.0, 0.01, y, None)
        return solver.step(term, 0.0, 0.01, y, None, state, made_jump=False)[0]

    detected = check(step, jax.random.normal(KEY, (N,)), jax.jacrev, exact=True)
    np.testing.assert_array_equal(detected, band(6))  # six stages, one neighbour each


def test_diffeqsolve_euler_fixed_steps_is_exact():
    def solve(y):
        solution = diffrax.diffeqsolve(diffrax.ODETerm(heat), diffrax.Euler(), 0.0, 0.03, 0.01,
                                       y, max_steps=4, saveat=diffrax.SaveAt(t1=True))
        return solution.ys[-1]

    # the step count is known (constant times): three exact steps, not a fixed point
    detected = check(solve, jax.random.normal(KEY, (N,)), jax.jacrev, exact=True)
    np.testing.assert_array_equal(detected, band(3))


@pytest.mark.slow
def test_diffeqsolve_tsit5_fixed_steps():
    def solve(y):
        solution = diffrax.diffeqsolve(diffrax.ODETerm(heat), diffrax.Tsit5(), 0.0, 0.02, 0.01,
                                       y, max_steps=3, saveat=diffrax.SaveAt(t1=True))
        return solution.ys[-1]

    check(solve, jax.random.normal(KEY, (N,)), jax.jacrev)
