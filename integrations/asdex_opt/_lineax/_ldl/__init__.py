"""A supernodal sparse LDLᵀ: symbolic analysis on the host, numeric work inside jit."""

from asdex_opt._lineax._ldl._solver import INERTIA, SparseLDL, cached_analysis
from asdex_opt._lineax._ldl._symbolic import Analysis, analyse

__all__ = ["INERTIA", "Analysis", "SparseLDL", "analyse", "cached_analysis"]
