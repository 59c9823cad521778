"""The compressed API: stop at the compressed matrix `B`, decompress later (or never).

`B` holds one JVP, VJP or HVP per color, stacked along its leading (color) axis:

* column coloring (mode "fwd"): `B` of shape `(num_colors, m)`, row `c` is `J @ s_c`;
* row coloring (mode "rev"): `B` of shape `(num_colors, n)`, row `c` is `J.T @ s_c`;
* Hessian coloring: `B` of shape `(num_colors, n)`, row `c` is `H @ s_c`;
* bidirectional coloring: the pair `(B_fwd, B_rev)` of shapes `(num_col_colors, m)`
  and `(num_row_colors, n)`, the JVPs of the column colors and the VJPs of the row
  colors.

Here `s_c` is the indicator vector of color `c`, `m` the flattened output size and `n`
the flattened size of the differentiated inputs. `asdex.decompress` and
`asdex.decompress_data` recover the matrix or its nonzero values from `B`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from asdex._api import (
    _check_coloring,
    _check_options,
    _warn_if_dense,
    hessian_coloring,
    jacobian_coloring,
)
from asdex._pattern import ColoredPattern, HessianMode, JacobianMode
from asdex.decompression import (
    ColorSharding,
    ShardingLike,
    filter_jit,
    hessian_compressor,
    jacobian_compressor,
)


def _jacobian_fn(
    f: Callable[..., Any], coloring: ColoredPattern, *, with_value: bool, has_aux: bool,
    holomorphic: bool, allow_int: bool, chunk_size: int | None,
    sharding: ShardingLike | None, name: str,
) -> Callable[..., Any]:
    _check_coloring(coloring, name)
    _check_options("bcoo", chunk_size)
    _warn_if_dense(coloring, min(coloring.sparsity.shape), "Jacobian")
    compress_call = jacobian_compressor(
        f, coloring, has_aux=has_aux, holomorphic=holomorphic, allow_int=allow_int,
        chunk_size=chunk_size, name=name, sharding=ColorSharding.of(sharding),
    )
    bidirectional = coloring.partition == "bidirectional"

    @filter_jit
    def compressed_fn(*args: Any, **kwargs: Any) -> Any:
        result = compress_call(*args, **kwargs)
        compressed = result.parts if bidirectional else result.parts[0]
        return _pack(result.value, compressed, result.aux, with_value, has_aux)

    return compressed_fn


def _hessian_fn(
    f: Callable[..., Any], coloring: ColoredPattern, *, with_value: bool, has_aux: bool,
    holomorphic: bool, allow_int: bool, chunk_size: int | None,
    sharding: ShardingLike | None, name: str,
) -> Callable[..., Any]:
    _check_coloring(coloring, name)
    _check_options("bcoo", chunk_size)
    _warn_if_dense(coloring, coloring.sparsity.n, "Hessian")
    compress_call = hessian_compressor(
        f, coloring, has_aux=has_aux, holomorphic=holomorphic, allow_int=allow_int,
        chunk_size=chunk_size, name=name, sharding=ColorSharding.of(sharding),
    )

    @filter_jit
    def compressed_fn(*args: Any, **kwargs: Any) -> Any:
        value, compressed, aux, _ = compress_call(*args, **kwargs)
        return _pack(value, compressed, aux, with_value, has_aux)

    return compressed_fn


def _pack(value: Any, compressed: Any, aux: Any, with_value: bool, has_aux: bool) -> Any:
    if with_value:
        return ((value, aux), compressed) if has_aux else (value, compressed)
    return (compressed, aux) if has_aux else compressed


# --- from a coloring -------------------------------------------------------------------


def compressed_jacobian_from_coloring(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    *,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Build a function computing the compressed Jacobian `B` from a coloring.

    One JVP per column color (mode "fwd"), one VJP per row color (mode "rev"), or
    both for a bidirectional coloring; `asdex.decompress` turns `B` into the matrix.

    Args:
        f: Function to differentiate.
        coloring: A Jacobian `ColoredPattern`.
        has_aux: Whether `f` returns `(output, aux)`; the function then returns
            `(B, aux)`.
        holomorphic: Whether `f` is promised to be holomorphic, as in `jax.jacrev`.
        allow_int: Whether integer inputs may be differentiated.
        chunk_size: Number of colors evaluated at once; `None` batches them all.
        sharding: Shard the color axis across devices: a `NamedSharding` whose spec
            names the color axis first, or `(mesh, axis_name)`. The color axis is then
            padded with zero rows up to a multiple of the number of shards.

    Returns:
        A compiled (`jax.jit`) function of `f`'s arguments returning `B`: shape
        `(num_colors, m)` in mode "fwd", `(num_colors, n)` in mode "rev", and the pair
        `(B_fwd, B_rev)` for a bidirectional coloring.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import asdex
        >>> from asdex import compressed_jacobian_from_coloring
        >>> f = lambda x: x[1:] * x[:-1]
        >>> coloring = asdex.jacobian_coloring(f, jnp.zeros(4), mode="fwd")
        >>> B = jax.jit(compressed_jacobian_from_coloring(f, coloring))(jnp.arange(4.0))
        >>> B.tolist()
        [[0.0, 2.0, 2.0], [1.0, 1.0, 3.0]]
    """
    return _jacobian_fn(
        f, coloring, with_value=False, has_aux=has_aux, holomorphic=holomorphic,
        allow_int=allow_int, chunk_size=chunk_size, sharding=sharding,
        name="compressed_jacobian",
    )


