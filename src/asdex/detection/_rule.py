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
from collections.abc import Callable, Collection, Sequence
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


@dataclasses.dataclass(frozen=True)
class Terms:
    """Second-order terms of one result of a sum-of-products primitive.

    Term `t` multiplies element `left_elements[t]` of operand `left` by element
    `right_elements[t]` of operand `right` inside result element `result_elements[t]`.

    Examples:
        >>> import numpy as np
        >>> from asdex.detection import Terms
        >>> dot = Terms(0, np.zeros(3, int), 0, np.arange(3), 1, np.arange(3))  # x @ y
        >>> dot.left_elements.size
        3
    """

    result: int
    result_elements: NDArray[np.int64]
    left: int
    left_elements: NDArray[np.int64]
    right: int
    right_elements: NDArray[np.int64]


Coupling = Curvature | Collection[tuple[int, int]] | Sequence[Terms]
"""What a curvature callable of an `Equation` may return.

* a `Curvature`: `ZERO` (no pairs), `BILINEAR` (pairs of different operands),
  `NONLINEAR` (every pair of operands, an operand with itself included);
* a set of operand index pairs `{(k, l), ...}` that couple (`(k, k)`: operand `k`
  with itself), e.g. `{(0, 1), (1, 1)}` for `x / y`, which is linear in `x`;
* a sequence of `Terms`, for primitives whose result element sums products of
  operand elements (`dot_general`, `reduce_prod`): exact where a per-operand map
  would couple every element of a contraction with every other.
"""


class Evaluation(enum.Enum):
    """How the engine computes a result's value when every operand's value is known.

    Known values keep indices computed in the program exact (gather, scatter, dynamic
    slices, loop trip counts). A rule may also return the value itself
    (`Output.value`); the engine then computes nothing.
    """

    JAX = "jax"
    """Apply the primitive with JAX to the known operands."""
    ELEMENTWISE = "elementwise"
    """Like `JAX`, on the operands broadcast, flattened and padded to a few fixed sizes,
    so that one compilation serves arrays of many shapes. For shape-preserving
    elementwise primitives."""
    MOVED = "moved"
    """Read the operands' values through the rule's `Broadcast` / `Identity` maps: for
    data movement, whose result elements are copies of operand elements. `JAX` where
    the maps do not give every result element exactly one source."""
    NEVER = "never"
    """Never computed: results that are not functions of the operands alone (random
    state, the platform, callbacks into user code)."""


Rule = Callable[[Equation], Sequence[Output]]
"""A detection rule: an equation in, one `Output` per result out."""
