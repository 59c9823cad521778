"""Adjacency structures the coloring kernels walk: never the explicit conflict graph.

A *bipartite view* `(vertex → nets, net → vertices)` describes both problems at once:

* partial distance-2 coloring of columns: vertices are columns, nets are rows
  (two columns conflict when they share a row);
* distance-1 coloring of a symmetric graph: nets are the vertices themselves
  (`net → vertices` is the identity), so the neighbors of `v` are its adjacency list.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import NDArray

from asdex._pattern import SparsityPattern
from asdex._plan import index_array


@dataclasses.dataclass(frozen=True, eq=False)
class Bipartite:
    """Vertices, nets and the incidence between them, in both directions (CSR).

    Attributes:
        v_indptr: Pointer of the `vertex → nets` lists, shape `(num_vertices + 1,)`.
        v_nets: Concatenated `vertex → nets` lists.
        n_indptr: Pointer of the `net → vertices` lists, shape `(num_nets + 1,)`.
        n_vertices: Concatenated `net → vertices` lists.
    """

    v_indptr: NDArray[np.int64]
    v_nets: NDArray[np.int32]
    n_indptr: NDArray[np.int64]
    n_vertices: NDArray[np.int32]

    @property
    def num_vertices(self) -> int:
        """Number of vertices."""
        return self.v_indptr.size - 1


def column_bipartite(sparsity: SparsityPattern) -> Bipartite:
    """Columns as vertices, rows as nets.

    Examples:
        >>> column_bipartite(SparsityPattern.from_dense(np.eye(2))).num_vertices
        2
    """
    return Bipartite(*sparsity.csc, *sparsity.csr)


def row_bipartite(sparsity: SparsityPattern) -> Bipartite:
    """Rows as vertices, columns as nets.

    Examples:
        >>> row_bipartite(SparsityPattern.from_dense(np.ones((3, 2)))).num_vertices
        3
    """
    return Bipartite(*sparsity.csr, *sparsity.csc)


@dataclasses.dataclass(frozen=True, eq=False)
class SymmetricGraph:
    """The undirected adjacency graph of a square pattern, tied to its nonzero positions.

    An edge `{i, j}` (`i < j`) exists when `(i, j)` or `(j, i)` is a nonzero. Each edge has
    one *representative* nonzero position (`(i, j)` when present, else `(j, i)`); the other
    orientation, when present, is its *mirror*.

    Attributes:
        n: Number of vertices.
        indptr: Adjacency pointer (no self loops), shape `(n + 1,)`.
        indices: Adjacency lists, sorted within each vertex.
        edge_of: Edge id of each adjacency entry, shape `indices.shape`.
        edge_lo: Smaller endpoint of each edge, shape `(e,)`.
        edge_hi: Larger endpoint of each edge, shape `(e,)`.
        edge_pos: Representative nonzero position of each edge, shape `(e,)`.
        mirror_pos: Position of the other orientation, or -1, shape `(e,)`.
        diag_vertices: Vertices whose diagonal entry is a nonzero.
        diag_pos: Positions of those diagonal nonzeros.
    """

    n: int
    indptr: NDArray[np.int64]
    indices: NDArray[np.int32]
    edge_of: NDArray[np.int64]
    edge_lo: NDArray[np.int32]
    edge_hi: NDArray[np.int32]
    edge_pos: NDArray[np.int64]
    mirror_pos: NDArray[np.int64]
    diag_vertices: NDArray[np.int32]
    diag_pos: NDArray[np.int64]

    @property
    def num_edges(self) -> int:
        """Number of undirected edges."""
        return self.edge_lo.size

    def bipartite(self) -> Bipartite:
        """The distance-1 view: each vertex's nets are its neighbors, nets are vertices."""
        identity = np.arange(self.n + 1, dtype=np.int64)
        return Bipartite(self.indptr, self.indices, identity, index_array(identity[:-1]))


def symmetric_graph(sparsity: SparsityPattern) -> SymmetricGraph:
    """Build the adjacency graph of a square pattern (the union with its transpose).

    Raises:
        ValueError: If the pattern is not square.

    Examples:
        >>> g = symmetric_graph(SparsityPattern.from_dense(np.ones((2, 2))))
        >>> g.num_edges, g.diag_vertices.tolist()
        (1, [0, 1])
    """
    m, n = sparsity.shape
    if m != n:
        raise ValueError(f"Symmetric coloring needs a square pattern, got shape {(m, n)}.")
    rows = sparsity.rows.astype(np.int64)
    cols = sparsity.cols.astype(np.int64)
    positions = np.arange(sparsity.nnz, dtype=np.int64)
    diag = rows == cols
    off = ~diag
    lo = np.minimum(rows[off], cols[off])
    hi = np.maximum(rows[off], cols[off])
    keys, edge_index = np.unique(lo * n + hi, return_inverse=True)
    num_edges = keys.size
    upper = rows[off] < cols[off]
    upper_pos = np.full(num_edges, -1, dtype=np.int64)
    lower_pos = np.full(num_edges, -1, dtype=np.int64)
    upper_pos[edge_index[upper]] = positions[off][upper]
    lower_pos[edge_index[~upper]] = positions[off][~upper]
    edge_pos = np.where(upper_pos >= 0, upper_pos, lower_pos)
    mirror_pos = np.where(upper_pos >= 0, lower_pos, -1)
    edge_lo = index_array(keys // max(n, 1))
    edge_hi = index_array(keys % max(n, 1))
    edge_ids = np.arange(num_edges, dtype=np.int64)
    src = np.concatenate([edge_lo, edge_hi])
    dst = np.concatenate([edge_hi, edge_lo])
    eid = np.concatenate([edge_ids, edge_ids])
    order = np.lexsort((dst, src))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
    return SymmetricGraph(
        n=n,
        indptr=indptr,
        indices=index_array(dst[order]),
        edge_of=eid[order],
        edge_lo=edge_lo,
        edge_hi=edge_hi,
        edge_pos=edge_pos,
        mirror_pos=mirror_pos,
        diag_vertices=index_array(rows[diag]),
        diag_pos=positions[diag],
    )
