"""Sparsity detection: from a jaxpr to a `SparsityPattern`."""

from asdex.detection import _rules  # noqa: F401  (fills the primitive table)
from asdex.detection._hessian import hessian_sparsity
from asdex.detection._jacobian import jacobian_sparsity
from asdex.detection._maps import Broadcast, DependencyMap, Groups, Identity, Matrix
from asdex.detection._registry import register_rule, registered_primitives
from asdex.detection._rule import Curvature, Equation, Evaluation, Operand, Output, Terms

__all__ = [
    "Broadcast",
    "Curvature",
    "DependencyMap",
    "Equation",
    "Evaluation",
    "Groups",
    "Identity",
    "Matrix",
    "Operand",
    "Output",
    "Terms",
    "hessian_sparsity",
    "jacobian_sparsity",
    "register_rule",
    "registered_primitives",
]
