"""Termination and step outcomes shared by the Optimistix solvers."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array, PyTree, Scalar

from asdex_opt._lineax._finite import all_finite

__all__ = [
    "cauchy_termination",
    "check_finite_result",
    "step_outcome",
    "stop_when_done_or_failed",
]


def cauchy_termination(
    rtol: float,
    atol: float,
    norm: Callable[[PyTree], Scalar],
    y: Array,
    y_diff: Array,
    f: Array,
    f_diff: Array,
) -> Array:
    """Optimistix's termination test: small changes in both ``y`` and ``f``."""

    def converged(diff: Array, value: Array) -> Array:
        scale = atol + rtol * jnp.abs(value)
        if norm is optx.max_norm:  # the same test without a division per element
            return jnp.all(jnp.abs(diff) < scale)
        return norm(jnp.abs(diff) / scale) < 1

    return converged(y_diff, y) & converged(f_diff, f)


def check_finite_result(result: optx.RESULTS, *values: PyTree) -> optx.RESULTS:
    """``RESULTS.nonfinite`` if any of ``values`` holds a NaN or an infinity."""
    return optx.RESULTS.where(all_finite(*values), result, optx.RESULTS.nonfinite)


def step_outcome(
    search_result: optx.RESULTS, descent_result: optx.RESULTS, state: Any, aux: PyTree
) -> tuple[optx.RESULTS, PyTree]:
    """The result of a search step and the aux to report for its accepted point.

    A failed search wins over the descent's result; on the first step there is no earlier
    aux, so the fresh one is reported.
    """
    result = optx.RESULTS.where(
        search_result == optx.RESULTS.successful, descent_result, search_result
    )
    prev_aux = jax.tree.map(lambda a, b: jnp.where(state.first_step, a, b), aux, state.aux)
    return result, prev_aux


def stop_when_done_or_failed(state: Any) -> tuple[Array, optx.RESULTS]:
    """Stop on convergence (``state.terminate``) or as soon as a step has failed."""
    failed = state.result != optx.RESULTS.successful
    return state.terminate | failed, state.result
