"""The floor of asdex_opt: one sparse problem under every front end.

Every front end maps its calling convention onto one flat problem, a `FlatFunction`
``(y_flat, dynamic) -> (out, aux)``:

* Optimistix: ``fn(y, args)`` as the solver receives it;
* Optax: ``value_fn(params, **extra_args)``, closure-converted;
* Equinox: ``fn(pytree, *args)``, the leaves selected by ``filter_spec`` as ``y``;
* the Lineax builders: ``fn(x, args)``.

``y`` becomes one flat vector in ``jax.flatten_util.ravel_pytree`` order; the other
array leaves of ``(fn, args)`` form ``dynamic``, passed to every evaluation (so they may
be traced); the rest is static.

**Constants.** Sparsity is detected and colored once per problem, and detection reads
the values of the ``dynamic`` leaves that are fixed for the problem and known at that
time (concrete, not traced):

* every array ``fn`` closes over (its closure-converted constants, or the array leaves
  of a pytree ``fn``), whatever its dtype;
* the integer and boolean array leaves of ``args``: index arrays, masks.

So ``y[idx]`` with a concrete index array gets the exact sparse pattern, not a dense
one. The floating-point leaves of ``args`` are data that may change between
evaluations: detection treats them as unknowns, and the pattern holds for all their
values. Traced leaves (e.g. ``args`` inside ``optimistix.minimise``, which is jitted)
are unknowns too: an integer one draws a warning naming the fixes. Inside
``optimistix.minimise`` with its default ``ImplicitAdjoint`` even the arrays ``fn``
closes over are traced (they pass through a custom JVP); detection then reads them
from the closure-converted ``fn`` as the calling frames hold it, concrete
(`_concrete_twin`). A dense pattern detected while closed-over float arrays were
traced, and no such twin was found, draws a warning. Every front end accepts a
precomputed ``asdex.ColoredPattern`` (``coloring=``) instead of detecting.

**Evaluators.** `HessianEvaluator` and `JacobianEvaluator` turn the coloring into
functions of ``(y_flat, dynamic)`` that return sparse operators with one
static `SparseStructure`, taken from the ``asdex.SparsityPattern`` as it is (sorted,
unique); the Hessian's and ``JᵀJ``'s structures also store the whole diagonal, so that
shifts ``A + τI`` keep them.
"""

import collections
import dataclasses
import hashlib
import inspect
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any

import equinox as eqx
import jax
import jax.extend
import jax.numpy as jnp
import lineax as lx
import numpy as np
from jax.experimental import sparse as jsparse
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PyTree

import asdex
from asdex_opt._lineax._normal import NormalProduct
from asdex_opt._lineax._operator import SparseMatrixLinearOperator
from asdex_opt._lineax._structure import SparseStructure
from asdex_opt._lineax._take import take
from asdex_opt._warnings import at_user, warn_at_user

__all__ = [
    "ColoringCache",
    "DenseJacobianEvaluator",
    "WithConstants",
    "constant_mask",
    "FlatFunction",
    "HessianEvaluator",
    "JacobianEvaluation",
    "JacobianEvaluator",
    "detect_hessian",
    "detect_jacobian",
    "dynamic_part",
    "flatten",
    "no_sparsity_gain",
    "problem_key",
    "shape_struct",
    "with_concrete_twin",
]


