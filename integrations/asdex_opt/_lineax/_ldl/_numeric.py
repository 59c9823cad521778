"""Numeric LDLᵀ factorization and solves, as loops of batched dense operations in ``jit``.

The plan (`_schedule`) puts the fronts in size classes and chunks. Per class, one loop
runs over its chunks: a chunk ``(B, M, M)`` is assembled by one scatter of the
matrix entries and one scatter per class of children's update matrices, then its
first ``k`` pivots (``k`` per front) are eliminated: ``F = [[F11, F21ᵀ], [F21, F22]]``
gives ``F11 = L11 D L11ᵀ`` (symmetric elimination without pivoting, on blocks split
in halves down to tiles: a tile's pivots one by one, the rows and columns after a
block by products with that block), the update matrix ``F22 - L21 D L21ᵀ`` for the
parent, and ``H = L̃⁻¹`` of the front's unit lower triangle ``L̃ = [[L11, 0], [L21, I]]``,
so that each front's part of a triangular solve is one product. Without pivoting
this is stable for positive definite and, as Vanderbei (1995) shows, for
quasi-definite matrices ``[[H, Aᵀ], [A, -G]]`` (``H``, ``G`` positive definite) in any
symmetric order.
"""

import equinox as eqx
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array

from asdex_opt._lineax._ldl._level_numeric import factor_levels, safe_pivot, solve_levels
from asdex_opt._lineax._ldl._operands import operands
from asdex_opt._lineax._ldl._schedule import SizeClass
from asdex_opt._lineax._ldl._symbolic import Analysis

__all__ = ["Factor", "factorize", "solve"]


class Factor(eqx.Module):
    """The numeric factors of every size class, and what the pivots say.

    Attributes:
        fronts: Per class, ``(T, B, M, M)``: in the first ``k`` columns of each front
            ``H = L̃⁻¹`` (see the module docstring), in the others the update matrix.
            With the scalar plan (`_levels`), one vector: the pivots, then ``L``.
        pivots: Per class, ``(T, B, M)``: the diagonal of ``D`` (one past the pivots).
            With the scalar plan, the ``n`` pivots.
        inertia: Numbers of positive, negative and zero pivots (``int32`` scalars).
        singular: Whether a pivot was zero (relative to the largest one) or not finite.
        arrays: The plan's index arrays (`operands`) that the solves read.
    """

    fronts: tuple[Array, ...]
    pivots: tuple[Array, ...]
    inertia: tuple[Array, Array, Array]
    singular: Array
    arrays: dict[str, Array]


def _loop(count: int, body, init):
    """``lax.fori_loop(0, count, body, init)``; the body alone when ``count`` is one."""
    if count == 1:
        return body(jnp.zeros((), jnp.int32), init)
    return lax.fori_loop(0, count, body, init)


def _eliminate(block: Array, active: Array, count: Array) -> tuple[Array, Array]:
    """Eliminate the active pivots of a batch of blocks, one at a time.

    ``block`` is ``(B, T, T + C)``: a symmetric ``(B, T, T)`` block and ``C`` more
    columns that the row operations also transform. Active pivots (``active``,
    ``(B, T)``) form a prefix of each block, of at most ``count`` pivots. Pivot ``j``
    with the column ``l_j`` below it applies ``E_j⁻¹ = I - l_j e_jᵀ / a_jj`` to the rows.

    Returns:
        ``(block, d)``: the transformed block (the inactive part of the symmetric
        block updated) and the pivots (one where not active).
    """
    size = block.shape[1]
    index = jnp.arange(block.shape[2])
    keep = jnp.arange(block.shape[2]) >= size

    def step(j, carry):
        a, d = carry
        row = lax.dynamic_index_in_dim(a, j, axis=1, keepdims=False)
        pivot = lax.dynamic_index_in_dim(row, j, axis=1, keepdims=False)
        use = lax.dynamic_index_in_dim(active, j, axis=1, keepdims=False)
        row = jnp.where((index > j) | keep, row, 0)
        factor = jnp.where(use[:, None], row[:, :size] / safe_pivot(pivot)[:, None], 0)
        a = a - factor[:, :, None] * row[:, None, :]
        d = lax.dynamic_update_index_in_dim(d, jnp.where(use, pivot, 1), j, axis=1)
        return a, d

    return lax.fori_loop(0, count, step, (block, jnp.ones(block.shape[:2], block.dtype)))


