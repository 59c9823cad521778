"""Jacobian sparsity detection time against the time to trace the same function.

Run from the repository root (writes benchmarks/results/detection.md):

    python benchmarks/bench_detection.py            # full table, n up to 10^6
    python benchmarks/bench_detection.py --quick    # small sizes only

Each row gives `jax.make_jaxpr` of the same function in the same run (traced afresh each
time; inner `jit`s such as `jnp.roll`'s stay cached, as they do for detection), detection
on a cold call (the first detection of this function object) and the best of three warm
calls. Detection includes its own tracing.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import time

import jax

from asdex.detection import jacobian_sparsity
from problems import banded_stencil, brusselator_2d, conv_net_1d


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(name: str, make, size: int) -> dict:
    f, x = make(size)
    start = time.perf_counter()
    pattern = jacobian_sparsity(f, x)
    cold = time.perf_counter() - start
    warm = best_of(lambda: jacobian_sparsity(f, x))
    # a fresh wrapper each time, so that JAX's trace cache does not hide the cost
    trace = best_of(lambda: jax.make_jaxpr(lambda y: f(y))(x))
    return {
        "problem": name, "n": pattern.n, "nnz": pattern.nnz, "trace": trace, "cold": cold,
        "warm": warm,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", default="benchmarks/results/detection.md")
    args = parser.parse_args()
    grids = [23, 71, 224] if args.quick else [23, 71, 224, 708]
    lengths = [10**3, 10**4] if args.quick else [10**3, 10**4, 10**5]
    bands = [10**3, 10**4] if args.quick else [10**3, 10**4, 10**5, 10**6]
    rows = [measure("Brusselator 2-D", brusselator_2d, g) for g in grids]
    rows += [measure("1-D conv net (3 layers)", conv_net_1d, n) for n in lengths]
    rows += [measure("banded stencil (b=2)", banded_stencil, n) for n in bands]

    lines = [
        "# Jacobian sparsity detection",
        "",
        f"Command: `python benchmarks/bench_detection.py{' --quick' if args.quick else ''}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}, "
        f"load average at start {os.getloadavg()[0]:.1f}.",
        "",
        "| problem | n | nnz | make_jaxpr (s) | detection cold (s) | detection warm (s) "
        "| warm / make_jaxpr |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['problem']} | {r['n']:,} | {r['nnz']:,} | {r['trace']:.4f} | "
            f"{r['cold']:.3f} | {r['warm']:.3f} | {r['warm'] / r['trace']:.0f}x |"
        )
    text = "\n".join(lines) + "\n"
    pathlib.Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
