"""Pattern-level entry points: `jacobian_coloring_from_sparsity` and the Hessian one."""

from __future__ import annotations

from typing import Any, get_args

import numpy as np

from asdex._pattern import ColoredPattern, HessianMode, JacobianMode, SparsityPattern
from asdex.coloring._greedy import Order, color_cols, color_rows
from asdex.coloring._symmetric import color_acyclic, color_symmetric


def as_pattern(sparsity: Any) -> SparsityPattern:
    """Accept a `SparsityPattern`, a 2-D array (nonzeros are the pattern) or a `BCOO`.

    Raises:
        ValueError: If the input is none of those, or not 2-D.

    Examples:
        >>> as_pattern(np.eye(2)).nnz
        2
    """
    if isinstance(sparsity, SparsityPattern):
        return sparsity
    if hasattr(sparsity, "indices") and hasattr(sparsity, "n_batch"):
        return SparsityPattern.from_bcoo(sparsity)
    try:
        dense = np.asarray(sparsity)
    except Exception as error:
        raise ValueError(f"Cannot read a sparsity pattern from {type(sparsity)}.") from error
    if dense.ndim != 2 or dense.dtype == object:
        raise ValueError(
            "Expected a SparsityPattern, a 2-D array or a 2-D BCOO matrix, got "
            f"{type(sparsity).__name__} with shape {getattr(dense, 'shape', None)}."
        )
    return SparsityPattern.from_dense(dense)


def _symmetric_coloring(
    pattern: SparsityPattern, mode: str, method: str, postprocess: bool, order: Order,
    seed: int | None,
) -> ColoredPattern:
    if method == "star":
        colors, num_colors, star_set = color_symmetric(pattern, postprocess=postprocess,
                                                       order=order, seed=seed)
        return ColoredPattern(pattern, colors, num_colors, True, mode, star_set,  # type: ignore[arg-type]
                              method="star", order=_order_name(order))
    if method == "acyclic":
        colors, num_colors = color_acyclic(pattern, postprocess=postprocess, order=order,
                                           seed=seed)
        return ColoredPattern(pattern, colors, num_colors, True, mode, None,  # type: ignore[arg-type]
                              method="acyclic", order=_order_name(order))
    raise ValueError(f"Unknown symmetric method {method!r}; expected 'star' or 'acyclic'.")


def _order_name(order: Order) -> str:
    return order if isinstance(order, str) else "custom"


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
            (rows and columns at once, see `color_bidirectional`) otherwise.
        order: Vertex order (default "largest_first"); see `asdex.coloring.color_cols`.
        seed: Seed for `order="random"`.

    Returns:
        The `ColoredPattern`.

    Raises:
        ValueError: On an unknown mode or method, or a non-square symmetric pattern.

    Examples:
        >>> jacobian_coloring_from_sparsity(np.eye(3)).num_colors
        1
    """
    pattern = as_pattern(sparsity)
    if mode is not None and mode not in get_args(JacobianMode):
        raise ValueError(f"Unknown Jacobian mode {mode!r}; expected 'fwd', 'rev' or None.")
    if symmetric:
        return _symmetric_coloring(pattern, mode or "fwd", method or "star", postprocess,
                                   order, seed)
    if method == "bidirectional":
        from asdex.coloring._bidirectional import color_bidirectional

        colors, num_col, num_row = color_bidirectional(pattern, seed=seed)
        return ColoredPattern(pattern, colors, num_col + num_row, False, mode or "fwd",
                              method="bidirectional_acyclic", order="best")
    if method not in (None, "greedy"):
        raise ValueError(f"Unknown Jacobian method {method!r}; expected 'greedy' or "
                         "'bidirectional' (or 'star'/'acyclic' with symmetric=True).")
    if mode == "rev":
        colors, num_colors = color_rows(pattern, order=order, seed=seed)
    elif mode == "fwd":
        colors, num_colors = color_cols(pattern, order=order, seed=seed)
    else:
        colors, num_colors = color_cols(pattern, order=order, seed=seed)
        row_colors, num_row = color_rows(pattern, order=order, seed=seed)
        mode = "fwd"
        if num_row < num_colors:
            colors, num_colors, mode = row_colors, num_row, "rev"
    return ColoredPattern(pattern, colors, num_colors, False, mode, method="greedy",
                          order=_order_name(order))


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
        return _symmetric_coloring(pattern, mode, method or "star", postprocess, order, seed)
    if method not in (None, "greedy"):
        raise ValueError(f"Unknown method {method!r} for symmetric=False; expected 'greedy'.")
    colors, num_colors = color_cols(pattern, order=order, seed=seed)
    return ColoredPattern(pattern, colors, num_colors, False, mode, method="greedy",
                          order=_order_name(order))
