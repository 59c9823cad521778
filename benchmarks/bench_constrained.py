"""Constrained problems: SparseInteriorPoint against IPOPT and SciPy's trust-constr.

Every sif2jax constrained minimisation problem with at most ``--max-n`` variables
(5000 by default), smallest first, solved from its ``y0`` by

* ``SparseInteriorPoint`` through ``asdex_opt.constrained.constrained_minimise`` (one
  ``jax.jit``-compiled solve; cold = the first call, with sparsity detection, coloring
  and compilation; warm = the second call);
* IPOPT through ``asdex_opt.ipopt`` (the same exact sparse derivatives from asdex, so
  the comparison is the algorithm and the linear algebra; MUMPS; cold = building the
  problem, compiling the callbacks and solving; warm = a second solve);
* SciPy's ``trust-constr`` with the same sparse Jacobian and Hessians (as
  ``scipy.sparse`` matrices).

All to ``tol = 1e-8`` (IPOPT's and SparseInteriorPoint's scaled KKT error; trust-constr's
``gtol``), at most 3000 iterations. trust-constr runs on problems with at most
``--trust-constr-max-n`` variables and stops after ``--trust-constr-seconds`` per solve.
A problem that takes longer than ``--timeout`` seconds in all (the three solvers, cold
and warm) keeps the results of the solvers that finished; the others are recorded as
timed out. Problems
that the front door rejects (e.g. a constraint that depends on no variable) are listed
with the reason. Writes the table to ``--output`` (``benchmarks/results/
constrained.md``), every record to ``constrained.jsonl`` and the Dolan-Moré profiles to
``constrained.png`` beside it.

Run: ``python benchmarks/bench_constrained.py`` (``--quick``: five small
Hock-Schittkowski problems; ``--names HS71 HS35``: those only; ``--budget S``: stop
starting new problems after S seconds; ``--report-only``: rewrite the table from the
records of the last run; ``--append --names A B``: re-run those problems, their new
records replacing the old in the table; ``--append --min-n 1000``: the problems with
at least 1000 variables, e.g. from a second process beside a full run, so that the
large problems are reached; ``--append --resume``: only the problems without a record
yet, to carry on a stopped run; ``--report-only`` afterwards merges the records). The first
line of the records lists the problems the run set out to solve. The selection of
problems is ``cutest_constrained.py``'s, shared with the tests.
"""

import argparse
import json
import math
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from cutest_constrained import MAX_N, inputs, load, num_variables, problems

RESULTS = Path(__file__).parent / "results" / "constrained.md"
TOL = 1e-8
MAX_STEPS = 3000
SOLVERS = ("SparseInteriorPoint", "IPOPT", "trust-constr")
QUICK = ("HS35", "HS6", "HS7", "HS21", "HS71")
MARK = "@@bench "  # the worker's records; other output (IPOPT's banner) is ignored


# ---------------------------------------------------------------- worker


def _sip(problem, kwargs):
    import jax

    from asdex_opt.constrained import SparseInteriorPoint, constrained_minimise

    @jax.jit
    def solve(y0):
        return constrained_minimise(
            problem.objective, SparseInteriorPoint(tol=TOL), y0, problem.args,
            max_steps=MAX_STEPS, throw=False, **kwargs,
        )

    times = []
    for _ in range(2):
        start = time.perf_counter()
        sol = jax.block_until_ready(solve(problem.y0))
        times.append(time.perf_counter() - start)
    status = int(sol.stats["status"])
    return {
        "solved": bool(status == 0),
        "status": status,
        "f": float(sol.stats["objective"]),
        "iterations": int(sol.stats["num_steps"]),
        "cold": times[0],
        "warm": times[1],
    }


