"""asdex: automatic sparse differentiation for JAX.

Detect the global sparsity pattern of a Jacobian or Hessian from the jaxpr, color it,
and compute the sparse matrix with one JVP, VJP or HVP per color.

Examples:
    >>> import jax.numpy as jnp
    >>> import asdex
    >>> import jax
    >>> jac_fn = jax.jit(asdex.jacobian(lambda x: x[1:] - x[:-1], jnp.zeros(4)))
    >>> jac_fn(jnp.zeros(4)).todense().tolist()
    [[-1.0, 1.0, 0.0, 0.0], [0.0, -1.0, 1.0, 0.0], [0.0, 0.0, -1.0, 1.0]]
"""

from asdex._api import (
    DenseColoringWarning,
    hessian,
    hessian_coloring,
    hessian_from_coloring,
    jacobian,
    jacobian_coloring,
    jacobian_from_coloring,
    value_and_hessian,
    value_and_hessian_from_coloring,
    value_and_jacobian,
    value_and_jacobian_from_coloring,
)
from asdex._check import VerificationError, check_hessian_correctness, check_jacobian_correctness
from asdex._compressed import (
    compressed_hessian,
    compressed_hessian_from_coloring,
    compressed_jacobian,
    compressed_jacobian_from_coloring,
    value_and_compressed_hessian,
    value_and_compressed_hessian_from_coloring,
    value_and_compressed_jacobian,
    value_and_compressed_jacobian_from_coloring,
)
from asdex._pattern import (
    ColoredPattern,
    ColoringMode,
    HessianMode,
    InvalidColoringError,
    JacobianMode,
    SparsityPattern,
    StarSet,
)
from asdex._plotting import spy
from asdex.coloring import (
    color_cols,
    color_rows,
    color_symmetric,
    hessian_coloring_from_sparsity,
    jacobian_coloring_from_sparsity,
)
from asdex.decompression import OutputFormat, decompress, decompress_data
from asdex.detection import hessian_sparsity, jacobian_sparsity

__all__ = [
    # differentiation
    "jacobian",
    "value_and_jacobian",
    "hessian",
    "value_and_hessian",
    "jacobian_from_coloring",
    "value_and_jacobian_from_coloring",
    "hessian_from_coloring",
    "value_and_hessian_from_coloring",
    # compressed evaluation and decompression
    "compressed_jacobian",
    "value_and_compressed_jacobian",
    "compressed_hessian",
    "value_and_compressed_hessian",
    "compressed_jacobian_from_coloring",
    "value_and_compressed_jacobian_from_coloring",
    "compressed_hessian_from_coloring",
    "value_and_compressed_hessian_from_coloring",
    "decompress",
    "decompress_data",
    # coloring
    "jacobian_coloring",
    "hessian_coloring",
    "jacobian_coloring_from_sparsity",
    "hessian_coloring_from_sparsity",
    "color_rows",
    "color_cols",
    "color_symmetric",
    # sparsity detection
    "jacobian_sparsity",
    "hessian_sparsity",
    # visualization
    "spy",
    # verification
    "check_jacobian_correctness",
    "check_hessian_correctness",
    "VerificationError",
    # data structures and types
    "SparsityPattern",
    "ColoredPattern",
    "StarSet",
    "JacobianMode",
    "HessianMode",
    "ColoringMode",
    "OutputFormat",
    # errors and warnings
    "InvalidColoringError",
    "DenseColoringWarning",
]
