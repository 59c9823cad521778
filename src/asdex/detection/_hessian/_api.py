"""Global Hessian sparsity detection by second-order propagation."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from asdex._pattern import SparsityPattern
from asdex.detection._hessian._sweep import Sweep
from asdex.detection._hessian._tape import Tape
from asdex.detection._interpreter import OBSERVER, propagate
from asdex.detection._trace import trace


def hessian_sparsity(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
) -> SparsityPattern:
    """Detect the global sparsity pattern of the Hessian of a scalar function `f`.

    One forward pass propagates first-order patterns and records each equation; a
    reverse sweep then keeps the elements that reach the output along nonzero
    derivatives and adds, for each of them, the input pairs its primitive's second
    derivative couples. This is exact where the Jacobian pattern of `jax.grad(f)` is
    not: the Hessian of `sum(r(x)**2)` has the pattern of `JᵀJ`, not a dense one. The
    pattern holds for every input of the sample arguments' shapes and dtypes.

    Args:
        f: Function returning a scalar (or an array of shape `(1,)`, `(1, 1)`, ...).
            It may take pytrees.
        *args: Sample arguments of `f`. Only their structure, shapes and dtypes are used.
        argnums: Positional argument(s) to differentiate with respect to. Rows and
            columns are ordered by `argnums`, then by leaf in pytree order.
        has_aux: Whether `f` returns `(output, aux)`; only `output` is analysed.

    Returns:
        A symmetric `SparsityPattern` of shape `(n, n)`, `n` the total size of the
        differentiated input leaves.

    Raises:
        ValueError: If the output of `f` is not a single scalar.

    Examples:
        >>> import jax.numpy as jnp
        >>> import asdex
        >>> f = lambda x: jnp.sum((x[1:] - x[:-1]) ** 2)
        >>> asdex.hessian_sparsity(f, jnp.ones(3)).todense()
        array([[1, 1, 0],
               [1, 1, 1],
               [0, 1, 1]], dtype=int8)
    """
    traced = trace(f, args, argnums, has_aux)
    if len(traced.out_avals) != 1 or math.prod(traced.out_avals[0].shape) != 1:
        shapes = ", ".join(str(tuple(a.shape)) for a in traced.out_avals) or "nothing"
        raise ValueError(
            "hessian_sparsity needs a scalar-valued function (an output of shape (1,) or "
            f"(1, 1) also works), but `f` returned {len(traced.out_avals)} array(s) of "
            f"shape {shapes}."
        )
    jaxpr = traced.closed_jaxpr
    tape = Tape()
    token = OBSERVER.set(tape)
    try:
        (output,) = propagate(jaxpr.jaxpr, jaxpr.consts, traced.input_states(), traced.n)
    finally:
        OBSERVER.reset(token)
    rows, cols = Sweep(traced.n).run(tape.records, output).coo()
    return SparsityPattern(rows, cols, (traced.n, traced.n), input_avals=traced.input_avals,
                           argnums=traced.argnums)