def _ipopt(problem, kwargs):
    from asdex_opt.ipopt import IpoptProblem

    start = time.perf_counter()
    nlp = IpoptProblem(problem.objective, problem.y0, problem.args, **kwargs)
    count = [0]

    def intermediate(alg_mod, iter_count, *rest):
        count[0] = iter_count
        return True

    nlp.intermediate = intermediate
    times, info = [], None
    for _ in range(2):
        solver = nlp.cyipopt_problem()
        for key, value in {"tol": TOL, "max_iter": MAX_STEPS, "print_level": 0}.items():
            solver.add_option(key, value)
        _, info = solver.solve(nlp.x0)
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
    return {
        "solved": bool(info["status"] in (0, 1)),
        "status": int(info["status"]),
        "f": float(info["obj_val"]),
        "iterations": int(count[0]),
        "cold": times[0],
        "warm": times[1],
    }


def _trust_constr(problem, kwargs, seconds):
    import numpy as np
    import scipy.optimize as so
    import scipy.sparse as sp

    from asdex_opt.ipopt import IpoptProblem

    start = time.perf_counter()
    nlp = IpoptProblem(problem.objective, problem.y0, problem.args, **kwargs)
    n, m = nlp.n, nlp.m
    jr, jc = nlp.jacobianstructure()
    hr, hc = nlp.hessianstructure()
    off = hr != hc

    def symmetric(values):
        rows = np.concatenate([hr, hc[off]])
        cols = np.concatenate([hc, hr[off]])
        return sp.csr_matrix((np.concatenate([values, values[off]]), (rows, cols)), (n, n))

    constraints = []
    if m:
        constraints.append(
            so.NonlinearConstraint(
                nlp.constraints, nlp.cl, np.where(nlp.cu > 1e19, np.inf, nlp.cu),
                jac=lambda x: sp.csr_matrix((nlp.jacobian(x), (jr, jc)), (m, n)),
                hess=lambda x, v: symmetric(nlp.hessian(x, v, 0.0)),
            )
        )
    lower = np.where(nlp.lb < -1e19, -np.inf, nlp.lb)
    upper = np.where(nlp.ub > 1e19, np.inf, nlp.ub)
    times, result = [], None
    for _ in range(2):
        deadline = time.perf_counter() + seconds
        result = so.minimize(
            nlp.objective, nlp.x0, jac=nlp.gradient,
            hess=lambda x: symmetric(nlp.hessian(x, np.zeros(m), 1.0)),
            method="trust-constr", constraints=constraints,
            bounds=so.Bounds(lower, upper) if np.isfinite([*lower, *upper]).any() else None,
            options={"gtol": TOL, "xtol": 1e-14, "maxiter": MAX_STEPS},
            callback=lambda x, state, end=deadline: time.perf_counter() > end,
        )
        times.append(time.perf_counter() - start)
        start = time.perf_counter()
    return {
        "solved": bool(result.status in (1, 2) and result.constr_violation <= 1e-6
                       and times[1] < seconds),
        "status": int(result.status),
        "f": float(result.fun),
        "iterations": int(result.nit),
        "cold": times[0],
        "warm": times[1],
    }


def worker(names: list[str], trust_constr_max_n: int, trust_constr_seconds: float) -> None:
    """Solve each problem with the three solvers; one JSON line per solver and problem."""
    import warnings

    import jax

    jax.config.update("jax_enable_x64", True)
    warnings.filterwarnings("ignore")
    for name in names:
        print(MARK + json.dumps({"start": name}), flush=True)
        problem = load(name)
        expected = problem.expected_objective_value
        record = {
            "name": name,
            "n": num_variables(problem),
            "expected": None if expected is None else float(expected),
        }
        try:
            kwargs = inputs(problem)
            from asdex_opt._constrained._problem import ConstrainedProblem

            nlp = ConstrainedProblem(problem.objective, problem.y0, problem.args,
                                     kwargs["equality"], kwargs["inequality"],
                                     kwargs["bounds"], False)
            record["me"], record["mi"] = nlp.num_equality, nlp.num_inequality
        except Exception as error:  # the front door's message says why
            record["excluded"] = f"{type(error).__name__}: {str(error).splitlines()[0]}"
            print(MARK + json.dumps(record), flush=True)
            continue
        print(MARK + json.dumps({"partial": record}), flush=True)
        runs = {  # IPOPT first: a SparseInteriorPoint past the time limit keeps its result
            "IPOPT": _ipopt,
            "SparseInteriorPoint": _sip,
            "trust-constr": lambda p, k: _trust_constr(p, k, trust_constr_seconds),
        }
        for label, run in runs.items():
            if label == "trust-constr" and record["n"] > trust_constr_max_n:
                record[label] = {"solved": False, "error": "not run (n too large)"}
                continue
            try:
                record[label] = run(problem, kwargs)
            except Exception as error:
                record[label] = {"solved": False, "error": f"{type(error).__name__}: "
                                 f"{str(error).splitlines()[0] if str(error) else ''}"}
            print(MARK + json.dumps({"partial": record}), flush=True)
        print(MARK + json.dumps(record), flush=True)


