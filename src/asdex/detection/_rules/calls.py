"""Call primitives: the engine recurses into their jaxprs.

Custom derivative rules are followed: the pattern of a `custom_jvp_call` is the
union of the primal's and that of its JVP rule (tangents in, tangents out), and a
`custom_vjp_call` likewise uses its backward rule. A straight-through estimator,
whose derivative is not the primal's, is therefore never missed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import scipy.sparse as sp

from asdex.detection import _jax
from asdex.detection._interpreter import State, propagate, unknown_state
from asdex.detection._maps import Matrix, apply_map, empty_pattern, identity_pattern, union
from asdex.detection._registry import register_propagator
from asdex.detection._rule import Curvature


def _call(jaxpr_param: str):
    def propagator(eqn: Any, states: list[State], n: int) -> list[State]:
        jaxpr, consts = _jax.closed_jaxpr_parts(eqn.params[jaxpr_param])
        return propagate(jaxpr, consts, states, n)

    return propagator


def _rebind(eqn: Any, float_positions: Sequence[int], operands: Sequence[Any]):
    """The primitive as a function of its float operands, the others fixed."""

    def inner(*float_operands: Any) -> Any:
        args = list(operands)
        for k, value in zip(float_positions, float_operands, strict=True):
            args[k] = value
        return _jax.bind(eqn.primitive, eqn.params, args)

    return inner


def _float_positions(eqn: Any) -> list[int]:
    return [k for k, v in enumerate(eqn.invars) if _jax.is_float(v.aval.dtype)]


def _avals(eqn: Any) -> list[jax.ShapeDtypeStruct]:
    return [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for v in eqn.invars]


def _primal_states(states: Sequence[State], n: int) -> list[State]:
    """The operands' values without their patterns: primals feed coefficients only."""
    return [State(empty_pattern(s.size, n), s.operand) for s in states]


def _combine(primal: list[State], rule_patterns: Sequence[Any], n: int) -> list[State]:
    return [
        State(union([p.pattern, q], p.size, n), p.operand)
        for p, q in zip(primal, rule_patterns, strict=True)
    ]


def custom_jvp_propagator(eqn: Any, states: list[State], n: int) -> list[State]:
    """Union of the primal's pattern and that of the custom JVP rule."""
    primal = _call("call_jaxpr")(eqn, states, n)
    positions = [k for k in _float_positions(eqn) if states[k].pattern.nnz]
    if not positions:
        return primal

    def jvp(operands: list[Any], tangents: list[Any]) -> Any:
        inner = _rebind(eqn, positions, operands)
        return jax.jvp(inner, [operands[k] for k in positions], tangents)[1]

    avals = _avals(eqn)
    closed = jax.make_jaxpr(jvp)(avals, [avals[k] for k in positions])
    inputs = _primal_states(states, n) + [states[k] for k in positions]
    tangents = propagate(closed.jaxpr, closed.consts, inputs, n)
    out_float = [_jax.is_float(v.aval.dtype) for v in eqn.outvars]
    patterns = iter(t.pattern for t in tangents)
    rule_patterns = [
        next(patterns) if is_float else empty_pattern(p.size, n)
        for p, is_float in zip(primal, out_float, strict=True)
    ]
    return _combine(primal, rule_patterns, n)


def custom_vjp_propagator(eqn: Any, states: list[State], n: int) -> list[State]:
    """Union of the primal's pattern and that of the custom backward rule."""
    primal = _call("call_jaxpr")(eqn, states, n)
    # operands with empty patterns add nothing; Equinox asserts they are not perturbed
    positions = [k for k in _float_positions(eqn) if states[k].pattern.nnz]
    out_positions = [k for k, v in enumerate(eqn.outvars) if _jax.is_float(v.aval.dtype)]
    if not out_positions or not positions:
        return primal

    def vjp(operands: list[Any], cotangents: list[Any]) -> Any:
        inner = _rebind(eqn, positions, operands)
        outputs, pullback = jax.vjp(inner, *[operands[k] for k in positions])
        full = [jax.numpy.zeros_like(o) for o in outputs]
        for k, c in zip(out_positions, cotangents, strict=True):
            full[k] = c
        return pullback(full)

    avals = _avals(eqn)
    out_avals = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for v in eqn.outvars]
    closed = jax.make_jaxpr(vjp)(avals, [out_avals[k] for k in out_positions])
    out_sizes = [math.prod(out_avals[k].shape) for k in out_positions]
    m = sum(out_sizes)
    offsets = np.concatenate([[0], np.cumsum(out_sizes)])
    inputs = [State(empty_pattern(s.size, m), s.operand) for s in states] + [
        unknown_state(out_avals[k], identity_pattern(int(offsets[i]), out_sizes[i], m))
        for i, k in enumerate(out_positions)
    ]
    cotangents = propagate(closed.jaxpr, closed.consts, inputs, m)
    # transposed[j, i]: output element i depends on float-operand element j
    transposed = sp.vstack([c.pattern for c in cotangents], format="csr")
    dependency = sp.csr_array(transposed.T.tocsr())
    stacked_inputs = sp.csr_array(sp.vstack([states[k].pattern for k in positions], format="csr"))
    pattern = apply_map(Matrix(dependency), stacked_inputs, m)
    pieces = iter(np.split(np.arange(m), offsets[1:-1]))
    rule_patterns = []
    for k, p in enumerate(primal):
        if k in out_positions:
            rows = next(pieces)
            rule_patterns.append(sp.csr_array(pattern[rows[0]:rows[-1] + 1]) if rows.size
                                 else empty_pattern(0, n))
        else:
            rule_patterns.append(empty_pattern(p.size, n))
    return _combine(primal, rule_patterns, n)


register_propagator("jit", _call("jaxpr"), curvature=Curvature.NONLINEAR)
register_propagator("pjit", _call("jaxpr"), curvature=Curvature.NONLINEAR)
register_propagator("closed_call", _call("call_jaxpr"), curvature=Curvature.NONLINEAR)
register_propagator("core_call", _call("call_jaxpr"), curvature=Curvature.NONLINEAR)
register_propagator("composite", _call("jaxpr"), curvature=Curvature.NONLINEAR)
register_propagator("remat2", _call("jaxpr"), curvature=Curvature.NONLINEAR)
register_propagator("checkpoint", _call("jaxpr"), curvature=Curvature.NONLINEAR)
register_propagator("custom_jvp_call", custom_jvp_propagator, curvature=Curvature.NONLINEAR)
register_propagator("custom_vjp_call", custom_vjp_propagator, curvature=Curvature.NONLINEAR)
