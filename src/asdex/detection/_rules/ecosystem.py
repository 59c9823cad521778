"""Primitives of the Equinox ecosystem, keyed by name: asdex imports none of its packages.

* lineax's `linear_solve` (`x = A⁻¹ b`, emitted by `lineax.linear_solve`, so by diffrax's
  implicit solvers and optimistix's root finders). Its operands are the leaves of
  `(operator, state, vector, options, solver, throw)`, flattened by Equinox's filter
  primitives (`treedef` and `static` parameters). Its derivative, `x' = A⁻¹(b' - A'x)`,
  depends on the vector and on the operator's leaves through `A'x`; `A⁻¹` is a
  polynomial in `A` (Cayley-Hamilton), so it only spreads dependencies along paths of
  `A`'s graph: `P_x = closure(A) · (P_b | P_{A'x})`, with `A`'s pattern and `P_{A'x}`
  propagated through the operator's own `mv`. Least-squares solves (rectangular, or a
  solver that does not assume full rank) and operators that cannot be rebuilt are
  dense within the solve.
* Equinox's `vprim` (a filter primitive under `vmap`): a batched `linear_solve` is dense
  within each batch element, never across the batch; any other batched primitive is
  followed through its implementation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from asdex.detection._interpreter import OBSERVER, State, apply_rule, propagate
from asdex.detection._maps import Groups, Pattern, apply_map, empty_pattern, identity_pattern
from asdex.detection._registry import register_propagator
from asdex.detection._rule import Curvature, Equation, Evaluation, Operand, Output
from asdex.detection._rules.misc import everything_rule, implementation_propagator

_OPERATOR, _VECTOR = 0, 2
"""Positions of the operator and the vector in `linear_solve`'s arguments
`(operator, state, vector, options, solver, throw)`."""


# --- Equinox filter primitives ----------------------------------------------------------


def _dynamic_positions(params: dict[str, Any], num_operands: int) -> list[int] | None:
    """Leaf positions of the operands: Equinox marks them with a bare `object()`."""
    static = params.get("static")
    if static is None or "treedef" not in params:
        return None
    positions = [i for i, leaf in enumerate(static) if type(leaf) is object]
    return positions if len(positions) == num_operands else None


def _arguments(params: dict[str, Any], operands: Sequence[Any]) -> Any:
    """The primitive's arguments, rebuilt with `operands` as their array leaves."""
    leaves = list(params["static"])
    for position, operand in zip(_dynamic_positions(params, len(operands)), operands,
                                 strict=True):
        leaves[position] = operand
    return jax.tree_util.tree_unflatten(params["treedef"], leaves)


def _argument_operands(params: dict[str, Any], num_operands: int) -> list[list[int]]:
    """Operand indices of each top-level argument."""
    dynamic = np.zeros(len(params["static"]), bool)
    dynamic[_dynamic_positions(params, num_operands)] = True
    groups, leaf, operand = [], 0, 0
    for child in params["treedef"].children():
        count = int(dynamic[leaf:leaf + child.num_leaves].sum())
        groups.append(list(range(operand, operand + count)))
        leaf += child.num_leaves
        operand += count
    return groups


# --- the solve --------------------------------------------------------------------------


def _quiet(closed: Any, states: Sequence[State], n: int) -> list[State]:
    """First-order propagation, unobserved (its columns may not be the inputs)."""
    token = OBSERVER.set(None)
    try:
        return propagate(closed.jaxpr, closed.consts, list(states), n)
    finally:
        OBSERVER.reset(token)


_MATVECS: dict[int, tuple[Any, Any]] = {}
"""`_matvec` results by equation: loop bodies propagate the same equation many times."""

_MAX_MATVECS = 64


def _cached_matvec(eqn: Any) -> tuple[Any, list[Any]] | None:
    """`_matvec(eqn)`, traced once per equation (the entry keeps `eqn` alive)."""
    entry = _MATVECS.get(id(eqn))
    if entry is None or entry[0] is not eqn:
        if len(_MATVECS) >= _MAX_MATVECS:
            _MATVECS.pop(next(iter(_MATVECS)))
        entry = (eqn, _matvec(eqn))
        _MATVECS[id(eqn)] = entry
    return entry[1]


