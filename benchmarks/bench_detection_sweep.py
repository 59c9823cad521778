"""Detection's fixed cost at small n: every sif2jax pattern with n ≤ 400, one after another.

The patterns: the Hessians of the unconstrained problems and the equality and
inequality constraint Jacobians of the constrained problems (general and quadratic),
each at its default size when that has at most `--max-n` variables. Each pattern is
detected once (`asdex.hessian_sparsity` / `asdex.jacobian_sparsity`), in one process,
and timed next to `jax.make_jaxpr` of the same function (tracing alone). A cProfile of
the detection calls of an evenly spaced subset shows where the per-call time goes.
Writes `benchmarks/results/detection_sweep.md`.

Run: ``python benchmarks/bench_detection_sweep.py`` (``--quick``: 30 patterns).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import jax

import asdex
import cutest

RESULTS = Path(__file__).parent / "results" / "detection_sweep.md"
KINDS = ("Hessian", "equality Jacobian", "inequality Jacobian")


def patterns(max_n: int) -> list[tuple[str, str, str, int]]:
    """(category, problem, pattern kind, n) of every pattern with n ≤ max_n."""
    found = []
    for category in ("unconstrained", "constrained", "constrained QP"):
        for name in sorted(cutest.catalogue(category)):
            try:
                problem = cutest.problem_class(category, name)()
                n = sum(x.size for x in jax.tree_util.tree_leaves(
                    jax.eval_shape(lambda p=problem: p.y0)))
                if n > max_n:
                    continue
                if category == "unconstrained":
                    found.append((category, name, "Hessian", n))
                    continue
                outputs = jax.eval_shape(problem.constraint, problem.y0)
                for kind, out in zip(KINDS[1:], outputs, strict=True):
                    if out is not None and any(x.size for x in jax.tree_util.tree_leaves(out)):
                        found.append((category, name, kind, n))
            except Exception as error:
                print(f"skipped {name}: {type(error).__name__}: {error}", flush=True)
    return found


def build(category: str, name: str, kind: str) -> tuple[Callable, jax.Array]:
    """A fresh instance's function for the pattern (fresh: no tracing cache hits) and y0."""
    problem = cutest.problem_class(category, name)()
    flat, unravel = jax.flatten_util.ravel_pytree(problem.y0)
    if kind == "Hessian":
        return _objective(problem, unravel), flat
    return _constraint(problem, unravel, KINDS.index(kind) - 1), flat


def _objective(problem, unravel) -> Callable:
    args = problem.args
    return lambda y: problem.objective(unravel(y), args)


def _constraint(problem, unravel, part: int) -> Callable:
    return lambda y: jax.flatten_util.ravel_pytree(problem.constraint(unravel(y))[part])[0]


