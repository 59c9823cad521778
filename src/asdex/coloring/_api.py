"""Pattern-level entry points: `jacobian_coloring_from_sparsity` and the Hessian one.

Each colors the pattern and builds the `DecompressionPlan` the result carries: the seed
passes and the schedule, made here where the partition and the algorithm are known.
"""

from __future__ import annotations

from typing import Any, get_args

import numpy as np
from numpy.typing import NDArray

from asdex._pattern import (
    Algorithm,
    ColoredPattern,
    ColoringMode,
    HessianMode,
    JacobianMode,
    Partition,
    SparsityPattern,
    as_pattern,
)
from asdex._plan import DecompressionPlan, DecompressionSchedule, PassKind, SeedPass
from asdex.coloring._acyclic import acyclic_schedule
from asdex.coloring._bidirectional import bidirectional_schedule, color_bidirectional
from asdex.coloring._greedy import Order, color_cols, color_one_sided, color_rows
from asdex.coloring._schedule import column_schedule, row_schedule
from asdex.coloring._star import star_schedule, star_set_from_hubs
from asdex.coloring._symmetric import acyclic_coloring, star_coloring


def _order_name(order: Order) -> str:
    return order if isinstance(order, str) else "custom"


def _one_pass(
    pattern: SparsityPattern, colors: NDArray[np.int32], num_colors: int, *, kind: PassKind,
    symmetric: bool, mode: ColoringMode, algorithm: Algorithm, order: str,
    schedule: DecompressionSchedule, star_set: Any = None,
) -> ColoredPattern:
    partition: Partition = "row" if kind == "vjp" else "column"
    plan = DecompressionPlan((SeedPass(kind, colors, num_colors),), schedule)
    return ColoredPattern(pattern, colors, num_colors, symmetric, mode, star_set, algorithm,
                          partition, order, plan)


def _symmetric_coloring(
    pattern: SparsityPattern, mode: ColoringMode, kind: PassKind, method: str,
    postprocess: bool, order: Order, seed: int | None,
) -> ColoredPattern:
    options = {"postprocess": postprocess, "forced_colors": None, "order": order, "seed": seed}
    if method == "star":
        graph, colors, num_colors, hubs = star_coloring(pattern, **options)
        star_set = star_set_from_hubs(graph, colors, hubs)
        schedule = star_schedule(graph, colors, star_set.hubs, pattern.nnz, num_colors)
        return _one_pass(pattern, colors, num_colors, kind=kind, symmetric=True, mode=mode,
                         algorithm="star", order=_order_name(order), schedule=schedule,
                         star_set=star_set)
    if method == "acyclic":
        graph, colors, num_colors = acyclic_coloring(pattern, **options)
        schedule = acyclic_schedule(graph, colors, pattern.nnz, num_colors)
        return _one_pass(pattern, colors, num_colors, kind=kind, symmetric=True, mode=mode,
                         algorithm="acyclic", order=_order_name(order), schedule=schedule)
    raise ValueError(f"Unknown symmetric method {method!r}; expected 'star' or 'acyclic'.")


def _bidirectional_coloring(pattern: SparsityPattern, seed: int | None) -> ColoredPattern:
    colors, num_col, num_row = color_bidirectional(pattern, method="acyclic", seed=seed)
    num_colors = num_col + num_row
    row_colors, col_colors = colors[: pattern.m], colors[pattern.m :]
    passes = (
        SeedPass("jvp", col_colors, num_col),
        SeedPass("vjp", np.where(row_colors >= 0, row_colors - num_col, -1), num_row),
    )
    schedule = bidirectional_schedule(pattern, colors, num_colors, "acyclic")
    return ColoredPattern(pattern, colors, num_colors, False, "fwd", None, "acyclic",
                          "bidirectional", "best", DecompressionPlan(passes, schedule))


def _greedy_coloring(
    pattern: SparsityPattern, mode: ColoringMode, colors: NDArray[np.int32], num_colors: int,
    order: Order,
) -> ColoredPattern:
    if mode == "rev":
        kind: PassKind = "vjp"
        schedule = row_schedule(pattern, colors, num_colors)
    else:
        kind = "jvp" if mode == "fwd" else "hvp"
        schedule = column_schedule(pattern, colors, num_colors)
    return _one_pass(pattern, colors, num_colors, kind=kind, symmetric=False, mode=mode,
                     algorithm="greedy", order=_order_name(order), schedule=schedule)


