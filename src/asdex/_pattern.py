"""Immutable pattern data: `SparsityPattern`, `ColoredPattern` and `StarSet`."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
from typing import Any, Literal

import jax
import numpy as np
from numpy.typing import NDArray

from asdex._display import render_coloring, render_sparsity
from asdex._io import VERSION, decode_tree, encode_tree, read, write
from asdex._plan import DecompressionPlan

JacobianMode = Literal["fwd", "rev"]
"""AD mode for Jacobians: "fwd" uses JVPs, "rev" uses VJPs."""

HessianMode = Literal["fwd_over_rev", "rev_over_fwd", "rev_over_rev"]
"""AD composition strategy for Hessian-vector products."""

ColoringMode = Literal["fwd", "rev", "fwd_over_rev", "rev_over_fwd", "rev_over_rev"]
"""Every resolved mode a `ColoredPattern` can carry."""


def _as_index_array(values: Any, name: str) -> NDArray[np.int32]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be one-dimensional, got shape {array.shape}.")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"`{name}` must hold integers, got dtype {array.dtype}.")
    return array.astype(np.int32, copy=False)


@dataclasses.dataclass(frozen=True, eq=False)
class SparsityPattern:
    """Structure of a sparse matrix: where its nonzeros may be, never their values.

    Entries are stored sorted by row, then column, without duplicates.

    Attributes:
        rows: Row indices of the nonzeros, shape `(nnz,)`.
        cols: Column indices of the nonzeros, shape `(nnz,)`.
        shape: Matrix dimensions `(m, n)`.
        input_avals: One pytree of `jax.ShapeDtypeStruct` per positional argument of
            the traced function. Defaults to a single 1-D aval of size `n`.
        argnums: Positions of `input_avals` that were differentiated.

    Examples:
        >>> import numpy as np
        >>> from asdex import SparsityPattern
        >>> p = SparsityPattern.from_coo([0, 1], [1, 0], (2, 2))
        >>> p.nnz
        2
    """

    rows: NDArray[np.int32]
    cols: NDArray[np.int32]
    shape: tuple[int, int]
    input_avals: tuple[Any, ...] = ()
    argnums: int | tuple[int, ...] = 0

    def __post_init__(self) -> None:
        """Validate inputs, canonicalize entries and fill in the default aval."""
        rows = _as_index_array(self.rows, "rows")
        cols = _as_index_array(self.cols, "cols")
        if rows.shape != cols.shape:
            raise ValueError(
                f"`rows` and `cols` must have the same length, got {rows.size} and {cols.size}."
            )
        if len(self.shape) != 2 or any(int(d) < 0 for d in self.shape):
            raise ValueError(f"`shape` must be a pair of non-negative ints, got {self.shape}.")
        m, n = (int(d) for d in self.shape)
        if rows.size and (rows.min() < 0 or rows.max() >= m):
            raise ValueError(f"Row indices must lie in [0, {m}), got range "
                             f"[{rows.min()}, {rows.max()}].")
        if cols.size and (cols.min() < 0 or cols.max() >= n):
            raise ValueError(f"Column indices must lie in [0, {n}), got range "
                             f"[{cols.min()}, {cols.max()}].")
        keys = rows.astype(np.int64) * max(n, 1) + cols
        if not np.all(keys[1:] > keys[:-1]):
            # Sorted, then deduplicated: ``np.unique`` hashes wide-range integers first,
            # many times slower than a sort.
            keys = np.sort(keys)
            keys = keys[np.r_[True, keys[1:] != keys[:-1]]]
            rows = (keys // max(n, 1)).astype(np.int32)
            cols = (keys % max(n, 1)).astype(np.int32)
        rows.setflags(write=False)
        cols.setflags(write=False)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "cols", cols)
        object.__setattr__(self, "shape", (m, n))
        argnums = self.argnums
        if not isinstance(argnums, int):
            argnums = tuple(int(a) for a in argnums)
            object.__setattr__(self, "argnums", argnums)
        if not self.input_avals:
            if not isinstance(argnums, int):
                raise ValueError("A tuple `argnums` needs explicit `input_avals`.")
            avals = [None] * (argnums + 1)
            avals[argnums] = jax.ShapeDtypeStruct((n,), np.float32)
            object.__setattr__(self, "input_avals", tuple(avals))
        total = sum(self.leaf_sizes)
        if total != n:
            raise ValueError(
                f"The differentiated inputs have {total} elements in all, but the pattern "
                f"has {n} columns."
            )

    # --- constructors -------------------------------------------------------------------

    @classmethod
    def from_coo(
        cls,
        rows: NDArray[np.int32] | list[int],
        cols: NDArray[np.int32] | list[int],
        shape: tuple[int, int],
        *,
        input_avals: tuple[Any, ...] = (),
        argnums: int | tuple[int, ...] = 0,
    ) -> SparsityPattern:
        """Create a pattern from row and column index arrays.

        Examples:
            >>> from asdex import SparsityPattern
            >>> SparsityPattern.from_coo([0, 0], [0, 2], (1, 3)).nnz
            2
        """
        return cls(np.asarray(rows), np.asarray(cols), tuple(shape), input_avals, argnums)

    @classmethod
    def from_dense(cls, dense: Any) -> SparsityPattern:
        """Create a pattern from a dense matrix; nonzero entries are pattern positions.

        Examples:
            >>> import numpy as np
            >>> from asdex import SparsityPattern
            >>> SparsityPattern.from_dense(np.eye(3)).nnz
            3
        """
        dense = np.asarray(dense)
        if dense.ndim != 2:
            raise ValueError(f"Expected a 2-D matrix, got shape {dense.shape}.")
        rows, cols = np.nonzero(dense)
        return cls(rows, cols, dense.shape)

    @classmethod
    def from_bcoo(cls, bcoo: Any) -> SparsityPattern:
        """Create a pattern from a 2-D `jax.experimental.sparse.BCOO` matrix.

        Explicitly stored entries are pattern positions, whatever their values.

        Examples:
            >>> from jax.experimental import sparse
            >>> import numpy as np
            >>> from asdex import SparsityPattern
            >>> SparsityPattern.from_bcoo(sparse.BCOO.fromdense(np.eye(2))).nnz
            2
        """
        if len(bcoo.shape) != 2 or bcoo.n_batch or bcoo.n_dense:
            raise ValueError("Expected an unbatched 2-D BCOO matrix without dense dimensions.")
        indices = np.asarray(bcoo.indices)
        m, n = bcoo.shape
        keep = (indices[:, 0] < m) & (indices[:, 1] < n)  # BCOO pads with out-of-range indices
        return cls(indices[keep, 0], indices[keep, 1], (m, n))

    # --- conversions --------------------------------------------------------------------

    def todense(self) -> NDArray[np.int8]:
        """Return a dense int8 matrix with ones at pattern positions."""
        dense = np.zeros(self.shape, dtype=np.int8)
        dense[self.rows, self.cols] = 1
        return dense

    def to_bcoo(self, data: Any = None) -> Any:
        """Return the pattern as a `BCOO` matrix, with `data` values (default: ones)."""
        from jax.experimental import sparse

        if data is None:
            data = np.ones(self.nnz, dtype=np.float32)
        indices = np.stack([self.rows, self.cols], axis=1)
        return sparse.BCOO(
            (jax.numpy.asarray(data), jax.numpy.asarray(indices)),
            shape=self.shape,
            indices_sorted=True,
            unique_indices=True,
        )

    def to_scipy(self) -> Any:
        """Return the pattern as a `scipy.sparse.csr_array` of booleans."""
        import scipy.sparse as sp

        return sp.csr_array(
            (np.ones(self.nnz, dtype=bool), (self.rows, self.cols)), shape=self.shape
        )

    # --- properties ---------------------------------------------------------------------

    @property
    def nnz(self) -> int:
        """Number of nonzeros."""
        return int(self.rows.size)

    @property
    def m(self) -> int:
        """Number of rows."""
        return self.shape[0]

    @property
    def n(self) -> int:
        """Number of columns."""
        return self.shape[1]

    @property
    def density(self) -> float:
        """Fraction of entries that are nonzero."""
        size = self.m * self.n
        return self.nnz / size if size else 0.0

    @property
    def argnums_tuple(self) -> tuple[int, ...]:
        """`argnums` as a tuple, whatever form it was given in."""
        return (self.argnums,) if isinstance(self.argnums, int) else self.argnums

    @property
    def dyn_avals(self) -> tuple[Any, ...]:
        """Sub-tuple of `input_avals` selected by `argnums`."""
        return tuple(self.input_avals[i] for i in self.argnums_tuple)

    @property
    def example_input(self) -> Any:
        """The aval structure that the returned Jacobian or Hessian mirrors."""
        if isinstance(self.argnums, int):
            return self.input_avals[self.argnums]
        return self.dyn_avals

    @property
    def input_treedef(self) -> Any:
        """Pytree structure of `dyn_avals`."""
        return jax.tree_util.tree_structure(self.dyn_avals)

    @property
    def leaf_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of the differentiated input leaves, in pytree order."""
        return tuple(tuple(leaf.shape) for leaf in jax.tree_util.tree_leaves(self.dyn_avals))

    @property
    def leaf_sizes(self) -> tuple[int, ...]:
        """Flat sizes of the differentiated input leaves, in pytree order."""
        return tuple(math.prod(shape) for shape in self.leaf_shapes)

    @functools.cached_property
    def csr(self) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
        """Row-major adjacency `(indptr, indices)`.

        The columns of row `i` are `indices[indptr[i]:indptr[i + 1]]`.
        """
        indptr = np.zeros(self.m + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.rows, minlength=self.m), out=indptr[1:])
        return indptr, self.cols

    @functools.cached_property
    def csc(self) -> tuple[NDArray[np.int64], NDArray[np.int32]]:
        """Column-major adjacency `(indptr, indices)`.

        The rows of column `j` are `indices[indptr[j]:indptr[j + 1]]`.
        """
        order = np.lexsort((self.rows, self.cols))
        indptr = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.cols, minlength=self.n), out=indptr[1:])
        return indptr, self.rows[order]

    @functools.cached_property
    def col_to_rows(self) -> list[NDArray[np.int32]]:
        """For each column, the row indices of its nonzeros."""
        indptr, indices = self.csc
        return np.split(indices, indptr[1:-1])

    @functools.cached_property
    def row_to_cols(self) -> list[NDArray[np.int32]]:
        """For each row, the column indices of its nonzeros."""
        indptr, indices = self.csr
        return np.split(indices, indptr[1:-1])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SparsityPattern):
            return NotImplemented
        return (
            self.shape == other.shape
            and np.array_equal(self.rows, other.rows)
            and np.array_equal(self.cols, other.cols)
        )

    def __hash__(self) -> int:
        return hash((self.shape, self.nnz, self.rows[:16].tobytes(), self.cols[:16].tobytes()))

    def __repr__(self) -> str:
        return f"SparsityPattern(shape={self.shape}, nnz={self.nnz}, density={self.density:.4g})"

    def __str__(self) -> str:
        return render_sparsity(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the pattern to an `.npz` file (no pickle).

        Examples:
            >>> import tempfile, pathlib
            >>> from asdex import SparsityPattern
            >>> file = pathlib.Path(tempfile.mkdtemp()) / "p.npz"
            >>> SparsityPattern.from_coo([0], [1], (1, 2)).save(file)
            >>> SparsityPattern.load(file).nnz
            1
        """
        write(path, "SparsityPattern", *_sparsity_parts(self))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SparsityPattern:
        """Load a pattern saved by `SparsityPattern.save`; a foreign file is a `ValueError`."""
        header, arrays = read(path, "SparsityPattern", versions=(1, VERSION))
        return _sparsity_from_parts(header, arrays, path)


class InvalidColoringError(ValueError):
    """Raised when a coloring violates the constraints of its kind."""


@dataclasses.dataclass(frozen=True, eq=False)
class StarSet:
    """The 2-colored stars of a star coloring, as needed by direct Hessian decompression.

    Every off-diagonal nonzero `(i, j)` (with `i < j`) of the symmetric pattern belongs to
    exactly one star; its value is read from the compressed column of the star's hub color.

    Attributes:
        edge_rows: Row `i` of each off-diagonal nonzero with `i < j`, shape `(e,)`.
        edge_cols: Column `j` of each such nonzero, shape `(e,)`.
        hubs: The hub vertex of the star that holds each edge, shape `(e,)`.
        star_ids: The star that holds each edge, shape `(e,)`.
    """

    edge_rows: NDArray[np.int32]
    edge_cols: NDArray[np.int32]
    hubs: NDArray[np.int32]
    star_ids: NDArray[np.int32]

    @property
    def num_stars(self) -> int:
        """Number of stars."""
        return int(self.star_ids.max()) + 1 if self.star_ids.size else 0


Partition = Literal["column", "row", "bidirectional"]
"""What a coloring colors: columns (JVPs or HVPs), rows (VJPs), or both."""

Algorithm = Literal["greedy", "star", "acyclic"]
"""How it colors: partial distance-2 ("greedy"), or a star (direct) or acyclic
(substitution) coloring of the adjacency graph (or, bidirectionally, of the augmented
graph `[[0, J], [J.T, 0]]`)."""


@dataclasses.dataclass(frozen=True, eq=False)
class ColoredPattern:
    """A sparsity pattern with a coloring, and the plan that decompresses it.

    Attributes:
        sparsity: The colored sparsity pattern.
        colors: Color of each vertex: shape `(m,)` in "rev" mode, `(n,)` otherwise,
            `(m + n,)` (rows first) for a bidirectional partition. `-1` is the neutral
            color: that vertex is never seeded.
        num_colors: Number of active colors, i.e. of JVPs, VJPs or HVPs.
        symmetric: Whether a symmetric (star or acyclic) coloring was used.
        mode: The resolved AD mode. A bidirectional coloring records "fwd": it
            linearizes `f` once and transposes the linearization for its VJPs.
        star_set: The star decomposition of a star coloring, else `None`; the plan's
            schedule reads each off-diagonal nonzero from its star's hub.
        algorithm: The coloring algorithm: "greedy", "star" or "acyclic".
        partition: What is colored: "column", "row" or "bidirectional".
        order: The vertex order the coloring used.
        plan: The seed passes and the decompression schedule. Every coloring function
            sets it; a `ColoredPattern` built by hand without one can be displayed and
            saved, but not evaluated.

    Examples:
        >>> import numpy as np
        >>> from asdex import ColoredPattern, SparsityPattern
        >>> p = SparsityPattern.from_dense(np.eye(2))
        >>> ColoredPattern(p, np.array([0, 0]), 1, False, "fwd").plan is None
        True
    """

    sparsity: SparsityPattern
    colors: NDArray[np.int32]
    num_colors: int
    symmetric: bool
    mode: ColoringMode
    star_set: StarSet | None = None
    algorithm: Algorithm | None = None
    partition: Partition | None = None
    order: str | None = None
    plan: DecompressionPlan | None = None

    def __post_init__(self) -> None:
        """Check that the plan's passes add up to `num_colors`."""
        if self.plan is not None and self.plan.num_colors != self.num_colors:
            raise ValueError(
                f"The plan's passes hold {self.plan.num_colors} products, but the coloring "
                f"has {self.num_colors} colors."
            )

    def require_plan(self, name: str) -> DecompressionPlan:
        """The plan, or a `ValueError` naming `name` when there is none.

        Examples:
            >>> import numpy as np
            >>> from asdex import ColoredPattern, SparsityPattern
            >>> p = SparsityPattern.from_dense(np.eye(2))
            >>> try:
            ...     ColoredPattern(p, np.array([0, 0]), 1, False, "fwd").require_plan("f")
            ... except ValueError as error:
            ...     print(str(error)[:50])
            f needs a ColoredPattern with a decompression plan
        """
        if self.plan is None:
            raise ValueError(
                f"{name} needs a ColoredPattern with a decompression plan, but this one has "
                "none (it was built by hand). Color the pattern with "
                "`jacobian_coloring_from_sparsity` or `hessian_coloring_from_sparsity`."
            )
        return self.plan

    def __repr__(self) -> str:
        return (
            f"ColoredPattern(shape={self.sparsity.shape}, nnz={self.sparsity.nnz}, "
            f"num_colors={self.num_colors}, mode={self.mode!r}, symmetric={self.symmetric})"
        )

    def __str__(self) -> str:
        return render_coloring(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Save the colored pattern, with its star set and plan, to an `.npz` file.

        Examples:
            >>> import tempfile, pathlib
            >>> import numpy as np
            >>> from asdex import ColoredPattern, SparsityPattern
            >>> p = SparsityPattern.from_coo([0], [1], (1, 2))
            >>> file = pathlib.Path(tempfile.mkdtemp()) / "c.npz"
            >>> ColoredPattern(p, np.array([0, 0]), 1, False, "fwd").save(file)
            >>> ColoredPattern.load(file).num_colors
            1
        """
        meta, arrays = _sparsity_parts(self.sparsity)
        meta["coloring"] = {
            "num_colors": int(self.num_colors),
            "symmetric": bool(self.symmetric),
            "mode": self.mode,
            "algorithm": self.algorithm,
            "partition": self.partition,
            "order": self.order,
        }
        arrays["colors"] = np.asarray(self.colors, dtype=np.int32)
        if self.star_set is not None:
            for name in _STAR_FIELDS:
                arrays[f"star_{name}"] = np.asarray(getattr(self.star_set, name))
        if self.plan is not None:
            plan_meta, plan_arrays = self.plan.to_arrays()
            meta["plan"] = plan_meta
            arrays.update({f"plan_{name}": array for name, array in plan_arrays.items()})
        write(path, "ColoredPattern", meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ColoredPattern:
        """Load a colored pattern saved by `ColoredPattern.save`.

        Raises:
            ValueError: If the file is not a saved `ColoredPattern`, or was saved by an
                older asdex (file version 1, without a decompression plan).
        """
        header, arrays = read(
            path, "ColoredPattern",
            old_version="It holds no decompression plan: load or detect its sparsity, color "
                        "it again (`jacobian_coloring_from_sparsity` or "
                        "`hessian_coloring_from_sparsity`) and save the new coloring.",
        )
        sparsity = _sparsity_from_parts(header, arrays, path)
        try:
            coloring = header["coloring"]
            star_set = None
            if "star_hubs" in arrays:
                star_set = StarSet(*(arrays[f"star_{name}"] for name in _STAR_FIELDS))
            plan = None
            if "plan" in header:
                plan = DecompressionPlan.from_arrays(
                    header["plan"],
                    {name[5:]: array for name, array in arrays.items()
                     if name.startswith("plan_")},
                )
            return cls(
                sparsity,
                arrays["colors"].astype(np.int32),
                int(coloring["num_colors"]),
                bool(coloring["symmetric"]),
                coloring["mode"],
                star_set,
                coloring["algorithm"],
                coloring["partition"],
                coloring["order"],
                plan,
            )
        except (KeyError, ValueError, TypeError) as error:
            raise ValueError(
                f"{os.fspath(path)!r} holds a malformed coloring: {error}"
            ) from None


_STAR_FIELDS = ("edge_rows", "edge_cols", "hubs", "star_ids")


def _sparsity_parts(pattern: SparsityPattern) -> tuple[dict, dict]:
    argnums = pattern.argnums
    meta = {
        "shape": list(pattern.shape),
        "argnums": argnums if isinstance(argnums, int) else list(argnums),
        "input_avals": encode_tree(tuple(pattern.input_avals)),
    }
    return meta, {"rows": pattern.rows, "cols": pattern.cols}


def _sparsity_from_parts(meta: dict, arrays: dict, path: Any) -> SparsityPattern:
    try:
        argnums = meta["argnums"]
        return SparsityPattern(
            arrays["rows"],
            arrays["cols"],
            tuple(meta["shape"]),
            decode_tree(meta["input_avals"]),
            argnums if isinstance(argnums, int) else tuple(argnums),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"{os.fspath(path)!r} holds a malformed pattern: {error}") from None


def as_pattern(sparsity: Any) -> SparsityPattern:
    """Accept a `SparsityPattern`, a 2-D array (nonzeros are the pattern) or a `BCOO`.

    Raises:
        ValueError: If the input is none of those, or not 2-D.

    Examples:
        >>> as_pattern(np.eye(2)).nnz
        2
    """
    if isinstance(sparsity, SparsityPattern):
        return sparsity
    if hasattr(sparsity, "indices") and hasattr(sparsity, "n_batch"):
        return SparsityPattern.from_bcoo(sparsity)
    try:
        dense = np.asarray(sparsity)
    except Exception as error:
        raise ValueError(f"Cannot read a sparsity pattern from {type(sparsity)}.") from error
    if dense.ndim != 2 or dense.dtype == object:
        raise ValueError(
            "Expected a SparsityPattern, a 2-D array or a 2-D BCOO matrix, got "
            f"{type(sparsity).__name__} with shape {getattr(dense, 'shape', None)}."
        )
    return SparsityPattern.from_dense(dense)


# --- pytree registration --------------------------------------------------------------
#
# Patterns are static data: they flatten to no leaves and travel as auxiliary data, so
# they can be passed into jitted code, and equal patterns hit the same compilation.


def _digest(*arrays: NDArray[Any]) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(b"|")
    return digest.hexdigest()


def _sparsity_key(pattern: SparsityPattern) -> tuple[Any, ...]:
    avals, avals_tree = jax.tree_util.tree_flatten(pattern.input_avals)
    return (
        pattern.shape,
        _digest(pattern.rows, pattern.cols),
        pattern.argnums,
        avals_tree,
        tuple((tuple(a.shape), np.dtype(a.dtype).str) for a in avals),
    )


def _coloring_key(colored: ColoredPattern) -> tuple[Any, ...]:
    star = colored.star_set
    star_digest = None if star is None else _digest(
        star.edge_rows, star.edge_cols, star.hubs, star.star_ids
    )
    return (
        _sparsity_key(colored.sparsity),
        _digest(np.asarray(colored.colors)),
        int(colored.num_colors),
        bool(colored.symmetric),
        colored.mode,
        star_digest,
        colored.algorithm,
        colored.partition,
        colored.order,
        colored.plan is None,
    )


class _Static:
    """A pattern as pytree auxiliary data: compared and hashed by content, computed once."""

    __slots__ = ("_hash", "key", "value")

    def __init__(self, value: Any, key: tuple[Any, ...]) -> None:
        self.value = value
        self.key = key
        self._hash = hash(key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Static) and self._hash == other._hash and self.key == other.key

    def __hash__(self) -> int:
        return self._hash


def _static(value: Any, make_key: Any) -> _Static:
    static = value.__dict__.get("_static")
    if static is None:
        static = _Static(value, make_key(value))
        object.__setattr__(value, "_static", static)
    return static


jax.tree_util.register_pytree_node(
    SparsityPattern,
    lambda p: ((), _static(p, _sparsity_key)),
    lambda static, _: static.value,
)
jax.tree_util.register_pytree_node(
    ColoredPattern,
    lambda c: ((), _static(c, _coloring_key)),
    lambda static, _: static.value,
)
