"""The carry of a loop after any number of steps, computed in a bounded number of rounds.

Two lattices, both of finite height, so that the rounds always end:

* **Knowledge of values** (`settle`): a known value, the same value with untrusted
  zeros, integer bounds, nothing. Each round runs the body once and weakens what it does
  not keep: for the first `JOIN_ROUNDS` rounds to the hull of before and after (a
  clipped counter keeps its bounds), then straight to unknown. A value that never
  settles (a float halved at every step) is forgotten, never iterated on.
* **Patterns** (`fixed_point`): they only grow, within `carry.size x n` entries. The
  body is linear in the patterns, so each round propagates only the dependencies found
  in the last one. After `BODY_ROUNDS` such rounds through the body (at once when the
  carry has no more elements than the patterns have columns), the body's
  carry-to-carry dependencies are taken once as a sparse matrix, and the remaining
  rounds are sparse products: each new dependency is propagated once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from asdex.detection._interpreter import OBSERVER, State
from asdex.detection._maps import Pattern, empty_pattern, identity_pattern, union
from asdex.detection._rule import Operand

JOIN_ROUNDS = 3
"""Rounds in which changing integer knowledge of the carry is joined (bounds hull)
before it is forgotten."""

BODY_ROUNDS = 4
"""Pattern rounds through the body before switching to the carry's dependency matrix."""

Body = Callable[[list[State], bool], list[State]]
"""`body(carry, external)`: one loop step, returning the new carry first, on patterns of
as many columns as the carry's. With `external=False` the loop's other inputs (consts,
xs) count as constants."""


# --- knowledge of values ------------------------------------------------------------------


def unknown(operand: Operand) -> Operand:
    """The operand with nothing known of its value."""
    return Operand(operand.shape, operand.dtype)


def patternless(state: State, n: int) -> State:
    """The state's knowledge of values, with no dependencies on `n` columns."""
    return State(empty_pattern(state.size, n), state.operand)


def template(operands: Sequence[Operand]) -> Operand:
    """One whose value's zeros are not to be trusted (`approximate`), if any."""
    return next((o for o in operands if o.approximate), operands[0])


def join_operands(operands: Sequence[Operand]) -> Operand:
    """What is known of a value that may be any one of `operands`.

    Their common value, or else the hull of their integer bounds.
    """
    first = operands[0]
    values = [o.value for o in operands]
    if all(v is not None for v in values) and all(np.array_equal(values[0], v) for v in values):
        return template(operands)
    bounds = [o.bounds() for o in operands]
    if all(b is not None for b in bounds):
        lower = np.min([np.broadcast_to(b[0], first.shape) for b in bounds], axis=0)
        upper = np.max([np.broadcast_to(b[1], first.shape) for b in bounds], axis=0)
        return Operand(first.shape, first.dtype, lower=lower, upper=upper)
    return unknown(first)


def implied(new: Operand, old: Operand) -> bool:
    """Whether whatever `old` says of a value holds of `new`."""
    if old.value is not None:
        return (new.value is not None and (old.approximate or not new.approximate)
                and bool(np.array_equal(new.value, old.value)))
    old_bounds = old.bounds()
    if old_bounds is None:
        return True
    new_bounds = new.bounds()
    return new_bounds is not None and bool(
        np.all(new_bounds[0] >= old_bounds[0]) and np.all(new_bounds[1] <= old_bounds[1]))


def weaken(old: Operand, new: Operand, join: bool) -> Operand:
    """`old` when `new` implies it, else something strictly weaker that both imply.

    The same value with untrusted zeros, or (when `join`) the hull of integer bounds,
    or else nothing known.
    """
    if implied(new, old):
        return old
    if old.value is not None and new.value is not None and np.array_equal(old.value,
                                                                            new.value):
        return dataclasses.replace(old, approximate=True)
    if join:
        joined = join_operands([old, new])
        if joined.lower is not None:
            return joined
    return unknown(old)


