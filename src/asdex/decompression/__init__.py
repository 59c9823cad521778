"""Compressed evaluation and decompression.

`sparse_jacobian` and `sparse_hessian` turn a function, a coloring and its
decompression schedule into a traceable evaluator: one JVP, VJP or HVP per color,
batched, then precomputed gathers (and substitutions) into BCOO or dense blocks.
"""

from asdex.decompression._blocks import OUTPUT_FORMATS, OutputFormat
from asdex.decompression._gather import GatherPlan
from asdex.decompression._hessian import HVP_MODES, sparse_hessian
from asdex.decompression._jacobian import is_bidirectional, sparse_jacobian

__all__ = [
    "HVP_MODES",
    "OUTPUT_FORMATS",
    "GatherPlan",
    "OutputFormat",
    "is_bidirectional",
    "sparse_hessian",
    "sparse_jacobian",
]
