"""Time a jitted function: compilation apart, then the median of repeated calls."""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax


@dataclasses.dataclass(frozen=True)
class Timing:
    """What `time_jitted` measured.

    Attributes:
        compile_s: Seconds to trace, lower and compile.
        run_s: Median seconds of one call of the compiled function (output ready).
        repeats: How many calls the median is taken over.
    """

    compile_s: float
    run_s: float
    repeats: int


def time_jitted(
    fn: Callable[..., Any], *args: Any, budget_s: float = 0.5, max_repeats: int = 50
) -> tuple[Timing, Any]:
    """Compile `jax.jit(fn)` for `args`, then time its calls after one warm-up call.

    Calls repeat until `budget_s` seconds are spent (at least 3, at most `max_repeats`).

    Returns:
        The `Timing` and the output of the last call.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex._cli._timing import time_jitted
        >>> timing, out = time_jitted(jnp.sin, jnp.zeros(3))
        >>> timing.repeats >= 3, out.tolist()
        (True, [0.0, 0.0, 0.0])
    """
    start = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - start
    out = jax.block_until_ready(compiled(*args))
    times: list[float] = []
    while len(times) < 3 or (sum(times) < budget_s and len(times) < max_repeats):
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return Timing(compile_s, statistics.median(times), len(times)), out


def format_seconds(seconds: float) -> str:
    """Seconds with a unit that keeps three significant digits readable.

    Examples:
        >>> from asdex._cli._timing import format_seconds
        >>> format_seconds(0.000123), format_seconds(0.0456), format_seconds(2.5)
        ('123 µs', '45.6 ms', '2.50 s')
    """
    unit, scale = next((u, s) for u, s in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6))
                       if seconds >= s or u == "µs")
    value = seconds / scale
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:.{digits}f} {unit}"


def format_speedup(ratio: float) -> str:
    """A speed-up factor, without exponent notation.

    Examples:
        >>> from asdex._cli._timing import format_speedup
        >>> format_speedup(14712.3), format_speedup(3.456), format_speedup(0.5)
        ('14,712x', '3.46x', '0.50x')
    """
    return f"{ratio:,.0f}x" if ratio >= 100 else f"{ratio:.3g}x" if ratio >= 1 else f"{ratio:.2f}x"
