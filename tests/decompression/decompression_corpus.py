"""Functions with known derivatives, and patterns built from JAX's dense derivatives."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import sparse
from jax.flatten_util import ravel_pytree

from asdex import SparsityPattern


def avals_of(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.result_type(a)), arg)
        for arg in args
    )


def _flat_fn(f, args, argnums, has_aux):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    x, unravel = ravel_pytree(tuple(args[i] for i in nums))

    def flat(v):
        full = list(args)
        for i, a in zip(nums, unravel(v), strict=True):
            full[i] = a
        out = f(*full)
        return ravel_pytree(out[0] if has_aux else out)[0]

    return flat, x


def jacobian_pattern(f, args, argnums=0, has_aux=False, holomorphic=False) -> SparsityPattern:
    """The pattern of nonzeros of JAX's dense Jacobian, at two random points."""
    flat, x = _flat_fn(f, args, argnums, has_aux)
    rows, cols = np.nonzero(_nonzeros(jax.jacfwd(flat, holomorphic=holomorphic), x))
    nums = argnums if isinstance(argnums, int) else tuple(argnums)
    m = int(np.size(flat(x)))
    return SparsityPattern.from_coo(rows, cols, (m, x.size), input_avals=avals_of(args),
                                    argnums=nums)


def hessian_pattern(f, args, argnums=0, has_aux=False, holomorphic=False) -> SparsityPattern:
    flat, x = _flat_fn(f, args, argnums, has_aux)
    scalar = lambda v: flat(v).reshape(())  # noqa: E731
    rows, cols = np.nonzero(_nonzeros(jax.hessian(scalar, holomorphic=holomorphic), x))
    nums = argnums if isinstance(argnums, int) else tuple(argnums)
    return SparsityPattern.from_coo(rows, cols, (x.size, x.size), input_avals=avals_of(args),
                                    argnums=nums)


def _nonzeros(derivative: Callable, x: jax.Array) -> np.ndarray:
    derivative = jax.jit(derivative)
    found = False
    for seed in (0, 1):
        noise = jax.random.normal(jax.random.key(seed), x.shape)
        point = x + noise.astype(x.dtype)
        found = found | (np.asarray(derivative(point)) != 0)
    return found


def densify(tree: Any) -> Any:
    return jax.tree_util.tree_map(
        lambda leaf: leaf.todense() if isinstance(leaf, sparse.BCOO) else leaf,
        tree,
        is_leaf=lambda leaf: isinstance(leaf, sparse.BCOO),
    )


def run_jitted(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call `fn` under one `jax.jit` (fast in tests: no op-by-op compilation), densified."""
    return jax.jit(lambda *a: densify(fn(*a, **kwargs)))(*args)


def assert_trees_close(actual: Any, expected: Any, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    actual = densify(actual)
    assert jax.tree_util.tree_structure(actual) == jax.tree_util.tree_structure(expected)
    for a, e in zip(jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected),
                    strict=True):
        assert a.shape == e.shape, (a.shape, e.shape)
        assert a.dtype == e.dtype, (a.dtype, e.dtype)
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=atol)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    f: Callable
    args: tuple
    argnums: int | tuple[int, ...] = 0
    has_aux: bool = False
    holomorphic: bool = False
    kwargs: dict = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        return self.name


def _stencil(x):
    return jnp.concatenate([x[1:] * x[:-1], jnp.sin(x[:2]), x[-1:] ** 2])


def _pytree_in_out(p):
    a, b = p["a"], p["b"]
    return (jnp.tanh(a[:, 0] * b[:2].sum()), {"z": a * jnp.exp(b[3]), "w": b[1] ** 3})


def _two_args(x, y):
    return x * jnp.roll(y, 1) + jnp.cos(x)


def _with_aux(x):
    return jnp.diff(x) ** 2, {"norm": jnp.sum(x**2)}


def _holomorphic(z):
    return z**2 * jnp.roll(z, 1) + jnp.exp(z)


def _kwargs(x, *, scale):
    return scale * jnp.sin(x) * x[::-1]


def _matrix_in(x):
    return (x @ x.T)[0] + x[:, 1]


JACOBIAN_CASES = [
    Case("stencil", _stencil, (jnp.arange(1.0, 7.0),)),
    Case("pytree", _pytree_in_out,
         ({"a": jnp.arange(6.0).reshape(3, 2) / 7, "b": jnp.linspace(0.1, 1.0, 4)},)),
    Case("two_args", _two_args, (jnp.arange(5.0), jnp.linspace(1, 2, 5)), argnums=(0, 1)),
    Case("second_arg", _two_args, (jnp.arange(5.0), jnp.linspace(1, 2, 5)), argnums=1),
    Case("argnums_tuple_single", _two_args, (jnp.arange(5.0), jnp.ones(5)), argnums=(1,)),
    Case("has_aux", _with_aux, (jnp.arange(5.0),), has_aux=True),
    Case("holomorphic", _holomorphic, (jnp.arange(4.0) + 1j * jnp.ones(4),), holomorphic=True),
    Case("kwargs", _kwargs, (jnp.arange(1.0, 6.0),), kwargs={"scale": 3.0}),
    Case("matrix", _matrix_in, (jnp.arange(6.0).reshape(3, 2),)),
]


def _rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def _hess_pytree(p):
    return jnp.sum(p["a"] ** 2 * jnp.roll(p["a"], 1)) + jnp.sum(jnp.sin(p["b"])) * p["a"][0, 0]


def _hess_two(x, y):
    return jnp.sum(x**2 * y) + jnp.sum(jnp.exp(y) * x[::-1])


def _hess_aux(x):
    return jnp.sum(jnp.cos(x) * jnp.roll(x, 2)), x * 2


def _hess_complex(z):
    return jnp.sum(z**3 * jnp.roll(z, 1))


def _hess_shape1(x):
    return jnp.sum(x**4).reshape(1)


HESSIAN_CASES = [
    Case("rosenbrock", _rosenbrock, (jnp.linspace(-1.0, 1.0, 7),)),
    Case("pytree", _hess_pytree,
         ({"a": jnp.arange(6.0).reshape(2, 3) / 5, "b": jnp.linspace(0, 1, 3)},)),
    Case("two_args", _hess_two, (jnp.arange(4.0), jnp.linspace(0, 1, 4)), argnums=(0, 1)),
    Case("second_arg", _hess_two, (jnp.arange(4.0), jnp.linspace(0, 1, 4)), argnums=1),
    Case("has_aux", _hess_aux, (jnp.arange(6.0),), has_aux=True),
    Case("holomorphic", _hess_complex, (jnp.arange(5.0) + 0.5j,), holomorphic=True),
]
