"""Call primitives: the engine recurses into their jaxprs.

Custom derivative rules are followed: the pattern of a `custom_jvp_call` is the
union of the primal's and that of its JVP rule (tangents in, tangents out), and a
`custom_vjp_call` likewise uses its backward rule. A straight-through estimator,
whose derivative is not the primal's, is therefore never missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from asdex.detection import _jax
from asdex.detection._custom_rules import (
    float_positions,
    float_results,
    following,
    jvp_jaxpr,
    vjp_jaxpr,
)
from asdex.detection._hessian._hooks import custom_jvp_pairs, custom_vjp_pairs
from asdex.detection._interpreter import State, propagate, unknown_state
from asdex.detection._maps import Matrix, apply_map, empty_pattern, identity_pattern, union
from asdex.detection._registry import register_propagator
from asdex.detection._rule import Curvature


def _call(jaxpr_param: str):
    def propagator(eqn: Any, states: list[State], n: int) -> list[State]:
        jaxpr, consts = _jax.closed_jaxpr_parts(eqn.params[jaxpr_param])
        return propagate(jaxpr, consts, states, n)

    return propagator


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
    positions = [k for k in float_positions(eqn) if states[k].pattern.nnz]
    with following(eqn) as first_visit:
        if not positions or not first_visit:
            return primal
        closed = jvp_jaxpr(eqn, positions)
        inputs = _primal_states(states, n) + [states[k] for k in positions]
        tangents = propagate(closed.jaxpr, closed.consts, inputs, n)
    floats = float_results(eqn)
    # one tangent per result (float0 for integer results), or per float result
    positions_out = range(len(primal)) if len(tangents) == len(primal) else floats
    tangent_of = dict(zip(positions_out, tangents, strict=True))
    rule_patterns = [
        tangent_of[k].pattern if k in floats else empty_pattern(p.size, n)
        for k, p in enumerate(primal)
    ]
    return _combine(primal, rule_patterns, n)


def custom_vjp_propagator(eqn: Any, states: list[State], n: int) -> list[State]:
    """Union of the primal's pattern and that of the custom backward rule."""
    primal = _call("call_jaxpr")(eqn, states, n)
    # operands with empty patterns add nothing; Equinox asserts they are not perturbed
    positions = [k for k in float_positions(eqn) if states[k].pattern.nnz]
    results = float_results(eqn)
    with following(eqn) as first_visit:
        if not results or not positions or not first_visit:
            return primal
        closed = vjp_jaxpr(eqn, positions, results)
        sizes = [primal[k].size for k in results]
        m = sum(sizes)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        inputs = [State(empty_pattern(s.size, m), s.operand) for s in states] + [
            unknown_state(eqn.outvars[k].aval, identity_pattern(offsets[i], sizes[i], m))
            for i, k in enumerate(results)
        ]
        cotangents = propagate(closed.jaxpr, closed.consts, inputs, m)
    # transposed[j, i]: result element i depends on operand element j
    transposed = sp.vstack([c.pattern for c in cotangents], format="csr")
    dependency = sp.csr_array(transposed.T.tocsr())
    stacked = sp.csr_array(sp.vstack([states[k].pattern for k in positions], format="csr"))
    pattern = apply_map(Matrix(dependency), stacked, m)
    rule_patterns = [empty_pattern(p.size, n) for p in primal]
    for i, k in enumerate(results):
        rule_patterns[k] = sp.csr_array(pattern[offsets[i]:offsets[i + 1]])
    return _combine(primal, rule_patterns, n)


register_propagator("custom_jvp_call", custom_jvp_propagator, curvature=Curvature.NONLINEAR,
                    second_order=custom_jvp_pairs)
register_propagator("custom_vjp_call", custom_vjp_propagator, curvature=Curvature.NONLINEAR,
                    second_order=custom_vjp_pairs)
for _name, _parameter in [("jit", "jaxpr"), ("pjit", "jaxpr"), ("closed_call", "call_jaxpr"),
                          ("core_call", "call_jaxpr"), ("composite", "jaxpr"),
                          ("remat2", "jaxpr"), ("checkpoint", "jaxpr")]:
    register_propagator(_name, _call(_parameter), curvature=Curvature.NONLINEAR,
                        transparent=True)
