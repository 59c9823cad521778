"""A supernodal sparse LDLᵀ: symbolic analysis on the host, numeric work inside jit."""

from ._solver import INERTIA, SparseLDL, cached_analysis
from ._symbolic import Analysis, analyse

__all__ = ["INERTIA", "Analysis", "SparseLDL", "analyse", "cached_analysis"]
