"""Windowed reductions: each result element depends on the operand elements of its window.

The window geometry (strides, padding, base and window dilation) is shared with
`conv_general_dilated` (see `contractions.py`): `window_table` lists, for every
result position and window offset, the operand position it reads, or `-1` where
the window lies in padding or in a hole of the base dilation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from asdex.detection import _jax
from asdex.detection._maps import Broadcast, Matrix
from asdex.detection._registry import lookup, register_rule
from asdex.detection._rule import Curvature, Equation, Output


def axis_table(
    size: int,
    window: int,
    stride: int,
    padding: tuple[int, int],
    base_dilation: int = 1,
    window_dilation: int = 1,
) -> np.ndarray:
    """Operand positions read along one axis: an array of shape `(out, window)`, `-1` = none.

    Examples:
        >>> axis_table(5, 2, 2, (0, 1)).tolist()
        [[0, 1], [2, 3], [4, -1]]
    """
    dilated = (size - 1) * base_dilation + 1 if size > 0 else 0
    padded = dilated + padding[0] + padding[1]
    span = (window - 1) * window_dilation + 1 if window > 0 else 0
    out = max(0, (padded - span) // stride + 1) if padded >= span else 0
    position = (
        np.arange(out, dtype=np.int64)[:, None] * stride
        + np.arange(window, dtype=np.int64)[None, :] * window_dilation
        - padding[0]
    )
    inside = (position >= 0) & (position < dilated) & (position % base_dilation == 0)
    return np.where(inside, position // base_dilation, -1)


def window_table(
    shape: Sequence[int],
    window: Sequence[int],
    strides: Sequence[int],
    padding: Sequence[tuple[int, int]],
    base_dilation: Sequence[int] | None = None,
    window_dilation: Sequence[int] | None = None,
) -> np.ndarray:
    """Flat operand index read by each (result element, window offset) pair, `-1` = none.

    Args:
        shape: Shape of the operand (over the windowed axes).
        window: Window extent per axis.
        strides: Window stride per axis.
        padding: `(low, high)` padding per axis; negative values crop.
        base_dilation: Dilation of the operand per axis (transposed convolutions).
        window_dilation: Dilation of the window per axis (atrous convolutions).

    Returns:
        An int64 array of shape `(result.size, prod(window))`, row-major over both.
    """
    rank = len(shape)
    base_dilation = base_dilation or (1,) * rank
    window_dilation = window_dilation or (1,) * rank
    flat = np.zeros((1, 1), dtype=np.int64)
    valid = np.ones((1, 1), dtype=bool)
    for d in range(rank):
        table = axis_table(shape[d], window[d], strides[d], tuple(padding[d]),
                           base_dilation[d], window_dilation[d])
        out, win = table.shape
        flat = (flat[:, None, :, None] * shape[d] + table[None, :, None, :]).reshape(
            flat.shape[0] * out, flat.shape[1] * win)
        valid = (valid[:, None, :, None] & (table >= 0)[None, :, None, :]).reshape(flat.shape)
    return np.where(valid, flat, -1)


def matrix_from_table(table: np.ndarray, columns: int) -> Matrix:
    """A `Matrix` map whose row `i` holds the non-negative entries of `table[i]`."""
    valid = table >= 0
    indptr = np.zeros(table.shape[0] + 1, dtype=np.int64)
    np.cumsum(valid.sum(axis=1), out=indptr[1:])
    indices = table[valid]
    matrix = sp.csr_array((np.ones(indices.size, bool), indices, indptr),
                          shape=(table.shape[0], columns))
    matrix.sum_duplicates()
    return Matrix(matrix)


def _window_params(eqn: Equation) -> tuple[np.ndarray, int]:
    operand = eqn.operands[0]
    table = window_table(
        operand.shape,
        eqn.params["window_dimensions"],
        eqn.params["window_strides"],
        eqn.params["padding"],
        eqn.params.get("base_dilation"),
        eqn.params.get("window_dilation"),
    )
    return table, operand.size


def reduce_window_rule(eqn: Equation) -> list[Output]:
    """`reduce_window_{sum,max,min}`: each result element depends on its window."""
    table, size = _window_params(eqn)
    return [Output(maps=((0, matrix_from_table(table, size)),))]


def generic_reduce_window_rule(eqn: Equation) -> list[Output]:
    """`reduce_window` with a jaxpr: operands `(*arrays, *init_values)`.

    Every result depends on the windows of every array and on every init value
    (padding and empty windows read the init values).
    """
    count = len(eqn.operands) // 2
    table, size = _window_params(eqn)
    window = matrix_from_table(table, size)
    out_size = table.shape[0]
    init = Broadcast(np.zeros(out_size, dtype=np.int64))
    maps = tuple((k, window) for k in range(count)) + tuple(
        (count + k, init) for k in range(count)
    )
    return [Output(maps=maps) for _ in eqn.out_shapes]


def generic_reduce_window_curvature(eqn: Equation) -> Curvature:
    """`Curvature.ZERO` when every step of the reducer is (piecewise) linear.

    A bilinear step (e.g. `mul`) with a constant factor counts as linear.
    """
    jaxpr, _ = _jax.closed_jaxpr_parts(eqn.params["jaxpr"])
    constant = set(jaxpr.constvars)
    for inner in jaxpr.eqns:
        varying = [v for v in inner.invars if not _jax.is_literal(v) and v not in constant]
        if not varying:
            constant.update(inner.outvars)
            continue
        try:
            curvature = lookup(inner.primitive).curvature
        except NotImplementedError:
            return Curvature.NONLINEAR
        linear = curvature is Curvature.BILINEAR and len(varying) == 1
        if curvature is not Curvature.ZERO and not linear:
            return Curvature.NONLINEAR
    return Curvature.ZERO


def select_and_scatter_add_rule(eqn: Equation) -> list[Output]:
    """`select_and_scatter_add(source, operand)`: transposed windows.

    Result element `j` (shaped like `operand`) sums the `source` elements of the
    windows that contain `j`; `operand` only selects.
    """
    operand = eqn.operands[1]
    table = window_table(
        operand.shape, eqn.params["window_dimensions"], eqn.params["window_strides"],
        eqn.params["padding"],
    )
    rows = np.broadcast_to(np.arange(table.shape[0], dtype=np.int64)[:, None], table.shape)
    valid = table >= 0
    transposed = sp.csr_array(
        (np.ones(int(valid.sum()), bool), (table[valid], rows[valid])),
        shape=(operand.size, table.shape[0]),
    )
    transposed.sum_duplicates()
    return [Output(maps=((0, Matrix(transposed)),))]


def select_and_gather_add_rule(eqn: Equation) -> list[Output]:
    """`select_and_gather_add(tangents, operand)`: windows of `tangents`.

    Each result element is the tangent at the selected position of its window;
    `operand` only selects.
    """
    table, size = _window_params(eqn)
    return [Output(maps=((0, matrix_from_table(table, size)),))]


for _name in ("reduce_window_sum", "reduce_window_max", "reduce_window_min"):
    register_rule(_name, reduce_window_rule, curvature=Curvature.ZERO)
register_rule("reduce_window", generic_reduce_window_rule,
              curvature=generic_reduce_window_curvature)
register_rule("select_and_scatter_add", select_and_scatter_add_rule, curvature=Curvature.ZERO)
register_rule("select_and_gather_add", select_and_gather_add_rule, curvature=Curvature.ZERO)
