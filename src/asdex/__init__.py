"""asdex: automatic sparse differentiation for JAX."""

from asdex._pattern import (
    ColoredPattern,
    ColoringMode,
    HessianMode,
    InvalidColoringError,
    JacobianMode,
    SparsityPattern,
    StarSet,
)

__all__ = [
    "ColoredPattern",
    "ColoringMode",
    "HessianMode",
    "InvalidColoringError",
    "JacobianMode",
    "SparsityPattern",
    "StarSet",
]