def _matvec(eqn: Any) -> tuple[Any, list[Any]] | None:
    """`A v` as a closed jaxpr of `(operands, v)`, and `v`'s leaves.

    `None` unless the solve is square and its solver assumes `A` nonsingular.
    """
    avals = [jax.ShapeDtypeStruct(v.aval.shape, v.aval.dtype) for v in eqn.invars]
    found: dict[str, Any] = {}

    def probe(*operands: Any) -> tuple:
        operator, *_, solver, _ = _arguments(eqn.params, operands)
        found["square"] = operator.in_size() == operator.out_size()
        found["full_rank"] = bool(solver.assume_full_rank())
        found["in"] = operator.in_structure()
        return ()

    try:
        jax.make_jaxpr(probe)(*avals)
        if not (found["square"] and found["full_rank"]):
            return None
        leaves, tree = jax.tree_util.tree_flatten(found["in"])

        def matvec(operands: list[Any], v: list[Any]) -> list[Any]:
            operator = _arguments(eqn.params, operands)[_OPERATOR]
            return jax.tree_util.tree_leaves(operator.mv(jax.tree_util.tree_unflatten(tree,
                                                                                       v)))

        closed = jax.make_jaxpr(matvec)(avals, leaves)
    except Exception:  # an operator or solver that is not lineax's: dense within the solve
        return None
    return closed, leaves


def reachable(graph: sp.csr_array, rows: Pattern) -> Pattern:
    """Rows of `(I + G + G² + ...) · R`.

    Row `i` gathers the rows `R[j]` of every `j` reachable from `i` in the directed
    graph `G`. The strongly connected components share one row; the rest is a pattern fixed point
    on the (acyclic) condensed graph, which ends after at most its longest path.

    Examples:
        >>> import numpy as np
        >>> import scipy.sparse as sp
        >>> from asdex.detection._rules.ecosystem import reachable
        >>> chain = sp.csr_array(np.eye(3, k=1, dtype=bool))  # 0 -> 1 -> 2
        >>> reachable(chain, sp.csr_array(np.eye(3, dtype=bool))).toarray().astype(int)
        array([[1, 1, 1],
               [0, 1, 1],
               [0, 0, 1]])
    """
    size = graph.shape[0]
    count, labels = csgraph.connected_components(sp.csr_matrix(graph), directed=True,
                                                 connection="strong")
    members = sp.csr_array((np.ones(size, bool), (labels, np.arange(size))),
                           shape=(count, size))
    condensed = sp.csr_array((members @ graph @ members.T).tocsr(), dtype=bool)
    reach = apply_map(Groups(np.arange(count), labels, count), rows, count)
    fresh = reach
    while fresh.nnz:
        step = sp.csr_array((condensed @ fresh).tocsr(), dtype=bool)
        new = sp.csr_array(step.astype(np.int8) - step.multiply(reach).astype(np.int8) > 0)
        reach = sp.csr_array(reach + new, dtype=bool)
        fresh = new
    return apply_map(Groups(labels, np.arange(count), count), reach, size)


def _stack(states: Sequence[State], n: int) -> Pattern:
    if not states:
        return empty_pattern(0, n)
    return sp.csr_array(sp.vstack([s.pattern for s in states], format="csr"), dtype=bool)


def _everything(eqn: Any, states: list[State], n: int) -> list[State]:
    """Every result element depends on every operand element; values never computed."""
    return apply_rule(eqn, everything_rule, states, n, evaluation=Evaluation.NEVER)[2]


