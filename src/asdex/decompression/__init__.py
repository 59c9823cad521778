"""Compressed evaluation and decompression.

`sparse_jacobian` and `sparse_hessian` turn a function and a coloring (with the
decompression plan it carries) into a compiled evaluator: one JVP, VJP or HVP per color,
batched (`jacobian_compressor`, `hessian_compressor`), then precomputed gathers (and
substitutions) into blocks of any output format. `decompress` and `decompress_data` do
the second half on their own.
"""

from asdex.decompression._blocks import DEVICE_FORMATS, HOST_FORMATS, OUTPUT_FORMATS, OutputFormat
from asdex.decompression._decompress import decompress, decompress_data
from asdex.decompression._gather import GatherPlan
from asdex.decompression._hessian import HVP_MODES, hessian_compressor, sparse_hessian
from asdex.decompression._jacobian import jacobian_compressor, sparse_jacobian
from asdex.decompression._jit import filter_jit
from asdex.decompression._sharding import ColorSharding, ShardingLike

__all__ = [
    "DEVICE_FORMATS",
    "HOST_FORMATS",
    "HVP_MODES",
    "OUTPUT_FORMATS",
    "ColorSharding",
    "GatherPlan",
    "OutputFormat",
    "ShardingLike",
    "decompress",
    "decompress_data",
    "filter_jit",
    "hessian_compressor",
    "jacobian_compressor",
    "sparse_hessian",
    "sparse_jacobian",
]
