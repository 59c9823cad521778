"""Pattern builders shared by the coloring tests."""

import numpy as np

from asdex import SparsityPattern


def banded(n: int, b: int) -> SparsityPattern:
    rows = np.concatenate([np.arange(max(0, -k), n - max(0, k)) for k in range(-b, b + 1)])
    cols = np.concatenate([np.arange(max(0, k), n - max(0, -k)) for k in range(-b, b + 1)])
    return SparsityPattern.from_coo(rows, cols, (n, n))


def arrowhead(n: int) -> SparsityPattern:
    dense = np.eye(n)
    dense[0] = 1
    dense[:, 0] = 1
    return SparsityPattern.from_dense(dense)
