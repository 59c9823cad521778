"""The public differentiation API: wiring of detection, coloring and decompression.

Each `*_from_coloring` function precomputes a decompression plan on the host, once, and
returns a compiled (`jax.jit`) function that composes with `jax.jit`, `vmap` and `grad`.
`jacobian`, `hessian` and their `value_and_*` variants detect the sparsity and color it
first; when that takes longer than `NOTICE_SECONDS`, a one-line notice goes to the
`logging` logger "asdex" at level WARNING (silence it with
`logging.getLogger("asdex").setLevel(logging.ERROR)`).
"""

from __future__ import annotations

import functools
import logging
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from asdex._pattern import ColoredPattern, HessianMode, JacobianMode
from asdex.coloring import hessian_coloring_from_sparsity, jacobian_coloring_from_sparsity
from asdex.decompression import (
    OUTPUT_FORMATS,
    ColorSharding,
    OutputFormat,
    ShardingLike,
    sparse_hessian,
    sparse_jacobian,
)
from asdex.detection import hessian_sparsity, jacobian_sparsity

NOTICE_SECONDS = 1.0
"""Detection and coloring that take longer than this log a one-line notice."""

logger = logging.getLogger("asdex")


class DenseColoringWarning(UserWarning):
    """Warned when a coloring needs as many passes as dense differentiation would."""


def _check_options(output_format: str, chunk_size: int | None) -> None:
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(
            f"`output_format` must be one of {OUTPUT_FORMATS}, got {output_format!r}."
        )
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"`chunk_size` must be a positive int or None, got {chunk_size!r}.")


def _check_coloring(coloring: Any, name: str) -> None:
    if not isinstance(coloring, ColoredPattern):
        raise TypeError(
            f"{name} expects a ColoredPattern (from `jacobian_coloring` or "
            f"`hessian_coloring`), got {type(coloring).__name__}."
        )
    coloring.require_plan(name)


_OURS = ("asdex", "asdex_opt")


