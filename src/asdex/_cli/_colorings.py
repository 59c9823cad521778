"""Color one pattern with every algorithm asdex has, for the `inspect` report."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

import asdex
from asdex.coloring import color_bidirectional


@dataclasses.dataclass(frozen=True)
class Colored:
    """One algorithm's result.

    Attributes:
        algorithm: "column", "row", "star", "acyclic" or "bidirectional".
        num_colors: Passes needed (JVPs, VJPs or HVPs; both kinds for bidirectional),
            or `None` when the algorithm does not apply to this pattern.
        passes: The passes in words ("7 JVPs", "2 JVPs + 1 VJP"), or why it does not
            apply.
        lower_bound: The most nonzeros in one row (column coloring) or column (row
            coloring): no coloring of that kind needs fewer; `None` for the others.
        seconds: Time the coloring took.
        coloring: The `ColoredPattern` (`None` for bidirectional and when not applicable).
    """

    algorithm: str
    num_colors: int | None
    passes: str
    lower_bound: int | None
    seconds: float
    coloring: asdex.ColoredPattern | None = None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def max_per_row_and_col(pattern: asdex.SparsityPattern) -> tuple[int, int]:
    """The most nonzeros in one row and in one column.

    Examples:
        >>> import numpy as np, asdex
        >>> from asdex._cli._colorings import max_per_row_and_col
        >>> max_per_row_and_col(asdex.SparsityPattern.from_dense(np.triu(np.ones((3, 3)))))
        (3, 3)
    """
    rows = np.bincount(pattern.rows, minlength=pattern.m)
    cols = np.bincount(pattern.cols, minlength=pattern.n)
    return int(rows.max(initial=0)), int(cols.max(initial=0))


def is_symmetric(pattern: asdex.SparsityPattern) -> bool:
    """Whether the pattern is square and equal to its transpose.

    Examples:
        >>> import numpy as np, asdex
        >>> from asdex._cli._colorings import is_symmetric
        >>> is_symmetric(asdex.SparsityPattern.from_dense(np.eye(3))), is_symmetric(
        ...     asdex.SparsityPattern.from_dense(np.triu(np.ones((3, 3)))))
        (True, False)
    """
    if pattern.m != pattern.n:
        return False
    n = np.int64(pattern.n)
    keys = np.sort(pattern.rows.astype(np.int64) * n + pattern.cols)
    transposed = np.sort(pattern.cols.astype(np.int64) * n + pattern.rows)
    return bool(np.array_equal(keys, transposed))


def _timed(algorithm: str, bound: int | None, word: str, color) -> Colored:
    start = time.perf_counter()
    coloring = color()
    seconds = time.perf_counter() - start
    return Colored(algorithm, coloring.num_colors, _plural(coloring.num_colors, word), bound,
                   seconds, coloring)


def _bidirectional(pattern: asdex.SparsityPattern, hessian: bool) -> Colored:
    start = time.perf_counter()
    _, jvps, vjps = color_bidirectional(pattern)
    seconds = time.perf_counter() - start
    if hessian:
        passes = f"{_plural(jvps + vjps, 'HVP')} ({jvps} on columns, {vjps} on rows)"
    else:
        passes = f"{_plural(jvps, 'JVP')} + {_plural(vjps, 'VJP')}"
    return Colored("bidirectional", jvps + vjps, passes, None, seconds)


def color_all(pattern: asdex.SparsityPattern, *, hessian: bool) -> list[Colored]:
    """Color `pattern` as a column, row, star, acyclic and bidirectional coloring.

    Args:
        pattern: A Jacobian or Hessian sparsity pattern.
        hessian: Whether it is a Hessian's: the passes are then HVPs and the symmetric
            colorings always apply; a Jacobian gets star and acyclic colorings only when
            its pattern is symmetric.

    Returns:
        One `Colored` per algorithm, in that order.

    Examples:
        >>> import numpy as np, asdex
        >>> from asdex._cli._colorings import color_all
        >>> tridiagonal = asdex.SparsityPattern.from_dense(np.eye(6) + np.eye(6, k=1)
        ...                                               + np.eye(6, k=-1))
        >>> [(c.algorithm, c.num_colors) for c in color_all(tridiagonal, hessian=True)]
        [('column', 3), ('row', 3), ('star', 3), ('acyclic', 2), ('bidirectional', 3)]
    """
    per_row, per_col = max_per_row_and_col(pattern)
    jacobian_coloring = asdex.jacobian_coloring_from_sparsity
    hessian_coloring = asdex.hessian_coloring_from_sparsity
    if hessian:
        results = [
            _timed("column", per_row, "HVP",
                   lambda: hessian_coloring(pattern, symmetric=False)),
            _timed("row", per_col, "HVP", lambda: jacobian_coloring(pattern, mode="rev")),
        ]
    else:
        results = [
            _timed("column", per_row, "JVP", lambda: jacobian_coloring(pattern, mode="fwd")),
            _timed("row", per_col, "VJP", lambda: jacobian_coloring(pattern, mode="rev")),
        ]
    for method in ("star", "acyclic"):
        if hessian:
            results.append(_timed(method, None, "HVP",
                                  lambda m=method: hessian_coloring(pattern, method=m)))
        elif is_symmetric(pattern):
            results.append(_timed(method, None, "JVP", lambda m=method: jacobian_coloring(
                pattern, symmetric=True, method=m)))
        else:
            results.append(Colored(method, None, "n/a: the pattern is not symmetric",
                                   None, 0.0))
    results.append(_bidirectional(pattern, hessian))
    return results


def warm_up() -> float:
    """Run every coloring once on a tiny pattern, so that later timings are comparable.

    The first call of each numba kernel loads it from numba's cache (or, on a fresh
    install, compiles it): a one-off cost that this takes on.

    Returns:
        The seconds it took.

    Examples:
        >>> from asdex._cli._colorings import warm_up
        >>> warm_up() >= 0.0
        True
    """
    start = time.perf_counter()
    tiny = asdex.SparsityPattern.from_dense(np.eye(3) + np.eye(3, k=1) + np.eye(3, k=-1))
    color_all(tiny, hessian=False)
    color_all(tiny, hessian=True)
    return time.perf_counter() - start


def default_coloring(results: list[Colored], *, hessian: bool) -> asdex.ColoredPattern:
    """The coloring asdex uses by default.

    Star for a Hessian; for a Jacobian the fewer of column and row (ties go to column).

    Examples:
        >>> import numpy as np, asdex
        >>> from asdex._cli._colorings import color_all, default_coloring
        >>> arrow = np.eye(5); arrow[0] = 1
        >>> results = color_all(asdex.SparsityPattern.from_dense(arrow), hessian=False)
        >>> default_coloring(results, hessian=False).mode
        'rev'
    """
    found = {r.algorithm: r.coloring for r in results if r.coloring is not None}
    if hessian:
        return found["star"]
    column, row = found["column"], found["row"]
    return row if row.num_colors < column.num_colors else column
