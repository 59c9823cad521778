"""Control flow: `cond`, `while`, `scan` and `custom_linear_solve` recurse into their jaxprs.

* `cond` takes the union of the branches that its index may select: exactly one
  when the index is known (or bounded to a single branch).
* `while` and `scan` are propagated step by step, exactly, while the trip count is
  known and the work (steps x body equations) stays under `MAX_UNROLLED_EQUATIONS`.
  Beyond that, or when a `while` predicate is unknown, they take the fixed point of
  the carry: patterns grow until they stop changing, and only the values that the
  body leaves unchanged stay known. Both are sound; the fixed point may be coarser.
* `custom_linear_solve` follows JAX's own derivative, `dx = solve(db - dA·x)`.

Loop counters and predicates have zero derivative: the number of iterations never
contributes to a pattern.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from asdex.detection import _jax
from asdex.detection._interpreter import State, live_equations, propagate
from asdex.detection._maps import Broadcast, Groups, Pattern, apply_map, empty_pattern, union
from asdex.detection._registry import register_propagator
from asdex.detection._rule import Curvature, Operand

MAX_UNROLLED_EQUATIONS = 20_000
"""Budget of a loop propagated step by step: steps x live body equations."""


# --- states -----------------------------------------------------------------------------


def _run(closed: Any, states: Sequence[State], n: int) -> list[State]:
    jaxpr, consts = _jax.closed_jaxpr_parts(closed)
    return propagate(jaxpr, consts, list(states), n)


def _body_size(closed: Any) -> int:
    jaxpr, _ = _jax.closed_jaxpr_parts(closed)
    return max(1, len(live_equations(jaxpr)))


def _unknown(operand: Operand) -> Operand:
    return Operand(operand.shape, operand.dtype)


def _patternless(state: State, n: int) -> State:
    return State(empty_pattern(state.size, n), state.operand)


def _template(operands: Sequence[Operand]) -> Operand:
    """The operand whose flags a combination of `operands` inherits.

    One whose value's zeros are not to be trusted (`approximate`), if any.
    """
    return next((o for o in operands if getattr(o, "approximate", False)), operands[0])


def _same_knowledge(a: Operand, b: Operand) -> bool:
    def same(x: Any, y: Any) -> bool:
        if x is None or y is None:
            return x is None and y is None
        return bool(np.array_equal(np.asarray(x), np.asarray(y)))

    return same(a.value, b.value) and same(a.lower, b.lower) and same(a.upper, b.upper)


def join_operands(operands: Sequence[Operand]) -> Operand:
    """What is known of a value that may be any one of `operands`.

    Their common value, or else the hull of their integer bounds.
    """
    first = operands[0]
    values = [o.value for o in operands]
    if all(v is not None for v in values) and all(np.array_equal(values[0], v) for v in values):
        return _template(operands)
    bounds = [o.bounds() for o in operands]
    if all(b is not None for b in bounds):
        lower = np.min([np.broadcast_to(b[0], first.shape) for b in bounds], axis=0)
        upper = np.max([np.broadcast_to(b[1], first.shape) for b in bounds], axis=0)
        return Operand(first.shape, first.dtype, lower=lower, upper=upper)
    return _unknown(first)


def _join(states: Sequence[State], n: int) -> State:
    first = states[0]
    pattern = union([s.pattern for s in states], first.size, n)
    return State(pattern, join_operands([s.operand for s in states]))


def _difference(a: Pattern, b: Pattern) -> Pattern:
    """Entries of `a` that are not in `b`."""
    if a.nnz == 0 or b.nnz == 0:
        return a
    kept = a.astype(np.int8) - a.multiply(b).astype(np.int8)
    kept.eliminate_zeros()
    return sp.csr_array(kept, dtype=bool)


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

Body = Callable[[list[State], bool], list[State]]
"""`body(carry, external)`: one loop step; `external=False` zeroes the patterns of the
loop's other inputs (consts, xs)."""


def fixed_point(body: Body, carry: list[State], n: int) -> list[State]:
    """The carry after any number of steps: the least fixed point of `carry | body(carry)`.

    First the values: whatever the body changes is forgotten, until what is left known
    holds at every step. Then the patterns, semi-naively: the body is linear in the
    patterns, so each round propagates only the dependencies found in the last one.
    """
    num_carry = len(carry)
    carry = list(carry)
    changed = True
    while changed:
        out = body([_patternless(c, n) for c in carry], False)[:num_carry]
        changed = False
        for k, (old, new) in enumerate(zip(carry, out, strict=True)):
            if not _same_knowledge(old.operand, new.operand):
                carry[k] = State(old.pattern, _unknown(old.operand))
                changed = True

    patterns = [c.pattern for c in carry]
    delta = body(carry, True)[:num_carry]
    while True:
        fresh = [_difference(d.pattern, p) for d, p in zip(delta, patterns, strict=True)]
        if not any(f.nnz for f in fresh):
            break
        patterns = [union([p, f], c.size, n) for p, f, c in zip(patterns, fresh, carry,
                                                                strict=True)]
        step = [State(f, c.operand) for f, c in zip(fresh, carry, strict=True)]
        delta = body(step, False)[:num_carry]
    return [State(p, c.operand) for p, c in zip(patterns, carry, strict=True)]


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

    steps_left = MAX_UNROLLED_EQUATIONS // _body_size(body)
    while True:
        keep_going = _predicate(_run(cond, cond_consts + carry, n)[0])
        if keep_going is False:
            return carry
        if keep_going is None or steps_left == 0:
            break
        carry = _run(body, body_consts + carry, n)
        steps_left -= 1

    quiet_consts = [_patternless(s, n) for s in body_consts]

    def step(c: list[State], external: bool) -> list[State]:
        return _run(body, (body_consts if external else quiet_consts) + c, n)

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
        return State(pattern, dataclasses.replace(_template(operands), shape=shape,
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

    if length * _body_size(body) <= MAX_UNROLLED_EQUATIONS:
        per_step: list[list[State]] = [[] for _ in range(length)]
        order = range(length - 1, -1, -1) if params["reverse"] else range(length)
        for t in order:
            out = _run(body, consts + carry + [_slice_state(x, t) for x in xs], n)
            carry, per_step[t] = out[:num_carry], out[num_carry:]
        ys = [_stack_states([per_step[t][j] for t in range(length)], aval, n)
              for j, aval in enumerate(y_avals)]
        return carry + ys

    any_x = [_any_step(x, n) for x in xs]
    quiet = [_patternless(s, n) for s in consts + any_x]

    def ordered(c: list[State], external: bool) -> list[State]:
        outside = consts + any_x if external else quiet
        return _run(body, outside[:num_consts] + c + outside[num_consts:], n)

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
    rhs = [State(union([s.pattern, m.pattern], s.size, n), _unknown(s.operand))
           for s, m in zip(b, from_matrix, strict=True)]
    x = _run(jaxprs.solve, [_patternless(s, n) for s in solve_consts] + rhs, n)
    aux = [State(empty_pattern(s.size, n), s.operand) for s in x[num_x:]]
    return [State(s.pattern, _unknown(s.operand)) for s in x[:num_x]] + aux


register_propagator("cond", cond_propagator, curvature=Curvature.NONLINEAR)
register_propagator("while", while_propagator, curvature=Curvature.NONLINEAR)
register_propagator("scan", scan_propagator, curvature=Curvature.NONLINEAR)
register_propagator("custom_linear_solve", custom_linear_solve_propagator,
                    curvature=Curvature.NONLINEAR)
