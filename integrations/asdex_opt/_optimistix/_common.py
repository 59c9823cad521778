"""Flattening a problem, detecting its sparsity once, and evaluating its derivatives.

Every solver here works on the flat vector ``ravel_pytree(y)``: the sparse Hessian or
Jacobian is a matrix over that vector. The problem ``fn(y, args)`` is split into its
array leaves (passed to every evaluation, so they may be traced) and everything else
(closed over), so that sparsity detection sees only shapes and dtypes, never a tracer.
"""

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
from jax.experimental import sparse as jsparse
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PyTree, Scalar

import asdex

from .._lineax._block_diagonal import BlockDiagonalLU
from .._lineax._bordered import BorderedBlockLU
from .._lineax._finite import all_finite
from .._lineax._operator import SparseMatrixLinearOperator
from .._lineax._structure import SparseStructure
from .._lineax._superlu import SparseLU
from .._lineax._take import take
from .._lineax._tridiagonal import TridiagonalLU

__all__ = [
    "DEFAULT_SOLVER",
    "all_finite",
    "FlatFunction",
    "NormalProduct",
    "cauchy_termination",
    "choose_solver",
    "solver_for_structure",
    "hessian_evaluator",
    "jacobian_evaluator",
    "shape_struct",
]

# The default Lineax solver of every solver here: a direct sparse LU solve.
DEFAULT_SOLVER = SparseLU()


def shape_struct(tree: PyTree) -> PyTree:
    """The ``ShapeDtypeStruct`` of every array leaf (what sparsity detection needs)."""
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), tree)


class FlatFunction(eqx.Module):
    """``fn(y, args)`` as a function ``(y_flat, dynamic) -> (out_flat, aux)``.

    ``dynamic`` holds the array leaves of ``(fn, args)``, and the rest is static, so
    the function can be handed to asdex's sparsity detection with shape structs only.

    Attributes:
        static: The non-array part of ``(fn, args)``.
        unravel: Turns the flat vector back into the pytree ``y``.
        ravel_out: Whether to flatten a pytree output (residuals) into one vector.
    """

    static: Any = eqx.field(static=True)
    unravel: Callable[[Array], PyTree] = eqx.field(static=True)
    ravel_out: bool = eqx.field(static=True)

    def __call__(self, y_flat: Array, dynamic: PyTree) -> tuple[Array, PyTree]:
        """Evaluates ``fn(unravel(y_flat), args)``."""
        fn, args = eqx.combine(dynamic, self.static)
        out, aux = fn(self.unravel(y_flat), args)
        if self.ravel_out:
            out = ravel_pytree(out)[0]
        return out, aux


def split_problem(
    fn: Callable, y: PyTree, args: PyTree, ravel_out: bool
) -> tuple[FlatFunction, Array, PyTree]:
    """Splits ``fn(y, args)`` into a `FlatFunction`, the flat ``y`` and the dynamic part."""
    y_flat, unravel = ravel_pytree(y)
    dynamic, static = eqx.partition((fn, args), eqx.is_array)
    return FlatFunction(static, unravel, ravel_out), y_flat, dynamic


def dynamic_part(fn: Callable, args: PyTree) -> PyTree:
    """The array leaves of ``(fn, args)``, as `split_problem` splits them."""
    return eqx.filter((fn, args), eqx.is_array)


def solver_for_structure(structure: SparseStructure) -> lx.AbstractLinearSolver:
    """`choose_solver` for the pattern of a square `SparseStructure`."""
    rows, cols = structure.indices.T
    return choose_solver(rows, cols, structure.shape[0])


def choose_solver(rows: np.ndarray, cols: np.ndarray, n: int) -> lx.AbstractLinearSolver:
    """The default direct solver for an ``n x n`` sparsity pattern (plus its diagonal).

    `BlockDiagonalLU` (dense LU of every block, in JAX) when the pattern splits into
    connected components of at most 16 variables, e.g. separable or block-separable
    objectives; `BorderedBlockLU` (in JAX too) when it does so after setting aside at
    most 16 variables coupled to more than 16 others (arrowhead patterns);
    `TridiagonalLU` (``lineax.Tridiagonal``, LAPACK's ``gtsv``) for a tridiagonal
    pattern in the given order, e.g. a chain; `SparseLU` (SuperLU on the host)
    otherwise. The structured operators of asdex_opt's solvers answer
    ``lineax.is_tridiagonal`` from their structure, which the tridiagonal solve needs.
    All four report whether a matrix that claims positive definiteness has it.

    Examples:
        >>> import numpy as np
        >>> type(choose_solver(np.array([0, 1]), np.array([1, 0]), 4)).__name__
        'BlockDiagonalLU'
    """
    block = BlockDiagonalLU.from_pattern(rows, cols, n)
    if block is not None:
        return block
    bordered = BorderedBlockLU.from_pattern(rows, cols, n)
    if bordered is not None:
        return bordered
    if np.all(np.abs(np.asarray(rows) - np.asarray(cols)) <= 1):
        return TridiagonalLU()
    return DEFAULT_SOLVER