def _user_stacklevel() -> int:
    """The `stacklevel` that points a warning at the first frame outside asdex (and asdex_opt)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] in _OURS:
        frame, level = frame.f_back, level + 1
    return level


def _warn_if_dense(coloring: ColoredPattern, dense: int, what: str) -> None:
    if dense > 1 and coloring.num_colors >= dense:
        passes = {"fwd": "JVPs", "rev": "VJPs"}.get(coloring.mode, "HVPs")
        warnings.warn(
            f"The coloring needs {coloring.num_colors} {passes} for this "
            f"{coloring.sparsity.m}x{coloring.sparsity.n} {what}, no fewer than the "
            f"{dense} passes of dense differentiation: sparsity brings no gain here.",
            DenseColoringWarning,
            stacklevel=_user_stacklevel(),
        )


def _notice(what: str, f: Callable[..., Any], detect_s: float, color_s: float,
            coloring: ColoredPattern) -> None:
    if detect_s + color_s > NOTICE_SECONDS:
        m, n = coloring.sparsity.shape
        logger.warning(
            "asdex: %s of %s: sparsity detection took %.1f s, coloring %.1f s (%dx%d, "
            "%d nonzeros, %d colors); build the derivative function once and reuse it "
            "(the first coloring in a process also loads numba's coloring kernels).",
            what, getattr(f, "__name__", type(f).__name__), detect_s, color_s, m, n,
            coloring.sparsity.nnz, coloring.num_colors,
        )


def _jacobian_evaluator(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    output_format: OutputFormat,
    *,
    has_aux: bool,
    holomorphic: bool,
    allow_int: bool,
    chunk_size: int | None,
    name: str,
    sharding: ShardingLike | None,
) -> Callable[..., tuple[Any, Any, Any]]:
    _check_coloring(coloring, name)
    _check_options(output_format, chunk_size)
    _warn_if_dense(coloring, min(coloring.sparsity.shape), "Jacobian")
    return sparse_jacobian(
        f,
        coloring,
        output_format=output_format,
        has_aux=has_aux,
        holomorphic=holomorphic,
        allow_int=allow_int,
        chunk_size=chunk_size,
        name=name,
        sharding=ColorSharding.of(sharding),
    )


def _hessian_evaluator(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    output_format: OutputFormat,
    *,
    has_aux: bool,
    holomorphic: bool,
    allow_int: bool,
    chunk_size: int | None,
    name: str,
    sharding: ShardingLike | None,
) -> Callable[..., tuple[Any, Any, Any]]:
    _check_coloring(coloring, name)
    _check_options(output_format, chunk_size)
    _warn_if_dense(coloring, coloring.sparsity.n, "Hessian")
    return sparse_hessian(
        f,
        coloring,
        output_format=output_format,
        has_aux=has_aux,
        holomorphic=holomorphic,
        allow_int=allow_int,
        chunk_size=chunk_size,
        name=name,
        sharding=ColorSharding.of(sharding),
    )


# --- from a coloring -------------------------------------------------------------------


def jacobian_from_coloring(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    output_format: OutputFormat = "bcoo",
    *,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Build a sparse Jacobian function from a precomputed coloring.

    A column coloring (mode "fwd") costs one JVP per color, a row coloring (mode "rev")
    one VJP per color; `f` is linearized once per call and the products are batched.

    Args:
        f: Function to differentiate.
        coloring: A `ColoredPattern` from `jacobian_coloring` or
            `jacobian_coloring_from_sparsity`.
        output_format: "bcoo" for `jax.experimental.sparse.BCOO` blocks, "dense" for
            `jax.Array` blocks; on the host (not traceable), "numpy_dense" for NumPy
            arrays and "scipy_coo", "scipy_csr" or "scipy_csc" for SciPy sparse arrays
            (each block flattened to 2-D `(output size, input size)`).
        has_aux: Whether `f` returns `(output, aux)`; the function then returns
            `(jac, aux)`.
        holomorphic: Whether `f` is promised to be holomorphic (complex inputs and
            outputs), as in `jax.jacrev`.
        allow_int: Whether integer inputs may be differentiated (their blocks are zero).
        chunk_size: Number of colors evaluated at once; `None` batches them all. A
            smaller value bounds memory by running the batches with `lax.map`.
        sharding: Shard the color axis of the compressed evaluation across devices: a
            `jax.sharding.NamedSharding` whose spec names the color axis first, or a
            pair `(mesh, axis_name)`. `None` (default) runs on one device.

    Returns:
        A compiled (`jax.jit`) function of the same positional and keyword arguments as
        `f` (keyword arguments are forwarded; array leaves are traced, other leaves are
        static), returning the Jacobian as a pytree of blocks shaped
        `(*out_shape, *in_leaf_shape)`, nested like `jax.jacobian`'s result. Every
        positional argument that detection saw must keep its pytree structure, shapes
        and dtype family (a `ValueError` or `TypeError` names the argument otherwise).

    Examples:
        >>> import jax.numpy as jnp, numpy as np
        >>> from asdex import SparsityPattern, jacobian_coloring_from_sparsity
        >>> from asdex import jacobian_from_coloring
        >>> coloring = jacobian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(3)))
        >>> jac_fn = jacobian_from_coloring(jnp.sin, coloring, "dense")
        >>> jac_fn(jnp.zeros(3)).tolist()
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    evaluate = _jacobian_evaluator(
        f, coloring, output_format, has_aux=has_aux, holomorphic=holomorphic,
        allow_int=allow_int, chunk_size=chunk_size, sharding=sharding, name="jacobian",
    )

    @functools.wraps(f)
    def jacobian_fn(*args: Any, **kwargs: Any) -> Any:
        _, jac, aux = evaluate(*args, **kwargs)
        return (jac, aux) if has_aux else jac

    return jacobian_fn


def value_and_jacobian_from_coloring(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    output_format: OutputFormat = "bcoo",
    *,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Build a function returning `f`'s value and sparse Jacobian from a coloring.

    The value comes out of the same linearization: no extra forward pass. Arguments are
    those of `jacobian_from_coloring`.

    Returns:
        A function returning `(value, jac)`, or `((value, aux), jac)` when `has_aux`,
        in the order of `jax.value_and_grad`.

    Examples:
        >>> import jax.numpy as jnp, numpy as np
        >>> from asdex import SparsityPattern, jacobian_coloring_from_sparsity
        >>> from asdex import value_and_jacobian_from_coloring
        >>> coloring = jacobian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(2)))
        >>> value, jac = value_and_jacobian_from_coloring(jnp.exp, coloring, "dense")(
        ...     jnp.zeros(2))
        >>> value.tolist(), jac.tolist()
        ([1.0, 1.0], [[1.0, 0.0], [0.0, 1.0]])
    """
    evaluate = _jacobian_evaluator(
        f, coloring, output_format, has_aux=has_aux, holomorphic=holomorphic,
        allow_int=allow_int, chunk_size=chunk_size, sharding=sharding, name="value_and_jacobian",
    )

    @functools.wraps(f)
    def value_and_jacobian_fn(*args: Any, **kwargs: Any) -> Any:
        value, jac, aux = evaluate(*args, **kwargs)
        return ((value, aux), jac) if has_aux else (value, jac)

    return value_and_jacobian_fn


