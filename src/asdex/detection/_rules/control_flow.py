"""Control flow: `cond`, `while`, `scan` and `custom_linear_solve` recurse into their jaxprs.

* `cond` takes the union of the branches that its index may select: exactly one
  when the index is known (or bounded to a single branch).
* `while` and `scan` are propagated step by step, exactly, while the trip count is
  known and the work (steps x body equations) fits in `MAX_UNROLLED_EQUATIONS`, a
  budget that nested loops share (so nesting cannot multiply it). Beyond that, or when
  a `while` predicate is unknown, they take the fixed point of the carry
  (`fixed_point.py`), which ends in a bounded number of rounds. Both are sound; the
  fixed point may be coarser.
* `custom_linear_solve` follows JAX's own derivative, `dx = solve(db - dA·x)`.

Loop counters and predicates have zero derivative: the number of iterations never
contributes to a pattern.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from asdex.detection import _jax
from asdex.detection._hessian._hooks import no_pairs, scan_pairs, while_pairs
from asdex.detection._interpreter import State, live_equations, propagate
from asdex.detection._maps import Broadcast, Groups, apply_map, empty_pattern, union
from asdex.detection._registry import register_propagator
from asdex.detection._rule import Curvature, Operand
from asdex.detection._rules.fixed_point import (
    fixed_point,
    join_operands,
    patternless,
    template,
    unknown,
)

MAX_UNROLLED_EQUATIONS = 20_000
"""Budget of loops propagated step by step (steps x live body equations), shared by a
loop and every loop nested in it."""

_BUDGET: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "asdex_unrolling_budget", default=None
)


# --- states -----------------------------------------------------------------------------


def _run(closed: Any, states: Sequence[State], n: int) -> list[State]:
    jaxpr, consts = _jax.closed_jaxpr_parts(closed)
    return propagate(jaxpr, consts, list(states), n)


def _body_size(closed: Any) -> int:
    jaxpr, _ = _jax.closed_jaxpr_parts(closed)
    return max(1, len(live_equations(jaxpr)))


@contextlib.contextmanager
def _budget() -> Iterator[list[int]]:
    """The unrolling budget left (a one-element list): the enclosing loop's, or a new one."""
    budget = _BUDGET.get()
    if budget is not None:
        yield budget
        return
    budget = [MAX_UNROLLED_EQUATIONS]
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def _spend(budget: list[int], cost: int) -> bool:
    """Take `cost` from the budget if it has that much left."""
    if budget[0] < cost:
        return False
    budget[0] -= cost
    return True


def _columns(carry: Sequence[State], n: int) -> int:
    """Columns of the carry's patterns: `n`, or carry elements for a dependency matrix."""
    return carry[0].pattern.shape[1] if carry else n


def _join(states: Sequence[State], n: int) -> State:
    first = states[0]
    pattern = union([s.pattern for s in states], first.size, n)
    return State(pattern, join_operands([s.operand for s in states]))


# --- cond -------------------------------------------------------------------------------


def possible_branches(index: Operand, num_branches: int) -> range:
    """The branches an index may select (out-of-range indices are clamped, as XLA does)."""
    bounds = index.bounds()
    if bounds is None:
        return range(num_branches)
    lower = int(np.clip(np.min(bounds[0]), 0, num_branches - 1))
    upper = int(np.clip(np.max(bounds[1]), 0, num_branches - 1))
    return range(lower, upper + 1)


def cond_propagator(eqn: Any, states: list[State], n: int) -> list[State]:
    """Union of the branches the index may select; the index has zero derivative."""
    branches = eqn.params["branches"]
    index, operands = states[0], states[1:]
    results = [_run(branches[b], operands, n) for b in possible_branches(index.operand,
                                                                          len(branches))]
    return [_join(outs, n) for outs in zip(*results, strict=True)]


# --- loops ------------------------------------------------------------------------------