def detect(kind: str, f: Callable, y) -> None:
    """The detection the sweep times: Hessian or Jacobian sparsity of `f` at `y`."""
    (asdex.hessian_sparsity if kind == "Hessian" else asdex.jacobian_sparsity)(f, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=400)
    parser.add_argument("--quick", action="store_true", help="30 patterns, evenly spaced")
    parser.add_argument("--profiled", type=int, default=40,
                        help="patterns in the cProfile subset (evenly spaced)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    cli = parser.parse_args()
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    found = patterns(cli.max_n)
    if cli.quick:
        found = [found[round(i * (len(found) - 1) / 29)] for i in range(30)]
    print(f"[{time.perf_counter() - start:6.1f} s] {len(found)} patterns", flush=True)
    rows = []
    for category, name, kind, n in found:
        f, y = build(category, name, kind)
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            detect(kind, f, y)
            error = ""
        except Exception as exc:
            error = f"{type(exc).__name__}: {str(exc)[:60]}"
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        t0 = time.perf_counter()
        try:
            jax.make_jaxpr(f)(y)
            traced = time.perf_counter() - t0
        except Exception:
            traced = float("nan")
        rows.append({"problem": name, "kind": kind, "n": n, "seconds": seconds, "cpu": cpu,
                     "trace": traced, "error": error})
        print(f"[{time.perf_counter() - start:6.1f} s] {name} {kind} n={n}: "
              f"{seconds:.3f} s, CPU {cpu:.3f} s (make_jaxpr {traced:.3f} s) {error}",
              flush=True)

    subset = [found[round(i * (len(found) - 1) / max(cli.profiled - 1, 1))]
              for i in range(min(cli.profiled, len(found)))]
    profiler, profiled = cProfile.Profile(), 0.0
    for category, name, kind, _ in subset:
        f, y = build(category, name, kind)
        t0 = time.perf_counter()
        with contextlib.suppress(Exception):
            profiler.runcall(detect, kind, f, y)
        profiled += time.perf_counter() - t0
    swept = sum(r["seconds"] for r in rows if (r["problem"], r["kind"]) in
                {(name, kind) for _, name, kind, _ in subset})
    reports = {}
    for key in ("tottime", "cumulative"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(key).print_stats(30)
        reports[key] = text.getvalue().strip()

    ok = [r for r in rows if not r["error"]]
    lines = [
        "# Detection sweep: sif2jax patterns with n ≤ " + str(cli.max_n),
        "",
        f"Command: `python benchmarks/bench_detection_sweep.py"
        f"{' ' + ' '.join(sys.argv[1:]) if sys.argv[1:] else ''}`. Each pattern detected "
        "once, one after another in one process (the first pattern pays the first-call "
        "costs of the process), at the problem's default size; make_jaxpr = "
        "`jax.make_jaxpr` of the same function right after (tracing alone, warm caches). "
        "CPU = the process's CPU time during the detection (`time.process_time`), the "
        "figure to compare on a shared machine, where wall time includes waiting for a core.",
        "",
        "## Totals",
        "",
        "| patterns | count | failed | detection total (s) | detection CPU total (s) | "
        "median CPU (ms) | max CPU (s) | make_jaxpr total (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind in ("Hessian", "equality Jacobian", "inequality Jacobian", "all"):
        group = [r for r in rows if kind in ("all", r["kind"])]
        good = [r for r in group if not r["error"]]
        if not group:
            continue
        lines.append(
            f"| {kind} | {len(group)} | {len(group) - len(good)} | "
            f"{sum(r['seconds'] for r in group):.1f} | {sum(r['cpu'] for r in group):.1f} | "
            f"{1e3 * statistics.median(r['cpu'] for r in group):.0f} | "
            f"{max(r['cpu'] for r in group):.2f} | "
            f"{sum(r['trace'] for r in good if r['trace'] == r['trace']):.1f} |")
    header = ["| problem | pattern | n | detection (s) | CPU (s) | make_jaxpr (s) | error |",
              "|---|---|---|---|---|---|---|"]
    lines += ["", "## Slowest 20 (CPU)", "", *header]
    lines += [f"| {r['problem']} | {r['kind']} | {r['n']} | {r['seconds']:.2f} | "
              f"{r['cpu']:.2f} | {r['trace']:.3f} | {r['error']} |"
              for r in sorted(rows, key=lambda r: -r["cpu"])[:20]]
    lines += ["", f"## cProfile of {len(subset)} evenly spaced patterns", "",
              f"Detected again from fresh instances after the sweep: {profiled:.1f} s under "
              f"the profiler, against {swept:.1f} s for the same patterns in the sweep.", ""]
    for key, text in reports.items():
        lines += [f"Sorted by {key}:", "", "```", text, "```", ""]
    lines += ["## Every pattern", "", *header]
    lines += [f"| {r['problem']} | {r['kind']} | {r['n']} | {r['seconds']:.3f} | "
              f"{r['cpu']:.3f} | {r['trace']:.3f} | {r['error']} |" for r in rows]
    cli.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {cli.output}: {len(rows)} patterns ({len(ok)} detected), "
          f"{sum(r['seconds'] for r in rows):.1f} s of detection", flush=True)


if __name__ == "__main__":
    main()
