"""How a primitive's second derivative couples its operands.

A registry entry's `curvature` is a `Curvature`, or a callable of the `Equation`
returning one of:

* a `Curvature`: `ZERO` (no pairs), `BILINEAR` (pairs of different operands),
  `NONLINEAR` (every pair of operands, an operand with itself included);
* a set of operand index pairs `{(k, l), ...}` that couple (`(k, k)`: operand `k`
  with itself), e.g. `{(0, 1), (1, 1)}` for `x / y`, which is linear in `x`;
* a sequence of `Terms`, for primitives whose result element sums products of
  operand elements (`dot_general`, `reduce_prod`): exact where a per-operand map
  would couple every element of a contraction with every other.

For each result element `e` that reaches the output, the engine adds the input pairs
`(D_k[e]·P_k) x (D_l[e]·P_l)` of every coupled pair of the result's maps.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Sequence

import numpy as np
from numpy.typing import NDArray

from asdex.detection._rule import Curvature, Equation


@dataclasses.dataclass(frozen=True)
class Terms:
    """Second-order terms of one result of a sum-of-products primitive.

    Term `t` multiplies element `left_elements[t]` of operand `left` by element
    `right_elements[t]` of operand `right` inside result element `result_elements[t]`.

    Examples:
        `dot(x, y)` for vectors of size 3: one term per contracted index,
        `Terms(0, np.zeros(3), 0, np.arange(3), 1, np.arange(3))`.
    """

    result: int
    result_elements: NDArray[np.int64]
    left: int
    left_elements: NDArray[np.int64]
    right: int
    right_elements: NDArray[np.int64]


Coupling = Curvature | Collection[tuple[int, int]] | Sequence[Terms]
"""What a curvature callable may return."""


def resolve(curvature: object, equation: Equation) -> Coupling:
    """The coupling of one equation: call `curvature` if it is a callable."""
    if isinstance(curvature, Curvature):
        return curvature
    return curvature(equation)


def coupled(coupling: Coupling, k: int, j: int) -> bool:
    """Whether operands `k` and `j` couple under an operand-level coupling."""
    if coupling is Curvature.NONLINEAR:
        return True
    if coupling is Curvature.BILINEAR:
        return k != j
    if coupling is Curvature.ZERO:
        return False
    return (k, j) in coupling or (j, k) in coupling


MAX_CONTRACTION_TERMS = 1 << 26
"""Largest number of products enumerated for an exact `dot_general` coupling."""


def dot_general_terms(equation: Equation) -> Curvature | list[Terms]:
    """Curvature of `dot_general`: one term per product `lhs[b, m, k] * rhs[b, k, n]`.

    Exact where `Curvature.BILINEAR` couples every element of a contraction with every
    other: the Hessian of `r @ r` is that of `sum(r ** 2)`, not a dense one. A known
    (constant) operand has no pattern, so then there are no pairs to find at all.

    Examples:
        >>> from asdex.detection._rules import register_rule  # doctest: +SKIP
        >>> register_rule(  # doctest: +SKIP
        ...     "dot_general", dot_general_rule, curvature=dot_general_terms
        ... )
    """
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = equation.params["dimension_numbers"]
    lhs, rhs = equation.operands
    if lhs.known or rhs.known:
        return Curvature.BILINEAR
    lhs_free = [d for d in range(len(lhs.shape)) if d not in (*lhs_contract, *lhs_batch)]
    rhs_free = [d for d in range(len(rhs.shape)) if d not in (*rhs_contract, *rhs_batch)]
    b = math.prod(lhs.shape[d] for d in lhs_batch)
    k = math.prod(lhs.shape[d] for d in lhs_contract)
    m = math.prod(lhs.shape[d] for d in lhs_free)
    n = math.prod(rhs.shape[d] for d in rhs_free)
    if b * m * n * k > MAX_CONTRACTION_TERMS:
        return Curvature.BILINEAR
    lhs_ids = np.arange(lhs.size, dtype=np.int64).reshape(lhs.shape)
    lhs_ids = lhs_ids.transpose([*lhs_batch, *lhs_free, *lhs_contract]).reshape(b, m, 1, k)
    rhs_ids = np.arange(rhs.size, dtype=np.int64).reshape(rhs.shape)
    rhs_ids = rhs_ids.transpose([*rhs_batch, *rhs_free, *rhs_contract]).reshape(b, 1, n, k)
    shape = (b, m, n, k)
    return [Terms(
        result=0,
        result_elements=np.repeat(np.arange(b * m * n, dtype=np.int64), k),
        left=0,
        left_elements=np.broadcast_to(lhs_ids, shape).reshape(-1),
        right=1,
        right_elements=np.broadcast_to(rhs_ids, shape).reshape(-1),
    )]
