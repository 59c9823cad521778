"""Hessian sparsity detection: one forward pass, a reverse liveness sweep, the pairs."""

from asdex.detection._hessian._api import hessian_sparsity

__all__ = ["hessian_sparsity"]