def hessian_evaluator(
    flat_fn: FlatFunction,
    y_flat: Array,
    dynamic: PyTree,
    coloring: asdex.ColoredPattern | None = None,
) -> tuple[Callable[[Array, PyTree], SparseMatrixLinearOperator], asdex.SparsityPattern]:
    """Detects and colors the Hessian sparsity of ``flat_fn`` (once), returns its evaluator.

    The evaluator maps ``(y_flat, dynamic)`` to the sparse Hessian as a symmetric
    `SparseMatrixLinearOperator` with a static `SparseStructure`: the detected pattern
    plus the whole diagonal (explicit zeros where the pattern has none), so that shifts
    ``H + τI`` keep the structure. The pattern is returned with it. A ``coloring``
    computed earlier for the same problem skips the detection.
    """
    if coloring is None:
        coloring = asdex.hessian_coloring(
            flat_fn, shape_struct(y_flat), shape_struct(dynamic), has_aux=True
        )
    hessian = asdex.hessian_from_coloring(flat_fn, coloring, has_aux=True)
    pattern = _sorted_structure(coloring.sparsity)
    structure, source = pattern.with_diagonal()

    def evaluate(y: Array, dyn: PyTree) -> SparseMatrixLinearOperator:
        matrix, _ = hessian(y, dyn)
        _check_layout(matrix, pattern.nse)
        data = matrix.data
        if structure.nse > pattern.nse:
            data = jnp.concatenate([data, jnp.zeros(1, data.dtype)])
        data = take(data, source)
        return SparseMatrixLinearOperator.from_structure(data, structure, lx.symmetric_tag)

    return evaluate, coloring.sparsity


