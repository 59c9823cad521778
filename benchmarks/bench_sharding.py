"""Sharding benchmark: the 2-D Brusselator Jacobian with its colors split over 1, 2, 4 devices.

Each device count runs in its own process, started with
`XLA_FLAGS=--xla_force_host_platform_device_count=N` (XLA reads it once, at start-up).
Forced host devices share the machine's cores and memory, so the table shows that the
split works and how the per-device memory divides, not a speed-up. Per process it
measures: detection and coloring, the cold call of the sparse Jacobian (compile
and first run), the warm median of the compressed evaluation alone and of the whole
sparse Jacobian (compressed evaluation and decompression into a BCOO), the bytes of `B`
on one device, XLA's per-device memory estimate of the compiled program (arguments,
outputs and temporaries, from `memory_analysis()`, which leaves out the program's
constants), the bytes of the program's constants, the bytes of the exchange tables
(with the colors split, decompression sends each device only the entries of `B` its
nonzeros read, by tables built on the host and passed to the program split by colors),
the same program under an outer `jax.jit` (where the tables are constants), and the
process's peak RSS. The one-device process also times the
unsharded evaluation, and dense `jax.jacfwd` where the dense matrix fits
(`n <= DENSE_LIMIT`).

Run: `python benchmarks/bench_sharding.py --output benchmarks/results/sharding.md`
(grid 707: n = 999,698), or `--quick` (grid 32, n = 2048).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

DENSE_LIMIT = 12_000
"""Largest n for which dense `jax.jacfwd` is timed (an n x n float32 matrix)."""


def timed(call: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Seconds of the first call, and the median of `repeats` calls after it."""
    import jax

    start = time.perf_counter()
    jax.block_until_ready(call())
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(call())
        warm.append(time.perf_counter() - start)
    return cold, statistics.median(warm)


def device_bytes(fn: Callable[..., Any], *args: Any) -> tuple[int | None, int | None]:
    """XLA's per-device estimates for the compiled `fn`: in all, and of its outputs.

    In all: arguments + outputs + temporaries (not the program's constants).
    """
    import jax

    return analysed(jax.jit(fn).lower(*args))


def analysed(lowered: Any) -> tuple[int | None, int | None]:
    """`device_bytes` of a lowered program."""
    analysis = lowered.compile().memory_analysis()
    if analysis is None:
        return None, None
    total = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes
             + analysis.temp_size_in_bytes - analysis.alias_size_in_bytes)
    return total, analysis.output_size_in_bytes


_ELEMENT_BYTES = {"i1": 1, "i8": 1, "ui8": 1, "i16": 2, "bf16": 2, "f16": 2, "i32": 4,
                  "ui32": 4, "f32": 4, "i64": 8, "ui64": 8, "f64": 8, "complex<f32>": 8,
                  "complex<f64>": 16}


def constant_bytes(lowered: Any) -> int:
    """Bytes of the constants (`stablehlo.constant`) of a lowered program."""
    from jax.extend.mlir import ir

    total = 0

    def visit(op: Any) -> Any:
        nonlocal total
        if op.name == "stablehlo.constant":
            text = str(op.results[0].type)  # e.g. tensor<4x1024xi32>
            *dims, element = text[len("tensor<"):-1].split("x") if "x" in text else (
                text[len("tensor<"):-1],)
            size = 1
            for dim in dims:
                size *= int(dim)
            total += size * _ELEMENT_BYTES[element]
        return ir.WalkResult.ADVANCE

    lowered.compiler_ir("stablehlo").operation.walk(visit)
    return total


def library_program(fn: Callable[..., Any], *args: Any) -> tuple[Any, tuple[Any, ...]]:
    """The program asdex compiles for `fn(*args)`, and the arguments it is called with.

    `fn` (a function returned by `jacobian_from_coloring`) runs one compiled program;
    traced, it is the one equation of the trace, and the arrays it is given besides
    `args` (the exchange tables) are the trace's constants.
    """
    import jax
    from jax.extend.core import jaxpr_as_fun

    traced = jax.make_jaxpr(fn)(*args)
    (program,) = traced.jaxpr.eqns
    inputs = dict(zip(traced.jaxpr.constvars, traced.consts, strict=True))
    inputs.update(zip(traced.jaxpr.invars, args, strict=True))
    return jaxpr_as_fun(program.params["jaxpr"]), tuple(
        inputs[var] for var in program.invars
    )


