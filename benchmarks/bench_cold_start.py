"""Where the first solve's time goes: detection, coloring, tracing, compilation, first run.

For a few sif2jax problems of different kinds, the first `optx.minimise` call with
`SparseNewton` (`optx.least_squares` with `SparseGaussNewton` for the least-squares
problem) is split into its parts with JAX's ahead-of-time API, against the same split
for `optx.LBFGS` (on ½|r|² for the least-squares problem), float64:

- detection: `asdex.hessian_sparsity` (`jacobian_sparsity`) of the problem's function;
- numba: the first coloring of a 3x3 pattern (loading the compiled coloring kernels);
- coloring: `hessian_coloring_from_sparsity` (`jacobian_...`) of the detected pattern,
  or `ColoredPattern.load` of the file saved by the first process;
- trace: `jax.jit(solve).trace(y0)` with the coloring passed as `coloring=`;
- lower: `.lower()` (jaxpr to StableHLO), with the program's size (characters of its
  text, `while` loops);
- compile: `.compile()` (XLA, or a hit in JAX's persistent compilation cache), wall
  time and the process's CPU time ("compile CPU", all threads: XLA compiles on several);
- first run and second run of the compiled solve.

Every (problem, solver, mode) runs in a fresh Python process; the modes, in order:
"cold" (persistent compilation cache off; detection and coloring in the process, the
coloring saved), "cache write" (the cache on, in an empty directory: the first process
that has it), "cache hit" (the same directory, filled by the previous process; the
coloring loaded from the file), and "plain" (cache off, the default solver without
`coloring=`, one timed `jax.jit(solve)(y0)` call: the total the split should add up to).
Imports (jax, optimistix, asdex, asdex_opt) and building the sif2jax problem ("build") are timed
but not counted in the total.

Not in the runner (`python -m benchmarks`): 24 minutes on 2 cores under load 11-20
for five problems (seven now).
Run: ``python benchmarks/bench_cold_start.py`` (``--quick``: two problems at n ≈ 100;
``--solvers`` and ``--modes`` pick a subset; "cache hit" needs "cache write" before it);
writes `benchmarks/results/cold_start.md` and the raw rows to `cold_start.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "cold_start.md"
PROBLEMS = (
    ("unconstrained", "DIXMAANF", 3000),
    ("unconstrained", "GENROSE", 1000),
    ("unconstrained", "LIARWHD", 5000),
    ("unconstrained", "BROYDN7D", 1000),
    ("unconstrained", "LUKSAN16LS", 1000),
    ("unconstrained", "ARWHEAD", 1000),
    ("least squares", "QINGNE", 1000),
)
QUICK = (("unconstrained", "GENROSE", 100), ("least squares", "QINGNE", 100))
SOLVERS = ("sparse", "optx.LBFGS")
MODES = ("cold", "cache write", "cache hit", "plain")
PARTS = ("detection", "numba", "coloring", "trace", "lower", "compile", "first run")
MAX_STEPS = {"sparse": 2000, "optx.LBFGS": 20000}


def _timed(clock: dict[str, float], part: str, thunk):
    start = time.perf_counter()
    value = thunk()
    clock[part] = time.perf_counter() - start
    return value


def worker(
    kind: str, name: str, target: int, solver: str, mode: str, cache: str, coloring_file: str
) -> dict:
    """One first solve in this process, split into its parts: a result row."""
    clock: dict[str, float] = {}
    start = time.perf_counter()
    import jax
    import numpy as np
    import optimistix as optx

    import asdex
    import asdex_opt

    sys.path.insert(0, str(Path(__file__).parent))
    import cutest

    clock["imports"] = time.perf_counter() - start
    if mode in ("cache write", "cache hit"):
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    category = "unconstrained" if kind == "unconstrained" else "equations"

    def build():
        problem, _ = cutest.sized(category, name, target)
        t = cutest.task(kind, problem)
        jax.block_until_ready(t.y0)
        return t

    t = _timed(clock, "build", build)
    least_squares = kind == "least squares"
    if solver == "sparse" and mode != "plain":
        if mode == "cache hit":
            clock["detection"] = clock["numba"] = 0.0
            coloring = _timed(clock, "coloring", lambda: asdex.ColoredPattern.load(coloring_file))
        else:
            detect = asdex.jacobian_sparsity if least_squares else asdex.hessian_sparsity
            color = (
                asdex.jacobian_coloring_from_sparsity
                if least_squares
                else asdex.hessian_coloring_from_sparsity
            )
            pattern = _timed(clock, "detection", lambda: detect(t.f, t.y0))
            _timed(clock, "numba", lambda: color(np.ones((3, 3), bool)))
            coloring = _timed(clock, "coloring", lambda: color(pattern))
            if mode == "cold":
                coloring.save(coloring_file)
    else:
        coloring = None
    if solver == "optx.LBFGS":
        method = optx.LBFGS(1e-12, 1e-12)
        objective = (
            (lambda y, _: 0.5 * jax.numpy.sum(t.f(y) ** 2))
            if least_squares
            else (lambda y, _: t.f(y))
        )
        call = optx.minimise
    else:
        cls = asdex_opt.SparseGaussNewton if least_squares else asdex_opt.SparseNewton
        method = cls(1e-12, 1e-12, coloring=coloring)
        objective = lambda y, _: t.f(y)  # noqa: E731
        call = optx.least_squares if least_squares else optx.minimise

    @jax.jit
    def solve(y0):
        sol = call(objective, method, y0, max_steps=MAX_STEPS[solver], throw=False)
        return sol.value, sol.stats["num_steps"]

    row = {"kind": kind, "problem": name, "n": int(t.y0.size), "solver": solver, "mode": mode}
    run = solve
    if mode == "plain":
        y, steps = _timed(clock, "first call", lambda: jax.block_until_ready(solve(t.y0)))
    else:
        traced = _timed(clock, "trace", lambda: solve.trace(t.y0))
        lowered = _timed(clock, "lower", traced.lower)
        text = lowered.as_text()
        row["hlo_chars"], row["while_loops"] = len(text), text.count("stablehlo.while")
        cpu = time.process_time()
        compiled = _timed(clock, "compile", lowered.compile)
        clock["compile CPU"] = time.process_time() - cpu
        row["kernels"] = len(re.findall(r"= \S+ fusion\(", compiled.as_text()))
        y, steps = _timed(clock, "first run", lambda: jax.block_until_ready(compiled(t.y0)))
        run = compiled
    _timed(clock, "second run", lambda: jax.block_until_ready(run(t.y0)))
    value, optimality = t.measure("least squares" if least_squares else "unconstrained", y)
    return (
        row
        | clock
        | {
            "steps": int(steps),
            "f": value,
            "optimality": optimality,
            "converged": optimality <= cutest.GTOL,
        }
    )


def _in_process(spec: dict, timeout: float) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ | {"PYTHONWARNINGS": "ignore"},
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


def total(row: dict) -> float:
    """Detection, coloring, tracing, lowering, compilation and the first run together."""
    if "first call" in row:
        return row["first call"]
    return sum(row.get(part, 0.0) for part in PARTS)


def _cell(row: dict, part: str) -> str:
    return f"{row[part]:.2f}" if part in row else ""


def write(path: Path, rows: list[dict], command: str, elapsed: float, label: str) -> None:
    columns = ("imports", "build", *PARTS, "compile CPU", "first call", "second run")
    lines = [
        "# Cold start: where the first solve's time goes",
        "",
        f"Command: `{command}` ({elapsed / 60:.0f} min). Seconds per part of the first "
        "solve, each row a fresh process (see the script's header for the parts and "
        "modes); total = detection + numba + coloring + trace + lower + compile + first "
        'run ("plain": one `jax.jit(solve)(y0)` call with the default solver). '
        '"sparse" is `SparseNewton` (default settings; `SparseGaussNewton` for the '
        "least-squares problem). Steps to max|∇f| ≤ 1e-6 (max|Jᵀr|), rtol = atol = "
        "1e-12. HLO: characters of the lowered program's text and its `while` loops; "
        "kernels: the fusions in XLA's optimized program (the compile time follows them)."
        + (f" {label}" if label else ""),
        "",
        "| problem | n | solver | mode | "
        + " | ".join(columns)
        + " | total | HLO chars | while | kernels | steps | solved |",
        "|---" * (len(columns) + 11) + "|",
    ]
    for r in rows:
        head = f"| {r['problem']} | {r.get('n', '')} | {r['solver']} | {r['mode']} | "
        if "error" in r:
            lines.append(head + " | " * (len(columns) + 6) + f"error: {r['error']} |")
            continue
        lines.append(
            head
            + " | ".join(_cell(r, c) for c in columns)
            + f" | {total(r):.2f} | {r.get('hlo_chars', '')} | {r.get('while_loops', '')}"
            f" | {r.get('kernels', '')} | {r['steps']} | {'yes' if r['converged'] else '**no**'} |"
        )
    lines += [
        "",
        "## Medians over the problems",
        "",
        "| solver | mode | " + " | ".join(PARTS) + " | total |",
        "|---" * (len(PARTS) + 3) + "|",
    ]
    for solver in SOLVERS:
        for mode in MODES:
            group = [
                r for r in rows if r["solver"] == solver and r["mode"] == mode and "error" not in r
            ]
            if not group:
                continue
            cells = [
                f"{statistics.median(r.get(p, 0.0) for r in group):.2f}" if mode != "plain" else ""
                for p in PARTS
            ]
            lines.append(
                f"| {solver} | {mode} | "
                + " | ".join(cells)
                + f" | {statistics.median(total(r) for r in group):.2f} |"
            )
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two problems at n ≈ 100")
    parser.add_argument("--only-problems", nargs="+", default=None)
    parser.add_argument("--solvers", nargs="+", choices=SOLVERS, default=SOLVERS)
    parser.add_argument("--modes", nargs="+", choices=MODES, default=MODES)
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds before one process is killed"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--label", default="", help="a note for the table's header (e.g. which code was measured)"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    cli = parser.parse_args()
    if cli.worker:
        print(json.dumps(worker(**json.loads(cli.worker))), flush=True)
        return
    problems = QUICK if cli.quick else PROBLEMS
    if cli.only_problems:
        problems = [p for p in problems if p[1] in cli.only_problems]
    cli.output.parent.mkdir(parents=True, exist_ok=True)
    jsonl = cli.output.with_suffix(".jsonl")
    command = shlex.join(["python", "benchmarks/bench_cold_start.py", *sys.argv[1:]])
    start, rows = time.perf_counter(), []
    with tempfile.TemporaryDirectory() as scratch, jsonl.open("w") as raw:
        for kind, name, target in problems:
            for solver in cli.solvers:
                cache = os.path.join(scratch, f"{name}-{solver}-cache")
                coloring_file = os.path.join(scratch, f"{name}.npz")
                for mode in cli.modes:
                    if solver == "optx.LBFGS" and mode == "plain":
                        continue  # the split has no detection or coloring to leave out
                    spec = {
                        "kind": kind,
                        "name": name,
                        "target": target,
                        "solver": solver,
                        "mode": mode,
                        "cache": cache,
                        "coloring_file": coloring_file,
                    }
                    try:
                        row = _in_process(spec, cli.timeout)
                    except subprocess.TimeoutExpired:
                        row = {"error": f"killed after {cli.timeout:g} s"}
                    row = {"problem": name, "solver": solver, "mode": mode} | row
                    rows.append(row)
                    raw.write(json.dumps(row) + "\n")
                    raw.flush()
                    print(
                        f"[{time.perf_counter() - start:6.0f} s] {name} {solver} {mode}: "
                        + (row["error"] if "error" in row else f"total {total(row):.2f} s"),
                        flush=True,
                    )
                    write(cli.output, rows, command, time.perf_counter() - start, cli.label)


if __name__ == "__main__":
    main()
