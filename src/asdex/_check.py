"""Verify asdex's sparse derivatives against JAX's own, at concrete inputs.

Two methods: "matvec" compares products with random probe vectors (sparse `J @ v`
against a JVP, `u @ J` against a VJP, `H @ v` against an HVP) and never forms a dense
matrix; "dense" compares with `jax.jacrev` / `jax.hessian` entry by entry.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from asdex._api import (
    hessian_coloring,
    hessian_from_coloring,
    jacobian_coloring,
    jacobian_from_coloring,
)
from asdex._pattern import ColoredPattern, SparsityPattern

CheckMethod = Literal["matvec", "dense"]

_REPORT = (
    "This means the sparsity pattern misses nonzeros, a bug in asdex; please report it at "
    "https://github.com/adrhill/asdex/issues."
)


class VerificationError(AssertionError):
    """Raised when asdex's sparse result does not match JAX's dense reference.

    A correct pattern is conservative (it holds every true nonzero), so a mismatch means
    the detected pattern misses nonzeros: a bug worth reporting.
    """


@dataclasses.dataclass(frozen=True)
class _Flat:
    """`f` as a function of one flat vector (the differentiated inputs), output flattened."""

    fun: Callable[[jax.Array], jax.Array]
    x: jax.Array
    coloring: ColoredPattern


def _flatten(f: Callable[..., Any], args: Sequence[Any], coloring: ColoredPattern,
             has_aux: bool) -> _Flat:
    pattern = coloring.sparsity
    argnums = pattern.argnums_tuple
    dyn = tuple(args[i] for i in argnums)
    x, unravel = ravel_pytree(dyn)

    def fun(flat: jax.Array) -> jax.Array:
        full = list(args)
        for i, arg in zip(argnums, unravel(flat), strict=True):
            full[i] = arg
        out = f(*full)
        return ravel_pytree(out[0] if has_aux else out)[0]

    flat_pattern = SparsityPattern(
        pattern.rows, pattern.cols, pattern.shape, (jax.ShapeDtypeStruct(x.shape, x.dtype),)
    )
    return _Flat(fun, x, dataclasses.replace(coloring, sparsity=flat_pattern))


def _tolerances(dtype: Any, rtol: float | None, atol: float | None) -> tuple[float, float]:
    double = jnp.finfo(dtype).bits >= 64
    default_rtol, default_atol = (1e-9, 1e-12) if double else (1e-4, 1e-6)
    return (default_rtol if rtol is None else rtol, default_atol if atol is None else atol)


def _compare(actual: jax.Array, expected: jax.Array, what: str, rtol: float,
             atol: float) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    error = float(np.max(np.abs(actual - expected), initial=0.0))
    scale = float(np.max(np.abs(expected), initial=0.0))
    if not error <= atol + rtol * scale:
        raise VerificationError(
            f"{what}: the sparse result differs from JAX's by up to {error:.3g} (reference "
            f"magnitude {scale:.3g}, tolerance atol={atol:g}, rtol={rtol:g}). {_REPORT}"
        )


def _split_coloring(
    args: tuple[Any, ...], coloring: ColoredPattern | None, name: str
) -> tuple[tuple[Any, ...], ColoredPattern | None]:
    """Take a trailing positional `ColoredPattern` as the coloring, not as an argument of f."""
    if args and isinstance(args[-1], ColoredPattern):
        if coloring is not None:
            raise TypeError(
                f"{name} got a coloring both as the last positional argument and as "
                "`coloring=`; pass it once."
            )
        args, coloring = args[:-1], args[-1]
    if not args:
        raise TypeError(f"{name} needs the arguments of f at which to compare, got none.")
    if coloring is not None and not isinstance(coloring, ColoredPattern):
        raise TypeError(
            f"{name}: `coloring` must be a ColoredPattern, got {type(coloring).__name__}."
        )
    return args, coloring


def _probe(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    if jnp.issubdtype(dtype, jnp.complexfloating):
        real, imag = jax.random.normal(key, (2, *shape))
        return (real + 1j * imag).astype(dtype)
    return jax.random.normal(key, shape, dtype)


def check_jacobian_correctness(
    f: Callable[..., Any],
    *args: Any,
    coloring: ColoredPattern | None = None,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    method: CheckMethod = "matvec",
    num_probes: int = 3,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Check asdex's sparse Jacobian of `f` at `args` against JAX.

    Called as `check_jacobian_correctness(f, x)` (detect and color at `x`) or
    `check_jacobian_correctness(f, x, coloring)`: a `ColoredPattern` given as the last
    positional argument is the coloring to check, never an argument of `f`.

    Args:
        f: The function.
        *args: Concrete arguments at which to compare, optionally followed by the
            `ColoredPattern` to check.
        coloring: The coloring to check, as a keyword (same as the trailing positional
            form); detected and colored from `args` when omitted.
        argnums: Arguments to differentiate (only read when `coloring` is `None`).
        has_aux: Whether `f` returns `(output, aux)`.
        holomorphic: Whether `f` is holomorphic.
        method: "matvec" (random JVP and VJP probes) or "dense" (`jax.jacrev`).
        num_probes: Number of probe vectors per side for "matvec".
        seed: Seed of the probe vectors.
        rtol: Relative tolerance (default 1e-4 in single, 1e-9 in double precision).
        atol: Absolute tolerance (default 1e-6 in single, 1e-12 in double precision).

    Raises:
        VerificationError: If the sparse Jacobian differs from JAX's.

    Examples:
        >>> import jax.numpy as jnp
        >>> import asdex
        >>> from asdex import check_jacobian_correctness
        >>> f = lambda x: x[1:] * x[:-1]
        >>> x = jnp.arange(1.0, 5.0)
        >>> check_jacobian_correctness(f, x)
        >>> check_jacobian_correctness(f, x, asdex.jacobian_coloring(f, x), method="dense")
    """
    args, coloring = _split_coloring(args, coloring, "check_jacobian_correctness")
    if coloring is None:
        coloring = jacobian_coloring(f, *args, argnums=argnums, has_aux=has_aux)
    flat = _flatten(f, args, coloring, has_aux)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jac = jacobian_from_coloring(flat.fun, flat.coloring, holomorphic=holomorphic)(flat.x)
    y, pullback = jax.vjp(flat.fun, flat.x)
    rtol, atol = _tolerances(y.dtype, rtol, atol)
    if method == "dense":
        expected = jax.jacrev(flat.fun, holomorphic=holomorphic)(flat.x)
        _compare(jac.todense(), expected, "Jacobian (dense comparison)", rtol, atol)
        return
    if method != "matvec":
        raise ValueError(f"`method` must be 'matvec' or 'dense', got {method!r}.")
    keys = jax.random.split(jax.random.key(seed), 2 * num_probes)
    for k in range(num_probes):
        v = _probe(keys[2 * k], flat.x.shape, flat.x.dtype)
        _compare(jac @ v, jax.jvp(flat.fun, (flat.x,), (v,))[1], "Jacobian-vector product",
                 rtol, atol)
        u = _probe(keys[2 * k + 1], y.shape, y.dtype)
        _compare(u @ jac, pullback(u)[0], "vector-Jacobian product", rtol, atol)


