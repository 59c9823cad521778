"""jax.random: keys and bits have zero derivative; samples depend on their parameters."""

from __future__ import annotations

import jax
import jax.extend.random as xrandom
import jax.numpy as jnp
import numpy as np
import pytest
from detection_helpers import assert_pattern, assert_sound
from jax import lax

from asdex.detection import jacobian_sparsity

N = 5
X = jnp.linspace(0.5, 1.5, N)
KEY = jax.random.key(0)
EYE = np.eye(N, dtype=bool)

# Samplers of a parameter vector `x`: each must be detectable, and sound.
SAMPLERS = {
    "normal": lambda k, x: jax.random.normal(k, (N,)) * x,
    "uniform": lambda k, x: jax.random.uniform(k, (N,), minval=x, maxval=x + 1.0),
    "bernoulli": lambda k, x: jax.random.bernoulli(k, x / 2.0) * x,
    "categorical": lambda k, x: jax.random.categorical(k, x) * x,
    "gamma": lambda k, x: jax.random.gamma(k, x),
    "loggamma": lambda k, x: jax.random.loggamma(k, x),
    "beta": lambda k, x: jax.random.beta(k, x, x + 1.0),
    "dirichlet": lambda k, x: jax.random.dirichlet(k, x),
    "poisson": lambda k, x: jax.random.poisson(k, x) * x,
    "permutation": lambda k, x: jax.random.permutation(k, x),
    "choice": lambda k, x: jax.random.choice(k, x, (3,)),
    "choice_with_p": lambda k, x: jax.random.choice(k, x, (3,), p=x / x.sum()),
    "choice_without_replacement": lambda k, x: jax.random.choice(k, x, (3,), replace=False),
    "truncated_normal": lambda k, x: jax.random.truncated_normal(k, -x, x),
    "multivariate_normal": lambda k, x: jax.random.multivariate_normal(
        k, x, jnp.diag(x + 1.0)),
    "exponential": lambda k, x: jax.random.exponential(k, (N,)) * x,
    "laplace": lambda k, x: jax.random.laplace(k, (N,)) + x,
    "cauchy": lambda k, x: jax.random.cauchy(k, (N,)) * x,
    "logistic": lambda k, x: jax.random.logistic(k, (N,)) * x,
    "gumbel": lambda k, x: jax.random.gumbel(k, (N,)) * x,
    "t": lambda k, x: jax.random.t(k, x),
    "chisquare": lambda k, x: jax.random.chisquare(k, x),
    "f": lambda k, x: jax.random.f(k, x, x + 1.0),
    "geometric": lambda k, x: jax.random.geometric(k, x / 2.0) * x,
    "binomial": lambda k, x: jax.random.binomial(k, 5.0, x / 2.0) * x,
    "rademacher": lambda k, x: jax.random.rademacher(k, (N,)) * x,
    "maxwell": lambda k, x: jax.random.maxwell(k, (N,)) * x,
    "weibull_min": lambda k, x: jax.random.weibull_min(k, x, x),
    "pareto": lambda k, x: jax.random.pareto(k, x),
    "rayleigh": lambda k, x: jax.random.rayleigh(k, x),
    "wald": lambda k, x: jax.random.wald(k, x),
    "triangular": lambda k, x: jax.random.triangular(k, x - 1.0, x, x + 1.0),
    "lognormal": lambda k, x: jax.random.lognormal(k, x),
    "orthogonal": lambda k, x: jax.random.orthogonal(k, 3) @ x[:3],
    "ball": lambda k, x: jax.random.ball(k, 3) * x[0],
    "generalized_normal": lambda k, x: jax.random.generalized_normal(k, 2.0, (N,)) * x,
    "double_sided_maxwell": lambda k, x: jax.random.double_sided_maxwell(k, x, x),
    "multinomial": lambda k, x: jax.random.multinomial(k, 5.0, x / x.sum()) * x,
    "split_and_fold_in": lambda k, x: jax.random.normal(
        jax.random.fold_in(jax.random.split(k)[1], 3), (N,)) * x,
    "clone": lambda k, x: jax.random.normal(jax.random.clone(k), (N,)) * x,
    "wrap_unwrap": lambda k, x: jax.random.normal(
        jax.random.wrap_key_data(jax.random.key_data(k)), (N,)) * x,
    "randint_bits": lambda k, x: x * jax.random.randint(k, (N,), 0, 3)
    + jax.random.bits(k, (N,)).astype(x.dtype),
}

