"""What a detection rule sees and what it returns.

A rule receives an `Equation`: the primitive's parameters and, for each operand, its
shape, dtype and whatever is known of its values (a constant, or integer bounds). It
returns one `Output` per result: a dependency map for each operand it depends on, and
optionally what is known of the result's values.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from asdex.detection._maps import DependencyMap


@dataclasses.dataclass(frozen=True)
class Operand:
    """One operand of an equation, as a rule sees it.

    Attributes:
        shape: Shape of the operand.
        dtype: Dtype of the operand (a numpy dtype, or a JAX extended dtype).
        value: The operand's value when it is the same for every input, else `None`.
        lower: Elementwise lower bound of an integer operand, else `None`.
        upper: Elementwise upper bound of an integer operand, else `None`.
        approximate: Whether `value` came out of floating-point arithmetic whose
            rounding may differ once compiled (fused multiply-adds, reassociation): its
            zeros are then not to be trusted.
    """

    shape: tuple[int, ...]
    dtype: Any
    value: NDArray[Any] | None = None
    lower: NDArray[np.int64] | None = None
    upper: NDArray[np.int64] | None = None
    approximate: bool = False

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)

    @property
    def known(self) -> bool:
        """Whether the operand's value is known."""
        return self.value is not None

    @property
    def bounded(self) -> bool:
        """Whether elementwise integer bounds are known."""
        return self.lower is not None

    def may_be_nonzero(self) -> NDArray[np.bool_] | None:
        """Mask of the elements that may be nonzero, or `None` when the value is unknown.

        Zeros of an approximate value are not trusted: it counts as nonzero everywhere.
        """
        if self.value is None:
            return None
        if self.approximate:
            return np.ones(self.shape, bool)
        return np.asarray(self.value) != 0

    def bounds(self) -> tuple[NDArray[np.int64], NDArray[np.int64]] | None:
        """`(lower, upper)` arrays broadcast to the operand's shape, or `None`."""
        if self.value is not None and _is_integer(self.dtype):
            value = np.asarray(self.value, dtype=np.int64)
            return value, value
        if self.lower is None or self.upper is None:
            return None
        return (np.broadcast_to(self.lower, self.shape), np.broadcast_to(self.upper, self.shape))


def _is_integer(dtype: Any) -> bool:
    try:
        return np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_)
    except TypeError:
        return False


@dataclasses.dataclass(frozen=True)
class Equation:
    """A jaxpr equation as a rule sees it.

    Attributes:
        primitive: The JAX primitive.
        params: The equation's parameters.
        operands: One `Operand` per input.
        out_shapes: Shape of each result.
        out_dtypes: Dtype of each result.
    """

    primitive: Any
    params: dict[str, Any]
    operands: tuple[Operand, ...]
    out_shapes: tuple[tuple[int, ...], ...]
    out_dtypes: tuple[Any, ...]

    @property
    def out_sizes(self) -> tuple[int, ...]:
        """Number of elements of each result."""
        return tuple(math.prod(s) for s in self.out_shapes)


@dataclasses.dataclass(frozen=True)
class Output:
    """What a rule says of one result.

    Attributes:
        maps: `(operand_index, map)` pairs; the result depends on nothing else.
        value: The result's value, when the rule knows it.
        lower: Elementwise lower bound of an integer result, when known.
        upper: Elementwise upper bound of an integer result, when known.
    """

    maps: tuple[tuple[int, DependencyMap], ...] = ()
    value: NDArray[Any] | None = None
    lower: NDArray[np.int64] | None = None
    upper: NDArray[np.int64] | None = None


class Curvature(enum.Enum):
    """How an elementwise primitive's second derivative couples its operands.

    The Hessian engine reads it (second-order propagation).
    """

    ZERO = "zero"
    """Second derivative is zero everywhere: linear and piecewise-linear primitives."""
    BILINEAR = "bilinear"
    """Only cross terms between different operands are nonzero (e.g. `mul`)."""
    NONLINEAR = "nonlinear"
    """Any pair of operand elements may interact (e.g. `exp`, `div`, `pow`)."""


Rule = Callable[[Equation], Sequence[Output]]
"""A detection rule: an equation in, one `Output` per result out."""
