"""Plots of the benchmark tables in `benchmarks/results/*.md`.

Every plot is drawn from a markdown table the benchmarks wrote, never from numbers kept
elsewhere, and carries the table's environment line. Times are plotted against n on
log-log axes next to the baselines measured in the same run (dense JAX, `make_jaxpr`,
the cost of the JVPs/HVPs themselves); color counts against their lower bound.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

Row = dict[str, str]


def read_tables(text: str) -> list[list[Row]]:
    """Parse the pipe tables of a markdown document into lists of {header: cell} rows."""
    tables, lines = [], text.splitlines()
    i = 0
    while i + 1 < len(lines):
        if lines[i].startswith("|") and re.fullmatch(r"\|[-:| ]+\|", lines[i + 1].strip()):
            header = _cells(lines[i])
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(dict(zip(header, _cells(lines[i]), strict=False)))
                i += 1
            tables.append(rows)
        else:
            i += 1
    return tables


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def seconds(cell: str | None, unit: str = "s") -> float | None:
    """A time cell ("0.44 ms", "1.2 s", or a bare number in `unit`) in seconds."""
    match = re.fullmatch(r"(\d[\d.eE+-]*)\s*(ms|s)?", (cell or "").strip())
    if match is None:
        return None
    scale = {"s": 1.0, "ms": 1e-3}[match[2] or unit]
    return float(match[1]) * scale


def number(cell: str) -> float | None:
    """A numeric cell ("10,082", "(5)", "12") as a float."""
    match = re.search(r"[\d,]+(\.\d+)?", cell)
    return float(match[0].replace(",", "")) if match else None


def environment(text: str) -> str:
    """The environment line of a results table (the runner's, else the script's own)."""
    lines = [line.strip() for line in text.splitlines()]
    stamped = [line for line in lines if line.startswith("Environment:")]
    own = [line for line in lines if re.search(r"Machine:|machine:|Produced by", line)]
    command = [line for line in lines if line.startswith("Command:")]
    line = (stamped or own or command or ["environment not recorded"])[0]
    return re.sub(r"[`*]", "", line)[:240]


def _loglog(ax, rows: list[Row], series: dict[str, Callable[[Row], float | None]]) -> None:
    for label, value in series.items():
        points = sorted(
            (number(row["n"]), value(row)) for row in rows if (value(row) or 0) > 0
        )
        if points:
            ax.loglog(*zip(*points, strict=True), marker="o", label=label)
    ax.set_xlabel("n")
    ax.set_ylabel("time (s)")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)


def _legend(ax, below: float = 4.0) -> None:
    """Put the legend under the panel, `below` font sizes down, readable at page width.

    Two columns when every label is short, else one, so that a legend never runs into
    the legend of the panel beside it.
    """
    labels = ax.get_legend_handles_labels()[1]
    ncol = 2 if max(map(len, labels), default=0) <= 24 else 1
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=ncol,
              borderaxespad=below, frameon=False)


def _figure(panels: int, stamp: str, title: str):
    cols = min(panels, 3)
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 4.8 * rows + 0.6), squeeze=False)
    for ax in axes.flat[panels:]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.text(0.01, 0.005, stamp, fontsize=6, wrap=True)
    return fig, list(axes.flat)


def _family(problem: str) -> str:
    return " ".join(word for word in problem.split() if not re.search(r"\d", word))


def _grouped(rows: list[Row], key: Callable[[Row], str]) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def plot_evaluation(tables: list[list[Row]], stamp: str):
    """Sparse evaluation time against n, with the floor and the dense baselines."""
    groups = _grouped(tables[0], lambda r: f"{_family(r['problem'])} ({r['mode']})")
    fig, axes = _figure(len(groups), stamp, "Sparse Jacobians and Hessians: time against n")
    for ax, (name, rows) in zip(axes, groups.items(), strict=False):
        _loglog(ax, rows, {
            "asdex (BCOO)": lambda r: seconds(r["sparse"]),
            "floor: num_colors passes": lambda r: seconds(r["floor"]),
            "dense jax.jacfwd": lambda r: seconds(r.get("dense jacfwd")),
            "dense jax.jacrev / jax.hessian": lambda r: seconds(r.get("dense jacrev / hessian")),
        })
        ax.set_title(name, fontsize=9)
    return fig


def plot_coloring(tables: list[list[Row]], stamp: str):
    """Colors against the lower bound, and coloring time against n."""
    rows = tables[0]
    fig, (left, right) = _figure(2, stamp, "Coloring: colors against the lower bound, time")[:2]
    for i, (kind, group) in enumerate(_grouped(rows, lambda r: r["coloring"]).items()):
        reference = group[0]["lower bound"].startswith("(")
        left.scatter(
            [number(r["lower bound"]) for r in group], [number(r["colors"]) for r in group],
            label=kind + (" (bound: max row, reference only)" if reference else ""),
            facecolors="none" if reference else f"C{i}", edgecolors=f"C{i}",
        )
    top = max(number(r["colors"]) for r in rows) + 1
    left.plot([0, top], [0, top], color="gray", lw=0.8, label="colors = lower bound")
    left.set_xlabel("lower bound (max nonzeros in a row or column)")
    left.set_ylabel("colors")
    _legend(left)
    series = {
        f"{pattern}, {kind}": (lambda r, p=pattern, k=kind: seconds(r["time (s)"])
                               if (r["pattern"], r["coloring"]) == (p, k) else None)
        for pattern, kind in dict.fromkeys((r["pattern"], r["coloring"]) for r in rows)
        if "best" not in kind and len({r["n"] for r in rows if r["pattern"] == pattern}) > 1
    }
    _loglog(right, rows, series)
    right.set_title("coloring time", fontsize=9)
    return fig


def plot_detection(tables: list[list[Row]], stamp: str):
    """Jacobian sparsity detection time against n, next to tracing the same function."""
    groups = _grouped(tables[0], lambda r: r["problem"])
    fig, axes = _figure(len(groups), stamp, "Jacobian sparsity detection: time against n")
    for ax, (name, rows) in zip(axes, groups.items(), strict=False):
        _loglog(ax, rows, {
            "detection (warm)": lambda r: seconds(r["detection warm (s)"]),
            "detection (cold)": lambda r: seconds(r["detection cold (s)"]),
            "jax.make_jaxpr": lambda r: seconds(r["make_jaxpr (s)"]),
        })
        ax.set_title(name, fontsize=9)
    return fig


def plot_hessian_detection(tables: list[list[Row]], stamp: str):
    """Hessian sparsity detection time against n, against the gradient's Jacobian."""
    groups = _grouped(tables[0], lambda r: r["objective"])
    fig, axes = _figure(len(groups), stamp, "Hessian sparsity detection: time against n")
    for ax, (name, rows) in zip(axes, groups.items(), strict=False):
        _loglog(ax, rows, {
            "hessian_sparsity": lambda r: seconds(r["hessian_sparsity (s)"]),
            "jacobian_sparsity(grad f)": lambda r: seconds(r["jacobian_sparsity(grad f) (s)"]),
            "jax.make_jaxpr": lambda r: seconds(r["make_jaxpr (s)"]),
        })
        ax.set_title(name, fontsize=9)
    return fig


