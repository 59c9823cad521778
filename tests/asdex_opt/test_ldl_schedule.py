"""SparseLDL's dense-front plan: fitted size classes and the tiled partial LDLᵀ."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asdex_opt._lineax._ldl import _numeric, _schedule, analyse
from asdex_opt._lineax._ldl._numeric import _partial_ldl, factorize, solve
from asdex_opt._lineax._ldl._schedule import _MAX_CLASSES, _fitted, _merge_classes, _tile

FRONTS = -1
"""`analyse`'s ``max_scalar_updates`` that forces dense fronts."""


pytestmark = pytest.mark.usefixtures("x64_module")


def _dense_ldl(front: np.ndarray, k: int):
    """``(L̃⁻¹, d, Schur complement)`` of eliminating the first ``k`` pivots in NumPy."""
    size = front.shape[0]
    lower = np.eye(size)
    a = front.copy()
    d = np.ones(size)
    for j in range(k):
        d[j] = a[j, j]
        lower[j + 1 :, j] = a[j + 1 :, j] / d[j]
        a[j + 1 :, j + 1 :] -= np.outer(lower[j + 1 :, j], a[j, j + 1 :])
    return np.linalg.inv(lower), d, a[k:, k:]


def _check_partial_ldl(fronts: np.ndarray, pivots: np.ndarray, tile: int, depth: int) -> None:
    """`_partial_ldl` on a batch against `_dense_ldl`, front by front."""
    count, size, _ = fronts.shape
    width = min(size, tile * -(-int(pivots.max()) // tile))
    with pytest.MonkeyPatch.context() as patch:  # small blocks split too
        patch.setattr(_numeric, "_SPLIT_ABOVE", 0)
        h, d, schur = jax.jit(_partial_ldl, static_argnums=(2, 3, 4))(
            jnp.asarray(fronts), jnp.asarray(pivots), tile, width, depth
        )
    assert h.shape == (count, size, width)
    for b, k in enumerate(pivots.tolist()):
        inverse, pivot, update = _dense_ldl(fronts[b], k)
        np.testing.assert_allclose(h[b][:, :k], inverse[:, :k], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(d[b][:k], pivot[:k], rtol=1e-10)
        np.testing.assert_array_equal(d[b][k:], 1.0)
        trailing = np.tril(np.asarray(schur[b])[k:, k:])
        np.testing.assert_allclose(trailing, np.tril(update), rtol=1e-9, atol=1e-9)


def _indefinite_fronts(rng: np.random.Generator, count: int, size: int) -> np.ndarray:
    """Symmetric fronts with a dominant diagonal of mixed signs."""
    fronts = []
    for _ in range(count):
        a = rng.standard_normal((size, size))
        sign = np.where(rng.random(size) < 0.3, -1.0, 1.0)
        fronts.append(a @ a.T / size + np.diag(sign * (size + rng.random(size))))
    return np.stack(fronts)


@pytest.mark.parametrize(
    "size, tile, pivots, depth",
    [
        (40, 8, [40, 3, 0], 3),  # all pivots in one front: halves down to single tiles
        (40, 8, [40, 21, 7], 1),  # halves once, each eliminated in tiles
        (40, 8, [17, 9, 2], 1),  # pivots in the first three tiles: a block, then the rest
        (40, 8, [6, 1, 8], 0),  # pivots in one tile: the rank-k update alone
        (24, 8, [5, 0, 3], 2),  # the second half skipped: no front has pivots there
        (32, 8, [30, 12, 0], 0),  # one block in tiles, as a whole
    ],
)
def test_partial_ldl_matches_dense_elimination(size, tile, pivots, depth):
    rng = np.random.default_rng(size + sum(pivots))
    fronts = _indefinite_fronts(rng, len(pivots), size)
    _check_partial_ldl(fronts, np.array(pivots), tile, depth)


@pytest.mark.slow
@settings(max_examples=6, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    tile=st.sampled_from([8, 16]),
    tiles=st.integers(2, 7),
    count=st.integers(1, 3),
    depth=st.integers(0, 3),
)
def test_partial_ldl_matches_dense_elimination_at_random(seed, tile, tiles, count, depth):
    size = tile * tiles
    rng = np.random.default_rng(seed)
    limit = int(rng.integers(1, size + 1))
    pivots = rng.integers(0, limit + 1, count)
    pivots[rng.integers(count)] = limit
    _check_partial_ldl(_indefinite_fronts(rng, count, size), pivots, tile, depth)


@settings(max_examples=25)
@given(st.lists(st.integers(1, 5000), min_size=1, max_size=20))
def test_fitted_sizes_hold_the_fronts_in_whole_tiles(largest):
    fitted = _fitted(np.array(largest))
    for rows, size in zip(largest, fitted.tolist(), strict=True):
        assert rows <= size < rows + _tile(rows)
        assert size % _tile(size) == 0 and _tile(size) == _tile(rows)


@settings(max_examples=30)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=300))
def test_merging_fitted_classes_is_capped_and_monotone(rows):
    rows = np.array(rows)
    grid = np.ceil(4 * np.log2(rows)).astype(np.int64)
    merged = _merge_classes(grid, rows)
    assert np.unique(merged).size <= _MAX_CLASSES
    assert np.all(merged >= grid)
    order = np.argsort(grid, kind="stable")
    assert np.all(np.diff(merged[order]) >= 0)


def _merge_by_members(size_class: np.ndarray, size: np.ndarray) -> np.ndarray:
    """`_merge_classes` as documented: one move at a time, the classes recounted each time."""
    size_class = size_class.copy()
    while (classes := np.unique(size_class)).size > 1:
        counts = np.array([np.sum(size_class == c) for c in classes])
        largest = np.array([size[size_class == c].max() for c in classes], float)
        work = counts * largest**3
        added = counts[:-1] * largest[1:] ** 3 - work[:-1]
        c = int(np.argmin(added))
        small = added[c] <= max(_schedule._FREE_MERGE * work.sum(), _schedule._MERGE_WORK)
        if classes.size <= _MAX_CLASSES and not small:
            break
        size_class[size_class == classes[c]] = classes[c + 1]
    return size_class


@settings(max_examples=30)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=200), st.sampled_from([0, 1 << 24]))
def test_merging_classes_moves_one_class_at_a_time(rows, merge_work):
    rows = np.array(rows)
    # Some fronts raised above their grid class, as parents of larger fronts are.
    grid = np.ceil(4 * np.log2(rows)).astype(np.int64) + 3 * (rows % 4 == 0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_schedule, "_MERGE_WORK", merge_work)
        np.testing.assert_array_equal(_merge_classes(grid, rows), _merge_by_members(grid, rows))


