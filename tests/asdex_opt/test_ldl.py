"""SparseLDL: solves and inertia against dense NumPy, vmap, autodiff, bad input."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.experimental import sparse as jsparse

from asdex_opt._lineax._ldl import analyse
from asdex_opt._lineax._ldl._levels import (
    _LOOP_SLOT,
    _RUN_COST,
    _SIZES,
    _STEP_OVERHEAD,
    _lay_out,
    _runs,
    update_count,
)
from asdex_opt._lineax._ldl._numeric import factorize, solve
from asdex_opt._lineax._ldl._operands import operands
from asdex_opt._lineax._ldl._ordering import adjacency, nested_dissection
from asdex_opt._lineax._ldl._schedule import _MAX_CLASSES, _merge_classes
from asdex_opt.lineax import SparseLDL, SparseMatrixLinearOperator, SparseStructure

pytestmark = pytest.mark.usefixtures("x64_module")


def _random_symmetric(rng: np.random.Generator, n: int, density: float) -> np.ndarray:
    """A dense symmetric matrix with a random sparse off-diagonal pattern."""
    upper = np.triu(rng.standard_normal((n, n)) * (rng.random((n, n)) < density), 1)
    return upper + upper.T


def _operator(matrix: np.ndarray, tags=lx.symmetric_tag, dtype=jnp.float64):
    rows, cols = np.nonzero(matrix)
    structure = SparseStructure(np.stack([rows, cols], axis=1), matrix.shape)
    data = jnp.asarray(matrix[rows, cols], dtype)
    return SparseMatrixLinearOperator.from_structure(data, structure, tags)


def _inertia(matrix: np.ndarray) -> tuple[int, int, int]:
    eigenvalues = np.linalg.eigvalsh(matrix)
    tol = 1e-9 * max(1.0, np.abs(eigenvalues).max())
    positive, negative = int(np.sum(eigenvalues > tol)), int(np.sum(eigenvalues < -tol))
    return positive, negative, matrix.shape[0] - positive - negative


SCALAR, FRONTS = 10**12, -1
"""`analyse`'s ``max_scalar_updates`` that force the scalar plan or the dense fronts."""


def _factor_and_solve(matrix: np.ndarray, rhs: np.ndarray, engine: int = SCALAR):
    rows, cols = np.nonzero(matrix)
    analysis = analyse(matrix.shape[0], rows, cols, engine)
    assert (analysis.levels is None) == (engine == FRONTS)

    @jax.jit
    def run(data, b):
        factor = factorize(analysis, data, 1e-12)
        return solve(analysis, factor, b), factor.inertia, factor.singular

    return run(jnp.asarray(matrix[rows, cols]), jnp.asarray(rhs))


def _check(matrix: np.ndarray, rng: np.random.Generator) -> None:
    """Both plans, the scalar one and the dense fronts, against NumPy."""
    rhs = rng.standard_normal(matrix.shape[0])
    for engine in (SCALAR, FRONTS):
        x, inertia, singular = _factor_and_solve(matrix, rhs, engine)
        assert not singular
        expected = np.linalg.solve(matrix, rhs)
        np.testing.assert_allclose(np.asarray(x), expected, rtol=1e-8, atol=1e-8)
        assert tuple(int(i) for i in inertia) == _inertia(matrix)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), density=st.floats(0.02, 0.4))
def test_positive_definite(seed, n, density):
    rng = np.random.default_rng(seed)
    off = _random_symmetric(rng, n, density)
    matrix = off + np.diag(np.abs(off).sum(axis=1) + rng.random(n) + 0.1)
    _check(matrix, rng)


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 50), m=st.integers(0, 30))
def test_quasi_definite_any_order(seed, n, m):
    """[[H + δI, Aᵀ], [A, -εI]], symmetrically permuted at random, factors as it is."""
    rng = np.random.default_rng(seed)
    off = _random_symmetric(rng, n, 0.2)
    h = off @ off.T + 1e-3 * np.eye(n)
    a = rng.standard_normal((m, n)) * (rng.random((m, n)) < 0.2)
    kkt = np.block([[h, a.T], [a, -1e-2 * np.eye(m)]])
    permutation = rng.permutation(n + m)
    _check(kkt[permutation][:, permutation], rng)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 50))