def hessian_from_coloring(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    output_format: OutputFormat = "bcoo",
    *,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Build a sparse Hessian function from a precomputed coloring.

    One Hessian-vector product per color, in the coloring's HVP mode; symmetric (star
    or acyclic) colorings are decompressed directly or by substitution.

    Args:
        f: Scalar-valued function (outputs of size 1, such as shape `(1,)`, are
            squeezed).
        coloring: A `ColoredPattern` from `hessian_coloring` or
            `hessian_coloring_from_sparsity`.
        output_format: Any of the formats of `jacobian_from_coloring`.
        has_aux: Whether `f` returns `(output, aux)`; the function then returns
            `(hess, aux)`.
        holomorphic: Whether `f` is promised to be holomorphic.
        allow_int: Whether integer inputs may be differentiated (their blocks are zero).
        chunk_size: Number of colors evaluated at once; `None` batches them all.
        sharding: Shard the color axis across devices, as in `jacobian_from_coloring`.

    Returns:
        A compiled function of the same arguments as `f` (as in
        `jacobian_from_coloring`) returning the Hessian as a pytree of blocks shaped
        `(*in_leaf_shape_a, *in_leaf_shape_b)`, nested like `jax.hessian`'s result.

    Examples:
        >>> import jax.numpy as jnp, numpy as np
        >>> from asdex import SparsityPattern, hessian_coloring_from_sparsity
        >>> from asdex import hessian_from_coloring
        >>> coloring = hessian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(2)))
        >>> hessian_from_coloring(lambda x: (x**2).sum(), coloring, "dense")(
        ...     jnp.ones(2)).tolist()
        [[2.0, 0.0], [0.0, 2.0]]
    """
    evaluate = _hessian_evaluator(
        f, coloring, output_format, has_aux=has_aux, holomorphic=holomorphic,
        allow_int=allow_int, chunk_size=chunk_size, sharding=sharding, name="hessian",
    )

    @functools.wraps(f)
    def hessian_fn(*args: Any, **kwargs: Any) -> Any:
        _, hess, aux = evaluate(*args, **kwargs)
        return (hess, aux) if has_aux else hess

    return hessian_fn


def value_and_hessian_from_coloring(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    output_format: OutputFormat = "bcoo",
    *,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Build a function returning `f`'s value and sparse Hessian from a coloring.

    The value comes out of the Hessian-vector products' own forward pass. Arguments are
    those of `hessian_from_coloring`.

    Returns:
        A function returning `(value, hess)`, or `((value, aux), hess)` when `has_aux`.

    Examples:
        >>> import jax.numpy as jnp, numpy as np
        >>> from asdex import SparsityPattern, hessian_coloring_from_sparsity
        >>> from asdex import value_and_hessian_from_coloring
        >>> coloring = hessian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(2)))
        >>> value, hess = value_and_hessian_from_coloring(
        ...     lambda x: (x**2).sum(), coloring, "dense")(jnp.ones(2))
        >>> value.tolist(), hess.tolist()
        (2.0, [[2.0, 0.0], [0.0, 2.0]])
    """
    evaluate = _hessian_evaluator(
        f, coloring, output_format, has_aux=has_aux, holomorphic=holomorphic,
        allow_int=allow_int, chunk_size=chunk_size, sharding=sharding, name="value_and_hessian",
    )

    @functools.wraps(f)
    def value_and_hessian_fn(*args: Any, **kwargs: Any) -> Any:
        value, hess, aux = evaluate(*args, **kwargs)
        return ((value, aux), hess) if has_aux else (value, hess)

    return value_and_hessian_fn


# --- detect and color ------------------------------------------------------------------