def _predicate(state: State) -> bool | None:
    """The loop predicate's value, when it holds under any compilation."""
    if getattr(state.operand, "approximate", False):
        return None
    bounds = state.operand.bounds()
    if bounds is None:
        return None
    if np.all(bounds[0] >= 1):
        return True
    if np.all(bounds[1] <= 0):
        return False
    return None


def while_propagator(eqn: Any, states: list[State], n: int) -> list[State]:
    """Exact steps while the predicate is known (within budget), then a fixed point."""
    params = eqn.params
    cond_nconsts, body_nconsts = params["cond_nconsts"], params["body_nconsts"]
    cond_consts = states[:cond_nconsts]
    body_consts = states[cond_nconsts:cond_nconsts + body_nconsts]
    carry = states[cond_nconsts + body_nconsts:]
    cond, body = params["cond_jaxpr"], params["body_jaxpr"]

    with _budget() as budget:
        cost = _body_size(body)
        while True:
            keep_going = _predicate(_run(cond, cond_consts + carry, n)[0])
            if keep_going is False:
                return carry
            if keep_going is None or not _spend(budget, cost):
                break
            carry = _run(body, body_consts + carry, n)

        def step(c: list[State], external: bool) -> list[State]:
            columns = _columns(c, n)
            consts = body_consts if external else [patternless(s, columns) for s in body_consts]
            return _run(body, consts + c, columns)

        return fixed_point(step, carry, n)


def _slice_state(state: State, t: int) -> State:
    """Element `t` along the leading axis."""
    shape = state.operand.shape[1:]
    size = state.size // state.operand.shape[0]
    pattern = sp.csr_array(state.pattern[t * size:(t + 1) * size])
    operand = state.operand
    value = None if operand.value is None else operand.value[t]
    bounds = None if value is not None else operand.bounds()
    lower, upper = (None, None) if bounds is None else (bounds[0][t], bounds[1][t])
    return State(pattern, dataclasses.replace(operand, shape=shape, value=value, lower=lower,
                                              upper=upper))


def _stack_states(steps: Sequence[State], aval: Any, n: int) -> State:
    """States of the slices `steps[t]`, stacked along a new leading axis."""
    shape = tuple(aval.shape)
    if not steps:
        return State(empty_pattern(0, n), Operand(shape, aval.dtype))
    pattern = sp.csr_array(sp.vstack([s.pattern for s in steps], format="csr"), dtype=bool)
    operands = [s.operand for s in steps]
    if all(o.value is not None for o in operands):
        stacked = np.stack([o.value for o in operands])
        return State(pattern, dataclasses.replace(template(operands), shape=shape,
                                                  value=stacked))
    bounds = [o.bounds() for o in operands]
    if all(b is not None for b in bounds):
        lower = np.stack([np.broadcast_to(b[0], shape[1:]) for b in bounds])
        upper = np.stack([np.broadcast_to(b[1], shape[1:]) for b in bounds])
        return State(pattern, Operand(shape, aval.dtype, lower=lower, upper=upper))
    return State(pattern, Operand(shape, aval.dtype))


def _any_step(state: State, n: int) -> State:
    """A slice of `state` along its leading axis, at an unknown step: the union."""
    length = state.operand.shape[0]
    shape = state.operand.shape[1:]
    size = state.size // length
    ids = np.arange(size, dtype=np.int64)
    groups = Groups(ids, np.tile(ids, length), size)
    pattern = apply_map(groups, state.pattern, size)
    operand = state.operand
    if operand.value is not None:
        slices = [dataclasses.replace(operand, shape=shape, value=operand.value[t])
                  for t in range(length)]
    elif operand.bounds() is not None:
        lower, upper = operand.bounds()
        slices = [Operand(shape, operand.dtype, lower=lower.min(0), upper=upper.max(0))]
    else:
        slices = [Operand(shape, operand.dtype)]
    return State(pattern, join_operands(slices))