def test_indefinite_diagonally_dominant(seed, n):
    rng = np.random.default_rng(seed)
    off = _random_symmetric(rng, n, 0.15)
    signs = rng.choice([-1.0, 1.0], n)
    matrix = off + np.diag(signs * (np.abs(off).sum(axis=1) + 0.5))
    _check(matrix, rng)


@pytest.mark.parametrize("epsilon", [1e-8, 1e-10])
def test_kkt_with_tiny_regularisation_is_refined(epsilon):
    """Quasi-definite [[H + εI, Aᵀ], [A, -εI]]: exact inertia, and accurate after refinement."""
    rng = np.random.default_rng(0)
    n, m = 120, 60
    h = np.diag(np.full(n, 3.0)) - np.diag(np.ones(n - 1), 1) - np.diag(np.ones(n - 1), -1)
    a = np.zeros((m, n))
    a[np.repeat(np.arange(m), 3), rng.integers(0, n, 3 * m)] = rng.standard_normal(3 * m)
    kkt = np.block([[h + epsilon * np.eye(n), a.T], [a, -epsilon * np.eye(m)]])
    rhs = rng.standard_normal(n + m)
    expected = np.linalg.solve(kkt, rhs)
    errors = []
    for steps in (0, 3):
        solution = lx.linear_solve(
            _operator(kkt), jnp.asarray(rhs), SparseLDL(refinement_steps=steps), throw=False
        )
        assert solution.result == lx.RESULTS.successful
        assert tuple(int(i) for i in solution.stats["inertia"]) == (n, m, 0)
        errors.append(np.linalg.norm(solution.value - expected) / np.linalg.norm(expected))
    assert errors[1] <= errors[0]
    assert errors[1] < 1e-9


def _poisson(grid: int) -> np.ndarray:
    second = scipy.sparse.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(grid, grid))
    eye = scipy.sparse.identity(grid)
    return (scipy.sparse.kron(second, eye) + scipy.sparse.kron(eye, second)).toarray()


def test_small_fronts_get_the_unpadded_scalar_plan():
    matrix = _poisson(24)
    rows, cols = np.nonzero(matrix)
    analysis = analyse(matrix.shape[0], rows, cols)
    assert analysis.classes == () and analysis.levels is not None
    assert analysis.stored == analysis.nnz_factor  # no padding
    plan = analysis.levels
    # Every level's updates and entries come in batches of their own, in a few runs.
    assert plan.steps >= 3 * (analysis.height - 1)
    assert 1 <= len(plan.update_runs) <= 4 and 1 <= len(plan.solve_runs) <= 4
    # Padding targets scratch places past the stored values; the rest are the updates.
    below = plan.columns[: plan.entries - matrix.shape[0]]
    count = np.bincount(below, minlength=matrix.shape[0]) + 1
    assert np.sum(plan.updates[0] < plan.entries) == update_count(count)
    assert np.all(plan.updates[0] < plan.entries + plan.scratch[0])


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), density=st.floats(0.0, 0.4), seed=st.integers(0, 2**16))
def test_scalar_plan_stores_l_in_solve_order(n, density, seed):
    matrix = _random_symmetric(np.random.default_rng(seed), n, density) + n * np.eye(n)
    rows, cols = np.nonzero(matrix)
    plan = analyse(n, rows, cols, SCALAR).levels
    below = plan.entries - n
    # Every entry below the diagonal is stored once, by level of its column.
    real = plan.forward[1] < n
    assert np.sum(real) == below == plan.columns.size - plan.widest
    # Each solve block's values are the slice of the stored entries at its offset.
    starts = [s + t * z for s, steps, z in plan.solve_runs for t in range(steps)]
    sizes = [z for _, steps, z in plan.solve_runs for _ in range(steps)]
    assert len(starts) == plan.offsets.size
    for start, size, offset in zip(starts, sizes, plan.offsets, strict=True):
        block = plan.forward[:, start : start + size]
        count = int(np.sum(block[1] < n))
        assert np.all(block[1, :count] < n) and np.all(block[1, count:] == n)
        assert np.array_equal(plan.columns[offset : offset + count], block[1, :count])
        assert offset + size <= below + plan.slack
    # Updates and assembly read and write stored values (or the scratch past them).
    assert np.all(plan.assemble[1] < plan.entries)
    assert np.all(plan.updates[1:3] <= plan.entries)