def jacobian_coloring(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    mode: JacobianMode | None = None,
    symmetric: bool = False,
    postprocess: bool = False,
) -> ColoredPattern:
    """Detect the Jacobian sparsity of `f` and color it, in one step.

    Args:
        f: Function whose Jacobian is wanted.
        *args: Sample arguments; only their structure, shapes and dtypes are used.
        argnums: Positional argument(s) to differentiate with respect to.
        has_aux: Whether `f` returns `(output, aux)`; `aux` is ignored.
        mode: "fwd" (column coloring, JVPs), "rev" (row coloring, VJPs), or `None` for
            whichever needs fewer colors ("fwd" when `symmetric`).
        symmetric: Whether to use a symmetric (star) coloring; needs a square Jacobian.
        postprocess: With `symmetric`, prune colors never used as hubs.

    Returns:
        The `ColoredPattern`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex import jacobian_coloring
        >>> jacobian_coloring(lambda x: x[1:] - x[:-1], jnp.zeros(5)).num_colors
        2
    """
    start = time.perf_counter()
    sparsity = jacobian_sparsity(f, *args, argnums=argnums, has_aux=has_aux)
    detected = time.perf_counter()
    coloring = jacobian_coloring_from_sparsity(
        sparsity, mode=mode, symmetric=symmetric, postprocess=postprocess
    )
    _notice("Jacobian", f, detected - start, time.perf_counter() - detected, coloring)
    return coloring


def hessian_coloring(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    mode: HessianMode | None = None,
    symmetric: bool = True,
    postprocess: bool = False,
) -> ColoredPattern:
    """Detect the Hessian sparsity of a scalar-valued `f` and color it, in one step.

    Args:
        f: Scalar-valued function.
        *args: Sample arguments; only their structure, shapes and dtypes are used.
        argnums: Positional argument(s) to differentiate with respect to.
        has_aux: Whether `f` returns `(output, aux)`; `aux` is ignored.
        mode: Hessian-vector product strategy: "fwd_over_rev" (default), "rev_over_fwd"
            or "rev_over_rev".
        symmetric: Whether to use a symmetric coloring (fewer colors, by `H = H^T`).
        postprocess: With `symmetric`, prune colors never used as hubs.

    Returns:
        The `ColoredPattern`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex import hessian_coloring
        >>> hessian_coloring(lambda x: (x**3).sum(), jnp.zeros(4)).num_colors
        1
    """
    start = time.perf_counter()
    sparsity = hessian_sparsity(f, *args, argnums=argnums, has_aux=has_aux)
    detected = time.perf_counter()
    coloring = hessian_coloring_from_sparsity(
        sparsity, mode=mode, symmetric=symmetric, postprocess=postprocess
    )
    _notice("Hessian", f, detected - start, time.perf_counter() - detected, coloring)
    return coloring


# --- detect, color and differentiate ---------------------------------------------------


