"""How the Hessian engine reads a registry entry's curvature.

The entry holds a `Curvature`, or a callable of the `Equation` returning a `Coupling`
(see `asdex.detection._rule`). For each result element `e` that reaches the output,
the engine adds the input pairs `(D_k[e]·P_k) x (D_l[e]·P_l)` of every coupled pair
of the result's maps, or the pairs of each `Terms` product.
"""

from __future__ import annotations

from collections.abc import Sequence

from asdex.detection._rule import Coupling, Curvature, Equation, Terms


def resolve(curvature: object, equation: Equation) -> Coupling:
    """The coupling of one equation: call `curvature` if it is a callable."""
    if isinstance(curvature, Curvature):
        return curvature
    return curvature(equation)


def coupled(coupling: Coupling, k: int, j: int) -> bool:
    """Whether operands `k` and `j` couple under an operand-level coupling."""
    if coupling is Curvature.NONLINEAR:
        return True
    if coupling is Curvature.BILINEAR:
        return k != j
    if coupling is Curvature.ZERO:
        return False
    return (k, j) in coupling or (j, k) in coupling


def are_terms(coupling: Coupling) -> bool:
    """Whether `coupling` is a sequence of `Terms` (rather than operand pairs)."""
    return isinstance(coupling, Sequence) and bool(coupling) and isinstance(coupling[0], Terms)
