"""The detection engine: walks a jaxpr and propagates dependency patterns.

Each variable gets a `State`: its pattern `P_v` (a boolean CSR matrix of shape
`(v.size, n)`) and what is known of its values. For each equation the engine asks the
primitive's rule for its dependency maps and computes `P_out = OR_k D_k · P_k`.
Primitives that carry jaxprs have propagators that call back into `propagate`.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import jax
import numpy as np

from asdex.detection import _jax
from asdex.detection._maps import Broadcast, Identity, Pattern, apply_map, empty_pattern, union
from asdex.detection._registry import Entry, lookup
from asdex.detection._rule import Equation, Evaluation, Operand, Output, Rule

MAX_EVALUATED_SIZE = 1 << 24
"""Known values are computed for results of at most this many elements."""

MAX_BUCKETED_SIZE = 1 << 16
"""Elementwise evaluations up to this many elements run at a bucketed size (see
`Evaluation.ELEMENTWISE`); larger ones at their own shape."""


@dataclasses.dataclass(frozen=True)
class State:
    """What the engine knows of one variable: its pattern and its values."""

    pattern: Pattern
    operand: Operand

    @property
    def size(self) -> int:
        """Number of elements."""
        return self.operand.size


class Observer(Protocol):
    """Sees every equation the engine propagates (the Hessian engine records them)."""

    def equation(
        self, entry: Entry, equation: Equation, outputs: Sequence[Output],
        states: Sequence[State], results: Sequence[State],
    ) -> None:
        """Called after a map rule's equation has been propagated."""

    def call(self, eqn: Any, entry: Entry, states: list[State], n: int) -> list[State]:
        """Called in place of a propagator; must run `entry.propagator` itself."""


OBSERVER: contextvars.ContextVar[Observer | None] = contextvars.ContextVar(
    "asdex_detection_observer", default=None
)
"""The observer of the running propagation, if any (the Jacobian engine has none)."""


def constant_state(value: Any, n: int) -> State:
    """State of a value that does not depend on the inputs."""
    shape, dtype = _jax.shape_and_dtype(value)
    known = _jax.as_numpy(value)
    return State(empty_pattern(math.prod(shape), n), Operand(shape, dtype, value=known))


def unknown_state(aval: Any, pattern: Pattern) -> State:
    """State of a variable whose values are unknown."""
    return State(pattern, Operand(tuple(aval.shape), aval.dtype))


_running = 0
"""Propagations in progress (rules call `propagate` on inner jaxprs): when the
outermost ends, the caches below are dropped, so that they hold no jaxpr (nor the
constants of its inner closed jaxprs) beyond one detection."""


def propagate(
    jaxpr: Any, consts: Sequence[Any], inputs: Sequence[State], n: int
) -> list[State]:
    """Propagate input states through `jaxpr` (a `jax.extend.core.Jaxpr`).

    Args:
        jaxpr: The jaxpr to walk.
        consts: Values of its constvars.
        inputs: States of its invars.
        n: Number of columns (differentiated input elements) of every pattern.

    Returns:
        The states of its outvars.
    """
    global _running
    _running += 1
    try:
        return _propagate(jaxpr, consts, inputs, n)
    finally:
        _running -= 1
        if _running == 0:
            _LITERALS.clear()
            _LIVE.clear()


def _propagate(
    jaxpr: Any, consts: Sequence[Any], inputs: Sequence[State], n: int
) -> list[State]:
    if len(inputs) != len(jaxpr.invars):
        raise ValueError(f"Expected {len(jaxpr.invars)} input states, got {len(inputs)}.")
    env: dict[Any, State] = {}
    for var, value in zip(jaxpr.constvars, consts, strict=True):
        env[var] = constant_state(value, n)
    env.update(zip(jaxpr.invars, inputs, strict=True))

    def read(atom: Any) -> State:
        if _jax.is_literal(atom):
            return _literal_state(atom, n)
        return env[atom]

    for eqn in live_equations(jaxpr):
        states = [read(v) for v in eqn.invars]
        outs = propagate_equation(eqn, states, n)
        for var, state in zip(eqn.outvars, outs, strict=True):
            if not _jax.is_dropvar(var):
                env[var] = state
    return [read(v) for v in jaxpr.outvars]