def value_and_compressed_jacobian_from_coloring(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    *,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Like `compressed_jacobian_from_coloring`, also returning `f`'s value for free.

    Returns:
        A compiled function returning `(value, B)`, or `((value, aux), B)` with
        `has_aux`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import asdex
        >>> from asdex import value_and_compressed_jacobian_from_coloring
        >>> coloring = asdex.jacobian_coloring(jnp.sin, jnp.zeros(3))
        >>> value, B = value_and_compressed_jacobian_from_coloring(jnp.sin, coloring)(
        ...     jnp.zeros(3))
        >>> value.tolist(), B.tolist()
        ([0.0, 0.0, 0.0], [[1.0, 1.0, 1.0]])
    """
    return _jacobian_fn(
        f, coloring, with_value=True, has_aux=has_aux, holomorphic=holomorphic,
        allow_int=allow_int, chunk_size=chunk_size, sharding=sharding,
        name="value_and_compressed_jacobian",
    )


def compressed_hessian_from_coloring(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    *,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Build a function computing the compressed Hessian `B` from a coloring.

    One Hessian-vector product per color, in the coloring's HVP mode; symmetric (star)
    colorings decompress directly, acyclic ones by substitution (`asdex.decompress`).
    Arguments are those of `compressed_jacobian_from_coloring`.

    Returns:
        A compiled function of `f`'s arguments returning `B` of shape
        `(num_colors, n)`, or `(B, aux)` with `has_aux`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import asdex
        >>> from asdex import compressed_hessian_from_coloring
        >>> f = lambda x: (x**3).sum()
        >>> coloring = asdex.hessian_coloring(f, jnp.zeros(3))
        >>> compressed_hessian_from_coloring(f, coloring)(jnp.ones(3)).tolist()
        [[6.0, 6.0, 6.0]]
    """
    return _hessian_fn(
        f, coloring, with_value=False, has_aux=has_aux, holomorphic=holomorphic,
        allow_int=allow_int, chunk_size=chunk_size, sharding=sharding,
        name="compressed_hessian",
    )


def value_and_compressed_hessian_from_coloring(
    f: Callable[..., Any],
    coloring: ColoredPattern,
    *,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Like `compressed_hessian_from_coloring`, also returning `f`'s value for free.

    Returns:
        A compiled function returning `(value, B)`, or `((value, aux), B)` with
        `has_aux`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import asdex
        >>> from asdex import value_and_compressed_hessian_from_coloring
        >>> f = lambda x: (x**2).sum()
        >>> coloring = asdex.hessian_coloring(f, jnp.zeros(2))
        >>> value, B = value_and_compressed_hessian_from_coloring(f, coloring)(jnp.ones(2))
        >>> value.tolist(), B.tolist()
        (2.0, [[2.0, 2.0]])
    """
    return _hessian_fn(
        f, coloring, with_value=True, has_aux=has_aux, holomorphic=holomorphic,
        allow_int=allow_int, chunk_size=chunk_size, sharding=sharding,
        name="value_and_compressed_hessian",
    )


# --- detect, color and compress --------------------------------------------------------


def _with_coloring(fn: Callable[..., Any], coloring: ColoredPattern) -> Callable[..., Any]:
    """`fn` with the coloring it was built from attached as `fn.coloring`."""
    fn.coloring = coloring
    return fn


def compressed_jacobian(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    mode: JacobianMode | None = None,
    symmetric: bool = False,
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Detect sparsity, color, and return a function computing the compressed Jacobian.

    Combines `asdex.jacobian_coloring` and `compressed_jacobian_from_coloring`; the
    coloring the function uses is its `coloring` attribute, for `asdex.decompress`.

    Returns:
        A compiled function of `f`'s arguments returning `B` (see
        `compressed_jacobian_from_coloring`), with the coloring as `.coloring`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import asdex
        >>> from asdex import compressed_jacobian
        >>> B_fn = compressed_jacobian(lambda x: x[1:] * x[:-1], jnp.zeros(4), mode="fwd")
        >>> B = jax.jit(B_fn)(jnp.arange(4.0))
        >>> asdex.decompress(B, B_fn.coloring, "dense").tolist()
        [[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 1.0, 0.0], [0.0, 0.0, 3.0, 2.0]]
    """
    coloring = jacobian_coloring(
        f, *args, argnums=argnums, has_aux=has_aux, mode=mode, symmetric=symmetric
    )
    return _with_coloring(compressed_jacobian_from_coloring(
        f, coloring, has_aux=has_aux, holomorphic=holomorphic, allow_int=allow_int,
        chunk_size=chunk_size, sharding=sharding,
    ), coloring)


def value_and_compressed_jacobian(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    mode: JacobianMode | None = None,
    symmetric: bool = False,
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Like `compressed_jacobian`, the function also returning `f`'s value.

    Returns:
        A compiled function returning `(value, B)`, or `((value, aux), B)` with
        `has_aux`, with the coloring as `.coloring`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex import value_and_compressed_jacobian
        >>> fn = value_and_compressed_jacobian(jnp.sin, jnp.zeros(3))
        >>> value, B = fn(jnp.zeros(3))
        >>> B.shape, fn.coloring.num_colors
        ((1, 3), 1)
    """
    coloring = jacobian_coloring(
        f, *args, argnums=argnums, has_aux=has_aux, mode=mode, symmetric=symmetric
    )
    return _with_coloring(value_and_compressed_jacobian_from_coloring(
        f, coloring, has_aux=has_aux, holomorphic=holomorphic, allow_int=allow_int,
        chunk_size=chunk_size, sharding=sharding,
    ), coloring)


def compressed_hessian(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    mode: HessianMode | None = None,
    symmetric: bool = True,
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Detect sparsity, color, and return a function computing the compressed Hessian.

    Returns:
        A compiled function of `f`'s arguments returning `B` of shape
        `(num_colors, n)`, with the coloring as `.coloring`.

    Examples:
        >>> import jax.numpy as jnp
        >>> import asdex
        >>> from asdex import compressed_hessian
        >>> f = lambda x: jnp.sum(x[1:] * x[:-1])
        >>> B_fn = compressed_hessian(f, jnp.zeros(3))
        >>> asdex.decompress(B_fn(jnp.ones(3)), B_fn.coloring, "dense").tolist()
        [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    coloring = hessian_coloring(
        f, *args, argnums=argnums, has_aux=has_aux, mode=mode, symmetric=symmetric
    )
    return _with_coloring(compressed_hessian_from_coloring(
        f, coloring, has_aux=has_aux, holomorphic=holomorphic, allow_int=allow_int,
        chunk_size=chunk_size, sharding=sharding,
    ), coloring)


def value_and_compressed_hessian(
    f: Callable[..., Any],
    *args: Any,
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    mode: HessianMode | None = None,
    symmetric: bool = True,
    chunk_size: int | None = None,
    sharding: ShardingLike | None = None,
) -> Callable[..., Any]:
    """Like `compressed_hessian`, the function also returning `f`'s value.

    Returns:
        A compiled function returning `(value, B)`, or `((value, aux), B)` with
        `has_aux`, with the coloring as `.coloring`.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex import value_and_compressed_hessian
        >>> value, B = value_and_compressed_hessian(lambda x: (x**2).sum(), jnp.zeros(2))(
        ...     jnp.ones(2))
        >>> value.tolist(), B.shape
        (2.0, (1, 2))
    """
    coloring = hessian_coloring(
        f, *args, argnums=argnums, has_aux=has_aux, mode=mode, symmetric=symmetric
    )
    return _with_coloring(value_and_compressed_hessian_from_coloring(
        f, coloring, has_aux=has_aux, holomorphic=holomorphic, allow_int=allow_int,
        chunk_size=chunk_size, sharding=sharding,
    ), coloring)
