"""The forward pass of Hessian detection: the Jacobian engine, with a recorder.

The recorder (an `Observer` of the interpreter) keeps, for every equation, its
operand and result states, its dependency maps and its primitive's curvature, so
that the reverse sweep (`_sweep.py`) can compute liveness and pairs afterwards.

Calls whose body is propagated on the caller's own states (`jit`, `closed_call`,
`remat`, ...) need nothing more: their inner equations read and produce the very
`State` objects of the caller, so liveness flows through them. Other propagators
build new states; they are recorded as a `Frame`, whose inner equations count as
entirely live whenever one of the frame's results is live (sound), plus what their
body alone cannot tell:

* `while` / `scan`: one more run of the body on the final carry. Beyond their
  unrolling budget the propagators take a fixed point semi-naively (on dependency
  deltas), so the recorded steps alone may miss pairs; the final carry's patterns
  contain those of every step.
* `custom_jvp_call` / `custom_vjp_call`: the pairs of the custom rule's
  coefficients: `x_j` (a tangent input) x `x_k` (a primal the coefficient depends on).
* any other propagator: every pair within each result element's pattern.
"""

from __future__ import annotations

import dataclasses
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
from asdex.detection._registry import Entry
from asdex.detection._rule import Equation, Operand, Output

TRANSPARENT_CALLS = frozenset({"jit", "pjit", "closed_call", "core_call", "remat2", "checkpoint"})
"""Propagators that run their body on the caller's states, unchanged."""


@dataclasses.dataclass(frozen=True)
class Record:
    """One propagated map-rule equation."""

    entry: Entry
    equation: Equation
    outputs: Sequence[Output]
    operands: Sequence[State]
    results: Sequence[State]


RowPairs = tuple[int | None, Pattern, Pattern]
"""`(result, a, b)`: pairs `a[e] x b[e]` for each live element `e` of result `result`
(rows of `a` and `b` are that result's elements), or for every row when the frame is
live (`result` is `None`)."""


@dataclasses.dataclass(frozen=True)
class Frame:
    """A propagator call that built its own states; records `begin ..` lie inside it."""

    begin: int
    operands: Sequence[State]
    results: Sequence[State]
    pairs: Sequence[RowPairs]


class Tape:
    """Records the forward pass (an `Observer` of the interpreter)."""

    def __init__(self) -> None:
        self.records: list[Record | Frame] = []

    def equation(self, entry: Entry, equation: Equation, outputs: Sequence[Output],
                 states: Sequence[State], results: Sequence[State]) -> None:
        """Record a map-rule equation whose results depend on the inputs."""
        if any(r.pattern.nnz for r in results):
            self.records.append(Record(entry, equation, outputs, states, results))

    def call(self, eqn: Any, entry: Entry, states: list[State], n: int) -> list[State]:
        """Run a propagator, framing it unless it is a transparent call."""
        name = eqn.primitive.name
        begin = len(self.records)
        results = entry.propagator(eqn, states, n)
        if name in TRANSPARENT_CALLS and self._produced_inside(begin, states, results):
            return results
        if any(r.pattern.nnz for r in results):
            extra = _EXTRA.get(name, _within_results)(eqn, states, results, n)
            self.records.append(Frame(begin, states, results, extra))
        return results

    def _produced_inside(self, begin: int, states: list[State], results: list[State]) -> bool:
        """Whether every result is an operand or a result of a record since `begin`.

        Then liveness flows through the call by identity (checked, not assumed).
        """
        produced = {id(s) for s in states}
        for record in self.records[begin:]:
            produced.update(id(s) for s in record.results)
        return all(id(r) in produced or not r.pattern.nnz for r in results)


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


def _within_results(eqn: Any, states: list[State], results: list[State], n: int
                    ) -> list[RowPairs]:
    return [(r, s.pattern, s.pattern) for r, s in enumerate(results) if s.pattern.nnz]


def _none(eqn: Any, states: list[State], results: list[State], n: int) -> list[RowPairs]:
    return []


def _while(eqn: Any, states: list[State], results: list[State], n: int) -> list[RowPairs]:
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


def _scan(eqn: Any, states: list[State], results: list[State], n: int) -> list[RowPairs]:
    params = eqn.params
    num_consts, num_carry = params["num_consts"], params["num_carry"]
    xs = [_any_step(x, n) for x in states[num_consts + num_carry:]]
    jaxpr, consts = _jax.closed_jaxpr_parts(params["jaxpr"])
    propagate(jaxpr, consts, [*states[:num_consts], *results[:num_carry], *xs], n)
    return []


def _custom_jvp(eqn: Any, states: list[State], results: list[State], n: int
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


def _custom_vjp(eqn: Any, states: list[State], results: list[State], n: int
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


_EXTRA = {
    "cond": _none,
    "while": _while,
    "scan": _scan,
    "custom_jvp_call": _custom_jvp,
    "custom_vjp_call": _custom_vjp,
}