def _grid(side: int) -> np.ndarray:
    """The 2-D Laplacian on a ``side x side`` grid, made indefinite by a shift."""
    one = np.diag(np.full(side, 2.0)) - np.eye(side, k=1) - np.eye(side, k=-1)
    return np.kron(one, np.eye(side)) + np.kron(np.eye(side), one)


@pytest.mark.parametrize("side, shift, merge_work", [(13, 0.0, None), (21, 0.3, 0)])
def test_grid_plan_fits_its_fronts_and_solves(side, shift, merge_work, monkeypatch):
    if merge_work is not None:  # several classes, extended into one another
        monkeypatch.setattr(_schedule, "_MERGE_WORK", merge_work)
    matrix = _grid(side) - shift * np.eye(side * side)
    rows, cols = np.nonzero(matrix)
    analysis = analyse(matrix.shape[0], rows, cols, FRONTS)
    sizes = [plan.size for plan in analysis.classes]
    assert sizes == sorted(set(sizes)) and len(sizes) <= _MAX_CLASSES
    assert len(sizes) == (1 if merge_work is None else 3)
    for plan in analysis.classes:
        used = (plan.variables < analysis.n).sum(axis=-1)
        real = plan.pivots > 0
        # Each class is as large as its largest front, to a whole tile.
        assert used[real].max() > plan.size - plan.tile
        assert plan.size % plan.tile == 0
    assert sum(int(plan.pivots.sum()) for plan in analysis.classes) == matrix.shape[0]

    @jax.jit
    def run(data, b):
        factor = factorize(analysis, data, 1e-12)
        return solve(analysis, factor, b), factor.inertia

    rhs = np.random.default_rng(side).standard_normal(matrix.shape[0])
    x, inertia = run(jnp.asarray(matrix[rows, cols]), jnp.asarray(rhs))
    np.testing.assert_allclose(x, np.linalg.solve(matrix, rhs), rtol=1e-8, atol=1e-8)
    eigenvalues = np.linalg.eigvalsh(matrix)
    assert [int(i) for i in inertia] == [
        int(np.sum(eigenvalues > 0)),
        int(np.sum(eigenvalues < 0)),
        0,
    ]


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_partial_ldl_by_halves_under_vmap(dtype, monkeypatch):
    """Halving (with its skipped second half) batched by vmap: as each front alone."""
    monkeypatch.setattr(_numeric, "_SPLIT_ABOVE", 0)
    rng = np.random.default_rng(7)
    fronts = jnp.asarray(_indefinite_fronts(rng, 6, 32).reshape(3, 2, 32, 32), dtype)
    pivots = jnp.array([[32, 5], [12, 3], [20, 0]])  # the middle pair skips the second half
    run = jax.jit(jax.vmap(lambda f, k: _partial_ldl(f, k, 8, 32, 1)))
    h, d, schur = run(fronts, pivots)
    tol = 1e-4 if dtype == jnp.float32 else 1e-10
    for i in range(3):
        for b in range(2):
            k = int(pivots[i, b])
            inverse, pivot, update = _dense_ldl(np.asarray(fronts[i, b], np.float64), k)
            assert h.dtype == dtype
            np.testing.assert_allclose(h[i, b][:, :k], inverse[:, :k], rtol=tol, atol=tol)
            np.testing.assert_allclose(d[i, b][:k], pivot[:k], rtol=tol)
            trailing = np.tril(np.asarray(schur[i, b])[k:, k:])
            np.testing.assert_allclose(trailing, np.tril(update), rtol=tol, atol=tol * 32)