def check_hessian_correctness(
    f: Callable[..., Any],
    *args: Any,
    coloring: ColoredPattern | None = None,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    method: CheckMethod = "matvec",
    num_probes: int = 3,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Check asdex's sparse Hessian of a scalar `f` at `args` against JAX.

    Arguments are those of `check_jacobian_correctness` (the coloring may be the last
    positional argument); "matvec" compares with Hessian-vector products (forward over
    reverse), "dense" with `jax.hessian`.

    Raises:
        VerificationError: If the sparse Hessian differs from JAX's.

    Examples:
        >>> import jax.numpy as jnp
        >>> import asdex
        >>> from asdex import check_hessian_correctness
        >>> f = lambda x: (x[1:] * x[:-1]).sum()
        >>> check_hessian_correctness(f, jnp.ones(4))
        >>> check_hessian_correctness(f, jnp.ones(4), asdex.hessian_coloring(f, jnp.ones(4)))
    """
    args, coloring = _split_coloring(args, coloring, "check_hessian_correctness")
    if coloring is None:
        coloring = hessian_coloring(f, *args, argnums=argnums, has_aux=has_aux)
    flat = _flatten(f, args, coloring, has_aux)

    def scalar(x: jax.Array) -> jax.Array:
        return flat.fun(x).reshape(())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hess = hessian_from_coloring(scalar, flat.coloring, holomorphic=holomorphic)(flat.x)
    rtol, atol = _tolerances(flat.x.dtype, rtol, atol)
    if method == "dense":
        expected = jax.hessian(scalar, holomorphic=holomorphic)(flat.x)
        _compare(hess.todense(), expected, "Hessian (dense comparison)", rtol, atol)
        return
    if method != "matvec":
        raise ValueError(f"`method` must be 'matvec' or 'dense', got {method!r}.")
    gradient = jax.grad(scalar, holomorphic=holomorphic)
    for key in jax.random.split(jax.random.key(seed), num_probes):
        v = _probe(key, flat.x.shape, flat.x.dtype)
        _compare(hess @ v, jax.jvp(gradient, (flat.x,), (v,))[1], "Hessian-vector product",
                 rtol, atol)
