"""Compare detected Hessian patterns with numeric `jax.hessian` ones on sif2jax problems."""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from asdex.detection import hessian_sparsity

MAX_N = 400


@dataclasses.dataclass(frozen=True)
class Outcome:
    """Detected versus numeric pattern of one problem."""

    name: str
    n: int
    detected: int
    numeric: int
    misses: int
    extra: int
    seconds: float

    @property
    def exact(self) -> bool:
        return self.misses == 0 and self.extra == 0


def unconstrained_problems(max_n: int = MAX_N) -> list:
    """The sif2jax unconstrained minimisation problems with at most `max_n` variables."""
    import sif2jax

    return [p for p in sif2jax.unconstrained_minimisation_problems if p.y0.size <= max_n]


def numeric_hessian_pattern(f, y0, num_points: int = 2, seed: int = 0) -> np.ndarray:
    """Union of the nonzeros (NaN included) of `jax.hessian(f)` at `y0` and at points
    near it, perturbed relative to each entry's scale (badly scaled problems such as
    VESUVIALS underflow far from `y0`)."""
    hessian = jax.jit(jax.hessian(f))
    key = jax.random.key(seed)
    found = np.zeros((y0.size, y0.size), bool)
    for k in range(num_points + 1):
        key, sub = jax.random.split(key)
        u = jax.random.uniform(sub, y0.shape, y0.dtype, minval=-1.0, maxval=1.0)
        y = y0 if k == 0 else y0 + (0.01 * jnp.abs(y0) + 1e-3) * u
        dense = np.asarray(hessian(y)).reshape(y0.size, y0.size)
        found |= (dense != 0) | np.isnan(dense)
    return found


def check_problem(problem) -> Outcome:
    """Detect the Hessian pattern of `problem.objective` and compare it numerically."""
    y0 = jnp.asarray(problem.y0)

    def f(y):
        return problem.objective(y, problem.args)

    start = time.perf_counter()
    detected = hessian_sparsity(f, y0).todense().astype(bool)
    seconds = time.perf_counter() - start
    numeric = numeric_hessian_pattern(f, y0)
    return Outcome(
        name=problem.name,
        n=y0.size,
        detected=int(detected.sum()),
        numeric=int(numeric.sum()),
        misses=int((numeric & ~detected).sum()),
        extra=int((detected & ~numeric).sum()),
        seconds=seconds,
    )