def plot_linear_solve(tables: list[list[Row]], stamp: str):
    """Solve time against n for each solver, with dense `lineax.LU`."""
    groups = _grouped(tables[0], lambda r: r["problem"])
    fig, axes = _figure(len(groups), stamp, "Linear solves: time against n")
    for ax, (name, rows) in zip(axes, groups.items(), strict=False):
        solvers = dict.fromkeys(r["solver"] for r in rows)
        _loglog(ax, rows, {
            solver: (lambda r, s=solver: seconds(r["time (ms)"], "ms") if r["solver"] == s
                     else None)
            for solver in solvers
        })
        ax.set_title(name, fontsize=9)
    return fig


def plot_optimizers(tables: list[list[Row]], stamp: str):
    """Time to tolerance against n for each solver; problems of one size side by side.

    Problems measured at several n get a log-log panel each (a cross marks a solve that
    stopped without reaching the tolerance); the problems measured at one n share a bar
    chart (hatched bars did not reach the tolerance).
    """
    rows = tables[0]
    title = "Least squares" if "max abs Jᵀr" in rows[0] else "Optimizers"
    for row in rows:
        row["_seconds"] = seconds(row["time [ms]"], "ms")
        row["_ok"] = row["reached tol"].strip("* ").lower() == "yes"
    problems = _grouped(rows, lambda r: r["problem"])
    scaling = {k: v for k, v in problems.items() if len({r["n"] for r in v}) > 1}
    single = {k: v for k, v in problems.items() if k not in scaling}
    fig, axes = _figure(len(scaling) + bool(single), stamp,
                        f"{title}: time to tolerance (second solve)")
    solvers = list(dict.fromkeys(r["solver"] for r in rows))
    color = {solver: f"C{i % 10}" for i, solver in enumerate(solvers)}
    for ax, (name, group) in zip(axes, scaling.items(), strict=False):
        for solver, runs in _grouped(group, lambda r: r["solver"]).items():
            runs = sorted(runs, key=lambda r: number(r["n"]))
            ok = [(number(r["n"]), r["_seconds"]) for r in runs if r["_ok"]]
            failed = [(number(r["n"]), r["_seconds"]) for r in runs if not r["_ok"]]
            if ok:
                ax.loglog(*zip(*ok, strict=True), marker="o", color=color[solver], label=solver)
            if failed:
                ax.loglog(*zip(*failed, strict=True), marker="x", ls="none", ms=8,
                          color=color[solver], label=None if ok else f"{solver} (not reached)")
        ax.set_xlabel("n")
        ax.set_ylabel("time to tolerance (s)")
        ax.grid(True, which="both", alpha=0.3)
        _legend(ax)
        ax.set_title(f"{name} (x: tolerance not reached)", fontsize=9)
    if single:
        ax = axes[len(scaling)]
        names, labelled = list(single), set()
        for i, name in enumerate(names):
            runs = sorted(single[name], key=lambda r: solvers.index(r["solver"]))
            width = 0.8 / len(runs)
            for j, r in enumerate(runs):
                ax.bar(i + (j - (len(runs) - 1) / 2) * width, r["_seconds"], width,
                       color=color[r["solver"]], hatch=None if r["_ok"] else "xx",
                       edgecolor=color[r["solver"]] if r["_ok"] else "black",
                       label=None if r["solver"] in labelled else r["solver"])
                labelled.add(r["solver"])
        ax.set_yscale("log")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([f"{name}, n = {single[name][0]['n']}" for name in names],
                           fontsize=7, rotation=45, ha="right", rotation_mode="anchor")
        ax.set_ylabel("time (s)")
        ax.grid(True, axis="y", which="both", alpha=0.3)
        _legend(ax, below=8.0)
        ax.set_title("one size each (hatched: tolerance not reached)", fontsize=9)
    return fig