def jacobian_coloring_from_sparsity(
    sparsity: Any,
    *,
    mode: JacobianMode | None = None,
    symmetric: bool = False,
    postprocess: bool = False,
    method: str | None = None,
    order: Order = "largest_first",
    seed: int | None = None,
) -> ColoredPattern:
    """Color a Jacobian sparsity pattern: one JVP or VJP per color.

    Args:
        sparsity: A `SparsityPattern`, NumPy array or `BCOO` matrix of shape `(m, n)`.
        mode: "fwd" (column coloring, JVPs) or "rev" (row coloring, VJPs). `None` picks
            whichever needs fewer colors, ties going to "fwd"; "fwd" if `symmetric`.
        symmetric: Use a symmetric (star) coloring; needs a square pattern.
        postprocess: Only read when symmetric: make colors never needed neutral (-1).
        method: "star" or "acyclic" when symmetric (default "star"); "bidirectional"
            (rows and columns at once, see `color_bidirectional`; `mode` stays `None`)
            otherwise.
        order: Vertex order (default "largest_first"); see `asdex.coloring.color_cols`.
        seed: Seed for `order="random"`.

    Returns:
        The `ColoredPattern`.

    Raises:
        ValueError: On an unknown mode or method, or a non-square symmetric pattern.

    Examples:
        >>> import numpy as np
        >>> from asdex import jacobian_coloring_from_sparsity
        >>> jacobian_coloring_from_sparsity(np.eye(3)).num_colors
        1
    """
    pattern = as_pattern(sparsity)
    if mode is not None and mode not in get_args(JacobianMode):
        raise ValueError(f"Unknown Jacobian mode {mode!r}; expected 'fwd', 'rev' or None.")
    if symmetric:
        mode = mode or "fwd"
        return _symmetric_coloring(pattern, mode, "jvp" if mode == "fwd" else "vjp",
                                   method or "star", postprocess, order, seed)
    if method == "bidirectional":
        if mode is not None:
            raise ValueError("A bidirectional coloring uses JVPs and VJPs both: leave "
                             f"`mode` as None, got mode={mode!r}.")
        return _bidirectional_coloring(pattern, seed)
    if method not in (None, "greedy"):
        raise ValueError(f"Unknown Jacobian method {method!r}; expected 'greedy' or "
                         "'bidirectional' (or 'star'/'acyclic' with symmetric=True).")
    if mode == "rev":
        colors, num_colors = color_rows(pattern, order=order, seed=seed)
    elif mode == "fwd":
        colors, num_colors = color_cols(pattern, order=order, seed=seed)
    else:
        colors, num_colors, mode = color_one_sided(pattern, order=order, seed=seed)
    return _greedy_coloring(pattern, mode, colors, num_colors, order)


def hessian_coloring_from_sparsity(
    sparsity: Any,
    *,
    mode: HessianMode | None = None,
    symmetric: bool = True,
    postprocess: bool = False,
    method: str | None = None,
    order: Order = "largest_first",
    seed: int | None = None,
) -> ColoredPattern:
    """Color a Hessian sparsity pattern: one HVP per color.

    Args:
        sparsity: A `SparsityPattern`, NumPy array or `BCOO` matrix of shape `(n, n)`.
        mode: HVP strategy: "fwd_over_rev" (default), "rev_over_fwd" or "rev_over_rev".
        symmetric: Exploit symmetry (default). `False` uses a column coloring.
        postprocess: Only read when symmetric: make colors never needed neutral (-1).
        method: "star" (default, direct decompression) or "acyclic" (fewer colors,
            decompression by substitution) when symmetric.
        order: Vertex order (default "largest_first"); see `asdex.coloring.color_cols`.
        seed: Seed for `order="random"`.

    Returns:
        The `ColoredPattern`.

    Raises:
        ValueError: On an unknown mode or method, or a non-square pattern.

    Examples:
        >>> import numpy as np
        >>> from asdex import hessian_coloring_from_sparsity
        >>> hessian_coloring_from_sparsity(np.ones((3, 3))).num_colors
        3
    """
    pattern = as_pattern(sparsity)
    if mode is not None and mode not in get_args(HessianMode):
        raise ValueError(f"Unknown Hessian mode {mode!r}; expected one of "
                         f"{get_args(HessianMode)} or None.")
    if pattern.m != pattern.n:
        raise ValueError(f"A Hessian pattern must be square, got shape {pattern.shape}.")
    mode = mode or "fwd_over_rev"
    if symmetric:
        return _symmetric_coloring(pattern, mode, "hvp", method or "star", postprocess, order,
                                   seed)
    if method not in (None, "greedy"):
        raise ValueError(f"Unknown method {method!r} for symmetric=False; expected 'greedy'.")
    colors, num_colors = color_cols(pattern, order=order, seed=seed)
    return _greedy_coloring(pattern, mode, colors, num_colors, order)
