"""The detection engine: walks a jaxpr and propagates dependency patterns.

Each variable gets a `State`: its pattern `P_v` (a boolean CSR matrix of shape
`(v.size, n)`) and what is known of its values. For each equation the engine asks the
primitive's rule for its dependency maps and computes `P_out = OR_k D_k · P_k`.
Primitives that carry jaxprs have propagators that call back into `propagate`.
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Protocol

import jax
import numpy as np

from asdex.detection import _jax
from asdex.detection._maps import Broadcast, Identity, Pattern, apply_map, empty_pattern, union
from asdex.detection._registry import Entry, lookup
from asdex.detection._rule import Equation, Operand, Output

MAX_EVALUATED_SIZE = 1 << 24
"""Known values are computed for results of at most this many elements."""

ZERO_PRESERVING = frozenset({
    "mul", "neg", "abs", "sign", "floor", "ceil", "round", "sqrt", "square", "integer_pow",
    "max", "min", "clamp", "select_n", "convert_element_type", "reduce_max", "reduce_min",
    "copy", "copy_p", "real", "imag", "conj",
})
"""Float primitives whose computed zeros are zeros under any compilation (unlike sums,
where a fused multiply-add may leave a tiny nonzero): their zeros can be trusted."""


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
    if len(inputs) != len(jaxpr.invars):
        raise ValueError(f"Expected {len(jaxpr.invars)} input states, got {len(inputs)}.")
    env: dict[Any, State] = {}
    for var, value in zip(jaxpr.constvars, consts, strict=True):
        env[var] = constant_state(value, n)
    env.update(zip(jaxpr.invars, inputs, strict=True))

    def read(atom: Any) -> State:
        if _jax.is_literal(atom):
            return constant_state(atom.val, n)
        return env[atom]

    for eqn in live_equations(jaxpr):
        states = [read(v) for v in eqn.invars]
        outs = propagate_equation(eqn, states, n)
        for var, state in zip(eqn.outvars, outs, strict=True):
            if not _jax.is_dropvar(var):
                env[var] = state
    return [read(v) for v in jaxpr.outvars]


def live_equations(jaxpr: Any) -> list[Any]:
    """The equations that the outputs need (dead code elimination)."""
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
    equation = Equation(
        primitive=eqn.primitive,
        params=dict(eqn.params),
        operands=tuple(s.operand for s in states),
        out_shapes=tuple(tuple(v.aval.shape) for v in eqn.outvars),
        out_dtypes=tuple(v.aval.dtype for v in eqn.outvars),
    )
    outputs = list(entry.rule(equation))
    if len(outputs) != len(eqn.outvars):
        raise RuntimeError(
            f"The rule for '{eqn.primitive}' returned {len(outputs)} outputs, "
            f"expected {len(eqn.outvars)}."
        )
    values = _evaluate_if_known(eqn, states, outputs)
    trusted_inputs = not any(s.operand.approximate for s in states)
    results = [
        _output_state(output, states, shape, dtype, value, n, eqn.primitive.name, trusted_inputs)
        for output, shape, dtype, value in zip(
            outputs, equation.out_shapes, equation.out_dtypes, values, strict=True
        )
    ]
    if observer is not None:
        observer.equation(entry, equation, outputs, states, results)
    return results


def _output_state(
    output: Output,
    states: Sequence[State],
    shape: tuple[int, ...],
    dtype: Any,
    value: Any,
    n: int,
    primitive_name: str,
    trusted_inputs: bool,
) -> State:
    size = math.prod(shape)
    if _jax.is_float(dtype):
        maps = output.maps
        pattern = union([apply_map(m, states[k].pattern, size) for k, m in maps], size, n)
    else:  # integer, boolean and key results have zero derivative
        pattern = empty_pattern(size, n)
    if value is None:
        value = output.value
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
        moved = bool(output.maps) and all(
            isinstance(m, Broadcast | Identity) for _, m in output.maps
        )
        # Only float zeros are distrusted: integer and boolean results of approximate
        # floats (trip counts, indices) are taken as computed.
        trusted = trusted_inputs and (primitive_name in ZERO_PRESERVING or moved)
        approximate = _jax.is_float(dtype) and not trusted
    operand = Operand(shape, dtype, value=value, lower=lower, upper=upper, approximate=approximate)
    return State(pattern, operand)


def _moved_bounds(
    output: Output, states: Sequence[State], size: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Integer bounds of a pure data-movement result, gathered from its operands."""
    if not output.maps or not all(isinstance(m, Broadcast | Identity) for _, m in output.maps):
        return None
    lower = np.zeros(size, np.int64)
    upper = np.zeros(size, np.int64)
    covered = np.zeros(size, bool)
    for k, m in output.maps:
        bounds = states[k].operand.bounds()
        if bounds is None:
            return None
        lo, hi = (b.reshape(-1) for b in bounds)
        source = np.arange(size) if isinstance(m, Identity) else m.source
        hit = source >= 0
        lower[hit], upper[hit] = lo[source[hit]], hi[source[hit]]
        covered |= hit
    return (lower, upper) if covered.all() else None


def _evaluate_if_known(eqn: Any, states: Sequence[State], outputs: list[Output]) -> list[Any]:
    """Values of the results when every operand is known, computed by JAX itself."""
    none = [None] * len(outputs)
    if not all(s.operand.known for s in states) or eqn.effects:
        return none
    if any(math.prod(v.aval.shape) > MAX_EVALUATED_SIZE for v in eqn.outvars):
        return none
    if not all(_jax.is_numeric(v.aval.dtype) for v in eqn.outvars):
        return none
    try:
        with jax.ensure_compile_time_eval():
            results = _jax.bind(eqn.primitive, eqn.params, [s.operand.value for s in states])
    except Exception:
        return none
    if not eqn.primitive.multiple_results:
        results = [results]
    return [_jax.as_numpy(r) for r in results]