# ---------------------------------------------------------------- driver


def _timed_out(partial: dict | None, name: str, timeout: float) -> dict:
    reason = f"timed out after {timeout:.0f} s"
    if partial is None:
        return {"name": name, "excluded": reason}
    record = dict(partial)
    for label in SOLVERS:
        record.setdefault(label, {"solved": False, "error": reason})
    return record


def drive(names: list[str], timeout: float, budget: float, jsonl: Path,
          worker_args: list[str]) -> list[dict]:
    """Runs workers over ``names``, appending to ``jsonl``; a timeout keeps what finished."""
    records, remaining, begin = [], list(names), time.perf_counter()
    with jsonl.open("a") as sink:
        while remaining and time.perf_counter() - begin < budget:
            process = subprocess.Popen(
                [sys.executable, __file__, *worker_args, "--worker", *remaining],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )
            lines: queue.Queue = queue.Queue()
            threading.Thread(
                target=lambda p=process, q=lines: [q.put(x) for x in p.stdout] + [q.put(None)],
                daemon=True,
            ).start()
            current, started, partial = None, time.perf_counter(), None
            while True:
                try:
                    line = lines.get(timeout=5.0)
                except queue.Empty:
                    line = ""
                if line is None:  # the worker ended (done, or crashed on `current`)
                    if current is not None:
                        record = {"name": current, "excluded": "the worker process crashed"}
                        records.append(record)
                        sink.write(json.dumps(record) + "\n")
                        remaining.remove(current)
                    break
                if line.startswith(MARK):
                    message = json.loads(line[len(MARK):])
                    if "partial" in message:
                        partial = message["partial"]
                        continue
                    if "start" in message:
                        current, started = message["start"], time.perf_counter()
                        partial = None
                        if time.perf_counter() - begin > budget:
                            process.kill()
                            remaining = []
                            break
                        continue
                    records.append(message)
                    sink.write(json.dumps(message) + "\n")
                    sink.flush()
                    remaining.remove(message["name"])
                    print(_summary_line(message), flush=True)
                    current = None
                elif current is not None and time.perf_counter() - started > timeout:
                    process.kill()
                    record = _timed_out(partial, current, timeout)
                    records.append(record)
                    sink.write(json.dumps(record) + "\n")
                    sink.flush()
                    remaining.remove(current)
                    print(f"{current}: timed out", flush=True)
                    break
    return records


def _summary_line(record: dict) -> str:
    if "excluded" in record:
        return f"{record['name']}: excluded ({record['excluded']})"
    parts = [f"{record['name']} (n={record['n']})"]
    for label in SOLVERS:
        r = record.get(label, {})
        if "error" in r:
            parts.append(f"{label}: error")
        else:
            parts.append(f"{label}: {'ok' if r['solved'] else 'fail'} {r['iterations']} it "
                         f"f={r['f']:.8g} warm {r['warm']:.3g} s")
    return " | ".join(parts)


# ---------------------------------------------------------------- report