def worker(grid: int, repeats: int) -> dict[str, Any]:
    """Measure in this process, on however many devices it was started with."""
    import jax

    import asdex
    from problems import brusselator_2d

    devices = jax.device_count()
    f, y = brusselator_2d(grid)
    start = time.perf_counter()
    coloring = asdex.jacobian_coloring(f, y)
    detect_color = time.perf_counter() - start
    mesh = jax.make_mesh((devices,), ("colors",))
    sharding = (mesh, "colors")
    jac = asdex.jacobian_from_coloring(f, coloring, sharding=sharding)
    compressed = jax.jit(asdex.compressed_jacobian_from_coloring(f, coloring,
                                                                 sharding=sharding))
    cold, warm = timed(lambda: jac(y), repeats)
    _, warm_compressed = timed(lambda: compressed(y), repeats)
    B = compressed(y)
    J = jac(y)
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    program, inputs = library_program(jac, y)
    tables = [array for array in inputs[:-1] if array.dtype.kind == "i"]
    lowered = jax.jit(program).lower(*inputs)
    program_bytes, output_bytes = analysed(lowered)
    outer = jax.jit(jac).lower(y)
    row = {
        "devices": devices,
        "n": int(y.size),
        "nnz": int(coloring.sparsity.nnz),
        "colors": int(coloring.num_colors),
        "detect_color_s": detect_color,
        "cold_s": cold,
        "warm_s": warm,
        "warm_compressed_s": warm_compressed,
        "B_rows_per_device": {int(s.data.shape[0]) for s in B.addressable_shards}.pop(),
        "B_bytes_per_device": max(s.data.nbytes for s in B.addressable_shards),
        "B_devices": len({s.device for s in B.addressable_shards}),
        "nonzeros_per_device": max(s.data.shape[0] for s in J.data.addressable_shards),
        "program_bytes_per_device": program_bytes,
        "output_bytes_per_device": output_bytes,
        "exchange_table_bytes": sum(table.nbytes for table in tables) if tables else None,
        "exchange_table_bytes_per_device": sum(
            max(shard.data.nbytes for shard in table.addressable_shards) for table in tables
        ) if tables else None,
        "constant_bytes": constant_bytes(lowered),
        "outer_jit_constant_bytes": constant_bytes(outer),
        "outer_jit_program_bytes_per_device": analysed(outer)[0],
        "compressed_bytes_per_device": device_bytes(
            asdex.compressed_jacobian_from_coloring(f, coloring, sharding=sharding), y)[0],
        "memory_stats": jax.devices()[0].memory_stats() is not None,
        "peak_rss_bytes": peak_rss,
    }
    if devices == 1:
        plain = jax.jit(asdex.jacobian_from_coloring(f, coloring))
        _, row["warm_unsharded_s"] = timed(lambda: plain(y), repeats)
        if y.size <= DENSE_LIMIT:
            dense = jax.jit(jax.jacfwd(f))
            _, row["warm_dense_s"] = timed(lambda: dense(y), repeats)
    return row


def run_one(devices: int, grid: int, repeats: int) -> dict[str, Any]:
    """Run `worker` in a fresh process with `devices` forced host devices."""
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--worker", "--grid", str(grid), "--repeats", str(repeats)],
        env=env, capture_output=True, text=True, check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{devices} devices: the worker failed:\n{done.stderr[-4000:]}")
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["process_s"] = time.perf_counter() - start
    return row


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value / 2**20:.2f}"


def _less(total: int | None, part: int | None) -> int | None:
    return None if total is None or part is None else total - part


def _tables(row: dict[str, Any]) -> str:
    if row["exchange_table_bytes"] is None:
        return "n/a"
    return (f"{_mb(row['exchange_table_bytes_per_device'])} "
            f"({_mb(row['exchange_table_bytes'])})")


def _ms(seconds: float) -> str:
    ms = 1e3 * seconds
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