def shape_struct(tree: PyTree) -> PyTree:
    """The ``ShapeDtypeStruct`` of every array leaf (what sparsity detection needs)."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), tree)


class FlatFunction(eqx.Module):
    """``fn(y, args) -> (out, aux)`` as a function ``(y_flat, dynamic) -> (out, aux)``.

    Attributes:
        static: The non-array part of ``(fn, args)``.
        unravel: Turns the flat vector back into the pytree ``y``.
        ravel_out: Whether to flatten a pytree output (residuals) into one vector.
    """

    static: Any = eqx.field(static=True)
    unravel: Callable[[Array], PyTree] = eqx.field(static=True)
    ravel_out: bool = eqx.field(static=True)

    def __call__(self, y_flat: Array, dynamic: PyTree) -> tuple[Array, PyTree]:
        """Evaluate ``fn(unravel(y_flat), args)``."""
        fn, args = eqx.combine(dynamic, self.static)
        out, aux = fn(self.unravel(y_flat), args)
        if self.ravel_out:
            out = ravel_pytree(out)[0]
        return out, aux


def flatten(
    fn: Callable, y: PyTree, args: PyTree, *, ravel_out: bool
) -> tuple[FlatFunction, Array, PyTree]:
    """``fn(y, args)`` as a `FlatFunction`, the flat ``y`` and the dynamic part.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt._problem import flatten
        >>> fn = lambda y, a: (jnp.sum(y["u"] * a), None)
        >>> flat_fn, y_flat, dynamic = flatten(fn, {"u": jnp.ones(2)}, jnp.ones(2), ravel_out=False)
        >>> float(flat_fn(y_flat, dynamic)[0])
        2.0
    """
    y_flat, unravel = ravel_pytree(y)
    dynamic, static = eqx.partition((fn, args), eqx.is_array)
    return FlatFunction(static, unravel, ravel_out), y_flat, dynamic


def dynamic_part(fn: Callable, args: PyTree) -> PyTree:
    """The array leaves of ``(fn, args)``, as `flatten` splits them."""
    return eqx.filter((fn, args), eqx.is_array)


def _is_traced(x: Any) -> bool:
    return isinstance(x, jax.core.Tracer)


def _is_discrete(x: Any) -> bool:
    dtype = jnp.result_type(x)
    return bool(jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.bool_))


def constant_mask(dynamic: PyTree) -> PyTree:
    """Which leaves of ``dynamic = (fn part, args part)`` detection reads as constants.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt._problem import constant_mask
        >>> constant_mask(((jnp.ones(2),), (jnp.ones(2), jnp.arange(2))))
        ((True,), (False, True))
    """
    fn_part, args_part = dynamic
    closure = jax.tree.map(lambda x: not _is_traced(x), fn_part)
    indices = jax.tree.map(lambda x: not _is_traced(x) and _is_discrete(x), args_part)
    return closure, indices


_TRACED_FIXES = (
    "Inside `optimistix.minimise`, `least_squares` and `root_find` (jitted) the arrays in "
    "`args` are traced, and with the default `adjoint=optimistix.ImplicitAdjoint()` also "
    "those `fn` closes over. Pass `coloring=` computed outside `jit` (e.g. "
    "`asdex.hessian_coloring(lambda y: fn(y, args), y0)`), or close over the arrays and "
    "solve with `adjoint=optimistix.RecursiveCheckpointAdjoint()`."
)


def _same_but_concrete(traced: list[Any], candidate: list[Any]) -> bool:
    """Whether ``candidate`` holds concrete arrays where ``traced`` holds arrays, else the same."""
    for a, b in zip(traced, candidate, strict=True):
        if not eqx.is_array(a):
            if a is not b:
                return False
        elif _is_traced(b) or not eqx.is_array(b) or shape_struct(a) != shape_struct(b):
            return False
    return True


def _concrete_twin(tree: PyTree) -> PyTree | None:
    """``tree`` as a caller up the stack holds it, before a transformation traced its arrays.

    Optimistix closure-converts ``fn`` (its constants become array leaves) and, with the
    default ``ImplicitAdjoint``, passes it through ``jax.custom_jvp``, which traces
    every array leaf, constants included. The callers' frames still hold the function
    as it went in: the same pytree structure, the same non-array leaves (its jaxpr) and
    concrete arrays. Only closure-converted functions (pytrees holding a jaxpr, made
    inside the current trace) are looked for: their concrete arrays are constants of the
    program being traced, so the pattern holds for every call of it. Returns that
    pytree, or ``None`` when ``tree`` holds no traced array or no caller holds a twin.
    The answer is remembered for the same traced arrays (`_TwinMemo`), so the frames
    are walked once per problem however many parts of a front end ask.
    """
    leaves, treedef = jax.tree.flatten(tree)
    traced = [x for x in leaves if _is_traced(x)]
    if not traced:
        return None
    return _TWINS.get(traced, treedef, lambda: _search_frames(tree, leaves, treedef))


def _search_frames(tree: PyTree, leaves: list[Any], treedef: Any) -> PyTree | None:
    """The walk of `_concrete_twin`: the first caller's pytree that is ``tree`` but concrete."""
    frame = inspect.currentframe()
    while frame is not None:
        for value in list(frame.f_locals.values()):
            for candidate in (value, *(value if type(value) is tuple else ())):
                if candidate is tree or not isinstance(candidate, eqx.Module):
                    continue
                candidate_leaves, candidate_treedef = jax.tree.flatten(candidate)
                if (
                    candidate_treedef == treedef
                    and any(isinstance(x, jax.extend.core.Jaxpr) for x in candidate_leaves)
                    and _same_but_concrete(leaves, candidate_leaves)
                ):
                    return candidate
        frame = frame.f_back
    return None