def settle(body: Body, carry: list[State]) -> tuple[list[State], list[State]]:
    """Weaken the carry's knowledge until the body keeps it.

    Returns:
        The settled carry (its patterns unchanged) and the body's result on it.
    """
    num_carry = len(carry)
    carry = list(carry)
    rounds = 0
    while True:
        out = body(carry, True)
        changed = False
        for k, (old, new) in enumerate(zip(carry, out[:num_carry], strict=True)):
            operand = weaken(old.operand, new.operand, join=rounds < JOIN_ROUNDS)
            if operand is not old.operand:
                carry[k] = State(old.pattern, operand)
                changed = True
        if not changed:
            return carry, out
        rounds += 1


# --- patterns -----------------------------------------------------------------------------


def _difference(a: Pattern, b: Pattern) -> Pattern:
    """Entries of `a` that are not in `b`."""
    if a.nnz == 0 or b.nnz == 0:
        return a
    kept = a.astype(np.int8) - a.multiply(b).astype(np.int8)
    kept.eliminate_zeros()
    return sp.csr_array(kept, dtype=bool)


def _carry_matrix(body: Body, carry: list[State]) -> sp.csr_array:
    """`D[i, j]`: carry element `i` after one step depends on carry element `j` before.

    Propagated unobserved: its columns are carry elements, not inputs.
    """
    sizes = [c.size for c in carry]
    m = sum(sizes)
    offsets = np.cumsum([0, *sizes])[:-1]
    seeded = [State(identity_pattern(int(o), c.size, m), c.operand)
              for o, c in zip(offsets, carry, strict=True)]
    token = OBSERVER.set(None)
    try:
        out = body(seeded, False)[:len(carry)]
    finally:
        OBSERVER.reset(token)
    return sp.csr_array(sp.vstack([o.pattern for o in out], format="csr"), dtype=bool)


def fixed_point(body: Body, carry: list[State], n: int) -> list[State]:
    """The carry after any number of steps: the least fixed point of `carry | body(carry)`.

    Args:
        body: One loop step.
        carry: The carry before the first step.
        n: Number of columns of every pattern.

    Returns:
        The carry's states: what is known at every step, and every dependency it may have.

    Examples:
        >>> import jax
        >>> import jax.numpy as jnp
        >>> from asdex.detection import jacobian_sparsity
        >>> def halve_until_small(x):
        ...     def body(c):
        ...         return 0.5 * c[0], jnp.array(True)
        ...     return jax.lax.while_loop(lambda c: (c[0].sum() > 1e-3) & c[1], body,
        ...                               (x, x[0] > 0))[0]
        >>> jacobian_sparsity(halve_until_small, jnp.ones(2)).todense().astype(int)
        array([[1, 0],
               [0, 1]])
    """
    num_carry = len(carry)
    if not num_carry:
        return []
    carry, out = settle(body, carry)
    patterns = [c.pattern for c in carry]
    fresh = [_difference(o.pattern, p) for o, p in zip(out[:num_carry], patterns, strict=True)]
    rounds = 0
    dependency = None
    while any(f.nnz for f in fresh):
        patterns = [union([p, f], c.size, n) for p, f, c in zip(patterns, fresh, carry,
                                                                strict=True)]
        if dependency is None and rounds < BODY_ROUNDS and sum(c.size for c in carry) > n:
            step = [State(f, c.operand) for f, c in zip(fresh, carry, strict=True)]
            reached = [s.pattern for s in body(step, False)[:num_carry]]
        else:
            if dependency is None:
                dependency = _carry_matrix(body, carry)
            stacked = sp.vstack(fresh, format="csr")
            product = sp.csr_array((dependency @ stacked).tocsr(), dtype=bool)
            offsets = np.cumsum([0, *(c.size for c in carry)])
            reached = [sp.csr_array(product[offsets[k]:offsets[k + 1]])
                       for k in range(num_carry)]
        fresh = [_difference(r, p) for r, p in zip(reached, patterns, strict=True)]
        rounds += 1
    return [State(p, c.operand) for p, c in zip(patterns, carry, strict=True)]
