"""Text rendering of patterns: a dot grid for small ones, braille for large ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from asdex._pattern import ColoredPattern, SparsityPattern

_DOT_LIMIT = 40
"""Patterns with at most this many rows and columns are drawn one character per entry."""

_MAX_WIDTH = 80
_MAX_HEIGHT = 20
_BRAILLE_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]])
_SYMBOLS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _dots(pattern: SparsityPattern, labels: np.ndarray | None = None) -> list[str]:
    """One character per entry: `●` (or the entry's color label) for nonzeros, `⋅` else."""
    grid = np.full(pattern.shape, "⋅", dtype="<U1")
    grid[pattern.rows, pattern.cols] = "●" if labels is None else labels
    return ["".join(row) for row in grid]


def _braille(pattern: SparsityPattern) -> list[str]:
    """Downsample into braille cells of 4 x 2 dots, each lit if any entry falls in it.

    Every dot covers the same `scale x scale` square of entries, keeping the aspect ratio.
    """
    m, n = pattern.shape
    scale = max(1, -(-n // (2 * _MAX_WIDTH)), -(-m // (4 * _MAX_HEIGHT)))
    width, height = -(-n // (2 * scale)), -(-m // (4 * scale))
    dot_rows = pattern.rows.astype(np.int64) // scale
    dot_cols = pattern.cols.astype(np.int64) // scale
    codes = np.zeros((height, width), dtype=np.int64)
    bits = _BRAILLE_BITS[dot_rows % 4, dot_cols % 2]
    np.bitwise_or.at(codes, (dot_rows // 4, dot_cols // 2), bits)
    return ["".join(chr(0x2800 + code) for code in row) for row in codes]


def _frame(lines: list[str]) -> list[str]:
    width = len(lines[0]) if lines else 0
    return ["┌" + "─" * width + "┐", *("│" + line + "│" for line in lines), "└" + "─" * width + "┘"]


def _grid(pattern: SparsityPattern, labels: np.ndarray | None = None) -> list[str]:
    if pattern.m == 0 or pattern.n == 0:
        return []
    if max(pattern.shape) <= _DOT_LIMIT:
        return _frame(_dots(pattern, labels))
    return _frame(_braille(pattern))


def render_sparsity(pattern: SparsityPattern) -> str:
    """Render a pattern: a header line, then its grid.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> print(render_sparsity(SparsityPattern.from_dense(np.eye(2))))
        SparsityPattern(shape=(2, 2), nnz=2, density=0.5)
        ┌──┐
        │●⋅│
        │⋅●│
        └──┘
    """
    return "\n".join([repr(pattern), *_grid(pattern)])


def _summary(colored: ColoredPattern) -> str:
    m, n = colored.sparsity.shape
    if colored.partition == "bidirectional" and colored.plan is not None:
        jvps, vjps = (p.count for p in colored.plan.passes)
        passes, dense = f"JVPs + VJPs ({jvps} + {vjps})", f"{n} JVPs or {m} VJPs"
    elif colored.mode == "fwd":
        passes, dense = "JVPs", f"{n} JVPs or {m} VJPs"
    elif colored.mode == "rev":
        passes, dense = "VJPs", f"{m} VJPs or {n} JVPs"
    else:
        passes, dense = f"HVPs ({colored.mode})", f"{n} HVPs"
    kind = "symmetric" if colored.symmetric else "unsymmetric"
    how = " ".join(word for word in (
        "bidirectional" if colored.partition == "bidirectional" else None, colored.algorithm
    ) if word)
    how = f", {how}" if how else ""
    return f"{colored.num_colors} {passes} (instead of {dense}; {kind} coloring{how})"


def render_coloring(colored: ColoredPattern) -> str:
    """Render a colored pattern: header, the pass count summary, and the grid.

    In a small grid each nonzero shows the color of the vertex that seeds it (its
    column in "fwd" and HVP modes, its row in "rev" mode), as `0-9a-zA-Z`.

    Examples:
        >>> import numpy as np
        >>> from asdex import ColoredPattern, SparsityPattern
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> print(render_coloring(ColoredPattern(p, np.array([0, 0]), 1, False, "fwd")))
        ColoredPattern(shape=(2, 2), nnz=2, num_colors=1, mode='fwd', symmetric=False)
        1 JVPs (instead of 2 JVPs or 2 VJPs; unsymmetric coloring)
        ┌──┐
        │0⋅│
        │⋅0│
        └──┘
    """
    sparsity = colored.sparsity
    colors = np.asarray(colored.colors)
    labels = None
    if colors.shape == (sparsity.m if colored.mode == "rev" else sparsity.n,):
        vertex = sparsity.rows if colored.mode == "rev" else sparsity.cols
        entry_colors = colors[vertex]
        symbols = np.array(list(_SYMBOLS))
        labels = np.where(
            (entry_colors >= 0) & (entry_colors < len(_SYMBOLS)),
            symbols[np.clip(entry_colors, 0, len(_SYMBOLS) - 1)],
            "●",
        )
    return "\n".join([repr(colored), _summary(colored), *_grid(sparsity, labels)])