class _TwinMemo:
    """The last few answers of `_search_frames`, by the identity of the traced arrays.

    An entry holds weak references to the tracers it was found for (and to the twin), so
    it answers only while those very tracers live, and keeps no array alive.
    """

    def __init__(self, maxsize: int = 8):
        self._maxsize = maxsize
        self._entries: collections.OrderedDict[tuple[int, ...], tuple] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, traced: list[Any], treedef: Any, search: Callable[[], Any]) -> Any:
        key = tuple(map(id, traced))
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None:
            refs, known_treedef, twin_ref = entry
            twin = None if twin_ref is None else twin_ref()
            alive = all(ref() is x for ref, x in zip(refs, traced, strict=True))
            if alive and known_treedef == treedef and (twin_ref is None or twin is not None):
                return twin
        twin = search()
        entry = (
            tuple(weakref.ref(x) for x in traced),
            treedef,
            None if twin is None else weakref.ref(twin),
        )
        with self._lock:
            self._entries[key] = entry
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)
        return twin


_TWINS = _TwinMemo()


def with_concrete_twin(flat_fn: FlatFunction, dynamic: PyTree) -> PyTree:
    """Return ``dynamic`` with the arrays of ``fn`` as a caller holds them (`_concrete_twin`).

    Detection and the evaluators' constant masks read the twin. The search walks the
    calling frames once per problem: it returns at once on a ``dynamic`` whose ``fn``
    part is concrete already, and remembers its answer for the same traced arrays.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt._problem import flatten, with_concrete_twin
        >>> fn = lambda y, a: (jnp.sum(y * a), None)
        >>> flat_fn, y, dynamic = flatten(fn, jnp.ones(2), jnp.ones(2), ravel_out=False)
        >>> with_concrete_twin(flat_fn, dynamic) is dynamic
        True
    """
    twin = _concrete_twin(eqx.combine(dynamic, flat_fn.static)[0])
    return dynamic if twin is None else (eqx.filter(twin, eqx.is_array), dynamic[1])


def _detection_problem(
    flat_fn: FlatFunction, dynamic: PyTree, warn: bool = True
) -> tuple[Callable[[Array, PyTree], tuple[Array, PyTree]], PyTree, PyTree]:
    """``flat_fn`` with its constants closed over: ``(fn, unknowns, constants)``.

    Where a caller up the stack holds ``fn`` with concrete arrays (`_concrete_twin`),
    detection reads those values.
    """
    dynamic = with_concrete_twin(flat_fn, dynamic)
    constants, unknowns = eqx.partition(dynamic, constant_mask(dynamic))

    def detected(y_flat: Array, unknowns: PyTree) -> tuple[Array, PyTree]:
        return flat_fn(y_flat, eqx.combine(unknowns, constants))

    traced_indices = [x for x in jax.tree.leaves(unknowns) if _is_traced(x) and _is_discrete(x)]
    if warn and traced_indices:
        warn_at_user(
            f"{len(traced_indices)} integer or boolean array(s) of the problem are traced, "
            "so sparsity detection cannot read their values: used as indices, they make "
            f"the detected pattern denser than the true one. {_TRACED_FIXES}"
        )
    return detected, unknowns, constants


def _warn_if_dense_from_traced(coloring: asdex.ColoredPattern, dynamic: PyTree) -> None:
    """Warn where a dense pattern may come from closed-over float arrays being traced."""
    traced = [x for x in jax.tree.leaves(dynamic[0]) if _is_traced(x) and not _is_discrete(x)]
    if traced and no_sparsity_gain(coloring):
        warn_at_user(
            f"The detected pattern is dense, and {len(traced)} floating-point array(s) "
            "`fn` closes over are traced, so detection could not read their values: if "
            "`fn` computes indices from them, the true pattern may be sparse. "
            f"{_TRACED_FIXES}"
        )


