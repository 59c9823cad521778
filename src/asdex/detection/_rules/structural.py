"""Data movement: each result element comes from at most one operand element.

The generic rule evaluates the primitive itself on arrays of element ids (padding
shows up as -1), which is exact for the whole family. The most common primitives
also have NumPy fast paths that compute the same ids without a JAX dispatch. Known
values move along the same maps (`Evaluation.MOVED`), and their zeros stay exact.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np

from asdex.detection import _jax
from asdex.detection._maps import Broadcast, Identity
from asdex.detection._registry import register_rule
from asdex.detection._rule import Curvature, Equation, Evaluation, Output, Rule

IdFunction = Callable[[Equation, Sequence[np.ndarray]], np.ndarray]
"""Computes the result's id array from the operands' id arrays (NumPy fast path)."""


def operand_ids(eqn: Equation, moved: Sequence[int]) -> list[np.ndarray]:
    """Id arrays of the `moved` operands, numbered consecutively across them."""
    ids, offset = [], 0
    dtype = np.int64 if sum(eqn.operands[k].size for k in moved) >= 2**31 else np.int32
    for k in moved:
        operand = eqn.operands[k]
        ids.append(np.arange(offset, offset + operand.size, dtype=dtype).reshape(operand.shape))
        offset += operand.size
    return ids


def evaluate_on_ids(eqn: Equation, moved: Sequence[int], **param_updates) -> list[np.ndarray]:
    """Evaluate the primitive with JAX on id arrays in place of the `moved` operands.

    Operands not in `moved` must have known values (e.g. indices); padding and fill
    values should be passed as `-1` through `param_updates` or as a moved operand.
    """
    ids = operand_ids(eqn, moved)
    args = []
    for k, operand in enumerate(eqn.operands):
        if k in moved:
            args.append(ids[list(moved).index(k)])
        elif operand.value is not None:
            args.append(operand.value)
        else:
            raise ValueError(f"Operand {k} of '{eqn.primitive}' must be known to move ids.")
    params = {**eqn.params, **param_updates}
    with jax.ensure_compile_time_eval():
        result = _jax.bind(eqn.primitive, params, args)
    results = result if eqn.primitive.multiple_results else [result]
    return [np.asarray(r).reshape(-1).astype(np.int64) for r in results]


def split_sources(eqn: Equation, moved: Sequence[int], result_ids: np.ndarray) -> Output:
    """Turn global ids into one `Broadcast` (or `Identity`) map per moved operand."""
    maps = []
    offset = 0
    for k in moved:
        size = eqn.operands[k].size
        local = result_ids - offset
        inside = (result_ids >= offset) & (result_ids < offset + size)
        offset += size
        if not inside.any():
            continue
        source = np.where(inside, local, -1)
        if source.size == size and np.array_equal(source, np.arange(size)):
            maps.append((k, Identity()))
        else:
            maps.append((k, Broadcast(source)))
    return Output(maps=tuple(maps))


def movement_rule(moved: Sequence[int] | None = None, fast: IdFunction | None = None):
    """A rule for a data-movement primitive.

    Args:
        moved: The operands whose elements move (default: all).
        fast: Optional NumPy function computing the result ids from operand ids.
    """

    def rule(eqn: Equation) -> list[Output]:
        which = tuple(range(len(eqn.operands))) if moved is None else tuple(moved)
        if fast is not None:
            result = [np.asarray(fast(eqn, operand_ids(eqn, which))).reshape(-1)]
        else:
            result = evaluate_on_ids(eqn, which)
        return [split_sources(eqn, which, r.astype(np.int64)) for r in result]

    return rule


def identity_rule(eqn: Equation) -> list[Output]:
    """The result is the operand, reshaped."""
    return [Output(maps=((0, Identity()),))]


def reshape_rule(eqn: Equation) -> list[Output]:
    """`reshape`: the identity, unless `dimensions` transposes the operand first."""
    if eqn.params.get("dimensions") is None:
        return identity_rule(eqn)
    return _reshape_with_dimensions(eqn)


def _reshape(eqn: Equation, ids: Sequence[np.ndarray]) -> np.ndarray:
    return ids[0].transpose(eqn.params["dimensions"]).reshape(eqn.out_shapes[0])


_reshape_with_dimensions = movement_rule(fast=_reshape)


def _transpose(eqn: Equation, ids: Sequence[np.ndarray]) -> np.ndarray:
    return ids[0].transpose(eqn.params["permutation"])


def _broadcast_in_dim(eqn: Equation, ids: Sequence[np.ndarray]) -> np.ndarray:
    shape = eqn.out_shapes[0]
    dims = eqn.params["broadcast_dimensions"]
    expanded = [1] * len(shape)
    for operand_dim, out_dim in enumerate(dims):
        expanded[out_dim] = ids[0].shape[operand_dim]
    return np.broadcast_to(ids[0].reshape(expanded), shape)


def _slice(eqn: Equation, ids: Sequence[np.ndarray]) -> np.ndarray:
    strides = eqn.params["strides"] or (1,) * ids[0].ndim
    index = tuple(
        slice(a, b, s)
        for a, b, s in zip(eqn.params["start_indices"], eqn.params["limit_indices"], strides,
                           strict=True)
    )
    return ids[0][index]


def _concatenate(eqn: Equation, ids: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate(ids, axis=eqn.params["dimension"])


def _rev(eqn: Equation, ids: Sequence[np.ndarray]) -> np.ndarray:
    return np.flip(ids[0], axis=tuple(eqn.params["dimensions"]))


def _pad(eqn: Equation, ids: Sequence[np.ndarray]) -> np.ndarray:
    config = eqn.params["padding_config"]
    if any(interior != 0 or lo < 0 or hi < 0 for lo, hi, interior in config):
        return evaluate_on_ids(eqn, (0, 1))[0]
    return np.pad(ids[0], [(lo, hi) for lo, hi, _ in config], constant_values=ids[1].item())


def _stack(eqn: Equation, ids: Sequence[np.ndarray]) -> np.ndarray:
    return np.stack(ids, axis=eqn.params["axis"])


def _tile(eqn: Equation, ids: Sequence[np.ndarray]) -> np.ndarray:
    return np.tile(ids[0], eqn.params["reps"])


def _unstack(eqn: Equation, ids: Sequence[np.ndarray]) -> list[np.ndarray]:
    return list(np.moveaxis(ids[0], eqn.params["axis"], 0))


def _split(eqn: Equation, ids: Sequence[np.ndarray]) -> list[np.ndarray]:
    axis = eqn.params["axis"]
    cuts = np.cumsum(eqn.params["sizes"])[:-1]
    return np.split(ids[0], cuts, axis=axis)


def pieces_rule(pieces: Callable[[Equation, Sequence[np.ndarray]], list[np.ndarray]]):
    """A rule for primitives with several results, each a piece of the operand."""

    def rule(eqn: Equation) -> list[Output]:
        found = pieces(eqn, operand_ids(eqn, (0,)))
        return [split_sources(eqn, (0,), p.reshape(-1).astype(np.int64)) for p in found]

    return rule


def _register(name: str, rule: Rule) -> None:
    register_rule(name, rule, curvature=Curvature.ZERO, evaluation=Evaluation.MOVED,
                  trusts_zeros=True)


for _name in ("squeeze", "expand_dims", "copy", "copy_p"):
    _register(_name, identity_rule)
_register("reshape", reshape_rule)
_register("transpose", movement_rule(fast=_transpose))
_register("broadcast_in_dim", movement_rule(fast=_broadcast_in_dim))
_register("slice", movement_rule(fast=_slice))
_register("concatenate", movement_rule(fast=_concatenate))
_register("rev", movement_rule(fast=_rev))
_register("pad", movement_rule(fast=_pad))
_register("stack", movement_rule(fast=_stack))
_register("tile", movement_rule(fast=_tile))
_register("split", pieces_rule(_split))
_register("unstack", pieces_rule(_unstack))