_LITERALS: dict[tuple[int, int], tuple[Any, State]] = {}
"""States of the literals read in the running propagation by `(id(literal), n)`, with
the literal itself (held, so that its id is not reused while cached)."""

_LIVE: dict[int, tuple[Any, list[Any]]] = {}
"""`live_equations` of the jaxprs walked in the running propagation by id, with the
jaxpr itself (held)."""

_CACHE_SIZE = 4096


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _literal_state(atom: Any, n: int) -> State:
    """`constant_state` of a literal, cached: a jaxpr called in a loop reads the same ones."""
    cached = _LITERALS.get((id(atom), n))
    if cached is not None and cached[0] is atom:
        return cached[1]
    state = constant_state(atom.val, n)
    _remember(_LITERALS, (id(atom), n), (atom, state))
    return state


def live_equations(jaxpr: Any) -> list[Any]:
    """The equations that the outputs need (dead code elimination)."""
    cached = _LIVE.get(id(jaxpr))
    if cached is not None and cached[0] is jaxpr:
        return cached[1]
    live = _live_equations(jaxpr)
    _remember(_LIVE, id(jaxpr), (jaxpr, live))
    return live


def _live_equations(jaxpr: Any) -> list[Any]:
    needed = {v for v in jaxpr.outvars if not _jax.is_literal(v)}
    live = []
    for eqn in reversed(jaxpr.eqns):
        if eqn.effects or any(v in needed for v in eqn.outvars):
            live.append(eqn)
            needed.update(v for v in eqn.invars if not _jax.is_literal(v))
    return live[::-1]


def propagate_equation(eqn: Any, states: Sequence[State], n: int) -> list[State]:
    """Propagate states through one equation."""
    entry = lookup(eqn.primitive)
    observer = OBSERVER.get()
    if entry.propagator is not None:
        if observer is not None:
            return observer.call(eqn, entry, list(states), n)
        return entry.propagator(eqn, list(states), n)
    equation, outputs, results = apply_rule(
        eqn, entry.rule, states, n, evaluation=entry.evaluation, numpy=entry.numpy,
        trusts_zeros=entry.trusts_zeros,
    )
    if observer is not None:
        observer.equation(entry, equation, outputs, states, results)
    return results


def apply_rule(
    eqn: Any,
    rule: Rule,
    states: Sequence[State],
    n: int,
    *,
    evaluation: Evaluation = Evaluation.JAX,
    numpy: Callable[..., Any] | None = None,
    trusts_zeros: bool = False,
) -> tuple[Equation, list[Output], list[State]]:
    """Apply a map rule to one equation: its `Equation`, the rule's outputs, the results.

    Propagators use it for the equations they handle by a rule of their own
    (e.g. with `Evaluation.NEVER` when the results are not functions of the operands).
    """
    equation = Equation(
        primitive=eqn.primitive,
        params=dict(eqn.params),
        operands=tuple(s.operand for s in states),
        out_shapes=tuple(tuple(v.aval.shape) for v in eqn.outvars),
        out_dtypes=tuple(v.aval.dtype for v in eqn.outvars),
    )
    outputs = list(rule(equation))
    if len(outputs) != len(eqn.outvars):
        raise RuntimeError(
            f"The rule for '{eqn.primitive}' returned {len(outputs)} outputs, "
            f"expected {len(eqn.outvars)}."
        )
    values = _known_values(eqn, equation, evaluation, numpy, states, outputs)
    trusted_inputs = not any(s.operand.approximate for s in states)
    results = [
        _output_state(output, states, shape, dtype, value, n, trusts_zeros and trusted_inputs,
                      trusted_inputs)
        for output, shape, dtype, value in zip(
            outputs, equation.out_shapes, equation.out_dtypes, values, strict=True
        )
    ]
    return equation, outputs, results


def _is_moved(output: Output) -> bool:
    """Whether the result's elements are copies of operand elements (data movement)."""
    return bool(output.maps) and all(isinstance(m, Broadcast | Identity) for _, m in output.maps)


