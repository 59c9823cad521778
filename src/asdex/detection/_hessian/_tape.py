"""The forward pass of Hessian detection: the Jacobian engine, with a recorder.

The recorder (an `Observer` of the interpreter) keeps, for every equation, its
operand and result states, its dependency maps and its primitive's curvature, so
that the reverse sweep (`_sweep.py`) can compute liveness and pairs afterwards.

Calls whose body is propagated on the caller's own states (entries marked
`transparent`: `jit`, `closed_call`, `remat`, ...) need nothing more: their inner
equations read and produce the very `State` objects of the caller, so liveness flows
through them. Other propagators build new states; they are recorded as a `Frame`,
whose inner equations count as entirely live whenever one of the frame's results is
live (sound), plus what their body alone cannot tell: the pairs of the entry's
`second_order` hook (`_hooks.py`), or, for a propagator without one, every pair
within each result element's pattern.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from asdex.detection._hessian._hooks import RowPairs, within_results
from asdex.detection._interpreter import State
from asdex.detection._registry import Entry
from asdex.detection._rule import Equation, Output


@dataclasses.dataclass(frozen=True)
class Record:
    """One propagated map-rule equation."""

    entry: Entry
    equation: Equation
    outputs: Sequence[Output]
    operands: Sequence[State]
    results: Sequence[State]


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
        begin = len(self.records)
        results = entry.propagator(eqn, states, n)
        if entry.transparent and self._produced_inside(begin, states, results):
            return results
        if any(r.pattern.nnz for r in results):
            extra = (entry.second_order or within_results)(eqn, states, results, n)
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