def _dense_ldl(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``L`` (unit lower) and ``d`` of ``matrix = L diag(d) Lᵀ``, without pivoting."""
    n = matrix.shape[0]
    lower, d = np.eye(n), np.zeros(n)
    work = matrix.astype(float).copy()
    for k in range(n):
        d[k] = work[k, k]
        lower[k + 1 :, k] = work[k + 1 :, k] / d[k]
        work[k + 1 :, k + 1 :] -= np.outer(lower[k + 1 :, k], work[k, k + 1 :])
    return lower, d


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 40), density=st.floats(0.0, 0.4), seed=st.integers(0, 2**16))
def test_scalar_plan_run_step_by_step_is_the_dense_ldl(n, density, seed):
    # The plan's updates and finalisations, run in NumPy block by block as the numeric
    # code runs them, give the dense LDLᵀ in the analysed order, and every nonzero of
    # the dense L is a stored entry.
    rng = np.random.default_rng(seed)
    matrix = _random_symmetric(rng, n, density) + n * np.eye(n)
    rows, cols = np.nonzero(matrix)
    analysis = analyse(n, rows, cols, SCALAR)
    plan = analysis.levels
    values = np.zeros(plan.entries + plan.scratch[0])
    np.add.at(values, plan.assemble[1], matrix[rows, cols][plan.assemble[0]])
    scaled = np.zeros_like(values)
    for (start, steps, size), width in zip(plan.update_runs, plan.widths, strict=True):
        for t in range(steps):
            target, left, right, first = plan.updates[:, start + t * size : start + (t + 1) * size]
            if first[0] > 0:
                below = slice(n + first[0] - 1, n + first[0] - 1 + width)
                pivots = values[plan.columns[first[0] - 1 : first[0] - 1 + width]]
                scaled[below] = values[below] / np.where(pivots == 0, 1, pivots)
            np.add.at(values, target, -values[left] * scaled[right])
    lower, d = _dense_ldl(matrix[np.ix_(analysis.order, analysis.order)])
    real = plan.forward[1] < n
    entry_rows, entry_cols = plan.forward[0][real], plan.forward[1][real]
    np.testing.assert_allclose(values[:n], d, rtol=1e-10)
    np.testing.assert_allclose(scaled[n : plan.entries], lower[entry_rows, entry_cols], atol=1e-10)
    stored = np.eye(n, dtype=bool)
    stored[entry_rows, entry_cols] = True
    assert not np.any((np.abs(lower) > 1e-12) & ~stored)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 5000), min_size=1, max_size=40),
    max_runs=st.integers(1, 6),
)
def test_runs_cover_the_levels_in_order(counts, max_runs):
    counts = np.array(counts)
    runs = _runs(counts, max_runs)
    assert 1 <= len(runs) <= max_runs
    assert sum(levels for levels, _ in runs) == counts.size
    first = 0
    for levels, size in runs:
        if levels == 1:
            assert size == counts[first]  # one batch of exactly its updates
        first += levels
    # Laid out: each level from a new block, its items in order, padding spread.
    items = np.arange(counts.sum())[None]
    laid, runs_laid, scratch, firsts = _lay_out(items, counts, np.array([-1]), 0, 10**9)
    real = laid[0][laid[0] < 10**9]
    assert np.array_equal(real, items[0])
    # Each level's first slot holds its first item; the runs in order.
    assert np.array_equal(laid[0, firsts[0]], np.cumsum(counts) - counts)
    levels = [levels for levels, _ in _runs(counts)]
    assert np.array_equal(firsts[1], np.repeat(np.arange(len(levels)), levels))
    assert sum(steps * size for _, steps, size in runs_laid) == laid.shape[1]
    padding = laid[0][laid[0] >= 10**9] - 10**9 - 1
    assert np.all((padding >= 0) & (padding < max(scratch, 1)))


def _runs_by_rescanning(counts, max_runs):
    """`_runs`'s greedy merging, written plainly: rescan every adjacent pair per merge."""
    per_level = -(-counts[:, None] // _SIZES[None, :]) * (_LOOP_SLOT * _SIZES + _STEP_OVERHEAD)
    best = np.argmin(per_level, axis=1)
    starts = [0, *(np.flatnonzero(np.diff(best)) + 1)]
    ends = [*starts[1:], counts.size]
    runs = [(a, b, per_level[a:b].sum(axis=0)) for a, b in zip(starts, ends, strict=True)]

    def alone(run):
        a, b, cost = run
        return counts[a] + _STEP_OVERHEAD if b - a == 1 else cost.min()

    while len(runs) > 1:
        added = [
            (left[2] + right[2]).min() - alone(left) - alone(right)
            for left, right in itertools.pairwise(runs)
        ]
        r = int(np.argmin(added))
        if len(runs) <= max_runs and added[r] >= _RUN_COST:
            break
        runs[r : r + 2] = [(runs[r][0], runs[r + 1][1], runs[r][2] + runs[r + 1][2])]
    return [
        (b - a, int(counts[a]) if b - a == 1 else int(_SIZES[np.argmin(cost)]))
        for a, b, cost in runs
    ]


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.sampled_from([1, 2, 20, 300, 5000, 70000]), min_size=1, max_size=80),
    max_runs=st.integers(1, 6),
)
def test_runs_merge_as_the_plain_greedy_does(counts, max_runs):
    counts = np.array(counts)
    assert _runs(counts, max_runs) == _runs_by_rescanning(counts, max_runs)


