"""Second-order hooks of propagators: the pairs a call's recorded body cannot tell.

A propagator that builds its own states is recorded by the tape as a `Frame`; its
registry entry's `second_order` hook returns the pairs to add when the frame is live:

* `while` / `scan`: one more run of the body on the final carry. Beyond their
  unrolling budget the propagators take a fixed point semi-naively (on dependency
  deltas), so the recorded steps alone may miss pairs; the final carry's patterns
  contain those of every step.
* `custom_jvp_call` / `custom_vjp_call`: the pairs of the custom rule's
  coefficients: `x_j` (a tangent input) x `x_k` (a primal the coefficient depends on).
* `cond`: none (its branches are recorded).
* any other propagator (no hook): every pair within each result element's pattern.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from asdex.detection import _jax
from asdex.detection._custom_rules import (
    float_positions,
    float_results,
    following,
    jvp_jaxpr,
    vjp_jaxpr,
)
from asdex.detection._interpreter import OBSERVER, State, propagate
from asdex.detection._maps import Groups, Pattern, apply_map, empty_pattern
from asdex.detection._rule import Operand

RowPairs = tuple[int | None, Pattern, Pattern]
"""`(result, a, b)`: pairs `a[e] x b[e]` for each live element `e` of result `result`
(rows of `a` and `b` are that result's elements), or for every row when the frame is
live (`result` is `None`)."""


def _quiet(closed: Any, states: Sequence[State], n: int) -> list[State]:
    """First-order propagation only, unrecorded."""
    jaxpr, consts = _jax.closed_jaxpr_parts(closed)
    token = OBSERVER.set(None)
    try:
        return propagate(jaxpr, consts, list(states), n)
    finally:
        OBSERVER.reset(token)


def _seed(aval: Any, n: int) -> State:
    """A tangent or cotangent: unknown values, no pattern."""
    return State(empty_pattern(math.prod(aval.shape), n), Operand(tuple(aval.shape), aval.dtype))


def within_results(eqn: Any, states: list[State], results: list[State], n: int
                   ) -> list[RowPairs]:
    """Every pair within each result element's pattern (sound for any propagator)."""
    return [(r, s.pattern, s.pattern) for r, s in enumerate(results) if s.pattern.nnz]


def no_pairs(eqn: Any, states: list[State], results: list[State], n: int) -> list[RowPairs]:
    """`cond`: its branches are recorded, and nothing else couples."""
    return []


def while_pairs(eqn: Any, states: list[State], results: list[State], n: int) -> list[RowPairs]:
    """`while`: the body run once more, recorded, on the final carry."""
    params = eqn.params
    body_consts = states[params["cond_nconsts"]:params["cond_nconsts"] + params["body_nconsts"]]
    jaxpr, consts = _jax.closed_jaxpr_parts(params["body_jaxpr"])
    propagate(jaxpr, consts, list(body_consts) + list(results), n)
    return []


def _any_step(state: State, n: int) -> State:
    """A slice along the leading axis at an unknown step."""
    length = state.operand.shape[0]
    size = state.size // length
    ids = np.arange(size, dtype=np.int64)
    pattern = apply_map(Groups(ids, np.tile(ids, length), size), state.pattern, size)
    return State(pattern, Operand(state.operand.shape[1:], state.operand.dtype))


def scan_pairs(eqn: Any, states: list[State], results: list[State], n: int) -> list[RowPairs]:
    """`scan`: the body run once more, recorded, on the final carry and any step."""
    params = eqn.params
    num_consts, num_carry = params["num_consts"], params["num_carry"]
    xs = [_any_step(x, n) for x in states[num_consts + num_carry:]]
    jaxpr, consts = _jax.closed_jaxpr_parts(params["jaxpr"])
    propagate(jaxpr, consts, [*states[:num_consts], *results[:num_carry], *xs], n)
    return []


def custom_jvp_pairs(eqn: Any, states: list[State], results: list[State], n: int
                ) -> list[RowPairs]:
    """Result element `i` x the primals its JVP coefficients depend on."""
    positions = [k for k in float_positions(eqn) if states[k].pattern.nnz]
    with following(eqn) as first_visit:
        if not positions or not first_visit:
            return []
        closed = jvp_jaxpr(eqn, positions)
        seeds = [_seed(eqn.invars[k].aval, n) for k in positions]
        tangents = _quiet(closed, [*states, *seeds], n)
    floats = float_results(eqn)
    if len(tangents) == len(results):
        floats = list(range(len(results)))
    return [(r, results[r].pattern, t.pattern) for r, t in zip(floats, tangents, strict=True)
            if results[r].pattern.nnz]


def custom_vjp_pairs(eqn: Any, states: list[State], results: list[State], n: int
                ) -> list[RowPairs]:
    """Operand element `j` x the primals its cotangent coefficients depend on."""
    positions = [k for k in float_positions(eqn) if states[k].pattern.nnz]
    out_positions = float_results(eqn)
    with following(eqn) as first_visit:
        if not positions or not out_positions or not first_visit:
            return []
        closed = vjp_jaxpr(eqn, positions, out_positions)
        seeds = [_seed(eqn.outvars[k].aval, n) for k in out_positions]
        cotangents = _quiet(closed, [*states, *seeds], n)
    return [(None, states[k].pattern, c.pattern) for k, c in zip(positions, cotangents,
                                                                  strict=True)]
