"""`python -m asdex inspect MODULE:FUNCTION --args SPEC`: is this derivative sparse enough?

Loads the function, detects the sparsity of its Jacobian (or Hessian), colors it with
every algorithm, times one sparse evaluation against dense JAX at a random point and
prints the report.
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse

import asdex
from asdex._cli._colorings import (
    Colored,
    color_all,
    default_coloring,
    max_per_row_and_col,
    warm_up,
)
from asdex._cli._errors import CLIError
from asdex._cli._figures import NO_MATPLOTLIB, have_matplotlib, save_coloring_figure
from asdex._cli._loading import load_function
from asdex._cli._shapes import format_spec, parse_spec, sample
from asdex._cli._timing import Timing, format_seconds, format_speedup, time_jitted

DENSE_LIMIT_BYTES = 2**31
"""The dense baseline is skipped when its matrix alone would take more memory."""

_DEBUG_HINT = " (run with --debug for the full traceback)"
_MESSAGE_LINES = 8


def add_parser(subparsers: Any) -> None:
    """Register the `inspect` command and its options."""
    parser = subparsers.add_parser(
        "inspect", help="report the sparsity, colorings and speed-up of your function's "
        "Jacobian or Hessian",
        description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("target", metavar="MODULE:FUNCTION",
                        help="the function: an importable module (package.module) or a "
                        "file (path/to/file.py), a colon, and the function's name")
    parser.add_argument("--args", action="append", metavar="SPEC", required=True,
                        help="shape and dtype of a positional argument, e.g. "
                        "float32[1000] or float64[10,20]; repeat for more arguments")
    parser.add_argument("--hessian", action="store_true",
                        help="inspect the Hessian of a scalar function (default: Jacobian)")
    parser.add_argument("--argnums", default="0", metavar="I[,J...]",
                        help="argument(s) to differentiate with respect to (default 0)")
    parser.add_argument("--plot", type=pathlib.Path, metavar="PNG",
                        help="save the colored pattern and its compressed form to PNG")
    parser.add_argument("--debug", action="store_true",
                        help="show full tracebacks instead of short messages")
    parser.set_defaults(run=run)


def _short(error: BaseException) -> str:
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    kept = lines[:_MESSAGE_LINES] + (["..."] if len(lines) > _MESSAGE_LINES else [])
    return f"{type(error).__name__}: " + "\n  ".join(kept)


@contextlib.contextmanager
def _reported(what: str, debug: bool, hint: str = _DEBUG_HINT) -> Iterator[None]:
    """Turn any exception into a `CLIError` that starts with `what` (unless `debug`)."""
    try:
        yield
    except CLIError:
        raise
    except Exception as error:
        if debug:
            raise
        raise CLIError(f"{what}: {_short(error)}{hint}") from None


def _parse_argnums(text: str, num_args: int) -> int | tuple[int, ...]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise CLIError(f"--argnums must be an integer or integers separated by commas, "
                       f"got {text!r}.") from None
    for value in values:
        if not -num_args <= value < num_args:
            raise CLIError(f"--argnums {value} is out of range: the function is given "
                           f"{num_args} argument(s) by --args.")
    return values[0] if len(values) == 1 else tuple(values)


def _describe(value: Any) -> str:
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))}"
    return f"a {type(value).__name__}" if value is not None else "None"


def _output_spec(name: str, fn: Callable[..., Any], specs: list[jax.ShapeDtypeStruct],
                 debug: bool) -> jax.ShapeDtypeStruct:
    """Trace `fn` on abstract arguments; its output must be one array."""
    found: list[Any] = []

    def probe(*args: Any) -> None:
        out = fn(*args)
        if isinstance(out, jax.Array | np.ndarray | np.generic | float | int):
            found.append(jax.ShapeDtypeStruct(jnp.shape(out), jnp.result_type(out)))
        else:
            found.append(_describe(out))

    with _reported(f"{name} raised", debug):
        jax.eval_shape(probe, *specs)
    if isinstance(found[0], str):
        raise CLIError(f"{name} returned {found[0]}, but inspect needs a function that "
                       "returns one array (concatenate the parts, or inspect each one).")
    return found[0]


def _check_differentiable(specs: list[jax.ShapeDtypeStruct],
                          argnums: int | tuple[int, ...]) -> None:
    for index in (argnums,) if isinstance(argnums, int) else argnums:
        if not jnp.issubdtype(specs[index].dtype, jnp.inexact):
            raise CLIError(f"argument {index} is {format_spec(specs[index])}: --argnums "
                           "must select floating-point arguments.")


def _as_dense_leaves(tree: Any) -> list[np.ndarray]:
    leaves = jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, sparse.BCOO))
    return [np.asarray(x.todense() if isinstance(x, sparse.BCOO) else x) for x in leaves]


def _difference(sparse_out: Any, dense_out: Any) -> float | None:
    ours, theirs = _as_dense_leaves(sparse_out), _as_dense_leaves(dense_out)
    if [a.shape for a in ours] != [b.shape for b in theirs]:
        return None
    return max((float(np.max(np.abs(a - b), initial=0.0)) for a, b in zip(ours, theirs,
                                                                         strict=True)),
               default=0.0)


def _coloring_table(results: list[Colored], dense: str, warm_up_s: float) -> list[str]:
    lines = [f"Colorings (each color is one pass; dense differentiation needs {dense}):",
             f"  {'algorithm':<14}{'colors':>7}{'lower bound':>13}  {'passes':<36}time"]
    for r in results:
        colors = "—" if r.num_colors is None else str(r.num_colors)
        bound = "" if r.lower_bound is None else str(r.lower_bound)
        seconds = "" if r.num_colors is None else format_seconds(r.seconds)
        line = f"  {r.algorithm:<14}{colors:>7}{bound:>13}  {r.passes:<36}{seconds}"
        lines.append(line.rstrip())
    lines.append("  (lower bound: the most nonzeros in one row for column coloring, in one "
                 "column for row coloring;")
    lines.append(f"  times after {format_seconds(warm_up_s)} spent loading the compiled "
                 "coloring kernels once)")
    return lines


def _timing_line(label: str, timing: Timing) -> str:
    return (f"  {label:<34}{format_seconds(timing.run_s):>10}   (median of {timing.repeats} "
            f"calls; compile {format_seconds(timing.compile_s)})")


def _detect(name: str, fn: Callable[..., Any], specs: list[jax.ShapeDtypeStruct],
            argnums: int | tuple[int, ...], args: argparse.Namespace
            ) -> tuple[asdex.SparsityPattern, float]:
    start = time.perf_counter()
    with _reported("sparsity detection failed", args.debug, ""):
        try:
            detect = asdex.hessian_sparsity if args.hessian else asdex.jacobian_sparsity
            pattern = detect(fn, *specs, argnums=argnums)
        except NotImplementedError as error:
            if args.debug:
                raise
            raise CLIError(f"{name} uses an operation asdex cannot analyse: {error}"
                           ) from None
    return pattern, time.perf_counter() - start


def _compare_with_dense(name: str, fn: Callable[..., Any], coloring: asdex.ColoredPattern,
                        specs: list[jax.ShapeDtypeStruct], out: jax.ShapeDtypeStruct,
                        argnums: int | tuple[int, ...], args: argparse.Namespace) -> None:
    """Time one sparse evaluation against dense JAX at a random point; print both."""
    what = "Hessian" if args.hessian else "Jacobian"
    pattern = coloring.sparsity
    keys = jax.random.split(jax.random.key(0), len(specs))
    point = [sample(spec, key) for spec, key in zip(specs, keys, strict=True)]
    print("Evaluation at a random point (floats uniform in [0.5, 1.5); compile excluded):",
          flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", asdex.DenseColoringWarning)
        build = asdex.hessian_from_coloring if args.hessian else asdex.jacobian_from_coloring
        sparse_fn = build(fn, coloring)
    with _reported(f"evaluating the sparse {what} of {name} failed", args.debug):
        sparse_timing, sparse_out = time_jitted(sparse_fn, *point)
    passes = coloring.num_colors
    kind = {"fwd": "JVP", "rev": "VJP"}.get(coloring.mode, "HVP")
    print(_timing_line(f"asdex ({passes} {kind}{'s' * (passes != 1)})", sparse_timing),
          flush=True)

    itemsize = np.dtype(out.dtype).itemsize
    dense_bytes = pattern.m * pattern.n * itemsize
    if dense_bytes > DENSE_LIMIT_BYTES:
        print(f"  dense baseline skipped: the dense {what} would take "
              f"{dense_bytes / 2**30:.1f} GiB")
    else:
        baseline = "jax.hessian" if args.hessian else "jax.jacfwd"
        dense_fn = (jax.hessian if args.hessian else jax.jacfwd)(fn, argnums=argnums)
        with _reported(f"evaluating {baseline} of {name} failed", args.debug):
            dense_timing, dense_out = time_jitted(dense_fn, *point)
        dense_label = f"{baseline} ({pattern.n} {'HVP' if args.hessian else 'JVP'}s)"
        print(_timing_line(dense_label, dense_timing))
        speedup = dense_timing.run_s / sparse_timing.run_s
        difference = _difference(sparse_out, dense_out)
        agreement = ("" if difference is None
                     else f"; largest difference from {baseline}: {difference:.3g}")
        verdict = "" if speedup >= 1 else " (dense is faster for this function)"
        print(f"  speed-up over dense: {format_speedup(speedup)}{verdict}{agreement}")


def run(args: argparse.Namespace) -> None:
    """Run `inspect` as parsed by `add_parser`; raises `CLIError` on bad input.

    64-bit argument specs switch JAX to 64 bits for the run (restored afterwards).
    """
    specs = [parse_spec(spec) for spec in args.args]
    argnums = _parse_argnums(args.argnums, len(specs))
    _check_differentiable(specs, argnums)
    previous = jax.config.jax_enable_x64
    if any(np.dtype(s.dtype).itemsize >= 8 for s in specs):
        jax.config.update("jax_enable_x64", True)
    try:
        _report(args, specs, argnums)
    finally:
        jax.config.update("jax_enable_x64", previous)


def _report(args: argparse.Namespace, specs: list[jax.ShapeDtypeStruct],
            argnums: int | tuple[int, ...]) -> None:
    name, fn = load_function(args.target, debug=args.debug)
    out = _output_spec(name, fn, specs, args.debug)
    if args.hessian and np.prod(out.shape, dtype=int) != 1:
        raise CLIError(f"--hessian needs a scalar-valued function, but {name} returns "
                       f"{format_spec(out)}.")
    what = "Hessian" if args.hessian else "Jacobian"
    signature = ", ".join(format_spec(s) for s in specs)
    wrt = (f"argument {argnums}" if isinstance(argnums, int)
           else f"arguments {', '.join(map(str, argnums))}")
    print(f"{what} of {name}({signature}) -> {format_spec(out)}, with respect to {wrt}",
          flush=True)

    pattern, detection_s = _detect(name, fn, specs, argnums, args)
    per_row, per_col = max_per_row_and_col(pattern)
    print(f"  pattern: {pattern.m} x {pattern.n}, {pattern.nnz} nonzeros, density "
          f"{pattern.density:.3%}; at most {per_row} per row and {per_col} per column "
          f"(detected in {format_seconds(detection_s)})", flush=True)

    warm_up_s = warm_up()
    results = color_all(pattern, hessian=args.hessian)
    dense_passes = (f"{pattern.n} HVPs" if args.hessian
                    else f"{pattern.n} JVPs or {pattern.m} VJPs")
    print("\n" + "\n".join(_coloring_table(results, dense_passes, warm_up_s)), flush=True)
    coloring = default_coloring(results, hessian=args.hessian)
    print(f"\nPattern, colored with asdex's default:\n{coloring}\n", flush=True)

    _compare_with_dense(name, fn, coloring, specs, out, argnums, args)

    if args.plot is not None:
        if have_matplotlib():
            path = save_coloring_figure(coloring, f"{what} of {name}", args.plot)
            print(f"\nSaved the colored pattern to {path}")
        else:
            print(f"\n{NO_MATPLOTLIB}")
