"""Random-parameter checks of detection rules against numeric JAX derivatives.

A check takes a function `f(x, *extras)` of one differentiated array `x` and optional
non-differentiated arrays (indices whose values detection does not see), and compares

* `asdex.jacobian_sparsity(f, ...)` with the nonzero pattern of `jax.jacfwd(f)`, and
* `asdex.hessian_sparsity(g, ...)` with that of `jax.hessian(g)`, where `g` sums a
  nonlinear function of every float output of `f`,

at several random points (and random extras): the detected patterns must contain the
numeric ones, and equal them when the program has no cancellation (`exact`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import asdex

DEFAULT_EXAMPLES = 30
"""Hypothesis examples per rule family in the default suite."""
SLOW_EXAMPLES = 300
"""Hypothesis examples per rule family in the slow suite (`pytest -m slow`)."""

FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
"""XLA options for the numeric references: they run once per example, so compile time
is what counts."""

PROFILES = [
    pytest.param(DEFAULT_EXAMPLES, id="default"),
    pytest.param(SLOW_EXAMPLES, id="slow", marks=pytest.mark.slow),
]
"""Parametrize a family's test with `examples` over both profiles."""


def run_property(examples: int, check: Callable[[st.DataObject], None]) -> None:
    """Run `check(data)` on `examples` hypothesis examples."""
    prop = settings(
        max_examples=examples, deadline=None, derandomize=False, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )(given(st.data())(check))
    prop()


def shapes(min_rank: int = 0, max_rank: int = 3, min_side: int = 0, max_side: int = 4):
    """Array shapes with small sides (0 included by default)."""
    return st.lists(st.integers(min_side, max_side), min_size=min_rank, max_size=max_rank).map(
        tuple
    )


def float_leaves(tree) -> list:
    """The leaves of `tree` with a floating-point dtype."""
    return [leaf for leaf in jax.tree_util.tree_leaves(tree)
            if jnp.issubdtype(jnp.result_type(leaf), jnp.inexact)]


def flat_output(f: Callable) -> Callable:
    """`f` with its float outputs raveled and concatenated into one vector."""

    def flat(*args):
        leaves = float_leaves(f(*args))
        if not leaves:
            return jnp.zeros(0)
        return jnp.concatenate([jnp.ravel(leaf) for leaf in leaves])

    return flat


def curved(f: Callable) -> Callable:
    """A scalar whose Hessian couples exactly what the outputs of `f` do."""

    def g(*args):
        y = flat_output(f)(*args)
        # a NumPy constant: detection need not evaluate (compile) its construction
        return jnp.sum(jnp.sin(y + np.linspace(0.0, 1.0, y.size, dtype=np.float32)))

    return g


def numeric_patterns(
    f: Callable, points: np.ndarray, extras: Sequence[Sequence[np.ndarray]], hessian: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Union over points of the nonzero patterns of the Jacobian (and Hessian)."""
    flat = flat_output(f)
    g = curved(f)

    def at(x, *more):
        # Column by column with `lax.map`, not `jax.jacfwd`: JAX cannot batch the JVP of
        # some primitives (e.g. `reduce_window` with a custom reducer).
        basis = jnp.eye(x.size, dtype=x.dtype).reshape(x.size, *x.shape)
        columns = jax.lax.map(lambda v: jax.jvp(lambda y: flat(y, *more), (x,), (v,))[1],
                              basis)
        jac = columns.reshape(x.size, jax.eval_shape(flat, x, *more).size).T
        hes = jax.hessian(g)(x, *more).reshape(x.size, x.size) if hessian else None
        return jac, hes

    arguments = [(p, *more) for p, *more in zip(points, *extras, strict=True)]
    compiled = jax.jit(at).lower(*arguments[0]).compile(FAST_COMPILE)
    jac, hes = zip(*(compiled(*a) for a in arguments), strict=True)

    def union(values):
        a = np.stack([np.asarray(v) for v in values])
        return ((a != 0) & np.isfinite(a)).any(axis=0)

    return union(jac), (union(hes) if hessian else None)


def check_rule(
    data: st.DataObject,
    f: Callable,
    x: np.ndarray,
    extras: Callable[[np.random.Generator], tuple] | None = None,
    *,
    exact: bool = True,
    hessian: bool = True,
    hessian_exact: bool | None = None,
    num_points: int = 3,
) -> None:
    """Compare detected and numeric patterns of `f` at `x`-shaped random points.

    The Hessian is checked on a drawn third of the examples (its numeric reference
    costs most of an example's time).

    Args:
        data: The hypothesis draw source (draws the seed and whether to check Hessians).
        f: The function, `f(x, *extras)`.
        x: The sample point (its shape and dtype are what detection sees).
        extras: Draws the non-differentiated arguments at random.
        exact: Whether the Jacobian patterns must be equal (not just contained).
        hessian: Whether the Hessian of a curved sum of the outputs may be checked.
        hessian_exact: Whether the Hessian patterns must be equal (default: `exact`).
        num_points: Number of random points.
    """
    seed = data.draw(st.integers(0, 2**16), label="seed")
    hessian = hessian and data.draw(st.integers(0, 2), label="check hessian unless") == 0
    rng = np.random.default_rng(seed)
    x = np.asarray(x, np.float32)
    draws = [extras(rng) if extras is not None else () for _ in range(num_points)]
    columns = [list(column) for column in zip(*draws, strict=True)]
    points = rng.uniform(0.5, 1.5, (num_points, *x.shape)) * rng.choice([-1, 1], x.shape)
    points = points.astype(np.float32)
    sample = (jnp.asarray(x), *draws[0])
    detected = asdex.jacobian_sparsity(flat_output(f), *sample).todense().astype(bool)
    jac, hes = numeric_patterns(f, points, columns, hessian)
    _compare("Jacobian", detected, jac, exact)
    if hessian:
        detected_h = asdex.hessian_sparsity(curved(f), *sample).todense().astype(bool)
        _compare("Hessian", detected_h, hes, exact if hessian_exact is None else hessian_exact)


def _compare(what: str, detected: np.ndarray, numeric: np.ndarray, exact: bool) -> None:
    assert detected.shape == numeric.shape, (what, detected.shape, numeric.shape)
    missed = numeric & ~detected
    assert not missed.any(), f"{what}: missed nonzeros at {np.argwhere(missed)[:8].tolist()}"
    if exact:
        extra = detected & ~numeric
        assert not extra.any(), f"{what}: spurious nonzeros at {np.argwhere(extra)[:8].tolist()}"
