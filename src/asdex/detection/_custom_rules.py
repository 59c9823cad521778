"""Jaxprs of custom derivative rules, shared by the Jacobian and Hessian engines.

A `custom_jvp_call` or `custom_vjp_call` is followed through its own rule: its JVP
(tangents in, tangents out) or its backward pass (cotangents in, cotangents out), traced
here into jaxprs. A rule may call its own function again (optimistix's
`inexact_asarray` does, on its tangent): while a rule is being followed, a call of the
same function inside it is analysed through its primal only, which is what it computes
there, so the recursion ends.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any

import jax

from asdex.detection import _jax

_FOLLOWED: contextvars.ContextVar[frozenset[Any]] = contextvars.ContextVar(
    "asdex_followed_custom_rules", default=frozenset()
)


@contextlib.contextmanager
def following(eqn: Any) -> Iterator[bool]:
    """Mark the rule of `eqn` as being followed; yields False if it already is."""
    key = _jax.custom_rule_key(eqn)
    followed = _FOLLOWED.get()
    if key in followed:
        yield False
        return
    token = _FOLLOWED.set(followed | {key})
    try:
        yield True
    finally:
        _FOLLOWED.reset(token)


def float_positions(eqn: Any) -> list[int]:
    """Positions of the float operands of `eqn`."""
    return [k for k, v in enumerate(eqn.invars) if _jax.is_float(v.aval.dtype)]


def float_results(eqn: Any) -> list[int]:
    """Positions of the float results of `eqn`."""
    return [k for k, v in enumerate(eqn.outvars) if _jax.is_float(v.aval.dtype)]


def _avals(variables: Sequence[Any]) -> list[jax.ShapeDtypeStruct]:
    return [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for v in variables]


def _rebind(eqn: Any, positions: Sequence[int], operands: Sequence[Any]) -> Any:
    """The primitive as a function of the operands at `positions`, the others fixed."""

    def inner(*varying: Any) -> Any:
        args = list(operands)
        for k, value in zip(positions, varying, strict=True):
            args[k] = value
        return _jax.bind(eqn.primitive, eqn.params, args)

    return inner


def jvp_jaxpr(eqn: Any, positions: Sequence[int]) -> Any:
    """Closed jaxpr `(*operands, *tangents[positions]) -> tangents of every result`."""

    def jvp(operands: list[Any], tangents: list[Any]) -> Any:
        inner = _rebind(eqn, positions, operands)
        return jax.jvp(inner, [operands[k] for k in positions], tangents)[1]

    avals = _avals(eqn.invars)
    return jax.make_jaxpr(jvp)(avals, [avals[k] for k in positions])


def vjp_jaxpr(eqn: Any, positions: Sequence[int], results: Sequence[int]) -> Any:
    """Closed jaxpr `(*operands, *cotangents[results]) -> cotangents[positions]`."""

    def vjp(operands: list[Any], cotangents: list[Any]) -> Any:
        inner = _rebind(eqn, positions, operands)
        outputs, pullback = jax.vjp(inner, *[operands[k] for k in positions])
        full = [jax.numpy.zeros_like(o) for o in outputs]
        for k, c in zip(results, cotangents, strict=True):
            full[k] = c
        return pullback(full)

    out_avals = _avals(eqn.outvars)
    return jax.make_jaxpr(vjp)(_avals(eqn.invars), [out_avals[k] for k in results])
