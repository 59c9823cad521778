"""The pattern algebra's own NumPy paths against dense references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from asdex.detection._hessian._pairs import PairSet
from asdex.detection._maps import SMALL, csr, empty_pattern, gather_rows, union


def _random_pattern(rng: np.random.Generator, size: int, n: int, density: float) -> sp.csr_array:
    return sp.csr_array(rng.random((size, n)) < density)


def test_wrapped_arrays_are_a_valid_scipy_array():
    dense = np.array([[0, 1, 0, 1], [0, 0, 0, 0], [1, 0, 0, 0]], bool)
    checked = sp.csr_array(dense)
    wrapped = csr(checked.indices, checked.indptr, (3, 4))
    wrapped.check_format(full_check=True)
    assert wrapped.shape == (3, 4) and wrapped.nnz == 3
    np.testing.assert_array_equal(wrapped.toarray(), dense)
    np.testing.assert_array_equal((wrapped + checked.T.T).toarray(), dense)
    np.testing.assert_array_equal((wrapped.T @ wrapped).toarray(), dense.T @ dense)
    assert empty_pattern(5, 7).toarray().shape == (5, 7) and empty_pattern(5, 7).nnz == 0


@pytest.mark.parametrize("density", [0.05, 0.5])
def test_gather_rows_takes_rows_and_empties_minus_one(density):
    rng = np.random.default_rng(0)
    pattern = _random_pattern(rng, 30, 20, density)
    source = rng.integers(-1, 30, 50)
    expected = np.where((source >= 0)[:, None], pattern.toarray()[source], False)
    np.testing.assert_array_equal(gather_rows(pattern, source).toarray(), expected)
    assert gather_rows(pattern, np.arange(30)) is pattern


@pytest.mark.parametrize("size, n, density", [(1, 30, 0.3), (1, 5, 0.9), (40, 30, 0.1),
                                             (300, 200, 0.2)])
def test_union_is_the_elementwise_or(size, n, density):
    rng = np.random.default_rng(1)
    patterns = [_random_pattern(rng, size, n, density) for _ in range(3)]
    if size == 300:
        assert sum(p.nnz for p in patterns) > SMALL  # SciPy's path
    result = union([*patterns, empty_pattern(size, n)], size, n)
    expected = patterns[0].toarray() | patterns[1].toarray() | patterns[2].toarray()
    np.testing.assert_array_equal(result.toarray(), expected)
    assert result.nnz == expected.sum()  # no duplicate entries
    result.check_format(full_check=True)


@pytest.mark.parametrize("density", [0.05, 0.9])
def test_pair_set_is_the_symmetric_product(density):
    rng = np.random.default_rng(2)
    n = 150
    pairs, expected = PairSet(n), np.zeros((n, n), bool)
    for d in (density, 0.05, density):  # 0.9: SciPy's products and listed pairs mixed
        a, b = (_random_pattern(rng, 20, n, d) for _ in range(2))
        pairs.add_rowwise(a, b)
        expected |= (a.toarray().T.astype(int) @ b.toarray().astype(int)) > 0
    expected |= expected.T
    rows, cols = pairs.coo()
    assert list(zip(rows, cols, strict=True)) == sorted(zip(*np.nonzero(expected), strict=True))
