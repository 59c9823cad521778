"""Dolan-Moré performance profiles of the sparse solvers on sif2jax (CUTEst) problems.

Every sif2jax unconstrained problem whose number of variables is free in its SIF file
(set to about `--n`) or at least 1000 (and at most `--max-n`) and whose Hessian asdex
finds sparse (density at most `--max-density`) is solved from its standard start to
max|∇f| ≤ 1e-6 in float64 by the asdex_opt solvers and the baselines (Optimistix,
Optax, SciPy, IPOPT through cyipopt where it is installed). The nonlinear-equations
problems are solved the same way as least squares (max|Jᵀr| ≤ 1e-6) and, where square,
as root finding (max|F| ≤ 1e-6).

Each (problem, solver) runs in a fresh process forked from a server that has imported
the libraries but never touched a JAX device: "cold" is its first solve (detection,
coloring, tracing, compilation and the solve; imports excluded), "warm" the fastest of
up to five further solves (as many as fit in `--budget` seconds). A solve that passes
`--timeout` seconds is killed and counts as not solved; step limits: 2000 (Newton-type,
SciPy, IPOPT), 20000 (quasi-Newton). The solvers of a problem run one after another
before the next problem starts, in an order rotated from problem to problem, so that a
change of the machine's load reaches every solver alike; each row records the load
average and the time at its start (``--shard`` splits the problems between streams).
Writes `benchmarks/results/profile.md` (the runner draws `profile.png`) and the raw rows
to `profile.jsonl`, a line per finished (problem, solver), and the survey to
`profile.survey.json`, a problem at a time: ``--append`` resumes a stopped run from
both, so a partial run still counts.

Run: ``python benchmarks/bench_profile.py`` (``--quick``: five problems at n ≈ 100).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import cutest

RESULTS = Path(__file__).parent / "results" / "profile.md"
KINDS = ("unconstrained", "least squares", "root")
TAUS = (1, 2, 10)
EARLIER = " (earlier run)"
QUICK = {"unconstrained": ["ARWHEAD", "DIXMAANF", "GENROSE"],
         "equations": ["LIARWHDNE", "BDVALUES"]}
PRELOAD = ["cutest", "optimistix", "optax", "scipy.optimize", "scipy.sparse", "asdex",
           "asdex_opt"]


def _quiet() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)


def _survey_child(conn, category: str, name: str, target: int, max_n: int) -> None:
    _quiet()
    try:
        conn.send(survey(category, name, target, max_n))
    except Exception as error:
        conn.send({"why": f"error: {type(error).__name__}: {str(error)[:80]}"})


def surveyed(ctx, category: str, name: str, target: int, max_n: int, timeout: float) -> dict:
    """`survey` in a process forked from the server, killed after `timeout` s.

    A signal cannot interrupt a survey blocked in compilation (dense problems such as
    INTEQNE), so it runs apart; its errors and the timeout become the exclusion reason.
    """
    result = in_child(ctx, _survey_child, (category, name, target, max_n), timeout)
    if result is None:
        return {"why": f"survey over {timeout:g} s"}
    return {"why": result["error"]} if "error" in result else result


def survey(category: str, name: str, target: int, max_n: int) -> dict:
    """Size, sparsity and eligibility of one problem."""
    import jax
    import jax.numpy as jnp

    import asdex

    problem, size = cutest.sized(category, name, target)
    if size and broken(category, problem):
        problem, size = cutest.problem_class(category, name)(), {}
    n = cutest.num_variables(problem)
    info = {"size": size, "n": n}
    if not size and n < 1000:
        return info | {"why": "fixed n < 1000"}
    kind = "unconstrained" if category == "unconstrained" else "least squares"
    try:
        t = cutest.task(kind, problem)
    except ValueError as error:
        return info | {"why": str(error).split(";")[0]}
    if t.y0.size < n:
        info |= {"n": int(t.y0.size), "fixed": n - int(t.y0.size)}
    if info["n"] > max_n:
        return info | {"why": f"n > --max-n {max_n}"}
    if out_of_bounds(category, problem):
        return info | {"why": "indexes out of bounds (checkify) at its default size"}
    if category == "unconstrained":
        value = t.f(t.y0)
        pattern = asdex.hessian_sparsity(t.f, t.y0)
    else:
        value = jnp.sum(t.f(t.y0) ** 2)
        pattern = asdex.jacobian_sparsity(t.f, t.y0)
        info["m"] = pattern.shape[0]
    if not bool(jnp.isfinite(value)) or not bool(jnp.all(jnp.isfinite(jax.grad(
            lambda y: jnp.sum(t.f(y)))(t.y0)))):
        return info | {"why": "not finite at the start"}
    info["density"] = pattern.nnz / (pattern.shape[0] * pattern.shape[1])
    return info


def broken(category: str, problem) -> bool:
    """Whether the problem at a size chosen by `cutest.sized` fails or reads out of bounds.

    Some size fields set n but leave other sizes of the SIF file behind (ARGLALE's
    ``m``, ERRINROSNE's data arrays): the function then fails to trace or indexes past
    the end of ``y``. The survey falls back to the default size there.
    """
    try:
        return out_of_bounds(category, problem)
    except ValueError as error:
        return "bounds" not in str(error)
    except Exception:
        return True


def out_of_bounds(category: str, problem) -> bool:
    """Whether the problem's function indexes out of bounds at its start (checkify).

    Some sif2jax problems keep a second size field (CHAINWOO's ``ns`` beside ``n``) that
    `cutest.sized` does not change with the first: their functions then read past the
    end of ``y``, which JAX clamps in the function and drops in its gradient.
    """
    from jax.experimental import checkify

    t = cutest.task("unconstrained" if category == "unconstrained" else "least squares",
                    problem)
    error, _ = checkify.checkify(t.f, errors=checkify.index_checks)(t.y0)
    return error.get() is not None


def _solve_child(conn, kind: str, category: str, name: str, size: dict, solver: str,
                 budget: float) -> None:
    _quiet()
    try:
        conn.send(cutest.solve(kind, category, name, size, solver, budget, conn.send)
                  | {"final": True})
    except Exception as error:
        conn.send({"error": f"{type(error).__name__}: {str(error)[:100]}"})


def in_child(ctx, target, args: tuple, timeout: float) -> dict | None:
    """`target(conn, *args)` in a process forked from the server; None on timeout."""
    receive, send = ctx.Pipe(duplex=False)
    process = ctx.Process(target=target, args=(send, *args))
    process.start()
    send.close()
    deadline, result, final = time.perf_counter() + timeout, None, False
    while not final and receive.poll(max(deadline - time.perf_counter(), 0)):
        try:
            result = receive.recv()
        except EOFError:
            break
        final = "warm" not in result or result.pop("final", False) or result["warm"] is not None
    if not final:
        os.kill(process.pid, signal.SIGKILL)
    process.join()
    if result is None and process.exitcode not in (None, -signal.SIGKILL):
        return {"error": f"process exited with {process.exitcode}"}
    if result is not None and not final:
        result["note"] = f"warm solves killed after {timeout:g} s"
    return result


def rotated(items: list, index: int) -> list:
    """`items` starting at the `index`-th (cyclically).

    Rotating the solvers' order from one problem to the next spreads the position in a
    problem's run (first, right after another solver's compilation, last) over every
    solver.
    """
    start = index % max(len(items), 1)
    return items[start:] + items[:start]


def shard(items: list, spec: str | None) -> list:
    """The `i`-th of every `k` items for `spec` = "i/k" (all of them when spec is None)."""
    if spec is None:
        return items
    i, k = (int(part) for part in spec.split("/"))
    return items[i::k]


def spread(items: list, count: int | None) -> list:
    """`count` items evenly spaced through `items` (all of them when count is None)."""
    if count is None or count >= len(items):
        return items
    return [items[round(i * (len(items) - 1) / max(count - 1, 1))] for i in range(count)]


def profile(runs: list[dict], solvers: list[str], clock: str) -> dict[str, list[float]]:
    """Per solver, the fraction of problems solved within τ x the best `clock` time."""
    problems = sorted({r["problem"] for r in runs})
    times = {(r["problem"], r["solver"]): r[clock] if r.get("converged") and r[clock]
             else math.inf for r in runs}
    best = {p: min(times.get((p, s), math.inf) for s in solvers) for p in problems}
    return {
        s: [sum(times.get((p, s), math.inf) <= tau * best[p] < math.inf for p in problems)
            / max(len(problems), 1) for tau in TAUS]
        for s in solvers
    }


def fmt_time(seconds: float | None) -> str:
    return "" if seconds is None or not math.isfinite(seconds) else f"{seconds:.3g}"


def fmt_where(r: dict) -> str:
    """The row's code, start time (UTC) and load average, where it recorded them."""
    load = r.get("load")
    return (f"{r.get('commit', '')[:7]} | {r.get('start', '')} | "
            f"{'' if load is None else f'{load:.1f}'}")


def fmt_run(r: dict) -> str:
    if "warm" not in r:
        note = r.get("error", "")
        return (f"| {r['kind']} | {r['problem']} | {r['n']} | {r['solver']} | "
                f"no | | | | | | | {fmt_where(r)} | {note} |")
    expected = r.get("expected")
    note = r.get("note", "")
    if r["converged"] and expected is not None and abs(r["f"] - expected) > 1e-4 * max(
            1.0, abs(expected)):
        note = "; ".join(filter(None, [note, "f differs from the expected value"]))
    return (f"| {r['kind']} | {r['problem']} | {r['n']} | {r['solver']} | "
            f"{'yes' if r['converged'] else '**no**'} | {r['f']:.6g} | "
            f"{'' if expected is None else f'{expected:.6g}'} | {r['optimality']:.1e} | "
            f"{r['steps']} | {fmt_time(r['warm'])} | {fmt_time(r['cold'])} | "
            f"{fmt_where(r)} | {note} |")


def load_summary(runs: list[dict]) -> str:
    """A sentence on the load average at the rows' starts, where they recorded it."""
    loads = sorted(r["load"] for r in runs if r.get("load") is not None)
    if not loads:
        return ""
    return (f" Load average (1 min) at the starts of the {len(loads)} rows that recorded "
            f"it: {loads[0]:.1f}-{loads[-1]:.1f}, median {statistics.median(loads):.1f}.")


def write(cli, runs: list[dict], excluded: list[dict], not_run: dict, elapsed: float) -> None:
    argv = " ".join("<the note at the end of this paragraph>" if cli.label and a == cli.label
                    else a for a in sys.argv[1:])
    lines = [
        "# Performance profiles: sparse solvers on sif2jax (CUTEst) problems",
        "",
        f"Command: `python benchmarks/bench_profile.py{' ' + argv if argv else ''}` "
        f"({elapsed / 60:.0f} min). Problems: sif2jax's unconstrained problems (and its "
        "nonlinear equations, as least squares and, where square, root finding) whose "
        f"n is free in the SIF file (set to at most {cli.n}) or is at least 1000 (at most "
        f"{cli.max_n}), with a Hessian (Jacobian) of density at most {cli.max_density}. "
        "Success: max|∇f| (max|Jᵀr|, max|F|) ≤ 1e-6 at the returned point, float64, "
        "rtol = atol = 1e-12 for Optimistix solvers. Each (problem, solver) in a fresh "
        "process forked before JAX touched a device: cold = its first solve (detection, "
        "coloring, tracing, compilation, the solve; imports excluded), warm = fastest of "
        f"up to 5 further solves (as many as fit in {cli.budget} s). Killed after "
        f"{cli.timeout} s (not solved). Step limits: {cutest.SECOND_ORDER_STEPS} "
        f"(Newton-type, SciPy, IPOPT), {cutest.FIRST_ORDER_STEPS} (quasi-Newton). Steps: "
        "Optimistix steps (rejected trials included), Optax iterations, SciPy `nit` "
        "(least_squares / root: function evaluations), IPOPT iterations. The profile "
        "counts a problem for a solver when it is solved within τ x the fastest solver's "
        "time on it; problems no solver solved count against every solver."
        + load_summary(runs) + (f" {cli.label}" if cli.label else ""),
        "",
        "## Profiles",
        "",
        "| kind | solver | problems | solved | warm τ=1 | warm τ≤2 | warm τ≤10 | cold τ=1 "
        "| cold τ≤2 | cold τ≤10 | median cold (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in KINDS:
        group = [r for r in runs if r["kind"] == kind]
        if not group:
            continue
        solvers = list(dict.fromkeys(r["solver"] for r in group))
        warm, cold = profile(group, solvers, "warm"), profile(group, solvers, "cold")
        problems = len({r["problem"] for r in group})
        for s in solvers:
            mine = [r for r in group if r["solver"] == s]
            colds = [r["cold"] for r in mine if "cold" in r]
            solved = sum(bool(r.get("converged")) for r in mine)
            lines.append(
                f"| {kind} | {s} | {problems} | {solved} | "
                + " | ".join(f"{x:.2f}" for x in warm[s] + cold[s])
                + f" | {fmt_time(statistics.median(colds)) if colds else ''} |")
    lines += [
        "",
        "## Runs",
        "",
        "Commit, start (UTC) and load (the 1-minute load average at the row's start) are "
        "blank for rows of runs that did not record them.",
        "",
        "| kind | problem | n | solver | converged | f | f expected | optimality | steps | "
        "warm (s) | cold (s) | commit | start | load | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(fmt_run(r) for r in runs),
        "",
        "## Excluded",
        "",
        "| category | problem | n | why |",
        "|---|---|---|---|",
        *(f"| {e['category']} | {e['problem']} | {e.get('n', '')} | {e['why']} |"
          for e in excluded),
    ]
    if not_run:
        lines += ["", "Eligible but not run (`--max-problems`): " + "; ".join(
            f"{category}: {', '.join(names)}" for category, names in not_run.items()) + "."]
    cli.output.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="five problems at n ≈ 100 (a few minutes)")
    parser.add_argument("--only-problems", nargs="+", default=None,
                        help="run only these sif2jax problems (with --merge: keep only "
                        "their rows)")
    parser.add_argument("--skip-problems", nargs="+", default=None,
                        help="leave these sif2jax problems out (e.g. rows merged from "
                        "another run)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS),
                        help="run only these kinds of problem")
    parser.add_argument("--n", type=int, default=1000,
                        help="target n for problems whose n is free (default 1000)")
    parser.add_argument("--max-n", type=int, default=5000,
                        help="skip fixed-size problems with more variables")
    parser.add_argument("--max-density", type=float, default=0.05,
                        help="the largest Hessian/Jacobian density counted as sparse")
    parser.add_argument("--max-problems", type=int, default=None,
                        help="run this many eligible unconstrained problems, evenly "
                        "spaced in alphabetical order (the rest are listed as not run)")
    parser.add_argument("--max-equations", type=int, default=None,
                        help="the same for the nonlinear equations (least squares, roots)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds before one (problem, solver) process is killed")
    parser.add_argument("--budget", type=float, default=1.0,
                        help="seconds of warm repeats per (problem, solver)")
    parser.add_argument("--solvers", nargs="+", default=None,
                        help="run only these solvers (names as in the table)")
    parser.add_argument("--shard", default=None, metavar="I/K",
                        help="run only the I-th of every K eligible problems of each kind "
                        "(0-based), to split one run between K streams")
    parser.add_argument("--commit", default="",
                        help="the git commit of the code measured, recorded in every row")
    parser.add_argument("--label", default="",
                        help="a note for the table's header (e.g. which code was measured)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--append", action="store_true",
                        help="resume: reuse the survey and keep the rows already in "
                        "the output's .jsonl, running only the (problem, solver) pairs "
                        "missing there")
    parser.add_argument("--drop-solvers", nargs="+", default=None,
                        help="with --merge: leave these solvers' rows out of the tables")
    parser.add_argument("--merge", nargs="+", type=Path, default=None,
                        help="run nothing: write the tables from earlier runs' outputs "
                        "(their .jsonl and .survey.json files; a later file's row for "
                        "the same (kind, problem, solver) replaces an earlier one's), and "
                        "the merged rows and exclusions to the output's .jsonl and "
                        ".survey.json")
    parser.add_argument("--earlier", nargs="+", type=Path, default=[],
                        help="with --merge: outputs of an earlier run whose rows of "
                        "--earlier-solvers join the tables, each such solver named with "
                        f"'{EARLIER}' appended (once), so that no row of another run passes "
                        "as this one's")
    parser.add_argument("--earlier-solvers", nargs="+", default=[],
                        help="with --earlier: the solvers taken from the earlier run")
    cli = parser.parse_args()
    if cli.earlier and not (cli.merge and cli.earlier_solvers):
        parser.error("--earlier needs --merge and --earlier-solvers (which solvers to take)")
    if cli.merge:
        merged, excluded, not_run = {}, {}, {}
        sources = [(path, False) for path in cli.merge] + [(path, True) for path in cli.earlier]
        for earlier, from_earlier_run in sources:
            for line in earlier.with_suffix(".jsonl").open():
                row = json.loads(line)
                if from_earlier_run:
                    if row["solver"] not in cli.earlier_solvers:
                        continue
                    row["solver"] = row["solver"].removesuffix(EARLIER) + EARLIER
                merged[row["kind"], row["problem"], row["solver"]] = row
            survey_file = json.loads(earlier.with_suffix(".survey.json").read_text())
            for e in survey_file.get("excluded", []):
                excluded[e["category"], e["problem"]] = e
            not_run |= survey_file.get("not_run", {})
        runs = [r for r in merged.values() if r["solver"] not in (cli.drop_solvers or ())
                and (not cli.only_problems or r["problem"] in cli.only_problems)]
        order = {s: i for i, s in enumerate(dict.fromkeys(r["solver"] for r in runs))}
        runs.sort(key=lambda r: (KINDS.index(r["kind"]), r["problem"], order[r["solver"]]))
        ran = {r["problem"] for r in runs}
        excluded = [e for e in excluded.values() if e["problem"] not in ran]
        write(cli, runs, excluded, not_run, sum(r.get("wall", 0.0) for r in runs))
        cli.output.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs))
        cli.output.with_suffix(".survey.json").write_text(
            json.dumps({"excluded": excluded, "not_run": not_run}))
        return
    if cli.quick:
        cli.n = min(cli.n, 100)
        cli.timeout = min(cli.timeout, 60.0)
        cli.budget = min(cli.budget, 0.3)
        cli.only_problems = cli.only_problems or [n for names in QUICK.values() for n in names]
    cli.output.parent.mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    start = time.perf_counter()

    def progress(message: str) -> None:
        print(f"[{time.perf_counter() - start:7.1f} s] {message}", flush=True)

    survey_file = cli.output.with_suffix(".survey.json")
    surveys = {}
    if cli.append and survey_file.exists():
        surveys = json.loads(survey_file.read_text()).get("surveyed", {})
    excluded, eligible, not_run = [], {}, {}
    categories = ["unconstrained"] * ("unconstrained" in cli.kinds) + ["equations"] * (
        "least squares" in cli.kinds or "root" in cli.kinds)
    for category in categories:
        names = sorted(cutest.catalogue(category))
        if cli.only_problems:
            names = [name for name in names if name in cli.only_problems]
        names = [name for name in names if name not in (cli.skip_problems or ())]
        eligible[category] = []
        for name in names:
            key = f"{category}/{name}"
            if key not in surveys:
                surveys[key] = surveyed(ctx, category, name, cli.n, cli.max_n, cli.timeout)
                survey_file.write_text(json.dumps({"surveyed": surveys}))
            info = dict(surveys[key])
            if "why" not in info and info["density"] > cli.max_density:
                info["why"] = f"density {info['density']:.2f} > {cli.max_density}"
            if "why" in info:
                if info["why"] != "fixed n < 1000":
                    excluded.append(info | {"category": category, "problem": name})
                progress(f"survey {category} {name}: excluded ({info['why']})")
            else:
                eligible[category].append((name, info))
                progress(f"survey {category} {name}: n = {info['n']}, "
                         f"density {info['density']:.4f}")
        chosen = spread(eligible[category], cli.max_problems if category == "unconstrained"
                        else cli.max_equations)
        skipped = [name for name, _ in eligible[category] if (name, _) not in chosen]
        if skipped:
            not_run[category] = skipped
        eligible[category] = chosen
    survey_file.write_text(
        json.dumps({"excluded": excluded, "not_run": not_run, "surveyed": surveys}))
    jobs = [("unconstrained", "unconstrained", name, info)
            for name, info in eligible.get("unconstrained", [])]
    jobs += [("least squares", "equations", name, info)
             for name, info in eligible.get("equations", [])]
    jobs += [("root", "equations", name, info) for name, info in eligible.get("equations", [])
             if info["m"] == info["n"]]
    jobs = [job for kind in KINDS if kind in cli.kinds for job in shard(
        [job for job in jobs if job[0] == kind], cli.shard)]
    jsonl = cli.output.with_suffix(".jsonl")
    runs: list[dict] = []
    if cli.append and jsonl.exists():
        runs = [json.loads(line) for line in jsonl.open()]
    done = {(r["kind"], r["problem"], r["solver"]) for r in runs}
    with jsonl.open("a" if cli.append else "w") as raw:
        for index, (kind, category, name, info) in enumerate(jobs):
            chosen = [(solver, limit) for solver, (_, limit) in cutest.solvers(kind).items()
                      if not cli.solvers or solver in cli.solvers]
            for solver, limit in rotated(chosen, index):
                if (kind, name, solver) in done:
                    continue
                row = {"kind": kind, "problem": name, "n": info["n"], "solver": solver,
                       "load": os.getloadavg()[0],
                       "start": time.strftime("%H:%M:%S", time.gmtime())}
                if cli.commit:
                    row["commit"] = cli.commit
                if limit is not None and info["n"] > limit:
                    row["error"] = f"not run: n > {limit}"
                else:
                    t0 = time.perf_counter()
                    result = in_child(ctx, _solve_child, (kind, category, name, info["size"],
                                                          solver, cli.budget), cli.timeout)
                    row |= result or {"error": f"killed after {cli.timeout:g} s"}
                    row["wall"] = time.perf_counter() - t0
                runs.append(row)
                raw.write(json.dumps(row) + "\n")
                raw.flush()
                status = ("solved" if row.get("converged") else "NOT solved") + (
                    f", warm {fmt_time(row['warm'])} s, cold {fmt_time(row['cold'])} s, "
                    f"{row['steps']} steps" if "warm" in row else f" ({row['error']})")
                progress(f"{kind} {name} n={info['n']} {solver}: {status}")
            write(cli, runs, excluded, not_run, time.perf_counter() - start)
    write(cli, runs, excluded, not_run, time.perf_counter() - start)
    progress(f"wrote {cli.output}")


if __name__ == "__main__":
    main()
