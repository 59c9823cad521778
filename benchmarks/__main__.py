"""Run the benchmarks, regenerate the tables in `benchmarks/results/` and plot them.

Usage, from the repository root:

    python -m benchmarks                    # every benchmark at full size (long)
    python -m benchmarks --quick            # small sizes, written to
                                            # benchmarks/results/quick/; it leaves out
                                            # `optimizers`, whose quick mode still
                                            # solves at n = 10^4 (name it with --only
                                            # to run it)
    python -m benchmarks --only coloring evaluation
    python -m benchmarks --plots-only       # redraw the plots from the existing tables

Each benchmark is a script of this directory, run in its own process (the linear-solve
benchmark switches JAX to float64 at import, and fresh processes keep the timings of
one benchmark free of another's caches). The runner stamps every table it writes with
the machine and the versions it ran on, then draws `results/<name>.png` from the table.
It prints a line as each benchmark starts and ends, with the time elapsed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import os
import pathlib
import platform
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))  # the scripts import their siblings (`problems`) directly

from plots import plot_results  # noqa: E402


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """One benchmark script and how it is run.

    Attributes:
        name: The table's name: the runner writes `<results>/<name>.md` and `.png`.
        script: The script in `benchmarks/`.
        full: Command-line arguments of the full run.
        quick: Command-line arguments of the quick run.
        writes: How the script emits its table: "output" (it takes `--output PATH`),
            "fixed" (it always writes `benchmarks/results/<name>.md`) or "stdout".
        in_quick_run: Whether `--quick` runs it unless `--only` names it.
    """

    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    writes: str
    in_quick_run: bool = True


REGISTRY = (
    Benchmark("detection", "bench_detection.py", (), ("--quick",), "output"),
    Benchmark("hessian_detection_time", "bench_hessian_detection.py", (),
              ("--sizes", "1000", "10000", "--repeats", "1"), "stdout"),
    Benchmark("coloring", "bench_coloring.py", (), ("--quick",), "fixed"),
    Benchmark("evaluation", "bench_evaluation.py", (), ("--quick", "--repeats", "2"), "fixed"),
    Benchmark("linear_solve", "bench_linear_solve.py", (),
              ("--grid", "32", "--brusselator-grid", "22", "--repeats", "1"), "output"),
    Benchmark("optimizers", "bench_optimizers.py", (), ("--quick",), "fixed",
              in_quick_run=False),
    Benchmark("least_squares", "bench_least_squares.py", (), ("--quick",), "fixed"),
    Benchmark("factorization", "bench_factorization.py", (),
              ("--cases", "poisson2d:30", "dixmaan:300", "--repeats", "1"), "output"),
    Benchmark("solver_choice", "bench_solver_choice.py", (), ("--cases", "dixmaan:3000", "poisson2d:50", "--repeats", "1"), "output", in_quick_run=False),  # noqa: E501
    Benchmark("profile", "bench_profile.py", ("--max-problems", "10", "--max-equations", "4", "--timeout", "45"), ("--quick",), "output", in_quick_run=False),  # noqa: E501
    Benchmark("detection_sweep", "bench_detection_sweep.py", (), ("--quick",), "output", in_quick_run=False),  # noqa: E501
    Benchmark("constrained", "bench_constrained.py", (), ("--quick",), "output", in_quick_run=False),  # noqa: E501
    Benchmark("newton_floor", "bench_newton_floor.py", (), ("--quick",), "output", in_quick_run=False),  # noqa: E501
    Benchmark("sharding", "bench_sharding.py", (), ("--quick",), "output"),
)
"""Every benchmark the runner knows, in the order it runs them."""


def environment() -> str:
    """One line naming the machine and the versions of everything that was measured."""
    import jax

    versions = ", ".join(
        f"{package} {importlib.metadata.version(package)}"
        for package in ("asdex", "jax", "jaxlib", "numpy", "scipy", "numba", "equinox",
                        "lineax", "optimistix", "optax")
    )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip() or "unknown"
    device = jax.devices()[0]
    return (
        f"Environment: {datetime.date.today()}, {platform.machine()} "
        f"({platform.processor() or platform.system()}), {os.cpu_count()} cores, load "
        f"average {os.getloadavg()[0]:.1f}, {device.platform} ({device.device_kind}); "
        f"Python {platform.python_version()}, {versions}; git {commit}."
    )


def run(benchmark: Benchmark, quick: bool, results: pathlib.Path) -> pathlib.Path:
    """Run one benchmark script and write its stamped table to `results/<name>.md`."""
    target = results / f"{benchmark.name}.md"
    fixed = RESULTS / f"{benchmark.name}.md"
    args = [sys.executable, str(HERE / benchmark.script),
            *(benchmark.quick if quick else benchmark.full)]
    if benchmark.writes == "output":
        args += ["--output", str(target)]
    kept = fixed.read_text() if benchmark.writes == "fixed" and fixed.exists() else None
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, capture_output=benchmark.writes == "stdout",
                          text=True, check=True)
    if benchmark.writes == "stdout":
        table = done.stdout
    else:
        table = (target if benchmark.writes == "output" else fixed).read_text()
    if benchmark.writes == "fixed" and fixed != target:  # leave the full results alone
        if kept is None:
            fixed.unlink()
        else:
            fixed.write_text(kept)
    command = "python -m benchmarks" + (" --quick" if quick else "")
    target.write_text(
        f"{table.rstrip()}\n\n{environment()} Regenerated by `{command}` "
        f"({time.perf_counter() - start:.0f} s).\n"
    )
    return target


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}:{seconds:02d}"


def run_all(selected: list[Benchmark], quick: bool, results: pathlib.Path) -> None:
    """Run the benchmarks in turn, with a progress line as each starts and ends."""
    begin = time.perf_counter()
    for number, benchmark in enumerate(selected, start=1):
        count = f"[{number}/{len(selected)}]"
        print(f"== {count} {benchmark.name} ({benchmark.script}) starts at "
              f"{_clock(time.perf_counter() - begin)} elapsed", flush=True)
        start = time.perf_counter()
        path = run(benchmark, quick, results)
        print(f"== {count} {benchmark.name} done in {time.perf_counter() - start:.0f} s "
              f"({_clock(time.perf_counter() - begin)} elapsed): wrote {path}", flush=True)
    print(f"== all {len(selected)} done in {_clock(time.perf_counter() - begin)}", flush=True)


def main() -> None:
    """Parse the command line, run the selected benchmarks and draw their plots."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small sizes only, written to benchmarks/results/quick/")
    parser.add_argument("--only", nargs="+", choices=[b.name for b in REGISTRY],
                        help="run only these benchmarks")
    parser.add_argument("--plots-only", action="store_true",
                        help="do not run anything; redraw the plots from the tables")
    parser.add_argument("--results", type=pathlib.Path, default=None,
                        help="where to write tables and plots (default: benchmarks/results, "
                        "or benchmarks/results/quick with --quick)")
    args = parser.parse_args()
    results = args.results or (RESULTS / "quick" if args.quick else RESULTS)
    results.mkdir(parents=True, exist_ok=True)
    if args.only is None:
        selected = [b for b in REGISTRY if b.in_quick_run or not args.quick]
    else:
        selected = [b for b in REGISTRY if b.name in args.only]
    if not args.plots_only:
        run_all(selected, args.quick, results)
    for path in plot_results(results, [b.name for b in selected] if args.only else None):
        print(f"== plotted {path}")


if __name__ == "__main__":
    main()
