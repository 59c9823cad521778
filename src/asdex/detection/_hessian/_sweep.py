"""The reverse sweep: liveness, then the pairs of every live nonlinear element.

An element is live when it reaches the output along a path of nonzero derivative:
the (scalar) output is live, and an operand element is live when a live result
element depends on it through one of the rule's maps. Results with an empty pattern
(integers, comparisons, constants) never make anything live.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from asdex.detection._hessian._coupling import are_terms, coupled, resolve
from asdex.detection._hessian._pairs import PairSet, rows_of
from asdex.detection._hessian._tape import Frame, Record
from asdex.detection._interpreter import State
from asdex.detection._maps import Broadcast, DependencyMap, Groups, Identity, gather_rows
from asdex.detection._rule import Curvature, Terms

Mask = NDArray[np.bool_]


def pull_back(dependency: DependencyMap, mask: Mask, size: int) -> Mask:
    """Operand elements that some element of `mask` depends on (`Dᵀ · mask`)."""
    if isinstance(dependency, Identity):
        return mask
    out = np.zeros(size, bool)
    if isinstance(dependency, Broadcast):
        source = dependency.source[mask]
        out[source[source >= 0]] = True
        return out
    if isinstance(dependency, Groups):
        groups = np.zeros(dependency.num_groups, bool)
        hit = dependency.output_group[mask]
        groups[hit[hit >= 0]] = True
        member = dependency.operand_group >= 0
        out[member] = groups[dependency.operand_group[member]]
        return out
    return (dependency.matrix.T @ mask.astype(np.float64)) > 0


class Sweep:
    """Liveness masks, keyed by state identity (the tape keeps every state alive)."""

    def __init__(self, n: int) -> None:
        self.pairs = PairSet(n)
        self._live: dict[int, Mask] = {}

    def seed(self, state: State) -> None:
        """Make every element of `state` live."""
        self._live[id(state)] = np.ones(state.size, bool)

    def mask(self, state: State) -> Mask | None:
        """Live elements of `state`, `None` when none."""
        return self._live.get(id(state))

    def mark(self, state: State, mask: Mask) -> None:
        """Make the elements in `mask` live."""
        if state.pattern.nnz == 0 or not mask.any():
            return
        old = self._live.get(id(state))
        self._live[id(state)] = mask if old is None else old | mask

    def run(self, records: Sequence[Record | Frame], output: State) -> PairSet:
        """Sweep the tape backwards from the output."""
        if output.pattern.nnz:
            self.seed(output)
        frames: list[tuple[int, bool]] = []  # (begin, live) of the enclosing frames
        for index in range(len(records) - 1, -1, -1):
            while frames and index < frames[-1][0]:
                frames.pop()
            forced = bool(frames) and frames[-1][1]
            if frames and not forced:
                if isinstance(records[index], Frame):
                    frames.append((records[index].begin, False))
                continue
            record = records[index]
            if isinstance(record, Frame):
                frames.append((record.begin, self._frame(record, forced)))
            else:
                self._record(record, forced)
        return self.pairs

    def _frame(self, frame: Frame, forced: bool) -> bool:
        masks = [np.ones(r.size, bool) if forced else self.mask(r) for r in frame.results]
        if not any(m is not None and m.any() for m in masks):
            return False
        for state in frame.operands:
            if state.pattern.nnz:
                self.seed(state)
        for result, a, b in frame.pairs:
            if result is None:
                self.pairs.add_rowwise(a, b)
            elif masks[result] is not None:
                rows = np.flatnonzero(masks[result])
                self.pairs.add_rowwise(gather_rows(a, rows), gather_rows(b, rows))
        return True

    def _record(self, record: Record, forced: bool) -> None:
        coupling = None
        for r, (output, result) in enumerate(zip(record.outputs, record.results, strict=True)):
            if result.pattern.nnz == 0:
                continue
            if forced:
                rows = None
                mask = np.ones(result.size, bool)
            else:
                mask = self.mask(result)
                if mask is None:
                    continue
                for k, dependency in output.maps:
                    operand = record.operands[k]
                    if operand.pattern.nnz:
                        self.mark(operand, pull_back(dependency, mask, operand.size))
                rows = None if mask.all() else np.flatnonzero(mask)
            if record.entry.curvature is Curvature.ZERO:
                continue
            if coupling is None:
                coupling = resolve(record.entry.curvature, record.equation)
            if isinstance(coupling, Curvature) or not are_terms(coupling):
                self._operand_pairs(record, r, rows, coupling)
            else:
                self._term_pairs(record, r, mask, coupling)

    def _operand_pairs(self, record: Record, r: int, rows: NDArray[np.int64] | None,
                       coupling: object) -> None:
        if coupling is Curvature.ZERO:
            return
        maps = [(k, m) for k, m in record.outputs[r].maps if record.operands[k].pattern.nnz]
        size = record.results[r].size
        applied: dict[int, object] = {}

        def rows_for(a: int):
            if a not in applied:
                k, m = maps[a]
                applied[a] = rows_of(m, record.operands[k].pattern, rows, size)
            return applied[a]

        for a in range(len(maps)):
            for b in range(a, len(maps)):
                if a == b and not coupled(coupling, maps[a][0], maps[a][0]):
                    continue
                if a != b and not coupled(coupling, maps[a][0], maps[b][0]):
                    continue
                self.pairs.add_rowwise(rows_for(a), rows_for(b))

    def _term_pairs(self, record: Record, r: int, mask: Mask, terms: Sequence[Terms]) -> None:
        for t in terms:
            if t.result != r:
                continue
            left, right = record.operands[t.left], record.operands[t.right]
            if left.pattern.nnz == 0 or right.pattern.nnz == 0:
                continue
            live = mask[t.result_elements]
            self.pairs.add_rowwise(gather_rows(left.pattern, t.left_elements[live]),
                                   gather_rows(right.pattern, t.right_elements[live]))