def _output_state(
    output: Output,
    states: Sequence[State],
    shape: tuple[int, ...],
    dtype: Any,
    value: Any,
    n: int,
    trusts_zeros: bool,
    trusted_inputs: bool,
) -> State:
    size = math.prod(shape)
    if _jax.is_float(dtype):
        pattern = union([apply_map(m, states[k].pattern, size) for k, m in output.maps
                         if states[k].pattern.nnz], size, n)
    else:  # integer, boolean and key results have zero derivative
        pattern = empty_pattern(size, n)
    lower, upper = output.lower, output.upper
    if value is None and lower is None:
        moved = _moved_bounds(output, states, size)
        if moved is not None:
            lower, upper = (b.reshape(shape) for b in moved)
            if np.array_equal(lower, upper) and _jax.is_integer(dtype):
                value = lower.astype(dtype)
    approximate = False
    if value is not None:
        value = np.asarray(value).reshape(shape)
        # Only float zeros are distrusted: integer and boolean results of approximate
        # floats (trip counts, indices) are taken as computed.
        trusted = trusts_zeros or (trusted_inputs and _is_moved(output))
        approximate = _jax.is_float(dtype) and not trusted
    operand = Operand(shape, dtype, value=value, lower=lower, upper=upper, approximate=approximate)
    return State(pattern, operand)


def _through_maps(
    output: Output, arrays: Sequence[np.ndarray | None], size: int
) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """What each map of a data-movement result moves: `(covered elements, values)`.

    `arrays[k]` is the flat array of operand `k`; `None` when one needed is missing.
    """
    if not _is_moved(output):
        return None
    moved = []
    for k, m in output.maps:
        array = arrays[k]
        if array is None:
            return None
        if isinstance(m, Identity):
            moved.append((np.ones(size, bool), array))
            continue
        hit = m.source >= 0
        taken = np.zeros(size, array.dtype)
        taken[hit] = array[m.source[hit]]
        moved.append((hit, taken))
    return moved


