"""Hessian sparsity detection time: second-order propagation versus the gradient trick.

For each objective and size, the table gives the best of `--repeats` runs (one at
n = 10^6) of
`jax.make_jaxpr(f)`, of `hessian_sparsity(f, x)` (this engine), and of
`jacobian_sparsity(jax.grad(f), x)` (the Jacobian pattern of the gradient, with the
same engine), with the number of nonzeros each finds.

Usage:
    python benchmarks/bench_hessian_detection.py [--sizes 1000 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp

from asdex.detection import hessian_sparsity, jacobian_sparsity


def rosenbrock(x):
    """Extended Rosenbrock: tridiagonal Hessian."""
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def broyden_least_squares(x):
    """Sum of squares of the Broyden tridiagonal residuals: pentadiagonal Hessian."""
    padded = jnp.pad(x, 1)
    r = (3.0 - 2.0 * x) * x - padded[:-2] - 2.0 * padded[2:] + 1.0
    return jnp.sum(r**2)


OBJECTIVES = {"extended Rosenbrock": rosenbrock, "Broyden tridiagonal least squares":
              broyden_least_squares}


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**3, 10**4, 10**5, 10**6])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average at start {os.getloadavg()}, jax {jax.__version__}")
    print("| objective | n | make_jaxpr (s) | hessian_sparsity (s) | nnz | "
          "jacobian_sparsity(grad f) (s) | nnz |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, f in OBJECTIVES.items():
        for n in args.sizes:
            x = jnp.ones(n)
            repeats = args.repeats if n < 10**6 else 1
            # a fresh wrapper each run, so that JAX's tracing cache does not hide tracing
            t_jaxpr, _ = best_time(lambda f=f, x=x: jax.make_jaxpr(lambda y: f(y))(x), repeats)
            t_hess, hess = best_time(lambda f=f, x=x: hessian_sparsity(lambda y: f(y), x),
                                     repeats)
            t_grad, grad = best_time(
                lambda f=f, x=x: jacobian_sparsity(jax.grad(lambda y: f(y)), x), repeats)
            print(f"| {name} | {n:,} | {t_jaxpr:.4f} | {t_hess:.3f} | {hess.nnz:,} | "
                  f"{t_grad:.3f} | {grad.nnz:,} |", flush=True)
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