SLOW = {"gamma", "loggamma", "beta", "dirichlet", "t", "chisquare", "f", "ball",
        "generalized_normal", "multinomial", "binomial", "poisson"}
"""Samplers built on `random_gamma` or on rejection loops: slow to compile."""


def numeric_pattern(f, key):
    jacobian = jax.jit(jax.jacrev(f, argnums=1))(key, X)
    return np.asarray(jacobian).reshape(-1, N) != 0


@pytest.mark.parametrize("name", ["normal", "gamma", "permutation", "split_and_fold_in"])
def test_sampler_detection_is_the_same_for_typed_and_raw_keys(name):
    f = SAMPLERS[name]
    typed = jacobian_sparsity(f, KEY, X, argnums=1).todense()
    raw = jacobian_sparsity(f, jax.random.PRNGKey(0), X, argnums=1).todense()
    np.testing.assert_array_equal(typed, raw)


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name
    for name in sorted(SAMPLERS)
])
def test_sampler_detection_is_sound(name):
    f = SAMPLERS[name]
    detected = jacobian_sparsity(f, KEY, X, argnums=1).todense().astype(bool)
    numeric = numeric_pattern(f, KEY)
    assert not (numeric & ~detected).any(), np.argwhere(numeric & ~detected)


@pytest.mark.parametrize("name", ["normal", "exponential", "cauchy", "rademacher", "gamma",
                                  "loggamma", "lognormal", "rayleigh", "pareto", "wald",
                                  "chisquare", "split_and_fold_in", "clone", "wrap_unwrap"])
def test_elementwise_samplers_are_diagonal(name):
    detected = jacobian_sparsity(SAMPLERS[name], KEY, X, argnums=1).todense()
    np.testing.assert_array_equal(detected, EYE)


def test_dirichlet_couples_all_concentrations():
    detected = jacobian_sparsity(SAMPLERS["dirichlet"], KEY, X, argnums=1).todense()
    np.testing.assert_array_equal(detected, np.ones((N, N)))


@pytest.mark.slow
def test_gamma_depends_elementwise_on_its_shape_parameter():
    a = jnp.linspace(0.5, 3.0, 6).reshape(2, 3)
    assert_pattern(lambda a: jax.random.gamma(KEY, a), a, expected=np.eye(6, dtype=bool))


def test_keys_from_the_differentiated_input_carry_no_dependency():
    def f(x):
        seed = jnp.floor(x[0] * 100).astype(jnp.uint32)
        key = jax.random.key(seed)
        return jax.random.normal(key, (N,)) * x[1]

    expected = np.zeros((N, N), bool)
    expected[:, 1] = True
    assert_pattern(f, X, expected=expected)


def test_dropout_mask_is_a_subset_of_the_diagonal():
    def f(x):
        keep = jax.random.bernoulli(KEY, 0.5, (N,))
        return jnp.where(keep, x / 0.5, 0.0)

    detected = assert_sound(f, X)
    assert not (detected & ~EYE).any()


def test_threefry_and_iota_2x32_are_integer_valued():
    def f(x):
        bits = xrandom.threefry_2x32(jnp.zeros(2, jnp.uint32), jnp.arange(N, dtype=jnp.uint32))
        return x * bits.astype(x.dtype)

    assert_pattern(f, X, expected=EYE)


def test_rng_bit_generator():
    def f(x):
        _, bits = lax.rng_bit_generator(jnp.zeros(4, jnp.uint32), (N,))
        return x * bits.astype(x.dtype)

    assert_pattern(f, X, expected=EYE)


def test_rng_uniform_depends_on_both_bounds_and_is_never_known():
    def f(x):
        u = lax.rng_uniform(x[0], x[1], (3,))
        index = (lax.rng_uniform(0.0, 4.0, ()) + x[2] * 0.0).astype(jnp.int32)
        return jnp.concatenate([u, x[index][None]])

    detected = jacobian_sparsity(f, X).todense().astype(bool)
    expected = np.zeros((4, N), bool)
    expected[:3, :2] = True
    expected[3, :] = True  # the index is random: any element may be read
    np.testing.assert_array_equal(detected, expected)
