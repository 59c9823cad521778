"""Contractions: `dot_general` and `conv_general_dilated`.

Both are bilinear: a result element depends on the operand elements it multiplies.
When one operand is a known constant, a result element depends on the other
operand's element only where the constant factor is nonzero (zero-skipping), so
that a constant banded matrix times `x` gives exactly the band.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from asdex.detection._maps import DependencyMap, Groups, Matrix
from asdex.detection._registry import register_rule
from asdex.detection._rule import Curvature, Equation, Operand, Output, Terms
from asdex.detection._rules.windows import window_table

MAX_SKIPPING_ENTRIES = 1 << 27
"""Largest zero-skipping `Matrix` built for `dot_general`; beyond it the cheaper
(and still sound) dense-contraction `Groups` map is used."""

MAX_CONTRACTION_TERMS = 1 << 26
"""Largest number of products enumerated for an exact `dot_general` curvature."""


def _canonical_ids(operand: Operand, order: list[int], shape: tuple[int, ...]) -> np.ndarray:
    """Flat ids of `operand`'s elements, transposed to `order` and reshaped to `shape`."""
    ids = np.arange(operand.size, dtype=np.int64).reshape(operand.shape)
    return ids.transpose(order).reshape(shape)


def _pairs_matrix(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> Matrix:
    matrix = sp.csr_array((np.ones(rows.size, bool), (rows, cols)), shape=shape)
    matrix.sum_duplicates()
    return Matrix(matrix)


def _nonzero(
    value: np.ndarray | None, order: list[int], shape: tuple[int, ...]
) -> np.ndarray | None:
    """Nonzero mask of a known operand (NaN counts as nonzero), in canonical layout.

    The mask is transposed to `order` and reshaped to `shape`; `None` for an unknown
    operand.
    """
    if value is None:
        return None
    return (np.asarray(value) != 0).transpose(order).reshape(shape)


def dot_general_rule(eqn: Equation) -> list[Output]:
    """`dot_general`: result `(b, m, n)` depends on `lhs[b, m, :]` and `rhs[b, :, n]`.

    Canonical layout: `b` runs over the batch dimensions, `m` over the free dimensions
    of `lhs`, `n` over those of `rhs`, `k` over the contracted ones; the result is laid
    out as `(b, m, n)`. With an unknown partner the maps are `Groups` (cheap at any
    size); with a known partner containing zeros, a `Matrix` that skips them.
    """
    (lhs_contract, rhs_contract), (lhs_batch, rhs_batch) = eqn.params["dimension_numbers"]
    lhs, rhs = eqn.operands
    lhs_free = [d for d in range(len(lhs.shape)) if d not in lhs_contract and d not in lhs_batch]
    rhs_free = [d for d in range(len(rhs.shape)) if d not in rhs_contract and d not in rhs_batch]
    b = math.prod(lhs.shape[d] for d in lhs_batch)
    k = math.prod(lhs.shape[d] for d in lhs_contract)
    m = math.prod(lhs.shape[d] for d in lhs_free)
    n = math.prod(rhs.shape[d] for d in rhs_free)
    lhs_order = [*lhs_batch, *lhs_free, *lhs_contract]
    rhs_order = [*rhs_batch, *rhs_contract, *rhs_free]
    lhs_ids = _canonical_ids(lhs, lhs_order, (b, m, k))
    rhs_ids = _canonical_ids(rhs, rhs_order, (b, k, n))
    out_size = b * m * n
    maps: list[tuple[int, DependencyMap]] = []
    if lhs.value is None:
        rhs_mask = _nonzero(rhs.value, rhs_order, (b, k, n))
        maps.append((0, _dot_map(lhs_ids, rhs_mask, out_size, lhs.size, swap=False)))
    if rhs.value is None:
        lhs_mask = _nonzero(lhs.value, lhs_order, (b, m, k))
        maps.append((1, _dot_map(rhs_ids, lhs_mask, out_size, rhs.size, swap=True)))
    return [Output(maps=tuple(maps))]


def _dot_map(
    ids: np.ndarray, partner_mask: np.ndarray | None, out_size: int, size: int, *, swap: bool
) -> DependencyMap:
    """Map of one `dot_general` operand.

    `ids` is the operand's canonical id array: `(b, m, k)` for `lhs`, `(b, k, n)` for
    `rhs` (`swap=True`). `partner_mask` is the other operand's canonical nonzero mask,
    if it is known.
    """
    b = ids.shape[0]
    # Work in the lhs view: this operand is (b, free, k), the partner (b, other, k).
    own = ids.transpose(0, 2, 1) if swap else ids
    free = own.shape[1]
    mask = partner_mask
    if mask is not None and not swap:
        mask = mask.transpose(0, 2, 1)
    other = (partner_mask.shape[1] if swap else partner_mask.shape[2]) if mask is not None else 0
    if mask is None or mask.all() or free * int(mask.sum()) > MAX_SKIPPING_ENTRIES:
        group = np.arange(b * free, dtype=np.int64).reshape(b, free)
        operand_group = np.empty(size, dtype=np.int64)
        operand_group[own] = group[:, :, None]
        out_b, out_f = _out_coordinates(b, free, out_size, swap=swap)
        return Groups(out_b * free + out_f, operand_group, b * free)
    nz_b, nz_o, nz_k = np.nonzero(mask)
    f = np.arange(free, dtype=np.int64)[:, None]
    rows = (  # the result is (b, other, free) for rhs, (b, free, other) for lhs
        (nz_b * other + nz_o) * free + f if swap else (nz_b * free + f) * other + nz_o
    )
    cols = own[nz_b[None, :], f, nz_k[None, :]]
    return _pairs_matrix(rows.reshape(-1), cols.reshape(-1), (out_size, size))


def _out_coordinates(b: int, free: int, out_size: int, *, swap: bool
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Batch and own-free coordinates of each result element."""
    flat = np.arange(out_size, dtype=np.int64)
    other = out_size // (b * free) if out_size else 1
    if swap:  # result (b, other, free)
        return flat // (other * free), flat % free
    return flat // (free * other), (flat // other) % free


def conv_rule(eqn: Equation) -> list[Output]:
    """`conv_general_dilated`: each result element depends on its receptive field.

    Result `(n, o, s)` depends on the window of `s` in the input channels of `o`'s
    feature group and the lhs batch of `o`'s batch group, and on the kernel entries
    `(o, c, w)` that meet it.

    Canonical layouts (via `dimension_numbers`): lhs `(N, C, *S)`, rhs `(O, I, *W)`,
    result `(N', O, *S')`. Zero-skipping applies to a known partner.
    """
    lhs, rhs = eqn.operands
    if lhs.value is not None and rhs.value is not None:
        return [Output()]
    spec = eqn.params["dimension_numbers"]
    lhs_spec, rhs_spec, out_spec = spec.lhs_spec, spec.rhs_spec, spec.out_spec
    out_shape = eqn.out_shapes[0]
    feature_groups = eqn.params["feature_group_count"]
    batch_groups = eqn.params["batch_group_count"]
    lhs_c = [lhs.shape[d] for d in lhs_spec]
    rhs_c = [rhs.shape[d] for d in rhs_spec]
    out_c = [out_shape[d] for d in out_spec]
    batch_out, features_out = out_c[0], out_c[1]
    in_per_group = rhs_c[1]
    window = rhs_c[2:]
    table = window_table(
        lhs_c[2:], window, eqn.params["window_strides"], eqn.params["padding"],
        eqn.params["lhs_dilation"], eqn.params["rhs_dilation"],
    )  # (S', W)
    spatial_out, window_size = table.shape
    lhs_ids = _canonical_ids(lhs, list(lhs_spec), (lhs_c[0], lhs_c[1], math.prod(lhs_c[2:])))
    rhs_ids = _canonical_ids(rhs, list(rhs_spec), (features_out, in_per_group, window_size))
    out_ids = _canonical_ids(
        Operand(out_shape, None), list(out_spec), (batch_out, features_out, spatial_out)
    )
    o = np.arange(features_out, dtype=np.int64)
    feature_base = o // (features_out // feature_groups) * in_per_group  # first lhs channel
    batch_base = o // (features_out // batch_groups) * batch_out  # first lhs batch index

    def entries(kernel_mask: np.ndarray) -> tuple[np.ndarray, ...]:
        """Indices `(n, o, s, c, w, lhs position)` of every multiplied pair."""
        p_o, p_c, p_w = np.nonzero(kernel_mask)  # (o, c, w) triples, sorted by o
        position = table[:, p_w]  # (S', P)
        s_idx, p_idx = np.nonzero(position >= 0)
        n_idx = np.arange(batch_out, dtype=np.int64)[:, None]
        return n_idx, p_o[p_idx], s_idx, p_c[p_idx], p_w[p_idx], position[s_idx, p_idx]

    full = np.ones((features_out, in_per_group, window_size), dtype=bool)
    maps: list[tuple[int, DependencyMap]] = []
    if lhs.value is None:
        kernel = _nonzero(rhs.value, list(rhs_spec), full.shape)
        mask = full if kernel is None else kernel
        n_idx, e_o, e_s, e_c, _, e_pos = entries(mask)
        rows = out_ids[n_idx, e_o, e_s]
        cols = lhs_ids[batch_base[e_o] + n_idx, feature_base[e_o] + e_c, e_pos]
        maps.append((0, _pairs_matrix(rows.reshape(-1), cols.reshape(-1),
                                      (math.prod(out_shape), lhs.size))))
    if rhs.value is None:
        n_idx, e_o, e_s, e_c, e_w, e_pos = entries(full)
        rows = out_ids[n_idx, e_o, e_s]
        cols = np.broadcast_to(rhs_ids[e_o, e_c, e_w], rows.shape)
        if lhs.value is not None:
            image = _nonzero(lhs.value, list(lhs_spec), lhs_ids.shape)
            keep = image[batch_base[e_o] + n_idx, feature_base[e_o] + e_c, e_pos]
            rows, cols = rows[keep], cols[keep]
        maps.append((1, _pairs_matrix(rows.reshape(-1), cols.reshape(-1),
                                      (math.prod(out_shape), rhs.size))))
    return [Output(maps=tuple(maps))]


def dot_general_terms(equation: Equation) -> Curvature | list[Terms]:
    """Curvature of `dot_general`: one term per product `lhs[b, m, k] * rhs[b, k, n]`.

    Exact where `Curvature.BILINEAR` couples every element of a contraction with every
    other: the Hessian of `r @ r` is that of `sum(r ** 2)`, not a dense one. A known
    (constant) operand has no pattern, so then there are no pairs to find at all.
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
    lhs_ids = _canonical_ids(lhs, [*lhs_batch, *lhs_free, *lhs_contract], (b, m, 1, k))
    rhs_ids = _canonical_ids(rhs, [*rhs_batch, *rhs_free, *rhs_contract], (b, 1, n, k))
    shape = (b, m, n, k)
    return [Terms(
        result=0,
        result_elements=np.repeat(np.arange(b * m * n, dtype=np.int64), k),
        left=0,
        left_elements=np.broadcast_to(lhs_ids, shape).reshape(-1),
        right=1,
        right_elements=np.broadcast_to(rhs_ids, shape).reshape(-1),
    )]


register_rule("dot_general", dot_general_rule, curvature=dot_general_terms)
register_rule("conv_general_dilated", conv_rule, curvature=Curvature.BILINEAR)