def test_runs_of_a_deep_tree_with_alternating_level_sizes():
    # Minimum degree's tree of a long band: 10⁵ levels whose preferred block sizes
    # alternate (the rescanning greedy takes minutes here: 12 s at 2·10⁴ levels).
    counts = np.tile([1, 70000], 50000)
    runs = _runs(counts)
    assert 1 <= len(runs) <= 4 and sum(levels for levels, _ in runs) == counts.size


def test_poisson_plan_is_shallow_and_has_few_size_classes():
    matrix = _poisson(24)
    rows, cols = np.nonzero(matrix)
    analysis = analyse(matrix.shape[0], rows, cols, FRONTS)
    assert analysis.height <= 3 * np.log2(matrix.shape[0])
    sizes = [plan.size for plan in analysis.classes]
    assert sizes == sorted(set(sizes))
    assert len(sizes) <= np.log2(max(sizes)) + 1
    assert sum(int(plan.pivots.sum()) for plan in analysis.classes) == matrix.shape[0]
    _check(matrix, np.random.default_rng(0))


def test_size_classes_are_capped_and_only_move_up():
    # Fronts in eight classes, the large ones dominating the work.
    size_class = np.repeat(np.arange(3, 11), [4000, 2000, 800, 300, 80, 20, 5, 2])
    merged = _merge_classes(size_class)
    assert np.unique(merged).size <= _MAX_CLASSES
    assert np.all(merged >= size_class)
    # Moving up is monotone: a parent's class stays at least its child's.
    order = np.argsort(size_class, kind="stable")
    assert np.all(np.diff(merged[order]) >= 0)
    # A cheap merge is made even under the cap: few small fronts beside many large.
    assert np.unique(_merge_classes(np.array([4] * 3 + [8] * 500))).tolist() == [8]


def test_nested_dissection_is_a_permutation_with_separator_last():
    graph = adjacency(9, np.arange(8), np.arange(1, 9))
    order = nested_dissection(graph, leaf_size=2)
    assert sorted(order.tolist()) == list(range(9))
    assert order[-1] == 4


def test_lineax_solve_float32_and_inertia():
    rng = np.random.default_rng(1)
    off = _random_symmetric(rng, 30, 0.2)
    matrix = off + np.diag(np.where(np.arange(30) < 20, 1.0, -1.0) * (np.abs(off).sum(1) + 1))
    operator = _operator(matrix, dtype=jnp.float32)
    rhs = jnp.asarray(rng.standard_normal(30), jnp.float32)
    solution = jax.jit(lambda op, b: lx.linear_solve(op, b, SparseLDL()))(operator, rhs)
    assert solution.value.dtype == jnp.float32
    np.testing.assert_allclose(solution.value, np.linalg.solve(matrix, rhs), rtol=1e-4, atol=1e-4)
    assert tuple(int(i) for i in solution.stats["inertia"]) == (20, 10, 0)