def plot_profile(tables: list[list[Row]], stamp: str):
    """Dolan-Moré performance profiles: fraction of problems solved within τ x the best.

    One panel per kind of problem and clock (warm, cold), from the table of runs; a
    solve that did not reach the tolerance never counts.
    """
    runs = next(t for t in tables if t and "cold (s)" in t[0])
    kinds = list(dict.fromkeys(r["kind"] for r in runs))
    fig, axes = _figure(2 * len(kinds), stamp, "Performance profiles (sif2jax problems)")
    for row, kind in enumerate(kinds):
        group = [r for r in runs if r["kind"] == kind]
        problems = list(dict.fromkeys(r["problem"] for r in group))
        solvers = list(dict.fromkeys(r["solver"] for r in group))
        for col, clock in enumerate(("warm", "cold")):
            ax = axes[2 * row + col]
            times = {(r["problem"], r["solver"]): seconds(r[f"{clock} (s)"])
                     for r in group
                     if r["converged"] == "yes" and seconds(r[f"{clock} (s)"])}
            best = {p: min((t for (q, _), t in times.items() if q == p), default=None)
                    for p in problems}
            ratios = {s: sorted(times[p, s] / best[p] for p in problems if (p, s) in times)
                      for s in solvers}
            top = max([r for rs in ratios.values() for r in rs] + [10.0]) * 1.5
            for i, solver in enumerate(solvers):
                xs = [1.0] + ratios[solver] + [top]
                ys = [0.0] + [(k + 1) / len(problems) for k in range(len(ratios[solver]))]
                ys.append(ys[-1])
                ax.step(xs, ys, where="post", label=solver, color=f"C{i % 10}",
                        ls="-" if solver.startswith(("Sparse", "asdex")) else "--")
            ax.set_xscale("log")
            ax.set_xlim(1, top)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel(f"τ ({clock} time / fastest {clock} time on the problem)")
            ax.set_ylabel("fraction of problems solved within τ")
            ax.grid(True, which="both", alpha=0.3)
            _legend(ax)
            ax.set_title(f"{kind}: {clock} ({len(problems)} problems)", fontsize=9)
    return fig


