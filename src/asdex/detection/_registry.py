"""The primitive table: which rule handles which primitive.

Every primitive has one entry, shared by the Jacobian and the Hessian engines.
Map rules (`register_rule`) are declarative; primitives that carry jaxprs
(control flow, calls) register a propagator that runs the engine on their bodies.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from asdex.detection._rule import Curvature, Rule


@dataclasses.dataclass(frozen=True)
class Entry:
    """A primitive's entry in the table.

    Attributes:
        rule: The map rule, for first-order primitives.
        propagator: The propagator, for primitives that carry jaxprs.
        curvature: How the primitive's second derivative couples its operands:
            a `Curvature`, or a callable of the `Equation` returning one.
    """

    rule: Rule | None = None
    propagator: Callable[..., Any] | None = None
    curvature: Curvature | Callable[..., Any] = Curvature.NONLINEAR


_TABLE: dict[str, Entry] = {}


def _name(primitive: Any) -> str:
    return primitive if isinstance(primitive, str) else primitive.name


def register_rule(
    primitive: Any, rule: Rule, *, curvature: Curvature | Callable[..., Any] = Curvature.NONLINEAR
) -> None:
    """Register a sparsity detection rule for a primitive.

    Use it for a primitive of your own, or to refine a built-in rule. A rule receives
    an `Equation` (parameters, and the shape, dtype and known values of each operand)
    and returns one `Output` per result, listing a dependency map for each operand the
    result depends on. Soundness is the rule's duty: a map must contain every element
    the result may depend on.

    Args:
        primitive: The `jax.extend.core.Primitive`, or its name.
        rule: The rule.
        curvature: How the primitive's second derivative couples its operands, for
            Hessian detection. `Curvature.NONLINEAR` (the default) is always sound.

    Examples:
        >>> import asdex
        >>> from asdex.detection import Identity, Output, register_rule
        >>> def my_unary_rule(eqn):
        ...     return [Output(maps=((0, Identity()),))]
        >>> register_rule("my_unary_op", my_unary_rule)
    """
    _TABLE[_name(primitive)] = Entry(rule=rule, curvature=curvature)


def register_propagator(
    primitive: Any,
    propagator: Callable[..., Any],
    *,
    curvature: Curvature | Callable[..., Any] = Curvature.NONLINEAR,
) -> None:
    """Register a propagator for a primitive that carries jaxprs (internal)."""
    _TABLE[_name(primitive)] = Entry(propagator=propagator, curvature=curvature)


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