class WithConstants(eqx.Module):
    """``flat_fn`` of ``(y_flat, unknowns, constants)``: the arguments as detection saw them.

    Detection saw ``(y_flat, unknowns)`` with the constants closed over; evaluations
    pass the constants of the moment (perhaps traced) after those two arguments.
    """

    flat_fn: FlatFunction

    def __call__(self, y_flat: Array, unknowns: PyTree, constants: PyTree):
        return self.flat_fn(y_flat, eqx.combine(unknowns, constants))


def _as_flat(coloring: asdex.ColoredPattern, y_flat: Array) -> asdex.ColoredPattern:
    """The coloring as detected for the flat ``y`` (one 1-D argument, the differentiated one)."""
    sparsity = dataclasses.replace(
        coloring.sparsity, input_avals=(shape_struct(y_flat),), argnums=0
    )
    return dataclasses.replace(coloring, sparsity=sparsity)


def _check_coloring(coloring: Any, shape: tuple[int, int], what: str) -> asdex.ColoredPattern:
    if not isinstance(coloring, asdex.ColoredPattern):
        raise TypeError(
            f"`coloring` must be an `asdex.ColoredPattern` (from `asdex.{what}_coloring`), "
            f"got {type(coloring).__name__}."
        )
    if coloring.sparsity.shape != shape:
        raise ValueError(
            f"`coloring` is for a {coloring.sparsity.shape[0]}x{coloring.sparsity.shape[1]} "
            f"{what.capitalize()}, but this problem's is {shape[0]}x{shape[1]}: compute it "
            f"with `asdex.{what}_coloring` on the same function of the flattened `y`."
        )
    return coloring


def detect_hessian(
    flat_fn: FlatFunction,
    y_flat: Array,
    dynamic: PyTree,
    coloring: asdex.ColoredPattern | None = None,
    mode: asdex.HessianMode | None = None,
) -> asdex.ColoredPattern:
    """The colored Hessian pattern of a scalar problem (``coloring`` if given, checked).

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt._problem import detect_hessian, flatten
        >>> idx = jnp.array([0, 2])
        >>> fn = lambda y, _: (jnp.sum(y[idx] ** 3), None)
        >>> flat_fn, y, dynamic = flatten(fn, jnp.ones(4), None, ravel_out=False)
        >>> detect_hessian(flat_fn, y, dynamic).sparsity.nnz
        2
    """
    n = y_flat.size
    if coloring is not None:
        return _as_flat(_check_coloring(coloring, (n, n), "hessian"), y_flat)
    dynamic = with_concrete_twin(flat_fn, dynamic)
    detected, unknowns, _ = _detection_problem(flat_fn, dynamic)
    with at_user():
        result = asdex.hessian_coloring(
            detected, shape_struct(y_flat), shape_struct(unknowns), has_aux=True, mode=mode
        )
    _warn_if_dense_from_traced(result, dynamic)
    return result


def detect_jacobian(
    flat_fn: FlatFunction,
    y_flat: Array,
    dynamic: PyTree,
    coloring: asdex.ColoredPattern | None = None,
    mode: asdex.JacobianMode | None = None,
) -> asdex.ColoredPattern:
    """The colored Jacobian pattern of a vector problem (``coloring`` if given, checked).

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt._problem import detect_jacobian, flatten
        >>> i, j = jnp.array([0, 1]), jnp.array([1, 2])
        >>> fn = lambda y, _: (y[i] * y[j], None)
        >>> flat_fn, y, dynamic = flatten(fn, jnp.ones(4), None, ravel_out=True)
        >>> detect_jacobian(flat_fn, y, dynamic).sparsity.nnz
        4
    """
    if coloring is not None:
        m = jax.eval_shape(flat_fn, y_flat, dynamic)[0].size
        return _as_flat(_check_coloring(coloring, (m, y_flat.size), "jacobian"), y_flat)
    dynamic = with_concrete_twin(flat_fn, dynamic)
    detected, unknowns, _ = _detection_problem(flat_fn, dynamic)
    with at_user():
        result = asdex.jacobian_coloring(
            detected, shape_struct(y_flat), shape_struct(unknowns), has_aux=True, mode=mode
        )
    _warn_if_dense_from_traced(result, dynamic)
    return result