def _grouped_bars(ax, labels: list[str], bars: dict[str, list[float]]) -> None:
    """Horizontal bars of seconds, one group per label, on a log axis."""
    height = 0.8 / len(bars)
    for j, (label, values) in enumerate(bars.items()):
        ax.barh([i + (j - (len(bars) - 1) / 2) * height for i in range(len(labels))],
                values, height, label=label)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("time (s)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    _legend(ax)


def plot_factorization(tables: list[list[Row]], stamp: str):
    """Factor + solve time per problem: `SparseLDL` against SuperLU and structured solvers."""
    rows = tables[0]
    series = {
        "SparseLDL f+s": "LDL f+s",
        "splu new": "splu new",
        "SparseLU": "SparseLU",
        "structured": "structured",
    }
    fig, axes = _figure(2, stamp, "Sparse symmetric factorization + solve (CPU)")
    labels = [f"{r['problem']} {r['n']}" for r in rows]

    def column(name: str) -> list[float]:
        return [seconds(r.get(name), "ms") or 0.0 for r in rows]

    _grouped_bars(axes[0], labels, {label: column(name) for label, name in series.items()})
    _grouped_bars(axes[1], labels, {"compile": column("compile"),
                                    "analysis": column("analysis")})
    return fig


PLOTS: dict[str, Callable] = {
    "evaluation": plot_evaluation,
    "coloring": plot_coloring,
    "detection": plot_detection,
    "hessian_detection": plot_hessian_detection,
    "hessian_detection_time": plot_hessian_detection,
    "linear_solve": plot_linear_solve,
    "optimizers": plot_optimizers,
    "least_squares": plot_optimizers,
    "profile": plot_profile,
    "factorization": plot_factorization,
}
"""Plot function for each results table, by table name (`results/<name>.md`)."""


def plot_results(results: pathlib.Path, names: list[str] | None = None) -> list[pathlib.Path]:
    """Draw `results/<name>.png` for every table present in `results` (or for `names`)."""
    written = []
    for name, plot in PLOTS.items():
        table = results / f"{name}.md"
        if (names is not None and name not in names) or not table.exists():
            continue
        text = table.read_text()
        fig = plot(read_tables(text), environment(text))
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        fig.savefig(results / f"{name}.png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        written.append(results / f"{name}.png")
    return written