def _moved_bounds(
    output: Output, states: Sequence[State], size: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Integer bounds of a pure data-movement result, gathered from its operands.

    An element that several maps may fill is bounded by the union of their bounds.
    """
    if not all(_has_bounds(states[k].operand) for k, _ in output.maps):
        return None
    bounds = [s.operand.bounds() for s in states]
    lows = _through_maps(output, [None if b is None else b[0].reshape(-1) for b in bounds], size)
    highs = _through_maps(output, [None if b is None else b[1].reshape(-1) for b in bounds], size)
    if lows is None or highs is None:
        return None
    big = np.iinfo(np.int64).max
    lower, upper = np.full(size, big), np.full(size, -big)
    for (hit, lo), (_, hi) in zip(lows, highs, strict=True):
        lower[hit] = np.minimum(lower[hit], lo[hit])
        upper[hit] = np.maximum(upper[hit], hi[hit])
    return (lower, upper) if (lower <= upper).all() else None


def _has_bounds(operand: Operand) -> bool:
    """Whether `operand.bounds()` is not `None`, without computing them."""
    if operand.value is not None and _jax.is_integer(operand.dtype):
        return True
    return operand.lower is not None and operand.upper is not None


def _moved_values(output: Output, states: Sequence[State], dtype: Any, size: int
                  ) -> np.ndarray | None:
    """Value of a data-movement result whose every element has exactly one known source."""
    values = [None if s.operand.value is None or np.asarray(s.operand.value).dtype != dtype
              else np.asarray(s.operand.value).reshape(-1) for s in states]
    moved = _through_maps(output, values, size)
    if moved is None:
        return None
    result = np.zeros(size, dtype)
    count = np.zeros(size, np.int64)
    for hit, taken in moved:
        result[hit] = taken[hit]
        count += hit
    return result if (count == 1).all() else None


def _known_values(
    eqn: Any, equation: Equation, evaluation: Evaluation, numpy: Callable[..., Any] | None,
    states: Sequence[State], outputs: list[Output],
) -> list[Any]:
    """Values of the results when every operand is known: from the rule, or computed."""
    values = [o.value for o in outputs]
    if all(v is not None for v in values) or evaluation is Evaluation.NEVER:
        return values
    if not all(s.operand.known for s in states) or eqn.effects:
        return values
    if any(math.prod(v.aval.shape) > MAX_EVALUATED_SIZE for v in eqn.outvars):
        return values
    if not all(_jax.is_numeric(v.aval.dtype) for v in eqn.outvars):
        return values
    if evaluation is Evaluation.MOVED:
        moved = [_moved_values(o, states, np.dtype(d), math.prod(s)) for o, d, s in
                 zip(outputs, equation.out_dtypes, equation.out_shapes, strict=True)]
        if all(v is not None for v in moved):
            return moved
    operands = [s.operand.value for s in states]
    if numpy is not None:
        value = _numpy_value(numpy, equation, operands)
        if value is not None:
            return [value]
    try:
        if evaluation is Evaluation.ELEMENTWISE:
            computed = _bind_elementwise(eqn, operands, equation.out_shapes)
        else:
            computed = _bind(eqn, operands)
    except Exception:
        return values
    return [v if v is not None else c for v, c in zip(values, computed, strict=True)]


def _numpy_value(numpy: Callable[..., Any], equation: Equation, operands: Sequence[Any]
                 ) -> np.ndarray | None:
    """The result of an entry's NumPy function, when it has the result's shape and dtype."""
    arrays = [np.asarray(v) for v in operands]
    if any(_flushed(a) for a in arrays):
        return None
    with np.errstate(all="ignore"):
        value = numpy(equation.params, *arrays)
    if value is None:
        return None
    value = np.asarray(value)
    (shape,), (dtype,) = equation.out_shapes, equation.out_dtypes
    if value.dtype != dtype or value.shape != shape or _flushed(value):
        return None
    return value


def _flushed(array: np.ndarray) -> bool:
    """Whether a float array holds values that XLA's CPU backend flushes to zero.

    It treats subnormal operands and results as zero, where NumPy keeps them; the
    smallest normal number counts too, as a result rounded up to it may be flushed.
    """
    if array.dtype.kind not in "fc" or array.size == 0:
        return False
    if array.size == 1 and array.dtype.kind == "f":
        magnitude = abs(float(array.reshape(-1)[0]))
        return 0 < magnitude <= _tiny(array.dtype)
    parts = (array.real, array.imag) if array.dtype.kind == "c" else (array,)
    for part in parts:
        magnitude = np.abs(part)
        if ((magnitude <= _tiny(part.dtype)) & (magnitude != 0)).any():
            return True
    return False


@functools.cache
def _tiny(dtype: np.dtype) -> float:
    """The smallest normal number of a float dtype."""
    return float(np.finfo(dtype).tiny)


def _bind(eqn: Any, operands: Sequence[Any]) -> list[np.ndarray | None]:
    with jax.ensure_compile_time_eval():
        results = _jax.bind(eqn.primitive, eqn.params, operands)
    if not eqn.primitive.multiple_results:
        results = [results]
    return [_jax.as_numpy(r) for r in results]


def _bucket(size: int) -> int:
    """The padded size of an elementwise evaluation: 1024 times a power of 8.

    Few sizes, few compilations: small arrays, the common case, share one.
    """
    bucket = 1024
    while bucket < size:
        bucket *= 8
    return bucket


def _bind_elementwise(eqn: Any, operands: Sequence[Any], out_shapes: Sequence[tuple[int, ...]]
                      ) -> list[np.ndarray | None]:
    """`_bind` on operands flattened and padded (with their last element) to a bucket size.

    One compilation then serves every shape up to that size. Falls back to `_bind` for
    anything that is not a shape-preserving elementwise call.
    """
    (shape,) = out_shapes
    size = math.prod(shape)
    if (size == 0 or size > MAX_BUCKETED_SIZE
            or any(np.shape(v) not in ((), shape) for v in operands)):
        return _bind(eqn, operands)
    pad = _bucket(size) - size
    flat = [np.pad(np.broadcast_to(np.asarray(v), shape).reshape(-1), (0, pad), mode="edge")
            for v in operands]
    (result,) = _bind(eqn, flat)
    return [None if result is None else result[:size].reshape(shape)]