def table(rows: list[dict[str, Any]], grid: int, repeats: int) -> str:
    """The Markdown table of the rows (one per device count)."""
    base = rows[0]
    first = (
        f"Brusselator 2-D, grid {grid} x {grid}: n = {base['n']:,}, nnz = {base['nnz']:,}, "
        f"{base['colors']} column colors (detection and coloring "
        f"{base['detect_color_s']:.1f} s, in each process). Warm times are medians of "
        f"{repeats} calls after the cold one."
    )
    lines = [
        "# Sharding: the color axis over forced host devices", "", first, "",
        "| devices | B rows / device | B MB / device | compressed program MB / device "
        "| nonzeros / device | sparse Jacobian program MB / device "
        "| its output MB / device | program less output MB / device "
        "| exchange tables MB / device (whole) | constants MB "
        "| under an outer jit: constants MB, program MB / device | compressed warm (ms) "
        "| sparse Jacobian warm (ms) | vs 1 device | cold (s) | peak RSS MB (process) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['devices']} | {row['B_rows_per_device']} "
            f"| {_mb(row['B_bytes_per_device'])} | {_mb(row['compressed_bytes_per_device'])} "
            f"| {row['nonzeros_per_device']:,} | {_mb(row['program_bytes_per_device'])} "
            f"| {_mb(row['output_bytes_per_device'])} "
            f"| {_mb(_less(row['program_bytes_per_device'], row['output_bytes_per_device']))} "
            f"| {_tables(row)} | {_mb(row['constant_bytes'])} "
            f"| {_mb(row['outer_jit_constant_bytes'])}, "
            f"{_mb(row['outer_jit_program_bytes_per_device'])} "
            f"| {_ms(row['warm_compressed_s'])} | {_ms(row['warm_s'])} "
            f"| {row['warm_s'] / base['warm_s']:.2f} | {row['cold_s']:.2f} "
            f"| {_mb(row['peak_rss_bytes'])} |"
        )
    notes = [
        "",
        f"Unsharded sparse Jacobian on 1 device: {_ms(base['warm_unsharded_s'])} ms warm.",
    ]
    if "warm_dense_s" in base:
        notes.append(
            f"Dense `jax.jacfwd` on 1 device: {_ms(base['warm_dense_s'])} ms warm "
            f"({base['warm_dense_s'] / base['warm_unsharded_s']:.1f}x the unsharded and "
            f"{base['warm_dense_s'] / base['warm_s']:.1f}x the one-device sharded sparse "
            "Jacobian)."
        )
    else:
        notes.append(
            f"Dense `jax.jacfwd` not run: an n x n float32 matrix at n = {base['n']:,} is "
            f"{4 * base['n'] ** 2 / 2**40:.1f} TiB (limit n <= {DENSE_LIMIT:,})."
        )
    if not any(row["memory_stats"] for row in rows):
        notes.append(
            "`jax.devices()[i].memory_stats()` returns None on CPU devices, so the per-device "
            "memory is XLA's estimate for each compiled program (`memory_analysis()`: "
            "arguments + outputs + temporaries) and the bytes of the local shard of `B`. "
            "The compressed program's output `B` is split by colors; the sparse "
            "Jacobian's output (the BCOO nonzeros and their indices) is split by "
            "nonzeros, each device decompressing its share (`nonzeros / device`) from "
            "the entries of `B` it receives. The sparse Jacobian program is the one "
            "asdex compiles when its function is called outside `jax.jit`: the "
            "exchange tables are its arguments, split by colors (each device holds "
            "its rows: `exchange tables MB / device`, counted in the program's MB). "
            "`memory_analysis()` leaves out a program's constants (`constants MB`, "
            "the bytes of its `stablehlo.constant`s, e.g. the BCOO indices copied to "
            "the output), held once per process here. Under an outer `jax.jit` the "
            "tables, arrays the traced function closes over, are constants of that "
            "program again."
        )
    notes.append(
        "Forced host devices share one process's cores and memory: no speed-up is "
        "expected, and peak RSS is for the whole process (all its devices), read before "
        "the one-device process runs its unsharded and dense baselines."
    )
    return "\n".join(lines + notes) + "\n"


def main() -> None:
    """Parse the command line; run the workers (or be one) and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=707)
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="grid 32 (n = 2048)")
    parser.add_argument("--output", type=pathlib.Path,
                        default=pathlib.Path(__file__).parent / "results" / "sharding.md")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    grid = 32 if args.quick else args.grid
    if args.worker:
        sys.path.insert(0, str(pathlib.Path(__file__).parent))
        print(json.dumps(worker(grid, args.repeats)))
        return
    rows = []
    for devices in args.devices:
        print(f"-- {devices} device(s), grid {grid} ...", flush=True)
        rows.append(run_one(devices, grid, args.repeats))
        print(f"-- {devices} device(s) done in {rows[-1]['process_s']:.0f} s", flush=True)
    text = table(rows, grid, args.repeats)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    args.output.with_suffix(".jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in rows)
    )
    print(text)


if __name__ == "__main__":
    main()