def test_vmap_over_matrices_with_one_pattern():
    rng = np.random.default_rng(2)
    off = _random_symmetric(rng, 25, 0.2)
    base = off + np.diag(np.abs(off).sum(1) + 1.0)
    rows, cols = np.nonzero(base)
    structure = SparseStructure(np.stack([rows, cols], axis=1), base.shape)
    scales = np.array([1.0, 2.0, -3.0])
    datas = jnp.asarray(np.stack([s * base[rows, cols] for s in scales]))
    rhs = jnp.asarray(rng.standard_normal(25))

    def solve_one(data):
        operator = SparseMatrixLinearOperator.from_structure(data, structure, lx.symmetric_tag)
        solution = lx.linear_solve(operator, rhs, SparseLDL())
        return solution.value, solution.stats["inertia"]

    values, (positive, negative, zero) = jax.jit(jax.vmap(solve_one))(datas)
    for k, s in enumerate(scales):
        np.testing.assert_allclose(values[k], np.linalg.solve(s * base, rhs), rtol=1e-10)
    assert positive.tolist() == [25, 25, 0] and negative.tolist() == [0, 0, 25]
    assert zero.tolist() == [0, 0, 0]
    fronts = analyse(25, rows, cols, FRONTS)
    batched = jax.vmap(lambda data: solve(fronts, factorize(fronts, data, 1e-12), rhs))(datas)
    for k, s in enumerate(scales):
        np.testing.assert_allclose(batched[k], np.linalg.solve(s * base, rhs), rtol=1e-10)


def test_prepared_solver_passes_its_index_arrays_as_arguments():
    """With the plan's arrays as jit arguments, the program's text does not grow with n."""
    run = eqx.filter_jit(lambda op, b, solver: lx.linear_solve(op, b, solver).value)
    sizes = {}
    for engine in (SCALAR, FRONTS):
        for grid in (8, 14):  # dense fronts: one size class at both sizes
            matrix = _poisson(grid) + np.eye(grid * grid)
            operator = _operator(matrix)
            rows, cols = np.nonzero(matrix)
            analysis = analyse(grid * grid, rows, cols, engine)
            arrays = {name: jnp.asarray(array) for name, array in operands(analysis).items()}
            prepared = SparseLDL(analysis=analysis, arrays=arrays)
            rhs = jnp.arange(grid * grid, dtype=jnp.float64)
            sizes[engine, grid] = len(run.lower(operator, rhs, prepared).as_text())
        expected = np.linalg.solve(matrix, rhs)
        np.testing.assert_allclose(run(operator, rhs, prepared), expected, rtol=1e-10)
        assert sizes[engine, 14] < 1.2 * sizes[engine, 8]  # constants: > 1.5x
    other = SparseLDL.from_structure(_operator(np.eye(3)).structure)
    with pytest.raises(ValueError, match="another sparsity pattern"):
        run(operator, rhs, other)


def _primitives(jaxpr) -> set[str]:
    names = set()
    for equation in jaxpr.eqns:
        names.add(equation.primitive.name)
        for sub in jax.core.subjaxprs(equation) if hasattr(jax.core, "subjaxprs") else ():
            names |= _primitives(sub)
        for value in equation.params.values():
            inner = getattr(value, "jaxpr", value)
            if hasattr(inner, "eqns"):
                names |= _primitives(inner)
    return names


def test_jaxpr_has_no_callback():
    matrix = _poisson(6)
    operator = _operator(matrix)
    rhs = jnp.ones(36)
    jaxpr = jax.make_jaxpr(jax.jit(lambda op, b: lx.linear_solve(op, b, SparseLDL()).value))(
        operator, rhs
    )
    names = _primitives(jaxpr.jaxpr)
    assert {"scan", "scatter-add"} <= names  # the walk reaches the factorization
    assert not [name for name in names if "callback" in name]