def _every_step(state: State, length: int, aval: Any) -> State:
    """A per-step result that is the same at every step, stacked `length` times."""
    source = np.tile(np.arange(state.size, dtype=np.int64), length)
    pattern = apply_map(Broadcast(source), state.pattern, source.size)
    operand, shape = state.operand, tuple(aval.shape)
    value = None if operand.value is None else np.broadcast_to(operand.value, shape)
    bounds = None if value is not None else operand.bounds()
    lower, upper = (None, None) if bounds is None else (
        np.broadcast_to(bounds[0], shape), np.broadcast_to(bounds[1], shape))
    return State(pattern, dataclasses.replace(operand, shape=shape, value=value, lower=lower,
                                              upper=upper))


def scan_propagator(eqn: Any, states: list[State], n: int) -> list[State]:
    """Step by step when affordable (exact), else a carry fixed point (sound)."""
    params = eqn.params
    num_consts, num_carry, length = params["num_consts"], params["num_carry"], params["length"]
    body = params["jaxpr"]
    consts = states[:num_consts]
    carry = states[num_consts:num_consts + num_carry]
    xs = states[num_consts + num_carry:]
    y_avals = [v.aval for v in eqn.outvars[num_carry:]]

    with _budget() as budget:
        if _spend(budget, length * _body_size(body)):
            per_step: list[list[State]] = [[] for _ in range(length)]
            order = range(length - 1, -1, -1) if params["reverse"] else range(length)
            for t in order:
                out = _run(body, consts + carry + [_slice_state(x, t) for x in xs], n)
                carry, per_step[t] = out[:num_carry], out[num_carry:]
            ys = [_stack_states([per_step[t][j] for t in range(length)], aval, n)
                  for j, aval in enumerate(y_avals)]
            return carry + ys

        any_x = [_any_step(x, n) for x in xs]

        def ordered(c: list[State], external: bool) -> list[State]:
            columns = _columns(c, n)
            outside = consts + any_x
            if not external:
                outside = [patternless(s, columns) for s in outside]
            return _run(body, outside[:num_consts] + c + outside[num_consts:], columns)

        carry = fixed_point(ordered, carry, n)
        ys = ordered(carry, True)[num_carry:]
    return carry + [_every_step(y, length, aval) for y, aval in zip(ys, y_avals, strict=True)]


# --- custom_linear_solve ----------------------------------------------------------------


def custom_linear_solve_propagator(eqn: Any, states: list[State], n: int) -> list[State]:
    """`x = solve(b)`, differentiated as JAX does: `dx = solve(db - matvec'(params)·x)`.

    The solve's own constants are primal coefficients only; the matrix's operands enter
    through the `matvec` jaxpr, evaluated at the (unknown) solution.
    """
    lengths = eqn.params["const_lengths"]
    jaxprs = eqn.params["jaxprs"]
    offsets = np.cumsum([0, *lengths])
    matvec_consts = states[offsets[0]:offsets[1]]
    solve_consts = states[offsets[2]:offsets[3]]
    b = states[offsets[4]:]
    num_x = len(b)
    out_avals = [v.aval for v in eqn.outvars]

    solution = [State(empty_pattern(s.size, n), Operand(tuple(a.shape), a.dtype))
                for s, a in zip(b, out_avals[:num_x], strict=True)]
    from_matrix = _run(jaxprs.matvec, matvec_consts + solution, n)
    rhs = [State(union([s.pattern, m.pattern], s.size, n), unknown(s.operand))
           for s, m in zip(b, from_matrix, strict=True)]
    x = _run(jaxprs.solve, [patternless(s, n) for s in solve_consts] + rhs, n)
    aux = [State(empty_pattern(s.size, n), s.operand) for s in x[num_x:]]
    return [State(s.pattern, unknown(s.operand)) for s in x[:num_x]] + aux


register_propagator("cond", cond_propagator, curvature=Curvature.NONLINEAR,
                    second_order=no_pairs)
register_propagator("while", while_propagator, curvature=Curvature.NONLINEAR,
                    second_order=while_pairs)
register_propagator("scan", scan_propagator, curvature=Curvature.NONLINEAR,
                    second_order=scan_pairs)
register_propagator("custom_linear_solve", custom_linear_solve_propagator,
                    curvature=Curvature.NONLINEAR)
