"""Argument specs such as `float32[1000]`: parse them and draw sample arrays."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np

from asdex._cli._errors import CLIError

_SPEC = re.compile(r"^\s*(?P<dtype>[A-Za-z][A-Za-z0-9_]*)\s*(?:\[(?P<dims>[^\]]*)\])?\s*$")
_FORMAT = "DTYPE[D1,D2,...], e.g. float32[1000], float64[10,20] or float32[] for a scalar"


def parse_spec(spec: str) -> jax.ShapeDtypeStruct:
    """Parse `DTYPE[D1,D2,...]` into a shape and dtype.

    Args:
        spec: The dtype name (any NumPy/JAX name: float32, float64, int32, bool, ...)
            and the dimensions in brackets; `float32[]` or `float32` is a scalar.

    Returns:
        The `jax.ShapeDtypeStruct` it names.

    Raises:
        CLIError: If the spec does not have that form or names no dtype.

    Examples:
        >>> from asdex._cli._shapes import parse_spec
        >>> spec = parse_spec("float32[10, 20]")
        >>> spec.shape, spec.dtype.name
        ((10, 20), 'float32')
    """
    match = _SPEC.match(spec)
    if match is None:
        raise CLIError(f"cannot parse the argument spec {spec!r}: expected {_FORMAT}.")
    try:
        dtype = np.dtype(jnp.dtype(match["dtype"]))
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "biufc":
        raise CLIError(f"unknown dtype {match['dtype']!r} in the argument spec {spec!r}: "
                       f"expected {_FORMAT}.")
    dims = [d.strip() for d in (match["dims"] or "").split(",")]
    if dims == [""]:
        dims = []
    if not all(d.isdigit() for d in dims):
        raise CLIError(f"cannot parse the dimensions of the argument spec {spec!r}: "
                       f"expected non-negative integers separated by commas, {_FORMAT}.")
    return jax.ShapeDtypeStruct(tuple(int(d) for d in dims), dtype)


def format_spec(spec: jax.ShapeDtypeStruct) -> str:
    """Write a shape and dtype back as `DTYPE[D1,D2,...]`.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from asdex._cli._shapes import format_spec
        >>> format_spec(jax.ShapeDtypeStruct((3, 4), jnp.float32))
        'float32[3,4]'
    """
    return f"{np.dtype(spec.dtype).name}[{','.join(str(d) for d in spec.shape)}]"


def sample(spec: jax.ShapeDtypeStruct, key: jax.Array) -> jax.Array:
    """A random array of that shape and dtype: floats uniform in [0.5, 1.5), else zeros.

    Values away from zero keep `log`, `sqrt` and divisions finite; integer and boolean
    arguments are often indices or flags, so they are zero.

    Examples:
        >>> import jax
        >>> from asdex._cli._shapes import parse_spec, sample
        >>> x = sample(parse_spec("float32[3]"), jax.random.key(0))
        >>> x.shape, bool(((x >= 0.5) & (x < 1.5)).all())
        ((3,), True)
    """
    if jnp.issubdtype(spec.dtype, jnp.floating) or jnp.issubdtype(spec.dtype, jnp.complexfloating):
        return jax.random.uniform(key, spec.shape, spec.dtype, 0.5, 1.5)
    return jnp.zeros(spec.shape, spec.dtype)
