"""Global Jacobian sparsity detection."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from asdex._pattern import SparsityPattern
from asdex.detection._interpreter import propagate
from asdex.detection._trace import trace


def jacobian_sparsity(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
) -> SparsityPattern:
    """Detect the global sparsity pattern of the Jacobian of `f`.

    The pattern is read off the jaxpr of `f` alone, without evaluating any
    derivative, and holds for every input of the sample arguments' shapes and dtypes.

    Args:
        f: Function whose Jacobian pattern is detected. It may take and return pytrees.
        *args: Sample arguments of `f`. Only their structure, shapes and dtypes are used.
        argnums: Positional argument(s) to differentiate with respect to. Columns are
            ordered by `argnums`, then by leaf in pytree order.
        has_aux: Whether `f` returns `(output, aux)`; only `output` is analysed.

    Returns:
        A `SparsityPattern` of shape `(m, n)`: `m` is the total size of the output
        leaves, `n` that of the differentiated input leaves.

    Examples:
        >>> import jax.numpy as jnp
        >>> import asdex
        >>> p = asdex.jacobian_sparsity(lambda x: x[1:] * x[:-1], jnp.ones(4))
        >>> p.todense()
        array([[1, 1, 0, 0],
               [0, 1, 1, 0],
               [0, 0, 1, 1]], dtype=int8)
    """
    traced = trace(f, args, argnums, has_aux)
    jaxpr = traced.closed_jaxpr
    outputs = propagate(jaxpr.jaxpr, jaxpr.consts, traced.input_states(), traced.n)
    patterns = [s.pattern for s in outputs]
    m = sum(p.shape[0] for p in patterns)
    stacked = sp.csr_array(sp.vstack(patterns, format="csr")) if patterns else None
    if stacked is None or stacked.nnz == 0:
        rows = cols = np.zeros(0, np.int32)
    else:
        stacked.sum_duplicates()
        rows = np.repeat(np.arange(m, dtype=np.int32), np.diff(stacked.indptr))
        cols = stacked.indices
    return SparsityPattern(
        rows, cols, (m, traced.n), input_avals=traced.input_avals, argnums=traced.argnums
    )