def jacobian(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    mode: JacobianMode | None = None,
    symmetric: bool = False,
    output_format: OutputFormat = "bcoo",
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Detect sparsity, color, and return a function computing sparse Jacobians.

    Combines `jacobian_coloring` and `jacobian_from_coloring`: detection and coloring
    run once, in this call, on the sample `args`; the returned function only evaluates.

    Mixed input dtypes follow `jax.jacrev`: every differentiated leaf must be inexact
    (or `allow_int=True`), complex inputs need `holomorphic=True` (or `mode="rev"`), and
    the blocks have the dtypes `jax.jacrev` gives them (the column leaf's dtype).

    Args:
        f: Function whose Jacobian is wanted.
        *args: Sample arguments; only their structure, shapes and dtypes are used.
        argnums: Positional argument(s) to differentiate with respect to.
        has_aux: Whether `f` returns `(output, aux)`; the function returns `(jac, aux)`.
        holomorphic: Whether `f` is promised to be holomorphic, as in `jax.jacrev`.
        allow_int: Whether integer inputs may be differentiated (zero blocks).
        mode: "fwd" (JVPs), "rev" (VJPs) or `None` for whichever needs fewer colors.
        symmetric: Whether to use a symmetric (star) coloring; needs a square Jacobian.
        output_format: "bcoo" (sparse blocks, default), "dense", or a host format
            (see `jacobian_from_coloring`).
        chunk_size: Number of colors evaluated at once; `None` batches them all.
        sharding: Shard the color axis across devices (see `jacobian_from_coloring`).

    Returns:
        A compiled (`jax.jit`) function of the same arguments as `f` returning the
        Jacobian blocks, nested like `jax.jacobian`'s result, each shaped
        `(*out_shape, *in_leaf_shape)`. It compiles on its first call (or inside the
        caller's `jax.jit`) and checks every argument against what detection saw.

    Examples:
        >>> import jax
        >>> import jax.numpy as jnp
        >>> from asdex import jacobian
        >>> jac_fn = jax.jit(jacobian(lambda x: x[1:] * x[:-1], jnp.zeros(4)))
        >>> jac_fn(jnp.arange(4.0)).todense().tolist()
        [[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 1.0, 0.0], [0.0, 0.0, 3.0, 2.0]]
    """
    coloring = jacobian_coloring(
        f, *args, argnums=argnums, has_aux=has_aux, mode=mode, symmetric=symmetric
    )
    return jacobian_from_coloring(
        f, coloring, output_format, has_aux=has_aux, holomorphic=holomorphic,
        allow_int=allow_int, chunk_size=chunk_size, sharding=sharding,
    )


def value_and_jacobian(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    mode: JacobianMode | None = None,
    symmetric: bool = False,
    output_format: OutputFormat = "bcoo",
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Like `jacobian`, but the function also returns `f`'s value, at no extra cost.

    Returns:
        A function returning `(value, jac)`, or `((value, aux), jac)` when `has_aux`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex import value_and_jacobian
        >>> value, jac = value_and_jacobian(jnp.sin, jnp.zeros(2))(jnp.zeros(2))
        >>> value.tolist(), jac.todense().tolist()
        ([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]])
    """
    coloring = jacobian_coloring(
        f, *args, argnums=argnums, has_aux=has_aux, mode=mode, symmetric=symmetric
    )
    return value_and_jacobian_from_coloring(
        f, coloring, output_format, has_aux=has_aux, holomorphic=holomorphic,
        allow_int=allow_int, chunk_size=chunk_size, sharding=sharding,
    )


def hessian(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    mode: HessianMode | None = None,
    symmetric: bool = True,
    output_format: OutputFormat = "bcoo",
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Detect sparsity, color, and return a function computing sparse Hessians.

    `f` must be scalar-valued; outputs of size 1 (such as shape `(1,)`) are squeezed.

    Args:
        f: Scalar-valued function.
        *args: Sample arguments; only their structure, shapes and dtypes are used.
        argnums: Positional argument(s) to differentiate with respect to.
        has_aux: Whether `f` returns `(output, aux)`; the function returns `(hess, aux)`.
        holomorphic: Whether `f` is promised to be holomorphic.
        allow_int: Whether integer inputs may be differentiated (zero blocks).
        mode: "fwd_over_rev" (default), "rev_over_fwd" or "rev_over_rev".
        symmetric: Whether to use a symmetric coloring (default; fewer colors).
        output_format: "bcoo" (sparse blocks, default), "dense", or a host format
            (see `jacobian_from_coloring`).
        chunk_size: Number of colors evaluated at once; `None` batches them all.
        sharding: Shard the color axis across devices (see `jacobian_from_coloring`).

    Returns:
        A compiled (`jax.jit`) function of the same arguments as `f` returning the
        Hessian blocks, nested like `jax.hessian`'s result.

    Examples:
        >>> import jax
        >>> import jax.numpy as jnp
        >>> from asdex import hessian
        >>> hess_fn = jax.jit(hessian(lambda x: (x**3).sum(), jnp.zeros(3)))
        >>> hess_fn(jnp.ones(3)).todense().tolist()
        [[6.0, 0.0, 0.0], [0.0, 6.0, 0.0], [0.0, 0.0, 6.0]]
    """
    coloring = hessian_coloring(
        f, *args, argnums=argnums, has_aux=has_aux, mode=mode, symmetric=symmetric
    )
    return hessian_from_coloring(
        f, coloring, output_format, has_aux=has_aux, holomorphic=holomorphic,
        allow_int=allow_int, chunk_size=chunk_size, sharding=sharding,
    )


def value_and_hessian(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    mode: HessianMode | None = None,
    symmetric: bool = True,
    output_format: OutputFormat = "bcoo",
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Like `hessian`, but the function also returns `f`'s value, at no extra cost.

    Returns:
        A function returning `(value, hess)`, or `((value, aux), hess)` when `has_aux`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex import value_and_hessian
        >>> value, hess = value_and_hessian(lambda x: (x**2).sum(), jnp.zeros(2))(
        ...     jnp.ones(2))
        >>> value.tolist(), hess.todense().tolist()
        (2.0, [[2.0, 0.0], [0.0, 2.0]])
    """
    coloring = hessian_coloring(
        f, *args, argnums=argnums, has_aux=has_aux, mode=mode, symmetric=symmetric
    )
    return value_and_hessian_from_coloring(
        f, coloring, output_format, has_aux=has_aux, holomorphic=holomorphic,
        allow_int=allow_int, chunk_size=chunk_size, sharding=sharding,
    )
