"""`spy`: plot a pattern or a coloring with matplotlib (the optional `plot` extra)."""

from __future__ import annotations

import textwrap
from typing import Any

import numpy as np

from asdex._pattern import ColoredPattern, SparsityPattern


def _entry_colors(colored: ColoredPattern) -> np.ndarray:
    """Color of the vertex that seeds each nonzero (its row in "rev" mode, else column)."""
    sparsity = colored.sparsity
    vertex = sparsity.rows if colored.mode == "rev" else sparsity.cols
    colors = np.asarray(colored.colors)
    if colors.shape != (sparsity.m if colored.mode == "rev" else sparsity.n,):
        raise ValueError(
            f"spy cannot attribute colors of shape {colors.shape} to the entries of a "
            f"{sparsity.shape} pattern in mode {colored.mode!r}."
        )
    return colors[vertex]


def compressed_image(colored: ColoredPattern) -> np.ndarray:
    """The compressed pattern as an image: each cell holds its color, NaN where empty.

    Mode "rev" compresses rows into shape `(num_colors, n)`; the other modes compress
    columns into shape `(m, num_colors)`. Neutral vertices (color `-1`) are left out.

    Examples:
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> compressed_image(ColoredPattern(p, np.array([0, 0]), 1, False, "fwd")).tolist()
        [[0.0], [0.0]]
    """
    sparsity = colored.sparsity
    colors = _entry_colors(colored)
    keep = colors >= 0
    if colored.mode == "rev":
        image = np.full((colored.num_colors, sparsity.n), np.nan)
        image[colors[keep], sparsity.cols[keep]] = colors[keep]
    else:
        image = np.full((sparsity.m, colored.num_colors), np.nan)
        image[sparsity.rows[keep], colors[keep]] = colors[keep]
    return image


_MAX_PIXELS = 2000
"""The most pixels an image has along one side; larger patterns are binned."""

_MAX_ASPECT = 8
"""Images more elongated than this fill the axes instead of keeping square cells."""

_TITLE_WIDTH = 44
"""Titles wrap at this many characters, so that they fit above a narrow panel."""


def _binned(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int], pixels: int
) -> np.ndarray:
    """An image of at most `pixels` cells a side; a cell shows a value of one of its entries."""
    row_scale = max(1, -(-shape[0] // pixels))
    col_scale = max(1, -(-shape[1] // pixels))
    image = np.full((-(-shape[0] // row_scale), -(-shape[1] // col_scale)), np.nan)
    image[rows // row_scale, cols // col_scale] = values
    return image


def _image(
    pattern: SparsityPattern | ColoredPattern, compressed: bool, pixels: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """The (binned) image to draw, and the shape of the matrix it shows."""
    if isinstance(pattern, SparsityPattern):
        values = np.zeros(pattern.nnz)
        return _binned(pattern.rows, pattern.cols, values, pattern.shape, pixels), pattern.shape
    if compressed:
        image = compressed_image(pattern)
        filled = np.nonzero(~np.isnan(image))
        return _binned(*filled, image[filled], image.shape, pixels), image.shape
    sparsity = pattern.sparsity
    colors = _entry_colors(pattern).astype(float)
    colors[colors < 0] = np.nan
    return _binned(sparsity.rows, sparsity.cols, colors, sparsity.shape, pixels), sparsity.shape


def _axes_pixels(ax: Any) -> int:
    """How many screen pixels the axes span along their longer side, within bounds."""
    extent = ax.get_window_extent()
    return int(min(max(extent.width, extent.height, 64), _MAX_PIXELS))


def spy(
    pattern: SparsityPattern | ColoredPattern,
    *,
    ax: Any = None,
    compressed: bool = False,
    cmap: Any = None,
    **kwargs: Any,
) -> Any:
    """Plot a sparsity pattern, or a colored pattern with its colors, using matplotlib.

    Args:
        pattern: The `SparsityPattern` or `ColoredPattern` to plot.
        ax: Matplotlib axes to draw on; a new figure is created when `None`.
        compressed: For a `ColoredPattern`, plot the compressed pattern (one column per
            color, or one row per color in mode "rev") instead of the original.
        cmap: Colormap for colored patterns; `tab10` by default (`tab20` beyond ten
            colors). A plain pattern is drawn in black.
        **kwargs: Passed on to `ax.imshow`.

    Returns:
        The matplotlib axes.

    Examples:
        >>> import matplotlib
        >>> import numpy as np
        >>> from asdex import SparsityPattern, spy
        >>> matplotlib.use("Agg")
        >>> ax = spy(SparsityPattern.from_dense(np.eye(3)))
        >>> print(ax.get_title())
        SparsityPattern(shape=(3, 3), nnz=3,
        density=0.3333)
    """
    try:
        import matplotlib.pyplot as plt
        from matplotlib.colors import ListedColormap
    except ImportError:
        raise ImportError(
            "spy needs matplotlib; install it with `pip install asdex[plot]`."
        ) from None
    if not isinstance(pattern, SparsityPattern | ColoredPattern):
        raise TypeError(
            f"spy expects a SparsityPattern or ColoredPattern, got {type(pattern).__name__}."
        )
    if compressed and not isinstance(pattern, ColoredPattern):
        raise ValueError("compressed=True needs a ColoredPattern.")
    if ax is None:
        _, ax = plt.subplots()
    image, (rows, cols) = _image(pattern, compressed, _axes_pixels(ax))
    if isinstance(pattern, SparsityPattern):
        colormap, vmin, vmax = ListedColormap(["black"]), 0, 1
    else:
        colormap = cmap if cmap is not None else ("tab10" if pattern.num_colors <= 10 else "tab20")
        colormap = plt.get_cmap(colormap)
        vmin, vmax = 0, max(pattern.num_colors - 1, 1)
    kwargs.setdefault("interpolation", "nearest")
    kwargs.setdefault("extent", (-0.5, cols - 0.5, rows - 0.5, -0.5))
    if max(rows, cols) > _MAX_ASPECT * max(min(rows, cols), 1):
        kwargs.setdefault("aspect", "auto")
    ax.imshow(np.ma.masked_invalid(image), cmap=colormap, vmin=vmin, vmax=vmax, **kwargs)
    title = ("Compressed " if compressed else "") + repr(pattern).splitlines()[0]
    ax.set_title(textwrap.fill(title, _TITLE_WIDTH), fontsize="small")
    return ax