def _tiled_ldl(front: Array, pivots: Array, tile: int, width: int):
    """`_partial_ldl` of a block, right-looking in tiles of ``tile`` pivots.

    On ``[F | H]`` with ``H`` starting as the first ``width`` columns of the identity,
    each tile's rows are transformed by `_eliminate` (which gives the tile's
    ``W = ∏ E_j⁻¹``), the rows below it by one product with ``W``, and the rest of
    ``[F | H]`` by one product (rows and columns outside the trailing part are zero in
    the factors, so the product keeps them).
    """
    count, size, _ = front.shape
    position = jnp.arange(size)
    eye = jnp.broadcast_to(jnp.eye(size, width, dtype=front.dtype), (count, size, width))
    both = jnp.concatenate([front, eye], axis=2)
    if tile >= size:
        both, d = _eliminate(both, position[None, :] < pivots[:, None], jnp.max(pivots))
        return both[:, :, size:], d, both[:, :, :size]
    tile_eye = jnp.broadcast_to(jnp.eye(tile, dtype=front.dtype), (count, tile, tile))

    def step(t, carry):
        both, d = carry
        start = t * tile
        zero = jnp.zeros_like(start)
        active = (start + jnp.arange(tile))[None, :] < pivots[:, None]
        rows = lax.dynamic_slice(both, (zero, start, zero), (count, tile, size + width))
        block = lax.dynamic_slice(rows, (zero, zero, start), (count, tile, tile))
        # The tile's rows, with W appended: [block | H rows | I].
        local = jnp.concatenate([block, rows[:, :, size:], tile_eye], axis=2)
        local, d_block = _eliminate(local, active, jnp.clip(jnp.max(pivots) - start, 0, tile))
        w = local[:, :, tile + width :]
        below = (position >= start + tile)[None, :, None]
        panel = lax.dynamic_slice(both, (zero, zero, start), (count, size, tile))
        x = jnp.einsum("bij,bkj->bik", jnp.where(below, panel, 0), w)
        x_active = jnp.where(active[:, None, :], x, 0)
        h_rows = jnp.where(active[:, :, None], local[:, :, tile : tile + width], 0)
        right = jnp.concatenate([jnp.swapaxes(x_active, 1, 2), h_rows], axis=2)
        both = both - jnp.einsum("bik,bkj->bij", x_active / d_block[:, None, :], right)
        both = lax.dynamic_update_slice(both, jnp.where(below, x, panel), (zero, zero, start))
        both = lax.dynamic_update_slice(both, local[:, :, :tile], (zero, start, start))
        both = lax.dynamic_update_slice(
            both, local[:, :, tile : tile + width], (zero, start, jnp.full_like(start, size))
        )
        d = lax.dynamic_update_slice(d, d_block, (zero, start))
        return both, d

    tiles = -(-jnp.max(pivots) // tile)
    init = (both, jnp.ones((count, size), front.dtype))
    both, d = lax.fori_loop(0, tiles, step, init)
    return both[:, :, size:], d, both[:, :, :size]


_DEPTH = 2
"""`_partial_ldl` halves a front this many times; the halves are eliminated in tiles."""

_SPLIT_ABOVE = 64
"""`_partial_ldl` splits only blocks of more rows than this (and than a tile)."""


def _partial_ldl(front: Array, pivots: Array, tile: int, width: int, depth: int):
    """Eliminate the first ``pivots[b]`` pivots of each front ``(B, M, M)``.

    On static blocks: the pivots lie in the first ``width`` columns (a multiple of
    ``tile``, or ``M``). Where ``width < M`` the leading ``width x width`` block is
    eliminated in tiles, then the rows below it take one product each for ``L21`` and
    for ``-L21 L11⁻¹``, and the rest of the front one update by ``L21 D L21ᵀ``. Where
    ``width = M`` the front is split into halves at a tile boundary (``depth`` times
    over): the first is factored, the second updated by it and then factored, unless
    no front has pivots there. Blocks that are not split, and fronts of at most
    `_SPLIT_ABOVE` rows, are eliminated in tiles (`_tiled_ldl`).

    Returns:
        ``(H, d, F)``: the first ``width`` columns of ``H = L̃⁻¹``, the pivots (one past
        them) and the front whose trailing part (rows and columns from ``pivots[b]``
        on, lower triangle) is the update matrix.
    """
    count, size, _ = front.shape
    if size <= max(tile, _SPLIT_ABOVE) or (width == size and depth == 0):
        return _tiled_ldl(front, pivots, tile, width)
    split = width if width < size else tile * -(-size // tile // 2)
    first = jnp.minimum(pivots, split)
    inner = 0 if width < size else depth - 1
    h11, d1, f11 = _partial_ldl(front[:, :split, :split], first, tile, split, inner)
    active = (jnp.arange(split)[None, :] < first[:, None])[:, None, :]
    # Rows below the block, times L̃11⁻ᵀ: L21 D in the pivot columns, updated entries in the others.
    x = jnp.einsum("bij,bkj->bik", front[:, split:, :split], h11)
    l21 = jnp.where(active, x / safe_pivot(d1)[:, None, :], 0)
    f22 = front[:, split:, split:] - jnp.einsum("bik,bjk->bij", l21, jnp.where(active, x, 0))
    h21 = -jnp.einsum("bik,bkj->bij", l21, h11)
    left = jnp.concatenate([f11, x], axis=1)
    if width < size:
        d = jnp.concatenate([d1, jnp.ones((count, size - split), front.dtype)], axis=1)
        right = jnp.concatenate([jnp.swapaxes(x, 1, 2), f22], axis=1)
        return jnp.concatenate([h11, h21], axis=1), d, jnp.concatenate([left, right], axis=2)
    rest = size - split
    second = jnp.clip(pivots - split, 0, rest)

    def skip(f22, second):
        eye = jnp.broadcast_to(jnp.eye(rest, dtype=front.dtype), (count, rest, rest))
        return eye, jnp.ones((count, rest), front.dtype), f22

    def factor(f22, second):
        return _partial_ldl(f22, second, tile, rest, depth - 1)

    h22, d2, f22 = lax.cond(jnp.max(second) > 0, factor, skip, f22, second)
    h = jnp.concatenate(
        [
            jnp.concatenate([h11, jnp.einsum("bij,bjk->bik", h22, h21)], axis=1),
            jnp.concatenate([jnp.zeros((count, split, rest), front.dtype), h22], axis=1),
        ],
        axis=2,
    )
    right = jnp.concatenate([jnp.swapaxes(x, 1, 2), f22], axis=1)
    return h, jnp.concatenate([d1, d2], axis=1), jnp.concatenate([left, right], axis=2)


def _factor_class(
    plan: SizeClass, c: int, arrays: dict[str, Array], data: Array, done: list[Array]
) -> tuple[Array, Array]:
    """Factor the fronts of class ``c``, chunk by chunk; ``done``: earlier classes'."""
    count, width, size = plan.chunks, plan.width, plan.size
    dtype = data.dtype
    entry_source = arrays[f"{c}/entry_source"]
    entry_target = arrays[f"{c}/entry_target"]
    pivots = arrays[f"{c}/pivots"]
    extends = [
        (e.source, arrays[f"{c}/{k}/front"], arrays[f"{c}/{k}/slot"], arrays[f"{c}/{k}/position"])
        for k, e in enumerate(plan.extends)
    ]
    own = len(done)
    position = jnp.arange(size)
    h_width = min(size, plan.tile * int(plan.tiles.max(initial=0)))

    def step(t, carry):
        fronts, diagonal = carry
        front = jnp.zeros(width * size * size, dtype)
        front = front.at[entry_target[t]].add(data[entry_source[t]], mode="drop")
        front = front.reshape(width * size, size)
        for source, child, slot, rows in extends:
            stored = fronts if source == own else done[source]
            m = stored.shape[-1]
            update = stored.reshape(-1, m, m)[child[t]]
            rows_t = rows[t].astype(jnp.int32)
            kids = jnp.arange(rows_t.shape[0])[:, None]
            # The child's row that lands in each row of the receiving front (m: none).
            origin = jnp.full((rows_t.shape[0], size + 1), m, jnp.int32)
            origin = origin.at[kids, rows_t].set(jnp.arange(m, dtype=jnp.int32))[:, :size]
            # The update matrix is symmetric: its rows, gathered, are its columns.
            spread = jnp.pad(update, ((0, 0), (0, 1), (0, 0)))[kids, origin]
            # One scatter of whole rows: row a of slot s lands in row s M + a.
            target = slot[t].astype(jnp.int32)[:, None] * size + rows_t
            target = jnp.where(rows_t < size, target, width * size)
            front = front.at[target.reshape(-1)].add(
                jnp.swapaxes(spread, 1, 2).reshape(-1, size), mode="drop"
            )
        front = front.reshape(width, size, size)
        k = pivots[t]
        h, d, front = _partial_ldl(front, k, plan.tile, h_width, _DEPTH)
        h = jnp.pad(h, ((0, 0), (0, 0), (0, size - h_width)))
        lower = position[:, None] >= position[None, :]
        update = jnp.where(lower, front, jnp.swapaxes(front, 1, 2))
        packed = jnp.where(position[None, None, :] < k[:, None, None], h, update)
        fronts = lax.dynamic_update_index_in_dim(fronts, packed, t, axis=0)
        diagonal = lax.dynamic_update_index_in_dim(diagonal, d, t, axis=0)
        return fronts, diagonal

    init = (jnp.zeros((count, width, size, size), dtype), jnp.ones((count, width, size), dtype))
    return _loop(count, step, init)


def _pivot_slots(analysis: Analysis, factor: Factor) -> Array:
    """Return every pivot slot of the factor: the ``n`` pivots, and zeros for padding."""
    if analysis.levels is not None:
        return factor.pivots[0]
    slots = []
    for c, (plan, d) in enumerate(zip(analysis.classes, factor.pivots, strict=True)):
        real = jnp.arange(plan.size) < factor.arrays[f"{c}/pivots"][:, :, None]
        slots.append(jnp.where(real, d, 0).reshape(-1))
    return jnp.concatenate(slots)


def factorize(
    analysis: Analysis,
    data: Array,
    pivot_rtol: float,
    arrays: dict[str, Array] | None = None,
) -> Factor:
    """Return the LDLᵀ factorization of the matrix with stored values ``data``.

    Args:
        analysis: The symbolic factorization of the pattern of ``data``.
        data: The stored values, one per entry of the analysed pattern.
        pivot_rtol: Pivots at most this times the largest entry of the matrix in
            magnitude count as zero (relative to the matrix, not to the largest pivot:
            a quasi-definite matrix with a tiny ``-εI`` block has pivots as small as
            ``ε`` next to ones as large as ``1/ε``, none of them zero).
        arrays: The analysis's index arrays (`operands`), for instance arguments of
            the jitted function; ``None``: its own, as constants of the program.

    Returns:
        The factors.

    Examples:
        >>> import jax.numpy as jnp, numpy as np
        >>> from asdex_opt._lineax._ldl import analyse
        >>> analysis = analyse(2, np.array([0, 1, 1]), np.array([0, 0, 1]))
        >>> factor = factorize(analysis, jnp.array([2.0, 1.0, -1.0]), 1e-12)
        >>> [int(count) for count in factor.inertia]
        [1, 1, 0]
    """
    if arrays is None:
        arrays = {name: jnp.asarray(array) for name, array in operands(analysis).items()}
    fronts, pivots = [], []
    if analysis.levels is not None:
        values = factor_levels(analysis.levels, arrays, analysis.n, data)
        fronts, pivots = [values], [values[: analysis.n]]
    for c, plan in enumerate(analysis.classes):
        stored, d = _factor_class(plan, c, arrays, data, fronts)
        fronts.append(stored)
        pivots.append(d)
    factor = Factor(tuple(fronts), tuple(pivots), (), jnp.array(False), arrays)
    d = _pivot_slots(analysis, factor)
    tolerance = pivot_rtol * jnp.max(jnp.abs(data), initial=0.0)
    positive = jnp.sum(d > tolerance, dtype=jnp.int32)
    negative = jnp.sum(d < -tolerance, dtype=jnp.int32)
    zero = analysis.n - positive - negative
    return Factor(tuple(fronts), tuple(pivots), (positive, negative, zero), zero > 0, arrays)


def solve(analysis: Analysis, factor: Factor, vector: Array) -> Array:
    """Solve ``A x = vector`` with the factorization of ``A``.

    Per chunk, one gather, one product and one scatter each way: forward
    ``z = H x_front``, then ``x_c = z_c / d`` and ``x_r = z_r``; backward, on
    ``v = [x_c; x_r]``, ``x_c = (Hᵀ v)_c``.
    """
    arrays = factor.arrays
    if analysis.levels is not None:
        return solve_levels(analysis.levels, arrays, analysis.n, factor.fronts[0], vector)
    x = vector
    plans = list(zip(analysis.classes, factor.fronts, factor.pivots, strict=True))

    def operator(plan, c, fronts, t):
        k = arrays[f"{c}/pivots"][t]
        position = jnp.arange(plan.size)
        eye = jnp.eye(plan.size, dtype=fronts.dtype)
        is_pivot = position[None, :] < k[:, None]
        return jnp.where(is_pivot[:, None, :], fronts[t], eye), is_pivot

    for c, (plan, fronts, pivots) in enumerate(plans):
        variables = arrays[f"{c}/variables"]

        def forward(t, x, plan=plan, c=c, fronts=fronts, pivots=pivots, variables=variables):
            h, is_pivot = operator(plan, c, fronts, t)
            old = x.at[variables[t]].get(mode="fill", fill_value=0)
            new = jnp.einsum("bij,bj->bi", h, old)
            change = jnp.where(is_pivot, new / safe_pivot(pivots[t]), new) - old
            return x.at[variables[t]].add(change, mode="drop")

        x = _loop(plan.chunks, forward, x)
    for c, (plan, fronts, _) in reversed(list(enumerate(plans))):
        variables = arrays[f"{c}/variables"]

        def backward(s, x, plan=plan, c=c, fronts=fronts, variables=variables):
            t = plan.chunks - 1 - s
            h, is_pivot = operator(plan, c, fronts, t)
            values = x.at[variables[t]].get(mode="fill", fill_value=0)
            new = jnp.einsum("bji,bj->bi", h, values)
            return x.at[variables[t]].add(jnp.where(is_pivot, new - values, 0), mode="drop")

        x = _loop(plan.chunks, backward, x)
    return x
