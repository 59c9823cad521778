"""Linear algebra and FFT: dense within each batch element, never across the batch.

All `jax.lax.linalg` primitives carry leading batch dimensions. By default every
float result element depends on every element of every operand in the same batch
element (a `Groups` map with the batch index as group). Where the structure is
known and cheap to state, the map is exact instead:

* `cholesky`: `L[i, j]` (`j <= i`) depends on `a[p, q]` with `p <= i`, `q <= j`;
  the strict upper triangle of `L` is zero.
* `triangular_solve`: a solution entry depends on the entries of the right-hand
  side and of the triangle of `a` that the substitution reaches, along one column
  (left side) or one row (right side).
* `tridiagonal_solve`: column `j` of the solution depends on the diagonals (but not
  on the unused `dl[0]`, `du[-1]`) and on column `j` of `b`.
* `qr` (without pivoting): `Q[:, j]` and `R[:, j]` depend on a prefix of the columns
  of `a`; the strict lower triangle of `R` is zero.
* `fft`: dense along the transformed (trailing) axes, positional along the others.

Integer results (pivots, permutations) have zero derivative.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from asdex.detection._maps import DependencyMap, Groups, Matrix, gather_rows
from asdex.detection._registry import register_rule
from asdex.detection._rule import Curvature, Equation, Output

MAX_STRUCTURED_ENTRIES = 1 << 25
"""Largest exact structured `Matrix`; beyond it the dense-in-batch `Groups` map is used."""


def _num_batches(eqn: Equation, core_rank: int) -> int:
    """Number of batch elements: operand 0 has `core_rank` trailing core dimensions."""
    shape = eqn.operands[0].shape
    return math.prod(shape[: len(shape) - core_rank])


def _batch_group(size: int, batches: int) -> np.ndarray:
    """Batch index of each element of an array with leading batch dimensions."""
    core = size // batches if batches else 0
    return np.arange(size, dtype=np.int64) // max(core, 1)


def batched_dense(out_size: int, operand_size: int, batches: int) -> Groups:
    """Each result element depends on all operand elements of its batch element."""
    return Groups(_batch_group(out_size, batches), _batch_group(operand_size, batches), batches)


def fits(entries: int, batches: int) -> bool:
    """Whether an exact per-batch relation of `entries` entries is cheap enough."""
    return entries * batches <= MAX_STRUCTURED_ENTRIES


def batched_relation(relation: sp.csr_array, batches: int) -> DependencyMap:
    """The per-batch-element `relation` (core result x core operand), for every batch.

    Falls back to the dense-in-batch map (restricted to the rows and columns the
    relation uses) when the exact matrix would be too large.
    """
    relation = sp.csr_array(relation, dtype=bool)
    relation.sum_duplicates()
    if fits(relation.nnz, batches):
        return Matrix(sp.csr_array(sp.kron(sp.eye_array(batches, dtype=bool), relation,
                                           format="csr"), dtype=bool))
    used_cols = np.zeros(relation.shape[1], dtype=bool)
    used_cols[relation.indices] = True
    return masked_dense(np.diff(relation.indptr) > 0, used_cols, batches)


def masked_dense(used_rows: np.ndarray, used_cols: np.ndarray, batches: int) -> Groups:
    """Dense-in-batch map between the used parts of the result and operand cores."""
    out_group = np.where(used_rows[None, :], np.arange(batches)[:, None], -1)
    in_group = np.where(used_cols[None, :], np.arange(batches)[:, None], -1)
    return Groups(out_group.reshape(-1).astype(np.int64),
                  in_group.reshape(-1).astype(np.int64), batches)


def _pairs(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_array:
    return sp.csr_array((np.ones(rows.size, bool), (rows.reshape(-1), cols.reshape(-1))),
                        shape=shape)


def dense_rule(core_rank: int) -> Callable[[Equation], list[Output]]:
    """Every result depends densely on every unknown operand, within each batch element.

    Args:
        core_rank: Number of trailing non-batch dimensions of operand 0.
    """

    def rule(eqn: Equation) -> list[Output]:
        batches = _num_batches(eqn, core_rank)
        outputs = []
        for out_size in eqn.out_sizes:
            maps = tuple(
                (k, batched_dense(out_size, operand.size, batches))
                for k, operand in enumerate(eqn.operands)
                if operand.value is None
            )
            outputs.append(Output(maps=maps))
        return outputs

    return rule


def cholesky_rule(eqn: Equation) -> list[Output]:
    """`cholesky`: `L[i, j]` (`j <= i`) depends on `a[p, q]` for `p <= i`, `q <= j`."""
    n = eqn.operands[0].shape[-1]
    batches = _num_batches(eqn, 2)
    i, j = (x.reshape(-1) for x in np.indices((n, n)))
    lower = j <= i
    if not fits(int(((i + 1) * (j + 1))[lower].sum()), batches):
        return [Output(maps=((0, masked_dense(lower, np.ones(n * n, bool), batches)),))]
    prefix = _reach(n, lower=True)  # prefix[i, p]: p <= i
    relation = sp.csr_array(sp.kron(prefix, prefix, format="csr"))  # [(i, j), (p, q)]
    relation = gather_rows(relation, np.where(lower, np.arange(n * n), -1))
    return [Output(maps=((0, batched_relation(relation, batches)),))]


def _reach(n: int, lower: bool) -> sp.csr_array:
    """`reach[i, k]`: entry `i` of a triangular solve with `n` unknowns uses entry `k`."""
    i, k = np.indices((n, n))
    return sp.csr_array((i >= k) if lower else (i <= k))


def _left_solve_relations(
    m: int, n: int, lower: bool, unit: bool, batches: int
) -> tuple[sp.csr_array, sp.csr_array | None]:
    """Relations of `X = T^{-1} B` with `T` (m x m) triangular and `B` (m x n).

    Returns `(x_from_b, x_from_t)` over the flat indices of `X`, `B` and `T`;
    `x_from_t` is `None` when it is too large to build (`X` then depends on all of `T`).
    """
    reach = _reach(m, lower)
    x_from_b = sp.csr_array(sp.kron(reach, sp.eye_array(n, dtype=bool), format="csr"))
    p, q = np.indices((m, m))
    triangle = ((q < p) if lower else (q > p)) | ((q == p) & (not unit))
    tri_p, tri_q = np.nonzero(triangle)
    rows_of_t = _pairs(tri_p, tri_p * m + tri_q, (m, m * m))  # row p -> entries (p, q)
    per_row = sp.csr_array(reach @ rows_of_t, dtype=bool)  # row i -> entries it reaches
    if not fits(per_row.nnz * n, batches):
        return x_from_b, None
    x_from_t = gather_rows(per_row, np.repeat(np.arange(m, dtype=np.int64), n))
    return x_from_b, x_from_t


def _transposed_index(rows: int, cols: int) -> np.ndarray:
    """`perm[i * cols + j] = j * rows + i`: flat index in the transposed matrix."""
    return np.arange(rows * cols, dtype=np.int64).reshape(cols, rows).T.reshape(-1)


def _permute(relation: sp.csr_array, row_source: np.ndarray | None,
             col_target: np.ndarray | None) -> sp.csr_array:
    """Rows gathered from `row_source`; column `c` renamed `col_target[c]`."""
    if row_source is not None:
        relation = gather_rows(relation, row_source)
    if col_target is not None:
        relation = sp.csr_array((relation.data, col_target[relation.indices], relation.indptr),
                                shape=relation.shape)
    return relation


def triangular_solve_rule(eqn: Equation) -> list[Output]:
    """`triangular_solve(a, b)`: solves `op(a) x = b` (left side) or `x op(a) = b`."""
    a, b = eqn.operands
    params = eqn.params
    m, n = b.shape[-2:]
    size = a.shape[-1]
    unit = params["unit_diagonal"]
    batches = _num_batches(eqn, 2)
    lower = params["lower"] != params["transpose_a"]  # op(a) is lower triangular
    if params["left_side"]:
        x_from_b, x_from_t = _left_solve_relations(m, n, lower, unit, batches)
    else:  # x^T = op(a)^{-T} b^T: a left solve on transposes
        x_from_b, x_from_t = _left_solve_relations(n, m, not lower, unit, batches)
        to_transposed = _transposed_index(m, n)  # x[i, j] is x^T[j, i]
        x_from_b = _permute(x_from_b, to_transposed, _transposed_index(n, m))
        if x_from_t is not None:
            x_from_t = gather_rows(x_from_t, to_transposed)
    maps: list[tuple[int, DependencyMap]] = []
    if a.value is None:
        if x_from_t is None:
            p, q = np.indices((size, size))
            read = ((q < p) if params["lower"] else (q > p)) | ((q == p) & (not unit))
            a_map = masked_dense(np.ones(m * n, bool), read.reshape(-1), batches)
        else:
            if params["transpose_a"] != (not params["left_side"]):
                x_from_t = _permute(x_from_t, None, _transposed_index(size, size))
            a_map = batched_relation(x_from_t, batches)
        maps.append((0, a_map))
    if b.value is None:
        maps.append((1, batched_relation(x_from_b, batches)))
    return [Output(maps=tuple(maps))]


def tridiagonal_solve_rule(eqn: Equation) -> list[Output]:
    """`tridiagonal_solve(dl, d, du, b)`: column `j` of `x` depends on the diagonals.

    It also depends on column `j` of `b`; `dl[0]` and `du[-1]` are unused.
    """
    m, n = eqn.operands[3].shape[-2:]
    batches = _num_batches(eqn, 1)
    columns = np.tile(np.arange(n, dtype=np.int64), m)
    used = {0: np.arange(m) > 0, 1: np.ones(m, bool), 2: np.arange(m) < m - 1}
    maps: list[tuple[int, DependencyMap]] = []
    for k, mask in used.items():
        if eqn.operands[k].value is None:
            cols = np.nonzero(mask)[0]
            relation = _pairs(np.repeat(np.arange(m * n), cols.size),
                              np.tile(cols, m * n), (m * n, m))
            maps.append((k, batched_relation(relation, batches)))
    if eqn.operands[3].value is None:
        group = (np.arange(batches, dtype=np.int64)[:, None] * n + columns[None, :]).reshape(-1)
        maps.append((3, Groups(group, group, batches * n)))
    return [Output(maps=tuple(maps))]


def qr_rule(eqn: Equation) -> list[Output]:
    """`qr`: each column of `Q` and each entry of `R` depends on some columns of `a`.

    With `k = min(m, n)`: `Q[:, j]` depends on the columns `<= min(j, k - 1)` of `a`;
    `R[i, j]` (`i <= j`) on the columns `<= j` when `j < k`, else on the columns
    `<= i` and column `j`; the strict lower triangle of `R` is zero.

    With pivoting, the columns are permuted by the data: dense within each batch.
    """
    if eqn.params["pivoting"]:
        return dense_rule(2)(eqn)
    if eqn.operands[0].value is not None:
        return [Output(), Output()]
    m, n = eqn.operands[0].shape[-2:]
    k = min(m, n)
    batches = _num_batches(eqn, 2)
    q_rows, q_cols = eqn.out_shapes[0][-2:]
    q_prefix = np.tile(np.minimum(np.arange(q_cols), k - 1), q_rows)
    i, j = (x.reshape(-1) for x in np.indices(eqn.out_shapes[1][-2:]))
    upper = i <= j
    r_prefix = np.where(upper, np.where(j < k, j, i), -1)
    r_extra = np.where(upper & (j >= k), j, -1)
    q_map = _column_map(q_prefix, np.full(q_prefix.size, -1), m, n, batches)
    r_map = _column_map(r_prefix, r_extra, m, n, batches)
    return [Output(maps=((0, q_map),)), Output(maps=((0, r_map),))]


def _column_map(prefix: np.ndarray, extra: np.ndarray, m: int, n: int,
                batches: int) -> DependencyMap:
    """Map from `a` (m x n) to a result whose element `r` depends on some columns.

    Those are the columns `<= prefix[r]` and `== extra[r]` (`-1`: none).
    """
    entries = m * (np.maximum(prefix + 1, 0) + (extra >= 0))
    if not fits(int(entries.sum()), batches):
        return masked_dense(prefix >= 0, np.ones(m * n, bool), batches)
    row, col = (x.reshape(-1) for x in np.indices((m, n)))
    # prefix_cols[c] holds the entries in columns <= c; one_col[c] those in column c
    prefix_cols = _pairs(*np.nonzero(col[None, :] <= np.arange(n)[:, None]), (n, m * n))
    one_col = _pairs(col, row * n + col, (n, m * n))
    relation = sp.csr_array(gather_rows(prefix_cols, prefix) + gather_rows(one_col, extra))
    return batched_relation(relation, batches)


def fft_rule(eqn: Equation) -> list[Output]:
    """`fft`: dense along the `len(fft_lengths)` trailing axes, positional elsewhere."""
    operand = eqn.operands[0]
    if operand.value is not None:
        return [Output()]
    axes = len(eqn.params["fft_lengths"])
    batches = math.prod(operand.shape[: len(operand.shape) - axes])
    return [Output(maps=((0, batched_dense(eqn.out_sizes[0], operand.size, batches)),))]


def no_derivative_rule(eqn: Equation) -> list[Output]:
    """Integer results only (e.g. `lu_pivots_to_permutation`)."""
    return [Output() for _ in eqn.out_shapes]


register_rule("cholesky", cholesky_rule, curvature=Curvature.NONLINEAR)
register_rule("triangular_solve", triangular_solve_rule, curvature=Curvature.NONLINEAR)
register_rule("tridiagonal_solve", tridiagonal_solve_rule, curvature=Curvature.NONLINEAR)
register_rule("qr", qr_rule, curvature=Curvature.NONLINEAR)
register_rule("fft", fft_rule, curvature=Curvature.ZERO)
register_rule("lu_pivots_to_permutation", no_derivative_rule, curvature=Curvature.ZERO)
for _name in ("lu", "eig", "eigh", "svd", "schur", "hessenberg", "tridiagonal", "geqrf",
              "geqp3", "householder_product", "ormqr", "symmetric_product",
              "cholesky_update"):
    register_rule(_name, dense_rule(2), curvature=Curvature.NONLINEAR)
