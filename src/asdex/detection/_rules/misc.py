"""Callbacks, identities of the compiler and runtime, and the primitives Equinox emits.

* `pure_callback` / `io_callback` run Python that detection cannot see: every float
  result depends on every operand element. They are never evaluated at detection time
  (`Evaluation.NEVER`), nor is `platform_index`.
* `debug_callback` / `debug_print` have no results.
* `optimization_barrier`, `sharding_constraint`, `device_put`, `name`
  (`checkpoint_name`) and Equinox's `nonbatchable`, `nondifferentiable_backward`,
  `nontraceable` and `select_if_vmap` (unbatched: its first case) are identities.
* Equinox's `unvmap_any/all/max` reduce to integer or boolean scalars (zero derivative);
  its `maybe_set` (a buffer write in its loops) is followed through its implementation.
* `platform_index` is the index of the platform the program will run on: bounded, but
  not known at detection time.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import numpy as np

from asdex.detection._interpreter import State, propagate
from asdex.detection._maps import Groups, Identity
from asdex.detection._registry import register_propagator, register_rule
from asdex.detection._rule import Curvature, Equation, Evaluation, Output


def everything_rule(eqn: Equation) -> list[Output]:
    """Every result element depends on every operand element."""
    return [
        Output(maps=tuple(
            (k, Groups(np.zeros(size, np.int64), np.zeros(operand.size, np.int64), 1))
            for k, operand in enumerate(eqn.operands) if operand.size
        ))
        for size in eqn.out_sizes
    ]


def identities_rule(eqn: Equation) -> list[Output]:
    """Result `k` is operand `k`."""
    return [Output(maps=((k, Identity()),)) for k in range(len(eqn.out_shapes))]


def first_case_rule(eqn: Equation) -> list[Output]:
    """`select_if_vmap(pred, x, y)`: `x` unless vmapped (when JAX rewrites it to a select)."""
    return [Output(maps=((1, Identity()),))]


def no_results_rule(eqn: Equation) -> list[Output]:
    """Effects with no results (printing, debugging callbacks)."""
    return []


def _zero_rule(eqn: Equation) -> list[Output]:
    return [Output() for _ in eqn.out_shapes]


def unvmap_max_rule(eqn: Equation) -> list[Output]:
    """The maximum of an integer array: bounded by its operand's bounds."""
    bounds = eqn.operands[0].bounds()
    if bounds is None or eqn.operands[0].size == 0:
        return [Output()]
    return [Output(lower=np.max(bounds[0]), upper=np.max(bounds[1]))]


def platform_index_rule(eqn: Equation) -> list[Output]:
    """One of the platforms listed in the parameters; which one is decided at lowering."""
    last = len(eqn.params["platforms"]) - 1
    return [Output(lower=np.zeros((), np.int64), upper=np.full((), last, np.int64))]


def _implementation(primitive: Any, params: tuple, avals: tuple) -> Any:
    impl = functools.partial(primitive.impl, **dict(params))
    return jax.make_jaxpr(impl)(*[jax.ShapeDtypeStruct(s, d) for s, d in avals])


_cached_implementation = functools.lru_cache(maxsize=256)(_implementation)


def implementation_propagator(eqn: Any, states: list[State], n: int) -> list[State]:
    """Propagate through the jaxpr of the primitive's own implementation.

    Sound for primitives whose JVP is the primitive applied to the tangents (linear
    data movement such as Equinox's `maybe_set`).
    """
    key = (eqn.primitive, tuple(sorted(eqn.params.items())),
           tuple((tuple(v.aval.shape), v.aval.dtype) for v in eqn.invars))
    try:
        hash(key)
    except TypeError:
        closed = _implementation(*key)
    else:
        closed = _cached_implementation(*key)
    return propagate(closed.jaxpr, closed.consts, states, n)


for _name in ("pure_callback", "io_callback"):
    register_rule(_name, everything_rule, curvature=Curvature.NONLINEAR,
                  evaluation=Evaluation.NEVER)
for _name in ("debug_callback", "debug_print"):
    register_rule(_name, no_results_rule, curvature=Curvature.ZERO)
for _name in ("optimization_barrier", "sharding_constraint", "device_put", "name",
              "nonbatchable", "nondifferentiable_backward", "nontraceable"):
    register_rule(_name, identities_rule, curvature=Curvature.ZERO, evaluation=Evaluation.MOVED)
for _name in ("unvmap_any", "unvmap_all"):
    register_rule(_name, _zero_rule, curvature=Curvature.ZERO)
register_rule("unvmap_max", unvmap_max_rule, curvature=Curvature.ZERO)
register_rule("select_if_vmap", first_case_rule, curvature=Curvature.ZERO)
register_propagator("maybe_set", implementation_propagator, curvature=Curvature.ZERO)
register_rule("platform_index", platform_index_rule, curvature=Curvature.ZERO,
              evaluation=Evaluation.NEVER)
