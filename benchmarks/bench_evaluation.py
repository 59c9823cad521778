"""Evaluation benchmark: jitted sparse Jacobians/Hessians vs dense JAX and vs the floor.

The floor is the cost of the passes themselves: `num_colors` plain JVPs (or VJPs, or
forward-over-reverse HVPs) batched with `vmap`, on seeds passed as an argument, measured
in the same run. `sparse / floor` is the overhead of seeding, decompression and BCOO
assembly. Dense `jax.jacfwd` / `jax.jacrev` / `jax.hessian` run where they fit.

Run: `python benchmarks/bench_evaluation.py` (writes benchmarks/results/evaluation.md).
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import time
import warnings
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

import asdex

RESULTS = pathlib.Path(__file__).parent / "results" / "evaluation.md"
DENSE_LIMIT = 12_000
"""Largest n for which dense baselines are run (an n x n float32 matrix)."""


# --- problems ----------------------------------------------------------------------------


def brusselator(size: int) -> Callable:
    """2-D Brusselator right-hand side on a periodic size x size grid, y = (u, v) flat."""
    alpha, a, b = 10.0 / (size - 1) ** 2, 3.4, 1.0
    xs = jnp.linspace(0, 1, size)
    source = jnp.where(
        ((xs[:, None] - 0.3) ** 2 + (xs[None, :] - 0.6) ** 2) <= 0.01, 5.0, 0.0
    )

    def laplacian(w):
        return (jnp.roll(w, 1, 0) + jnp.roll(w, -1, 0) + jnp.roll(w, 1, 1) + jnp.roll(w, -1, 1)
                - 4 * w)

    def rhs(y):
        u, v = y.reshape(2, size, size)
        du = b + u**2 * v - (a + 1) * u + alpha * laplacian(u) + source
        dv = a * u - u**2 * v + alpha * laplacian(v)
        return jnp.concatenate([du.ravel(), dv.ravel()])

    return rhs


def heat(size: int) -> Callable:
    """Implicit-step residual of a nonlinear 2-D heat equation, Dirichlet boundary."""

    def residual(u):
        u = u.reshape(size, size)
        padded = jnp.pad(u, 1)
        k = 1.0 + u**2
        lap = (padded[2:, 1:-1] + padded[:-2, 1:-1] + padded[1:-1, 2:] + padded[1:-1, :-2]
               - 4 * u)
        return (u - 0.1 * k * lap).ravel()

    return residual


def convnet(channels: int, size: int) -> Callable:
    """Two 3x3 convolutions with a tanh between them, as a function of the image."""
    key1, key2 = jax.random.split(jax.random.key(0))
    w1 = jax.random.normal(key1, (channels, channels, 3, 3)) / 3
    w2 = jax.random.normal(key2, (channels, channels, 3, 3)) / 3

    def net(x):
        image = x.reshape(1, channels, size, size)
        conv = lambda z, w: jax.lax.conv(z, w, (1, 1), "SAME")  # noqa: E731
        return conv(jnp.tanh(conv(image, w1)), w2).ravel()

    return net


def rosenbrock(x):
    """Extended Rosenbrock function."""
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


# --- measurement ---------------------------------------------------------------------------


def best_time(fn: Callable, *args, repeats: int, min_time: float = 0.2) -> float:
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        start, count = time.perf_counter(), 0
        while True:
            jax.block_until_ready(fn(*args))
            count += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time or count >= 50:
                break
        best = min(best, elapsed / count)
    return best


def peak_bytes(fn: Callable, *args) -> int:
    stats = fn.lower(*args).compile().memory_analysis()
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes
               + stats.argument_size_in_bytes)


def seeds_of(coloring: asdex.ColoredPattern) -> np.ndarray:
    colors = np.asarray(coloring.colors)
    return (colors[None, :] == np.arange(coloring.num_colors)[:, None]).astype(np.float32)


def passes(f: Callable, coloring: asdex.ColoredPattern) -> Callable:
    """`(x, seeds) -> products`: the plain batched JVPs, VJPs or HVPs of the coloring."""
    if coloring.mode == "fwd":
        return lambda x, s: jax.vmap(lambda t: jax.jvp(f, (x,), (t,))[1])(s)
    if coloring.mode == "rev":
        return lambda x, s: jax.vmap(jax.vjp(f, x)[1])(s)[0]
    gradient = jax.grad(f)
    return lambda x, s: jax.vmap(lambda t: jax.jvp(gradient, (x,), (t,))[1])(s)


def floor_fn(f: Callable, coloring: asdex.ColoredPattern) -> Callable:
    """The floor with seeds passed as an argument."""
    return jax.jit(passes(f, coloring))


def constant_floor_fn(f: Callable, coloring: asdex.ColoredPattern) -> Callable:
    """The floor with seeds baked in as constants, as asdex does (XLA may fold them)."""
    seeds, batched = seeds_of(coloring), passes(f, coloring)
    return jax.jit(lambda x: batched(x, seeds))


def run(name: str, f: Callable, n: int, kind: str, repeats: int, memory: bool) -> dict:
    x = jnp.linspace(0.1, 0.9, n)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", asdex.DenseColoringWarning)
        if kind == "jacobian":
            coloring = asdex.jacobian_coloring(f, x)
            sparse = asdex.jacobian_from_coloring(f, coloring)
        else:
            coloring = asdex.hessian_coloring(f, x)
            sparse = asdex.hessian_from_coloring(f, coloring)
        sparse_fn = jax.jit(sparse)
        sparse_fn.lower(x).compile()
    prep = time.perf_counter() - start
    values_fn = jax.jit(lambda x: sparse(x).data)
    floor, constant_floor = floor_fn(f, coloring), constant_floor_fn(f, coloring)
    seeds = jnp.asarray(seeds_of(coloring))
    timings = {"sparse_s": [], "values_s": [], "floor_s": [], "const_floor_s": []}
    for _ in range(repeats):  # interleaved, so that load spikes hit every variant alike
        timings["sparse_s"].append(best_time(sparse_fn, x, repeats=1))
        timings["values_s"].append(best_time(values_fn, x, repeats=1))
        timings["floor_s"].append(best_time(floor, x, seeds, repeats=1))
        timings["const_floor_s"].append(best_time(constant_floor, x, repeats=1))
    row = {
        "problem": name, "kind": kind, "n": n, "nnz": coloring.sparsity.nnz,
        "colors": coloring.num_colors, "mode": coloring.mode, "prep_s": prep,
        **{key: min(values) for key, values in timings.items()},
    }
    # Check the result once (cheap: a few matrix-vector products).
    check = asdex.check_jacobian_correctness if kind == "jacobian" else (
        asdex.check_hessian_correctness)
    check(f, x, coloring=coloring)
    if n <= DENSE_LIMIT:
        if kind == "jacobian":
            row["jacfwd_s"] = best_time(jax.jit(jax.jacfwd(f)), x, repeats=max(1, repeats // 2))
            row["jacrev_s"] = best_time(jax.jit(jax.jacrev(f)), x, repeats=max(1, repeats // 2))
        else:
            row["hessian_s"] = best_time(jax.jit(jax.hessian(f)), x, repeats=max(1, repeats // 2))
    if memory:
        row["sparse_mem"] = peak_bytes(sparse_fn, x)
        row["floor_mem"] = peak_bytes(floor, x, seeds)
    print(row, flush=True)
    return row


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def fmt_mem(size: int | None) -> str:
    return "-" if size is None else f"{size / 2**20:.1f} MiB"


def table(rows: list[dict], command: str) -> str:
    lines = [
        "# Evaluation benchmark: sparse Jacobians and Hessians",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {platform.machine()}, {jax.devices()[0].platform.upper()} "
        f"({jax.devices()[0].device_kind}), jax {jax.__version__}. Times are the best of "
        "several repeats of the jitted function (compilation excluded); shared 2-core "
        "machine, so absolute times are noisy, ratios within a row less so.",
        "",
        "*floor*: `num_colors` plain JVPs (mode fwd), VJPs (mode rev) or forward-over-reverse "
        "HVPs, vmapped, seeds passed as an argument. *const floor*: the same with the seeds "
        "baked in as constants, as asdex does (XLA can then fold the linear parts of the "
        "passes; this is why sparse can beat the floor). *sparse*: the jitted "
        "`jacobian_from_coloring` / `hessian_from_coloring` returning a BCOO matrix "
        "(its output includes a copy of the constant indices); *values*: the same "
        "function's `.data` only, as when the matrix is used inside a larger jitted "
        "program. *prep*: detection + coloring + plan + compilation, once. Memory: XLA's "
        "compiled arguments + outputs + temporaries.",
        "",
        "| problem | n | nnz | colors | mode | prep | sparse | values | floor | const floor "
        "| sparse/floor | values/floor | sparse/const floor | dense jacfwd "
        "| dense jacrev / hessian | sparse mem | floor mem |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        dense_rev = r.get("jacrev_s", r.get("hessian_s"))
        lines.append(
            f"| {r['problem']} | {r['n']} | {r['nnz']} | {r['colors']} | {r['mode']} "
            f"| {fmt_time(r['prep_s'])} | {fmt_time(r['sparse_s'])} | {fmt_time(r['values_s'])} "
            f"| {fmt_time(r['floor_s'])} | {fmt_time(r['const_floor_s'])} "
            f"| {r['sparse_s'] / r['floor_s']:.2f} | {r['values_s'] / r['floor_s']:.2f} "
            f"| {r['sparse_s'] / r['const_floor_s']:.2f} | {fmt_time(r.get('jacfwd_s'))} "
            f"| {fmt_time(dense_rev)} | {fmt_mem(r.get('sparse_mem'))} "
            f"| {fmt_mem(r.get('floor_mem'))} |"
        )
    lines += ["", "Targets: sparse/floor <= 1.2 for Jacobians, <= 1.5 for Hessians.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    args = parser.parse_args()
    problems = [
        ("Brusselator 32²", brusselator(32), 2 * 32**2, "jacobian", False),
        ("Brusselator 71²", brusselator(71), 2 * 71**2, "jacobian", False),
        ("Heat 100²", heat(100), 100**2, "jacobian", False),
        ("Conv net 4x32²", convnet(4, 32), 4 * 32**2, "jacobian", False),
        ("Rosenbrock", rosenbrock, 10**4, "hessian", False),
    ]
    if not args.quick:
        problems += [
            ("Brusselator 224²", brusselator(224), 2 * 224**2, "jacobian", True),
            ("Heat 316²", heat(316), 316**2, "jacobian", True),
            ("Rosenbrock", rosenbrock, 10**5, "hessian", True),
        ]
    rows = [run(name, f, n, kind, args.repeats, memory)
            for name, f, n, kind, memory in problems]
    command = "python benchmarks/bench_evaluation.py" + (" --quick" if args.quick else "")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table(rows, command))
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
