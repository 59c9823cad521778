"""The primitive table: every fact detection knows about a primitive, in one entry.

Every primitive has one entry, shared by the Jacobian and the Hessian engines: its
rule or propagator, its curvature, how its known values are computed, whether its
computed zeros can be trusted, and (for propagators) what the Hessian engine adds
around the call. Map rules (`register_rule`) are declarative; primitives that carry
jaxprs (control flow, calls) register a propagator that runs the engine on their bodies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from asdex.detection._rule import Curvature, Evaluation, Rule


@dataclasses.dataclass(frozen=True)
class Entry:
    """A primitive's entry in the table.

    Attributes:
        rule: The map rule, for first-order primitives.
        propagator: The propagator, for primitives that carry jaxprs.
        curvature: How the primitive's second derivative couples its operands:
            a `Curvature`, or a callable of the `Equation` returning a `Coupling`.
        evaluation: How results are computed when every operand is known.
        numpy: For an elementwise primitive: the same function in NumPy,
            `(params, *operand_values) -> value`, bit for bit what XLA computes (or
            `None` where it cannot say, e.g. for some dtypes); the engine uses it for
            known values before `evaluation`.
        trusts_zeros: Whether the primitive's computed float zeros are zeros under any
            compilation (`mul`, `max`, `select_n`, ...; not sums, where a fused
            multiply-add may leave a tiny nonzero), so that rules may skip them.
        transparent: For a propagator: whether it runs its body on the caller's own
            states (`jit`, `closed_call`, ...), so that the Hessian engine sees through it.
        second_order: For a propagator that is not transparent: the Hessian engine's
            hook `(eqn, operand_states, result_states, n) -> list[RowPairs]`, returning
            the pairs the recorded body alone cannot tell; `None`: every pair within
            each result element's pattern (always sound).
    """

    rule: Rule | None = None
    propagator: Callable[..., Any] | None = None
    curvature: Curvature | Callable[..., Any] = Curvature.NONLINEAR
    evaluation: Evaluation = Evaluation.JAX
    numpy: Callable[..., Any] | None = None
    trusts_zeros: bool = False
    transparent: bool = False
    second_order: Callable[..., Any] | None = None


_TABLE: dict[str, Entry] = {}


def _name(primitive: Any) -> str:
    return primitive if isinstance(primitive, str) else primitive.name


def _add(primitive: Any, entry: Entry, override: bool) -> None:
    name = _name(primitive)
    if name in _TABLE and not override:
        raise ValueError(
            f"The primitive '{name}' already has a detection rule. Pass `override=True` "
            "to replace it."
        )
    _TABLE[name] = entry


def register_rule(
    primitive: Any,
    rule: Rule,
    *,
    curvature: Curvature | Callable[..., Any] = Curvature.NONLINEAR,
    evaluation: Evaluation = Evaluation.JAX,
    numpy: Callable[..., Any] | None = None,
    trusts_zeros: bool = False,
    override: bool = False,
) -> None:
    """Register a sparsity detection rule for a primitive.

    Use it for a primitive of your own, or (with `override=True`) to replace a built-in
    rule. A rule receives an `Equation` (parameters, and the shape, dtype and known
    values of each operand) and returns one `Output` per result, listing a dependency
    map for each operand the result depends on. Soundness is the rule's duty: a map
    must contain every element the result may depend on.

    Args:
        primitive: The `jax.extend.core.Primitive`, or its name.
        rule: The rule.
        curvature: How the primitive's second derivative couples its operands, for
            Hessian detection: a `Curvature`, or a callable of the `Equation` returning
            a `Coupling`. `Curvature.NONLINEAR` (the default) is always sound.
        evaluation: How the engine computes results whose operands are all known.
            `Evaluation.JAX` (the default) applies the primitive itself;
            `Evaluation.NEVER` for results that are not functions of the operands.
        numpy: Optionally, the primitive in NumPy, `(params, *operand_values) ->
            value`, bit for bit what XLA computes, or `None` where it cannot say.
        trusts_zeros: Whether float zeros the primitive computes from exact operands
            are exact under any compilation (`False`, the default, is always sound).
        override: Replace an existing entry; without it, registering a primitive that
            already has one is an error.

    Raises:
        ValueError: If the primitive already has an entry and `override` is `False`.

    Examples:
        >>> from asdex.detection import Identity, Output, register_rule
        >>> def my_unary_rule(eqn):
        ...     return [Output(maps=((0, Identity()),))]
        >>> register_rule("my_unary_op", my_unary_rule)
    """
    _add(primitive, Entry(rule=rule, curvature=curvature, evaluation=evaluation, numpy=numpy,
                          trusts_zeros=trusts_zeros), override)


def register_propagator(
    primitive: Any,
    propagator: Callable[..., Any],
    *,
    curvature: Curvature | Callable[..., Any] = Curvature.NONLINEAR,
    transparent: bool = False,
    second_order: Callable[..., Any] | None = None,
    override: bool = False,
) -> None:
    """Register a propagator for a primitive that carries jaxprs (internal).

    See `Entry` for `transparent` and `second_order`.
    """
    _add(primitive, Entry(propagator=propagator, curvature=curvature,
                          transparent=transparent, second_order=second_order), override)


def lookup(primitive: Any) -> Entry:
    """The table entry of `primitive`; a clear `NotImplementedError` when it has none."""
    entry = _TABLE.get(_name(primitive))
    if entry is None:
        raise NotImplementedError(
            f"asdex has no sparsity detection rule for the primitive '{_name(primitive)}'. "
            "Register one with `asdex.detection.register_rule` (see its docstring), "
            "or report it so that a rule can be added to asdex."
        )
    return entry


def registered_primitives() -> frozenset[str]:
    """Names of every primitive with an entry."""
    return frozenset(_TABLE)