def _sorted_structure(sparsity: asdex.SparsityPattern) -> SparseStructure:
    """The pattern's entries sorted by row, then column: the layout of asdex's BCOO."""
    m, n = sparsity.shape
    keys = np.unique(np.asarray(sparsity.rows, np.int64) * n + np.asarray(sparsity.cols))
    return SparseStructure(np.stack([keys // n, keys % n], axis=1), (m, n))


def _check_layout(matrix: jsparse.BCOO, nse: int) -> None:
    if not (matrix.indices_sorted and matrix.unique_indices and matrix.nse == nse):
        raise ValueError(
            "asdex returned a sparse matrix whose nonzeros are not the sorted, unique "
            f"entries of its sparsity pattern ({matrix.nse} stored, {nse} expected)."
        )


class JacobianEvaluation(eqx.Module):
    """Residuals, sparse Jacobian and (optionally) the Gauss-Newton matrix ``JᵀJ``."""

    residual: Array
    jac: SparseMatrixLinearOperator
    normal: SparseMatrixLinearOperator | None
    aux: PyTree


def jacobian_evaluator(
    flat_fn: FlatFunction, y_flat: Array, dynamic: PyTree, normal: bool
) -> tuple[Callable[[Array, PyTree], JacobianEvaluation], SparseStructure]:
    """Detects and colors the Jacobian sparsity of ``flat_fn`` (once), returns its evaluator.

    With ``normal=True`` the evaluator also forms ``JᵀJ`` sparsely: its pattern and a
    gather/segment-sum schedule over the nonzeros of ``J`` are precomputed here. The
    structure of the matrix to solve with (``JᵀJ``, else ``J``) is returned with it.
    """
    coloring = asdex.jacobian_coloring(
        flat_fn, shape_struct(y_flat), shape_struct(dynamic), has_aux=True
    )
    jacobian = asdex.value_and_jacobian_from_coloring(flat_fn, coloring, has_aux=True)
    product = NormalProduct(coloring.sparsity) if normal else None

    structure = _sorted_structure(coloring.sparsity)

    def evaluate(y: Array, dyn: PyTree) -> JacobianEvaluation:
        (residual, aux), matrix = jacobian(y, dyn)
        _check_layout(matrix, structure.nse)
        jac = SparseMatrixLinearOperator.from_structure(matrix.data, structure)
        return JacobianEvaluation(residual, jac, None if product is None else product(matrix), aux)

    return evaluate, structure if product is None else product.structure


class NormalProduct:
    """Forms ``JᵀJ`` from the nonzeros of ``J`` with one gather and one segment sum.

    ``(JᵀJ)_ab = Σ_i J_ia J_ib``: every pair of nonzeros in a row of ``J`` contributes
    to one entry. The pairs and the (sorted, unique) pattern of ``JᵀJ``, plus the whole
    diagonal, come from the sparsity pattern of ``J`` on the host, once; the result
    carries that static `SparseStructure`.
    """

    def __init__(self, sparsity: asdex.SparsityPattern):
        m, n = sparsity.shape
        rows = np.asarray(sparsity.rows, dtype=np.int64)
        cols = np.asarray(sparsity.cols, dtype=np.int64)
        keys = np.unique(rows * n + cols)  # the BCOO order: sorted by row, then column
        rows, cols = keys // n, keys % n
        self.nse = keys.size
        counts = np.bincount(rows, minlength=m)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        per_entry = counts[rows]  # each nonzero pairs with every nonzero of its row
        left = np.repeat(np.arange(keys.size), per_entry)
        group_start = np.repeat(np.cumsum(per_entry) - per_entry, per_entry)
        right = np.repeat(starts[rows], per_entry) + np.arange(left.size) - group_start
        pair_keys = cols[left] * n + cols[right]
        # The whole diagonal is stored (zero for empty columns), so shifts keep the layout.
        out_keys, out = np.unique(
            np.concatenate([pair_keys, np.arange(n) * (n + 1)]), return_inverse=True
        )
        self.left, self.right = _small_int(left), _small_int(right)
        self.out, self.num_out = _small_int(out.ravel()[: pair_keys.size]), out_keys.size
        self.structure = SparseStructure(np.stack([out_keys // n, out_keys % n], axis=1), (n, n))

    def __call__(self, jac: jsparse.BCOO) -> SparseMatrixLinearOperator:
        _check_layout(jac, self.nse)
        data = jax.ops.segment_sum(
            jac.data[self.left] * jac.data[self.right],
            self.out,
            num_segments=self.num_out,
            indices_are_sorted=False,
        )
        return SparseMatrixLinearOperator.from_structure(
            data, self.structure, frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})
        )


def _small_int(array: np.ndarray) -> np.ndarray:
    return array.astype(np.int32) if array.size == 0 or array.max() < 2**31 else array


def cauchy_termination(
    rtol: float,
    atol: float,
    norm: Callable[[PyTree], Scalar],
    y: Array,
    y_diff: Array,
    f: Array,
    f_diff: Array,
) -> Array:
    """Optimistix's termination test: small changes in both ``y`` and ``f``."""

    def converged(diff: Array, value: Array) -> Array:
        scale = atol + rtol * jnp.abs(value)
        if norm is optx.max_norm:  # the same test without a division per element
            return jnp.all(jnp.abs(diff) < scale)
        return norm(jnp.abs(diff) / scale) < 1

    return converged(y_diff, y) & converged(f_diff, f)


def check_finite_result(result: optx.RESULTS, *values: PyTree) -> optx.RESULTS:
    """``RESULTS.nonfinite`` if any of ``values`` holds a NaN or an infinity."""
    return optx.RESULTS.where(all_finite(*values), result, optx.RESULTS.nonfinite)


def step_outcome(
    search_result: optx.RESULTS, descent_result: optx.RESULTS, state: Any, aux: PyTree
) -> tuple[optx.RESULTS, PyTree]:
    """The result of a search step and the aux to report for its accepted point.

    A failed search wins over the descent's result; on the first step there is no earlier
    aux, so the fresh one is reported.
    """
    result = optx.RESULTS.where(
        search_result == optx.RESULTS.successful, descent_result, search_result
    )
    prev_aux = jax.tree.map(lambda a, b: jnp.where(state.first_step, a, b), aux, state.aux)
    return result, prev_aux


def stop_when_done_or_failed(state: Any) -> tuple[Array, optx.RESULTS]:
    """Stop on convergence (``state.terminate``) or as soon as a step has failed."""
    failed = state.result != optx.RESULTS.successful
    return state.terminate | failed, state.result