def linear_solve_propagator(eqn: Any, states: list[State], n: int) -> list[State]:
    """`x = A⁻¹ b` along `A`'s graph; dense within the solve when that is not available."""
    found = _cached_matvec(eqn) if _dynamic_positions(eqn.params, len(states)) else None
    out_avals = [v.aval for v in eqn.outvars]
    if found is None:
        return _everything(eqn, states, n)
    closed, in_leaves = found
    sizes = [math.prod(leaf.shape) for leaf in in_leaves]
    solution_avals = out_avals[:len(in_leaves)]
    if [tuple(a.shape) for a in solution_avals] != [tuple(leaf.shape) for leaf in in_leaves]:
        return _everything(eqn, states, n)
    m = sum(sizes)
    offsets = np.cumsum([0, *sizes])
    groups = _argument_operands(eqn.params, len(states))
    followed = set(groups[_OPERATOR] + groups[_VECTOR])
    if any(s.pattern.nnz for k, s in enumerate(states) if k not in followed):
        # lineax stops the gradients of the solver's state, options and solver
        return _everything(eqn, states, n)

    # A's graph: mv output element i depends on v element j
    quiet = [State(empty_pattern(s.size, m), s.operand) for s in states]
    seeds = [State(identity_pattern(int(o), size, m), Operand(leaf.shape, leaf.dtype))
             for o, size, leaf in zip(offsets[:-1], sizes, in_leaves, strict=True)]
    graph = _stack(_quiet(closed, quiet + seeds, m), m)

    # b' - A'x: the vector's patterns and the operator's leaves' at the unknown solution
    operator = [s if k in groups[_OPERATOR] else State(empty_pattern(s.size, n), s.operand)
                for k, s in enumerate(states)]
    unknown_x = [State(empty_pattern(size, n), Operand(leaf.shape, leaf.dtype))
                 for size, leaf in zip(sizes, in_leaves, strict=True)]
    from_operator = _stack(_quiet(closed, operator + unknown_x, n), n)
    from_vector = _stack([states[k] for k in groups[_VECTOR]], n)
    if from_vector.shape != from_operator.shape:
        return _everything(eqn, states, n)
    rows = sp.csr_array(from_vector + from_operator, dtype=bool)
    solution = reachable(graph, rows)

    results = []
    everything = _everything(eqn, states, n)
    for k, aval in enumerate(out_avals):
        if k < len(in_leaves):
            pattern = sp.csr_array(solution[offsets[k]:offsets[k + 1]])
            results.append(State(pattern, Operand(tuple(aval.shape), aval.dtype)))
        else:  # the result code and statistics
            results.append(everything[k])
    return results


# --- vprim ------------------------------------------------------------------------------


def batched_rule(eqn: Equation) -> list[Output]:
    """Dense within each batch element: results are batched along their leading axis.

    A result element depends on its batch element of each batched operand, and on every
    element of an unbatched one.
    """
    size = eqn.params["__axis_size"]
    maps = []
    for k, (operand, axis) in enumerate(zip(eqn.operands, eqn.params["__batch_axes"],
                                            strict=True)):
        if not operand.size:
            continue
        if axis is None:
            maps.append((k, None))
            continue
        batch = np.indices(operand.shape)[axis].reshape(-1)
        maps.append((k, batch))
    outputs = []
    for out_size in eqn.out_sizes:
        per_output = np.repeat(np.arange(size), out_size // max(size, 1))
        out_maps = tuple(
            (k, Groups(per_output, batch, size) if batch is not None
             else Groups(np.zeros(out_size, np.int64), np.zeros(eqn.operands[k].size,
                                                                 np.int64), 1))
            for k, batch in maps
        )
        outputs.append(Output(maps=out_maps))
    return outputs


def vprim_propagator(eqn: Any, states: list[State], n: int) -> list[State]:
    """A batched filter primitive: `linear_solve` per batch element, others implemented."""
    if eqn.params["prim"].name == "linear_solve":
        return apply_rule(eqn, batched_rule, states, n, evaluation=Evaluation.NEVER)[2]
    return implementation_propagator(eqn, states, n)


register_propagator("linear_solve", linear_solve_propagator, curvature=Curvature.NONLINEAR)
register_propagator("vprim", vprim_propagator, curvature=Curvature.NONLINEAR)