def _check_layout(matrix: jsparse.BCOO, nse: int) -> None:
    if not (matrix.indices_sorted and matrix.unique_indices and matrix.nse == nse):
        raise ValueError(
            "asdex returned a sparse matrix whose nonzeros are not the sorted, unique "
            f"entries of its sparsity pattern ({matrix.nse} stored, {nse} expected)."
        )


class HessianEvaluator:
    """The sparse Hessian of a `FlatFunction` as a symmetric operator, from a coloring.

    Attributes:
        structure: The static structure of every Hessian it returns: the pattern plus
            the whole diagonal (explicit zeros where the pattern has none).
    """

    def __init__(self, flat_fn: FlatFunction, coloring: asdex.ColoredPattern, dynamic: PyTree):
        """Plan the evaluation of ``flat_fn``'s Hessian with ``coloring``.

        ``dynamic`` is the dynamic part detection saw: which of its leaves were
        constants is kept, and later evaluations pass those leaves as constants.
        """
        self._mask = constant_mask(with_concrete_twin(flat_fn, dynamic))
        with at_user():
            self._hessian = asdex.hessian_from_coloring(
                WithConstants(flat_fn), coloring, has_aux=True
            )
        self._nse = coloring.sparsity.nnz
        self.structure, self._source = SparseStructure.from_pattern(
            coloring.sparsity
        ).with_diagonal()

    def __call__(self, y_flat: Array, dynamic: PyTree) -> SparseMatrixLinearOperator:
        """The Hessian at ``y_flat``, tagged symmetric."""
        constants, unknowns = eqx.partition(dynamic, self._mask)
        matrix, _ = self._hessian(y_flat, unknowns, constants)
        _check_layout(matrix, self._nse)
        data = matrix.data
        if self.structure.nse > self._nse:
            data = jnp.concatenate([data, jnp.zeros(1, data.dtype)])
        return self._operator(take(data, self._source))

    def zeros(self, dtype: jnp.dtype) -> SparseMatrixLinearOperator:
        """Return the operator of this structure with every stored value zero."""
        return self._operator(jnp.zeros(self.structure.nse, dtype))

    def _operator(self, data: Array) -> SparseMatrixLinearOperator:
        return SparseMatrixLinearOperator.from_structure(data, self.structure, lx.symmetric_tag)


class JacobianEvaluation(eqx.Module):
    """Residuals, Jacobian and (optionally) the Gauss-Newton matrix ``JᵀJ``.

    The operators are sparse (`JacobianEvaluator`) or dense (`DenseJacobianEvaluator`).
    """

    residual: Array
    jac: SparseMatrixLinearOperator | lx.MatrixLinearOperator
    normal: SparseMatrixLinearOperator | lx.MatrixLinearOperator | None
    aux: PyTree


class JacobianEvaluator:
    """Residuals and sparse Jacobian of a `FlatFunction` (and ``JᵀJ``), from a coloring.

    Attributes:
        structure: The static structure of ``J``.
        normal: The `NormalProduct` forming ``JᵀJ``, or ``None`` if not wanted.
        solved: The structure of the matrix to solve with: ``JᵀJ``'s, else ``J``'s.
    """

    def __init__(
        self, flat_fn: FlatFunction, coloring: asdex.ColoredPattern, dynamic: PyTree, normal: bool
    ):
        """Plan the evaluation with ``coloring`` (see `HessianEvaluator`); ``normal``: ``JᵀJ``."""
        self._mask = constant_mask(with_concrete_twin(flat_fn, dynamic))
        with at_user():
            self._jacobian = asdex.value_and_jacobian_from_coloring(
                WithConstants(flat_fn), coloring, has_aux=True
            )
        self.structure = SparseStructure.from_pattern(coloring.sparsity)
        self.normal = NormalProduct(self.structure) if normal else None
        self.solved = self.structure if self.normal is None else self.normal.structure

    def __call__(self, y_flat: Array, dynamic: PyTree) -> JacobianEvaluation:
        """Residuals, ``J`` and (if planned) ``JᵀJ`` at ``y_flat``."""
        constants, unknowns = eqx.partition(dynamic, self._mask)
        (residual, aux), matrix = self._jacobian(y_flat, unknowns, constants)
        _check_layout(matrix, self.structure.nse)
        jac = SparseMatrixLinearOperator.from_structure(matrix.data, self.structure)
        normal = None if self.normal is None else self.normal(jac)
        return JacobianEvaluation(residual, jac, normal, aux)


