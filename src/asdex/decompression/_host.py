"""Host output formats: NumPy and SciPy matrices built from concrete nonzero values."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import scipy.sparse


def check_concrete(values: Any, output_format: str) -> None:
    """Raise a `TypeError` when `values` are traced: host formats need concrete values.

    Examples:
        >>> check_concrete(np.ones(2), "scipy_csr")
    """
    if isinstance(values, jax.core.Tracer):
        raise TypeError(
            f"output_format={output_format!r} builds a host (NumPy/SciPy) matrix, which "
            "cannot be done inside a JAX transformation (jax.jit, vmap, grad, ...). Use "
            "output_format='bcoo' or 'dense' there, or call the function outside the "
            "transformation."
        )


def host_cast(values: np.ndarray, dtype: Any) -> np.ndarray:
    """Cast values to a block's dtype, dropping the imaginary part for a real dtype.

    Examples:
        >>> host_cast(np.array([1 + 2j]), np.float32).tolist()
        [1.0]
    """
    if np.iscomplexobj(values) and not np.issubdtype(dtype, np.complexfloating):
        values = values.real
    return values.astype(dtype)


def host_block(
    data: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    m: int,
    n: int,
    shape: tuple[int, ...],
    output_format: str,
) -> Any:
    """One block from its entries at flat `(rows, cols)` of an `(m, n)` matrix.

    "numpy_dense" gives an array of the block's full `shape`; the SciPy formats give
    2-D sparse arrays of shape `(m, n)` (SciPy's compressed formats are 2-D only).

    Examples:
        >>> block = host_block(np.array([1.0, 2.0]), np.array([0, 1]), np.array([1, 0]),
        ...                    2, 2, (2, 2), "scipy_csr")
        >>> block.toarray().tolist()
        [[0.0, 1.0], [2.0, 0.0]]
    """
    if output_format == "numpy_dense":
        dense = np.zeros((m, n), data.dtype)
        dense[rows, cols] = data
        return dense.reshape(shape)
    coo = scipy.sparse.coo_array((data, (rows, cols)), shape=(m, n))
    if output_format == "scipy_coo":
        return coo
    if output_format == "scipy_csr":
        return coo.tocsr()
    if output_format == "scipy_csc":
        return coo.tocsc()
    raise ValueError(f"Unknown host output format {output_format!r}.")