def _same_objective(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


def _median(values: list[float]) -> float:
    values = sorted(values)
    if not values:
        return math.nan
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def profiles(records: list[dict], key: str, taus: tuple[float, ...]) -> dict[str, list[float]]:
    """Dolan-Moré: the share of problems each solver solves within τ times the best."""
    rows = [r for r in records if "excluded" not in r]
    out = {label: [] for label in SOLVERS}
    for tau in taus:
        counts = dict.fromkeys(SOLVERS, 0)
        for r in rows:
            costs = {s: r[s][key] for s in SOLVERS if r.get(s, {}).get("solved")}
            if not costs:
                continue
            best = max(min(costs.values()), 1e-12)
            for s, cost in costs.items():
                if max(cost, 1e-12) <= tau * best:
                    counts[s] += 1
        for s in SOLVERS:
            out[s].append(counts[s] / max(len(rows), 1))
    return out


def report(records: list[dict], attempted: int, max_n: int) -> str:
    rows = [r for r in records if "excluded" not in r]
    excluded = [r for r in records if "excluded" in r]
    lines = [
        "# Constrained problems: SparseInteriorPoint vs IPOPT vs SciPy trust-constr",
        "",
        f"sif2jax constrained problems with n <= {max_n}, smallest first: {attempted} "
        f"listed, {len(records)} reached in this run, {len(rows)} run, {len(excluded)} "
        "excluded (below). Tolerance 1e-8, at most 3000 iterations; IPOPT and "
        "trust-constr get the same exact sparse derivatives from asdex "
        "(`asdex_opt.ipopt`). Warm = second solve (SparseInteriorPoint: the jitted "
        "solve again; IPOPT and trust-constr: the same compiled callbacks); cold = "
        "first solve including sparsity detection, coloring and compilation.",
        "",
    ]
    solved = {s: sum(1 for r in rows if r.get(s, {}).get("solved")) for s in SOLVERS}
    ipopt_solved = [r for r in rows if r.get("IPOPT", {}).get("solved")]
    same = [
        r for r in ipopt_solved
        if r["SparseInteriorPoint"].get("solved")
        and _same_objective(r["SparseInteriorPoint"]["f"], r["IPOPT"]["f"])
    ]
    both = [r for r in rows if r["SparseInteriorPoint"].get("solved")
            and r.get("IPOPT", {}).get("solved")]
    ratio = _median([max(r["SparseInteriorPoint"]["iterations"], 1)
                     / max(r["IPOPT"]["iterations"], 1) for r in both])
    big = [r for r in both if r["n"] >= 1000]
    faster = sum(1 for r in big if r["SparseInteriorPoint"]["warm"] < r["IPOPT"]["warm"])
    lines += [
        "## Summary",
        "",
        "| | SparseInteriorPoint | IPOPT | trust-constr |",
        "|---|---|---|---|",
        f"| solved (of {len(rows)}) | {solved['SparseInteriorPoint']} | {solved['IPOPT']} "
        f"| {solved['trust-constr']} |",
        "",
        f"* Of the {len(ipopt_solved)} problems IPOPT solves, SparseInteriorPoint solves "
        f"{len(same)} to the same objective (within 1e-6 relative)"
        + (f" ({100 * len(same) / len(ipopt_solved):.0f}%)." if ipopt_solved else "."),
        f"* Median iteration ratio SparseInteriorPoint / IPOPT on the {len(both)} problems "
        f"both solve: {ratio:.2f}.",
        f"* Problems with n >= 1000 both solve: {len(big)}; SparseInteriorPoint faster "
        f"(warm) on {faster}.",
        "",
        "## Dolan-Moré profiles",
        "",
        "Share of the problems run that each solver solves within τ times the best "
        "solver's cost on that problem.",
        "",
    ]
    taus = (1.0, 2.0, 4.0, 10.0, 100.0)
    for key, title in (("warm", "warm time"), ("iterations", "iterations")):
        prof = profiles(records, key, taus)
        lines += [f"**{title}**", "", "| τ | " + " | ".join(SOLVERS) + " |",
                  "|---|" + "---|" * len(SOLVERS)]
        for i, tau in enumerate(taus):
            lines.append(f"| {tau:g} | " + " | ".join(f"{prof[s][i]:.2f}" for s in SOLVERS)
                         + " |")
        lines.append("")
    lines += [
        "## Problems",
        "",
        "Per solver: solved (✓/✗ with status), iterations, warm / cold seconds. "
        "Δf = (f_SIP - f_IPOPT) / max(1, |f_IPOPT|).",
        "",
        "| problem | n | me | mi | expected f | SIP | IPOPT | trust-constr | f (SIP) | Δf |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(r):
        if "error" in r:
            return f"error: {r['error'][:40]}"
        mark = "✓" if r["solved"] else f"✗ ({r['status']})"
        return f"{mark} {r['iterations']} it, {r['warm']:.3g} / {r['cold']:.3g} s"

    for r in rows:
        sip, ipopt = r["SparseInteriorPoint"], r.get("IPOPT", {})
        delta = ""
        if "f" in sip and "f" in ipopt:
            delta = f"{(sip['f'] - ipopt['f']) / max(1.0, abs(ipopt['f'])):.1e}"
        expected = "" if r["expected"] is None else f"{r['expected']:.8g}"
        lines.append(
            f"| {r['name']} | {r['n']} | {r['me']} | {r['mi']} | {expected} | {cell(sip)} "
            f"| {cell(ipopt)} | {cell(r['trust-constr'])} | {sip.get('f', math.nan):.8g} "
            f"| {delta} |"
        )
    if excluded:
        lines += ["", "## Excluded", "", "| problem | reason |", "|---|---|"]
        lines += [f"| {r['name']} | {r['excluded']} |" for r in excluded]
    return "\n".join(lines) + "\n"


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    taus = tuple(2 ** (k / 4) for k in range(0, 57))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (key, title) in zip(axes, (("warm", "warm time"), ("iterations", "iterations")),
                                strict=True):
        prof = profiles(records, key, taus)
        for s in SOLVERS:
            ax.step(taus, prof[s], where="post", label=s)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("τ (ratio to the best solver)")
        ax.set_ylabel("share of problems")
        ax.set_title(f"Dolan-Moré profile: {title}")
        ax.set_ylim(0, 1.02)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _latest(records: list[dict]) -> list[dict]:
    """The last record of each problem (re-runs appended to the records replace earlier)."""
    return list({r["name"]: r for r in records}.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--max-n", type=int, default=MAX_N)
    parser.add_argument("--min-n", type=int, default=0,
                        help="run only the problems with at least this many variables "
                        "(e.g. a second process, with --append, on the large ones)")
    parser.add_argument("--names", nargs="+")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--trust-constr-max-n", type=int, default=1000)
    parser.add_argument("--trust-constr-seconds", type=float, default=30.0)
    parser.add_argument("--append", action="store_true",
                        help="add to the records of the last run (re-run some problems)")
    parser.add_argument("--resume", action="store_true",
                        help="with --append: skip the problems that already have a record")
    parser.add_argument("--budget", type=float, default=math.inf)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the table and plot from the records of the last run")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.trust_constr_max_n, args.trust_constr_seconds)
        return
    jsonl = args.output.with_suffix(".jsonl")
    if args.report_only or args.append:
        lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
        listed = next((r["listed"] for r in lines if "listed" in r), None)
    if args.report_only:
        records = _latest([r for r in lines if "name" in r])
        listed = listed or [r["name"] for r in records]
    else:
        if args.quick or args.names:
            names = every = list(QUICK) if args.quick else args.names
        else:
            selected = problems(args.max_n)
            every = list(selected)
            names = [n for n, p in selected.items() if num_variables(p) >= args.min_n]
        if args.append and args.resume:
            done = {r["name"] for r in lines if "name" in r}
            names = [n for n in names if n not in done]
        if not args.append:
            listed = every
            jsonl.write_text(json.dumps({"listed": every}) + "\n")
        worker_args = ["--trust-constr-max-n", str(args.trust_constr_max_n),
                       "--trust-constr-seconds", str(args.trust_constr_seconds)]
        records = drive(names, args.timeout, args.budget, jsonl, worker_args)
        if args.append:
            lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
            records = _latest([r for r in lines if "name" in r])
            listed = listed or [r["name"] for r in records]
    args.output.write_text(report(records, len(listed), args.max_n))
    plot(records, args.output.with_suffix(".png"))


if __name__ == "__main__":
    main()
