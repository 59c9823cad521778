"""Substitution with the nonzeros split over devices: one exchange of values per level.

Substitution (acyclic Hessian colorings) solves nonzeros level by level: a nonzero of
a level is its entry of `B` less a sum of nonzeros solved at earlier levels; mirrored
nonzeros then copy their source. With the nonzeros split into `D` equal slices, each
device solves its own: at each level it receives, in one `all_to_all`, the solved
values its targets subtract (each value once), sums them by target and updates its
slice. The copies of mirrored nonzeros are one more such level, whose targets add the
value they copy to their (zero) entry of `B`.

`LevelExchange` holds the tables of every level, padded to common sizes and stacked, so
that the levels run as one `lax.scan`. The entries of `B` themselves (one per nonzero)
are delivered before, by `asdex.decompression._exchange.ExchangePlan`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from asdex.decompression._gather import GatherPlan


@dataclasses.dataclass(frozen=True)
class LevelExchange:
    """Index tables that run substitution on nonzeros split over `D` devices.

    Device `d` holds the nonzeros `d * s, ..., d * s + s - 1` (`s = ceil(nnz / D)`),
    with one scratch slot at local position `s`. For level `l`:

    Attributes:
        send: Shape `(L, D, D, M)`: `send[l, e, d]` holds the local positions of the
            values device `e` sends device `d`.
        reads: Shape `(L, D, P)`: for each term device `d` subtracts, its position in
            the flattened `(D, M)` buffer `d` receives, or `D * M` (a zero).
        segments: Shape `(L, D, P)`: the target of each term, as its place in
            `targets[l, d]`, or `T` (a scratch sum) for the padding.
        targets: Shape `(L, D, T)`: the local positions of device `d`'s targets, or
            `s` (the scratch slot) for the padding.
        signs: Shape `(L,)`: `-1` for a substitution level (its terms are subtracted),
            `+1` for the copies of mirrored nonzeros.
    """

    send: np.ndarray
    reads: np.ndarray
    segments: np.ndarray
    targets: np.ndarray
    signs: np.ndarray

    @classmethod
    def build(cls, plan: GatherPlan, shards: int) -> LevelExchange:
        """Build the tables of `plan`'s substitution levels and copies for `shards` devices.

        Examples:
            >>> import numpy as np
            >>> from asdex.coloring._schedule import direct_level, make_schedule
            >>> from asdex.decompression import GatherPlan
            >>> from asdex.decompression._level_exchange import LevelExchange
            >>> level = direct_level(np.array([0]), np.array([0]), np.array([0]))
            >>> plan = GatherPlan.from_schedule(make_schedule([level], 1, (1, 1)))
            >>> LevelExchange.build(plan, 2).signs.shape
            (0,)
        """
        share = -(-plan.nnz // shards)
        levels = [_one_level(targets, subtract, segments, -1.0, share, shards)
                  for targets, subtract, segments in substitution_levels(plan)]
        if plan.mirror_targets.size:
            levels.append(_one_level(plan.mirror_targets, plan.mirror_sources,
                                     np.arange(plan.mirror_targets.size), 1.0, share,
                                     shards))
        width = max([int(level["per_pair"].max(initial=0)) for level in levels] + [1])
        terms = max([int(level["terms"].max(initial=0)) for level in levels] + [1])
        count = max([int(level["count"].max(initial=0)) for level in levels] + [1])
        depth = len(levels)
        send = np.zeros((depth, shards, shards, width), np.int32)
        reads = np.full((depth, shards, terms), shards * width, np.int32)
        segments = np.full((depth, shards, terms), count, np.int32)
        targets = np.full((depth, shards, count), share, np.int32)
        for index, level in enumerate(levels):
            send[index, level["sender"], level["receiver"], level["rank"]] = level["local"]
            reads[index, level["term_owner"], level["term_rank"]] = (
                level["term_sender"] * width + level["term_slot"])
            segments[index, level["term_owner"], level["term_rank"]] = level["term_target"]
            targets[index, level["target_owner"], level["target_rank"]] = (
                level["target_local"])
        signs = np.array([level["sign"] for level in levels], np.float32)
        return cls(send, reads, segments, targets, signs)

    def solve(self, raw: jax.Array, tables: tuple[jax.Array, ...], names: tuple[str, ...]
              ) -> jax.Array:
        """Return this device's solved values from its entries of `B`, `raw` (shape `(s,)`).

        Runs inside `jax.shard_map`: `tables` are this device's `(send, reads,
        segments, targets)`, of shapes `(L, 1, ...)`.
        """
        count = self.targets.shape[-1]
        dtype = raw.dtype
        raw = jnp.concatenate([raw, jnp.zeros(1, dtype)])

        def level(values: jax.Array, arrays: tuple[jax.Array, ...]) -> tuple[jax.Array, None]:
            send, reads, segments, targets, sign = arrays
            incoming = jax.lax.all_to_all(values[send[0]], names, 0, 0, tiled=True)
            received = jnp.concatenate([incoming.reshape(-1), jnp.zeros(1, dtype)])
            sums = jnp.zeros(count + 1, dtype).at[segments[0]].add(received[reads[0]])
            solved = raw[targets[0]] + sign * sums[:count]
            return values.at[targets[0]].set(solved), None

        signs = jnp.asarray(self.signs, dtype)
        values, _ = jax.lax.scan(level, raw, (*tables, signs))
        return values[:-1]


def substitution_levels(plan: GatherPlan) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Return `(targets, subtract, segments)` of each substitution level, unpadded.

    Examples:
        >>> import numpy as np
        >>> from asdex.coloring._schedule import direct_level, make_schedule
        >>> from asdex.decompression import GatherPlan
        >>> level = direct_level(np.array([0]), np.array([0]), np.array([0]))
        >>> substitution_levels(GatherPlan.from_schedule(make_schedule([level], 1, (1, 1))))
        []
    """
    levels = [(lv.targets, lv.subtract, lv.segments) for lv in plan.levels]
    if plan.stacked is not None:
        width = plan.stacked.targets.shape[1]
        for targets, subtract, segments in zip(plan.stacked.targets, plan.stacked.subtract,
                                               plan.stacked.segments, strict=True):
            keep = segments < width
            levels.append((targets[targets < plan.nnz], subtract[keep], segments[keep]))
    return levels


def first_reads(plan: GatherPlan) -> np.ndarray:
    """Return, for each nonzero, the one entry of `B` it reads (or `plan.size`: none).

    Directly read nonzeros read `plan.initial`; substituted ones their level's entry;
    mirrored copies read none.

    Examples:
        >>> import numpy as np
        >>> from asdex.coloring._schedule import direct_level, make_schedule
        >>> from asdex.decompression import GatherPlan
        >>> level = direct_level(np.array([0, 1]), np.array([0, 1]), np.array([0, 0]))
        >>> first_reads(GatherPlan.from_schedule(make_schedule([level], 2, (2, 1)))).tolist()
        [0, 1]
    """
    reads = np.asarray(plan.initial).copy()
    for lv in plan.levels:
        reads[lv.targets] = lv.reads
    if plan.stacked is not None:
        real = plan.stacked.targets < plan.nnz
        reads[plan.stacked.targets[real]] = plan.stacked.reads[real]
    return reads


def _one_level(
    targets: np.ndarray, subtract: np.ndarray, segments: np.ndarray, sign: float,
    share: int, shards: int,
) -> dict[str, np.ndarray | float]:
    """The exchange of one level, before padding to the common sizes."""
    targets, subtract, segments = (np.asarray(a, np.int64) for a in
                                   (targets, subtract, segments))
    target_owner, target_local = np.divmod(targets, share)
    target_rank, count = _ranks(target_owner, shards)
    receiver = target_owner[segments]
    key = (receiver * shards + subtract // share) * share + subtract % share
    unique, inverse = np.unique(key, return_inverse=True)
    pair, local = np.divmod(unique, share)
    unique_receiver, sender = np.divmod(pair, shards)
    per_pair = np.bincount(pair, minlength=shards * shards)
    rank = np.arange(unique.size) - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
    term_rank, terms = _ranks(receiver, shards)
    return {
        "sign": sign, "per_pair": per_pair, "terms": terms, "count": count,
        "sender": sender, "receiver": unique_receiver, "rank": rank, "local": local,
        "term_owner": receiver, "term_rank": term_rank, "term_sender": sender[inverse],
        "term_slot": rank[inverse], "term_target": target_rank[segments],
        "target_owner": target_owner, "target_rank": target_rank,
        "target_local": target_local,
    }


def _ranks(owner: np.ndarray, shards: int) -> tuple[np.ndarray, np.ndarray]:
    """Each item's place among the items of its owner (in order), and the counts."""
    counts = np.bincount(owner, minlength=shards)
    order = np.argsort(owner, kind="stable")
    rank = np.empty(owner.size, np.int64)
    rank[order] = np.arange(owner.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return rank, counts