def no_sparsity_gain(coloring: asdex.ColoredPattern) -> bool:
    """Whether the coloring needs as many passes as a dense Jacobian would.

    The test of ``asdex.DenseColoringWarning``: at least ``min(m, n)`` colors.

    Examples:
        >>> import jax.numpy as jnp, asdex
        >>> from asdex_opt._problem import no_sparsity_gain
        >>> no_sparsity_gain(asdex.jacobian_coloring(lambda x: x * jnp.sum(x), jnp.ones(3)))
        True
    """
    dense = min(coloring.sparsity.shape)
    return dense > 1 and coloring.num_colors >= dense


class DenseJacobianEvaluator:
    """Residuals and the dense Jacobian of a `FlatFunction` (and ``JᵀJ``), no coloring.

    For Jacobians whose coloring brings no gain (`no_sparsity_gain`): ``J`` comes from
    ``jax.jacfwd`` (at most as many columns as rows) or ``jax.jacrev``, and ``JᵀJ`` is
    one dense product, instead of a sparse ``JᵀJ`` planned from every pair of
    nonzeros in a row. Called like `JacobianEvaluator`; the operators are
    ``lineax.MatrixLinearOperator``.

    Attributes:
        structure: ``None``: there is no sparse structure.
        normal: Whether ``JᵀJ`` is formed.
    """

    structure = None

    def __init__(self, flat_fn: FlatFunction, shape: tuple[int, int], normal: bool):
        """Plan ``flat_fn``'s ``(m, n)`` Jacobian; ``normal``: also ``JᵀJ``."""
        self._flat_fn = flat_fn
        m, n = shape
        self._jac = jax.jacfwd if n <= m else jax.jacrev
        self.normal = normal

    def __call__(self, y_flat: Array, dynamic: PyTree) -> JacobianEvaluation:
        """Residuals, ``J`` and (if planned) ``JᵀJ`` at ``y_flat``."""

        def with_value(y: Array) -> tuple[Array, tuple[Array, PyTree]]:
            out, aux = self._flat_fn(y, dynamic)
            return out, (out, aux)

        matrix, (residual, aux) = self._jac(with_value, has_aux=True)(y_flat)
        jac = lx.MatrixLinearOperator(matrix)
        normal = None
        if self.normal:
            tags = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})
            normal = lx.MatrixLinearOperator(matrix.T @ matrix, tags)
        return JacobianEvaluation(residual, jac, normal, aux)


def problem_key(flat_fn: FlatFunction, y_flat: Array, dynamic: PyTree) -> Hashable:
    """What determines the sparsity of a problem: its program, shapes and constants.

    The printed jaxpr of ``flat_fn`` with its constants closed over (as detection sees
    it), the structure of ``y_flat`` and of the unknown leaves, and a digest of every
    constant's value. Equal keys mean equal patterns, even for a new ``fn`` object.
    """
    detected, unknowns, constants = _detection_problem(flat_fn, dynamic, warn=False)
    jaxpr = jax.make_jaxpr(detected)(shape_struct(y_flat), shape_struct(unknowns))
    digests = tuple(
        (np.shape(c), str(np.asarray(c).dtype), hashlib.blake2b(np.asarray(c).tobytes()).digest())
        for c in jax.tree.leaves(constants)
    )
    structure = jax.tree.structure((y_flat, unknowns))
    return str(jaxpr), structure, str(shape_struct((y_flat, unknowns))), digests


class ColoringCache:
    """A small LRU cache of what is planned per problem, keyed by `problem_key`."""

    def __init__(self, maxsize: int = 8):
        """An empty cache of at most ``maxsize`` entries."""
        self.maxsize = maxsize
        self._entries: collections.OrderedDict[Hashable, Any] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The entry for ``key``, made (and kept) on a miss."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = make()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        return value