def test_grad_and_jvp_match_dense():
    rng = np.random.default_rng(3)
    off = _random_symmetric(rng, 12, 0.3)
    base = off + np.diag(np.abs(off).sum(1) + 1.0)
    rows, cols = np.nonzero(base)
    structure = SparseStructure(np.stack([rows, cols], axis=1), base.shape)
    rhs = jnp.asarray(rng.standard_normal(12))
    data0 = jnp.asarray(base[rows, cols])

    def sparse_loss(data, b):
        operator = SparseMatrixLinearOperator.from_structure(data, structure, lx.symmetric_tag)
        return jnp.sum(lx.linear_solve(operator, b, SparseLDL()).value ** 3)

    def dense_loss(data, b):
        matrix = jnp.zeros((12, 12)).at[rows, cols].add(data)
        return jnp.sum(jnp.linalg.solve(matrix, b) ** 3)

    for argnums in (0, 1):
        np.testing.assert_allclose(
            jax.grad(sparse_loss, argnums)(data0, rhs),
            jax.grad(dense_loss, argnums)(data0, rhs),
            rtol=1e-8,
        )
    tangent = jnp.asarray(rng.standard_normal(data0.shape))
    _, sparse_tangent = jax.jvp(lambda d: sparse_loss(d, rhs), (data0,), (tangent,))
    _, dense_tangent = jax.jvp(lambda d: dense_loss(d, rhs), (data0,), (tangent,))
    np.testing.assert_allclose(sparse_tangent, dense_tangent, rtol=1e-8)


def test_singular_and_nonfinite_are_reported():
    ones = _operator(np.ones((2, 2)))
    solution = lx.linear_solve(ones, jnp.ones(2), SparseLDL(), throw=False)
    assert solution.result == lx.RESULTS.singular
    assert int(solution.stats["inertia"][2]) == 1
    with pytest.raises(Exception, match="singular"):
        lx.linear_solve(ones, jnp.ones(2), SparseLDL())
    matrix = np.eye(3)
    matrix[1, 1] = np.nan
    solution = lx.linear_solve(_operator(matrix), jnp.ones(3), SparseLDL(), throw=False)
    assert solution.result == lx.RESULTS.singular


def test_missing_diagonal_and_lower_triangle():
    matrix = np.array([[0.0, 2.0, 0.0], [2.0, 0.0, 1.0], [0.0, 1.0, 0.0]]) + np.diag([0, 0, 0])
    solution = lx.linear_solve(
        _operator(matrix + 0.0), jnp.array([1.0, 2.0, 3.0]), SparseLDL(), throw=False
    )
    assert solution.result == lx.RESULTS.singular  # the first pivot is zero
    shifted = matrix + np.diag([1.0, 0.0, 0.0])  # pattern without the diagonal's (1, 1), (2, 2)
    rhs = np.array([1.0, 2.0, 3.0])
    solution = lx.linear_solve(_operator(shifted), jnp.asarray(rhs), SparseLDL(), throw=False)
    np.testing.assert_allclose(solution.value, np.linalg.solve(shifted, rhs))
    rows, cols = np.nonzero(np.tril(shifted))
    x, _, singular = _lower_solve(shifted, rows, cols, rhs)
    assert not singular
    np.testing.assert_allclose(x, np.linalg.solve(shifted, rhs))


def _lower_solve(matrix, rows, cols, rhs):
    analysis = analyse(matrix.shape[0], rows, cols)
    factor = factorize(analysis, jnp.asarray(matrix[rows, cols]), 1e-12)
    return solve(analysis, factor, jnp.asarray(rhs)), factor.inertia, factor.singular


def test_factor_too_large_for_memory_is_refused(monkeypatch):
    monkeypatch.setattr("asdex_opt._lineax._ldl._solver.memory_limit", lambda: 100)
    with pytest.raises(ValueError, match=r"GB\).*SparseLU"):
        lx.linear_solve(_operator(_poisson(4)), jnp.ones(16), SparseLDL())


def test_bad_input_points_to_sparse_lu():
    unsymmetric = np.array([[1.0, 2.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="SparseLU"):
        lx.linear_solve(_operator(unsymmetric), jnp.ones(2), SparseLDL())
    untagged = _operator(np.eye(2), tags=())
    with pytest.raises(ValueError, match="SparseLU"):
        lx.linear_solve(untagged, jnp.ones(2), SparseLDL())
    matrix = jsparse.BCOO.fromdense(jnp.eye(2))
    traced = jax.jit(
        lambda m: (
            lx.linear_solve(
                SparseMatrixLinearOperator(m, lx.symmetric_tag), jnp.ones(2), SparseLDL()
            ).value
        )
    )
    with pytest.raises(ValueError, match="from_structure"):
        traced(matrix)
