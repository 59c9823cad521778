"""Pictures for the command line, with matplotlib when it is installed (the `plot` extra)."""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import numpy as np

import asdex

NO_MATPLOTLIB = ("matplotlib is not installed, so no picture is saved "
                 "(install it with `pip install -e \".[plot]\"`).")


def have_matplotlib() -> bool:
    """Whether matplotlib imports.

    Examples:
        >>> from asdex._cli._figures import have_matplotlib
        >>> isinstance(have_matplotlib(), bool)
        True
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(panels: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, panels, figsize=(5.2 * panels, 4.8), layout="constrained")


def _save(fig, path: pathlib.Path) -> pathlib.Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


ZOOM = 60
"""Patterns with more rows or columns than this also get a panel of their leading block."""


def save_coloring_figure(coloring: asdex.ColoredPattern, title: str,
                         path: pathlib.Path) -> pathlib.Path:
    """Save the colored pattern, its leading block if it is large, and its compressed form.

    Examples:
        >>> import pathlib, tempfile, numpy as np, asdex
        >>> from asdex._cli._figures import save_coloring_figure
        >>> coloring = asdex.jacobian_coloring_from_sparsity(np.eye(4) + np.eye(4, k=1))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     save_coloring_figure(coloring, "J", pathlib.Path(tmp) / "j.png").exists()
        True
    """
    from matplotlib.ticker import MaxNLocator

    m, n = coloring.sparsity.shape
    zoom = max(m, n) > ZOOM
    fig, axes = _figure(3 if zoom else 2)
    asdex.spy(coloring, ax=axes[0])
    axes[0].set_title(f"{title}: {m}x{n}, {coloring.sparsity.nnz} nonzeros", fontsize=10)
    if zoom:
        size = min(m, n, ZOOM)
        asdex.spy(leading_block(coloring, size), ax=axes[1])
        axes[1].set_title(f"its leading {size}x{size} block", fontsize=10)
    asdex.spy(coloring, ax=axes[-1], compressed=True)
    axes[-1].set_aspect("auto")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[-1].set_title(f"compressed: {coloring.num_colors} colors", fontsize=10)
    return _save(fig, path)


def leading_block(coloring: asdex.ColoredPattern, size: int) -> asdex.ColoredPattern:
    """The leading `size x size` block of a coloring, to show what a big one looks like.

    Examples:
        >>> import numpy as np, asdex
        >>> from asdex._cli._figures import leading_block
        >>> coloring = asdex.jacobian_coloring_from_sparsity(np.eye(6) + np.eye(6, k=1))
        >>> leading_block(coloring, 3).sparsity.todense().tolist()
        [[1, 1, 0], [0, 1, 1], [0, 0, 1]]
    """
    pattern = coloring.sparsity
    keep = (pattern.rows < size) & (pattern.cols < size)
    block = asdex.SparsityPattern.from_coo(pattern.rows[keep], pattern.cols[keep], (size, size))
    return asdex.ColoredPattern(block, np.asarray(coloring.colors)[:size], coloring.num_colors,
                                coloring.symmetric, coloring.mode)


def save_demo_figure(coloring: asdex.ColoredPattern, residuals: Sequence[float],
                     solution: np.ndarray, path: pathlib.Path) -> pathlib.Path:
    """Save the demo's picture: the colored Jacobian, Newton's convergence, the solution.

    The Jacobian of an `N x N` grid shows its leading `3N x 3N` block, where the stencil
    is visible.

    Examples:
        >>> import pathlib, tempfile, numpy as np, asdex
        >>> from asdex._cli._figures import save_demo_figure
        >>> coloring = asdex.jacobian_coloring_from_sparsity(np.eye(4))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = pathlib.Path(tmp) / "demo.png"
        ...     save_demo_figure(coloring, [1.0, 1e-3], np.ones((2, 2)), path).exists()
        True
    """
    fig, (spy_ax, conv_ax, sol_ax) = _figure(3)
    m, n = coloring.sparsity.shape
    size = min(n, 3 * solution.shape[0])
    asdex.spy(leading_block(coloring, size), ax=spy_ax)
    shown = f"leading {size}x{size} block of " if size < n else ""
    spy_ax.set_title(f"{shown}Jacobian {m}x{n}\n{coloring.sparsity.nnz} nonzeros, "
                     f"{coloring.num_colors} colors", fontsize=10)
    conv_ax.semilogy(range(len(residuals)), residuals, "o-")
    conv_ax.set_xlabel("Newton step")
    conv_ax.set_ylabel("‖F(u)‖∞")
    conv_ax.set_title("sparse Newton's convergence", fontsize=10)
    conv_ax.grid(True, which="both", alpha=0.3)
    image = sol_ax.imshow(solution, origin="lower", extent=(0, 1, 0, 1), cmap="viridis")
    fig.colorbar(image, ax=sol_ax, shrink=0.8)
    sol_ax.set_title(f"solution u (max {solution.max():.4f})", fontsize=10)
    return _save(fig, path)
