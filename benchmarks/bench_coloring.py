"""Coloring benchmark: colors, lower bounds and times on structured and random patterns.

Run from the repository root (writes benchmarks/results/coloring.md):

    python benchmarks/bench_coloring.py            # full table (a few minutes)
    python benchmarks/bench_coloring.py --quick    # small sizes only

The lower bound beside each one-sided color count is the largest number of nonzeros in a
row (column colorings) or a column (row colorings): no valid coloring can use fewer. For
symmetric colorings the same column shows the largest row count in parentheses, for
reference only: a star or acyclic coloring may beat it (an arrowhead needs 2 colors).
It also times the same partial distance-2 greedy kernel written with `jax.lax` loops,
the alternative to numba, on the smaller Brusselator patterns.
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from asdex import SparsityPattern
from asdex.coloring import (
    color_acyclic,
    color_bidirectional,
    color_cols,
    color_rows,
    color_symmetric,
)
from asdex.coloring._graph import column_bipartite
from asdex.coloring._orders import vertex_order

# --- patterns ------------------------------------------------------------------------------


def brusselator(grid: int) -> SparsityPattern:
    """2-D Brusselator Jacobian: 2 species, periodic 5-point Laplacian + reaction coupling."""
    idx = np.arange(grid * grid).reshape(grid, grid)
    size = grid * grid
    rows, cols = [], []
    for s in range(2):
        for di, dj in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]:
            rows.append(s * size + idx.ravel())
            cols.append(s * size + np.roll(np.roll(idx, di, 0), dj, 1).ravel())
        rows.append(s * size + idx.ravel())
        cols.append((1 - s) * size + idx.ravel())
    return SparsityPattern.from_coo(np.concatenate(rows), np.concatenate(cols),
                                    (2 * size, 2 * size))


def symmetric_from_offsets(n: int, offsets: list[int]) -> SparsityPattern:
    """Symmetric pattern with the diagonal and entries (i, i + d), (i + d, i) for d in offsets."""
    rows, cols = [np.arange(n)], [np.arange(n)]
    for d in offsets:
        i = np.arange(n - d)
        rows += [i, i + d]
        cols += [i + d, i]
    return SparsityPattern.from_coo(np.concatenate(rows), np.concatenate(cols), (n, n))


def banded(n: int, b: int) -> SparsityPattern:
    return symmetric_from_offsets(n, list(range(1, b + 1)))


def ext_rosenbrock(n: int) -> SparsityPattern:
    """Extended Rosenbrock (CUTEst EXTROSNB-like): 2x2 diagonal blocks."""
    i = np.arange(0, n - 1, 2)
    rows = np.concatenate([np.arange(n), i, i + 1])
    cols = np.concatenate([np.arange(n), i + 1, i])
    return SparsityPattern.from_coo(rows, cols, (n, n))


def broydn7d(n: int) -> SparsityPattern:
    """BROYDN7D-like: tridiagonal part plus couplings (i, i + n/2)."""
    return symmetric_from_offsets(n, [1, 2, n // 2])


def dixmaan(n: int) -> SparsityPattern:
    """DIXMAAN-like (m = n/3): couplings (i, i+1), (i, i+m), (i, i+2m)."""
    m = n // 3
    return symmetric_from_offsets(n, [1, m, 2 * m])


def random_pattern(m: int, n: int, per_row: int, seed: int = 0) -> SparsityPattern:
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(m), per_row)
    cols = rng.integers(0, n, size=m * per_row)
    return SparsityPattern.from_coo(rows, cols, (m, n))


def random_symmetric(n: int, per_row: int, seed: int = 0) -> SparsityPattern:
    p = random_pattern(n, n, per_row, seed)
    return SparsityPattern.from_coo(np.r_[p.rows, p.cols, np.arange(n)],
                                    np.r_[p.cols, p.rows, np.arange(n)], (n, n))


# --- the lax alternative -------------------------------------------------------------------


@jax.jit
def _lax_greedy(v_indptr, v_nets, n_indptr, n_vertices, order):
    num = v_indptr.shape[0] - 1

    def color_one(i, state):
        colors, forbidden = state
        v = order[i]

        def over_nets(p, forbidden):
            net = v_nets[p]

            def over_vertices(q, forbidden):
                c = colors[n_vertices[q]]
                return jnp.where(c >= 0, forbidden.at[c].set(i), forbidden)

            return jax.lax.fori_loop(n_indptr[net], n_indptr[net + 1], over_vertices,
                                     forbidden)

        forbidden = jax.lax.fori_loop(v_indptr[v], v_indptr[v + 1], over_nets, forbidden)
        c = jax.lax.while_loop(lambda c: forbidden[c] == i, lambda c: c + 1, 0)
        return colors.at[v].set(c), forbidden

    colors = jnp.full(num, -1, dtype=jnp.int32)
    forbidden = jnp.full(num + 1, -1, dtype=jnp.int32)
    return jax.lax.fori_loop(0, num, color_one, (colors, forbidden))[0]


def lax_color_cols(p: SparsityPattern) -> tuple[float, float, int]:
    """(first call incl. compile, second call, colors) for the lax kernel."""
    g = column_bipartite(p)
    args = [jnp.asarray(a, dtype=jnp.int32) for a in
            (g.v_indptr, g.v_nets, g.n_indptr, g.n_vertices, vertex_order(g, "largest_first"))]
    t0 = time.perf_counter()
    colors = _lax_greedy(*args).block_until_ready()
    t1 = time.perf_counter()
    _lax_greedy(*args).block_until_ready()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, int(colors.max()) + 1


# --- runner --------------------------------------------------------------------------------


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def max_row(p: SparsityPattern) -> int:
    return int(np.bincount(p.rows, minlength=p.m).max(initial=0))


def max_col(p: SparsityPattern) -> int:
    return int(np.bincount(p.cols, minlength=p.n).max(initial=0))


def jacobian_rows(name, build, arg):
    p = build(arg)
    (_, k_cols), t_cols = timed(color_cols, build(arg))  # fresh pattern: includes CSC build
    (_, k_rows), t_rows = timed(color_rows, build(arg))
    (_, k_best), t_best = timed(color_cols, build(arg), order="best")
    return [
        f"| {name} | {p.n:,} | {p.nnz:,} | columns (LF) | {k_cols} | {max_row(p)} | {t_cols:.3f} |",
        f"| {name} | {p.n:,} | {p.nnz:,} | rows (LF) | {k_rows} | {max_col(p)} | {t_rows:.3f} |",
        f"| {name} | {p.n:,} | {p.nnz:,} | columns (best of 5) | {k_best} | {max_row(p)} | "
        f"{t_best:.3f} |",
    ]


def hessian_rows(name, build, arg, best=False):
    p = build(arg)
    bound = f"({max_row(p)})"
    (_, k_star, _), t_star = timed(color_symmetric, build(arg))
    (_, k_acyc), t_acyc = timed(color_acyclic, build(arg))
    lines = [
        f"| {name} | {p.n:,} | {p.nnz:,} | star (LF) | {k_star} | {bound} | {t_star:.3f} |",
        f"| {name} | {p.n:,} | {p.nnz:,} | acyclic (LF) | {k_acyc} | {bound} | {t_acyc:.3f} |",
    ]
    if best:
        (_, k_b, _), t_b = timed(color_symmetric, build(arg), order="best")
        lines.append(f"| {name} | {p.n:,} | {p.nnz:,} | star (best of 5) | {k_b} | {bound} | "
                     f"{t_b:.3f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    args = parser.parse_args()
    quick = args.quick

    t = time.perf_counter()
    color_cols(brusselator(8), order="best")
    color_symmetric(banded(20, 2), order="best")
    color_acyclic(banded(20, 2), postprocess=True)
    color_bidirectional(brusselator(4))
    warmup = time.perf_counter() - t

    lines = ["| pattern | n | nnz | coloring | colors | lower bound | time (s) |",
             "|---|---:|---:|---|---:|---:|---:|"]
    for grid in (71, 224) if quick else (71, 224, 707):
        lines += jacobian_rows("Brusselator 2-D", brusselator, grid)
    for n in (10**4,) if quick else (10**4, 10**5):
        lines += jacobian_rows("random, 5 per row", lambda k: random_pattern(k, k, 5), n)
    for n in (10**4,) if quick else (10**4, 10**6):
        for b in (2, 10):
            lines += hessian_rows(f"banded b={b}", lambda k, b=b: banded(k, b), n,
                                  best=n == 10**4)
    sizes = (5_000,) if quick else (5_000, 100_000, 1_000_000)
    for n in sizes:
        lines += hessian_rows("ext. Rosenbrock", ext_rosenbrock, n)
        lines += hessian_rows("BROYDN7D-like", broydn7d, n)
        lines += hessian_rows("DIXMAAN-like", dixmaan, n)
    if not quick:
        lines += hessian_rows("DIXMAAN-like", dixmaan, 1_500_000)
    lines += hessian_rows("random symmetric, 5 per row", lambda k: random_symmetric(k, 5),
                          10**4 if quick else 10**5)

    bidir = ["| pattern | one-sided (min of rows, columns) | bidirectional acyclic "
             "(JVPs + VJPs) | time (s) |", "|---|---:|---:|---:|"]
    for n in (300, 1_000, 3_000):  # distance-2 work grows as n * (dense line length)
        dense = random_pattern(n, n, 3)
        rows = np.r_[dense.rows, np.zeros(n, int), np.arange(n)]
        cols = np.r_[dense.cols, np.arange(n), np.zeros(n, int)]
        p = SparsityPattern.from_coo(rows, cols, (n, n))
        (_, jv, vj), t_b = timed(color_bidirectional, p)
        one = min(color_cols(p)[1], color_rows(p)[1])
        bidir.append(f"| random 3 per row + dense row 0 + dense column 0, n={n:,} | {one} | "
                     f"{jv} + {vj} = {jv + vj} | {t_b:.3f} |")

    lax_lines = ["| pattern | n | numba kernel (s) | lax: first call incl. compile (s) | "
                 "lax: second call (s) | colors (both) |", "|---|---:|---:|---:|---:|---:|"]
    for grid in (22, 71) if quick else (22, 71, 224):
        p = brusselator(grid)
        first, second, k_lax = lax_color_cols(p)
        (_, k), t_numba = timed(color_cols, p)
        assert k == k_lax
        lax_lines.append(f"| Brusselator 2-D | {p.n:,} | {t_numba:.4f} | {first:.3f} | "
                         f"{second:.3f} | {k} |")

    command = "python benchmarks/bench_coloring.py" + (" --quick" if quick else "")
    text = "\n".join([
        "# Coloring benchmark",
        "",
        f"Produced by `{command}` on {platform.machine()}, Python "
        f"{sys.version.split()[0]}, 2 shared cores. Times are wall-clock seconds for one "
        "call on a freshly built pattern (adjacency construction included), after the "
        f"numba kernels were loaded ({warmup:.2f} s for the first calls in this process, "
        "cache included).",
        "",
        "## Colors and times",
        "",
        *lines,
        "",
        "## Bidirectional coloring",
        "",
        *bidir,
        "",
        "## numba against lax loops (partial distance-2 column coloring, largest-first)",
        "",
        *lax_lines,
        "",
    ])
    out = pathlib.Path(__file__).parent / "results" / "coloring.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
