"""The one place where detection touches JAX's jaxpr types.

Everything here goes through `jax.extend.core`; `tests/detection/test_contracts.py`
pins the layouts that the rules rely on, so that a JAX upgrade fails loudly.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.extend import core


def is_literal(atom: Any) -> bool:
    """Whether a jaxpr atom is a literal constant."""
    return isinstance(atom, core.Literal)


def is_dropvar(var: Any) -> bool:
    """Whether an equation result is discarded."""
    return isinstance(var, core.DropVar)


def is_numeric(dtype: Any) -> bool:
    """Whether `dtype` is a plain numeric or boolean dtype (not a key or token)."""
    try:
        return np.dtype(dtype).kind in "biufc"
    except TypeError:
        return False


def is_integer(dtype: Any) -> bool:
    """Whether `dtype` is an integer or boolean dtype."""
    try:
        return np.dtype(dtype).kind in "biu"
    except TypeError:
        return False


def is_float(dtype: Any) -> bool:
    """Whether `dtype` is a real or complex floating dtype."""
    try:
        return np.dtype(dtype).kind in "fc"
    except TypeError:
        return False


def shape_and_dtype(value: Any) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype of a constant (array, scalar or typed key)."""
    aval = jax.typeof(value) if hasattr(jax, "typeof") else core.get_aval(value)
    return tuple(aval.shape), aval.dtype


def as_numpy(value: Any) -> np.ndarray | None:
    """A NumPy copy of a constant, or `None` for values NumPy cannot hold (keys)."""
    _, dtype = shape_and_dtype(value)
    if not is_numeric(dtype):
        return None
    return np.asarray(value, dtype=dtype)  # a literal's Python scalar takes its jaxpr dtype


def closed_jaxpr_parts(closed: Any) -> tuple[Any, list[Any]]:
    """`(jaxpr, consts)` of a `ClosedJaxpr`, or of an open `Jaxpr` with no consts."""
    if isinstance(closed, core.ClosedJaxpr):
        return closed.jaxpr, list(closed.consts)
    return closed, []


def bind(primitive: Any, params: dict[str, Any], args: Any) -> Any:
    """Apply `primitive` with a jaxpr equation's `params` to `args`, as `eval_jaxpr` does."""
    bind_params = primitive.get_bind_params(params)
    if isinstance(bind_params, tuple):  # older JAX: (subfuns, params)
        subfuns, bind_params = bind_params
        return primitive.bind(*subfuns, *args, **bind_params)
    return primitive.bind(*args, **bind_params)


def custom_rule_key(eqn: Any) -> Any:
    """What identifies the user function behind a custom derivative call across traces."""
    closed = eqn.params.get("call_jaxpr")
    debug = getattr(getattr(closed, "jaxpr", None), "debug_info", None)
    source = getattr(debug, "func_src_info", None)
    return (eqn.primitive.name, source if source is not None else id(closed))
