"""Decompression with `B` split by colors: each device receives only the entries it reads.

With the color axis of `B` split over `D` devices, the nonzeros are split into `D`
equal slices, and the nonzeros of one device read entries of `B` held by every device.
`ExchangePlan` is built on the host from the static decompression plan: for each pair
of devices, which entries of the sender's shard of `B` the receiver reads (each entry
once). Applied inside `jax.shard_map`, each device gathers what it sends into a
`(D, M)` buffer (`M`: the most entries one device sends another), one `all_to_all`
delivers the rows, and each device reads its nonzeros from what it received. No device
holds more of `B` than its own shard.

Only direct decompression (each nonzero read from one entry of `B`: column, row, star
and bidirectional colorings) is local; substitution reads values computed on other
devices level by level, and stays a gather that XLA lays out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from asdex.decompression._gather import GatherPlan, _compact
from asdex.decompression._sharding import ColorSharding


@dataclasses.dataclass(frozen=True)
class ExchangePlan:
    """Index tables that decompress a color-split `B` with one `all_to_all`.

    Attributes:
        nnz: Number of nonzeros.
        shards: Number of devices `D` the color axis (and the nonzeros) are split over.
        send: Shape `(D, D, M)`: `send[e, d]` holds the positions, in device `e`'s
            flattened shards of the parts, of the entries device `d` reads.
        receive: Shape `(D, s)`: for each of device `d`'s `s = ceil(nnz / D)` nonzeros,
            its position in the flattened `(D, M)` buffer `d` receives, or `D * M` (a
            zero) for the padding past `nnz`.
    """

    nnz: int
    shards: int
    send: np.ndarray
    receive: np.ndarray

    @classmethod
    def build(
        cls,
        plan: GatherPlan,
        counts: Sequence[int],
        padded: Sequence[int],
        widths: Sequence[int],
        shards: int,
    ) -> ExchangePlan:
        """Build the tables for parts of `counts` colors padded to `padded` rows.

        The plan reads the parts stacked block-diagonally (`stack_parts`): rows are the
        colors of each part in turn, columns the entries of each part in turn.

        Examples:
            >>> import numpy as np
            >>> from asdex.coloring._schedule import direct_level, make_schedule
            >>> from asdex.decompression import GatherPlan
            >>> from asdex.decompression._exchange import ExchangePlan
            >>> level = direct_level(np.array([0, 1]), np.array([0, 1]), np.array([0, 1]))
            >>> plan = GatherPlan.from_schedule(make_schedule([level], 2, (2, 2)))
            >>> ExchangePlan.build(plan, [2], [2], [2], 2).send.tolist()
            [[[0], [0]], [[0], [1]]]
        """
        if plan.levels or plan.stacked is not None or plan.mirror_targets.size:
            raise ValueError("ExchangePlan needs a direct decompression plan.")
        counts, padded, widths = (np.asarray(a, np.int64) for a in (counts, padded, widths))
        rows_per_shard = padded // shards
        first_row = np.concatenate([[0], np.cumsum(counts)])
        first_col = np.concatenate([[0], np.cumsum(widths)])
        first_local = np.concatenate([[0], np.cumsum(rows_per_shard * widths)])
        reads = np.asarray(plan.initial, np.int64)
        direct = reads < plan.size
        color, entry = np.divmod(reads[direct], first_col[-1])
        part = np.searchsorted(first_row[1:], color, side="right")
        row = color - first_row[part]
        owner, local_row = np.divmod(row, rows_per_shard[part])
        local = first_local[part] + local_row * widths[part] + entry - first_col[part]

        share = -(-plan.nnz // shards)
        reader = np.arange(plan.nnz)[direct] // share
        span = max(int(first_local[-1]), 1)
        key = (reader * shards + owner) * span + local
        order = np.argsort(key, kind="stable")
        first = np.ones(key.size, bool)
        first[1:] = key[order][1:] != key[order][:-1]
        unique = key[order][first]
        slot = np.empty(key.size, np.int64)
        slot[order] = np.cumsum(first) - 1
        pair, position = np.divmod(unique, span)
        per_pair = np.bincount(pair, minlength=shards * shards)
        width = max(int(per_pair.max(initial=0)), 1)
        rank = np.arange(unique.size) - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
        receiver, sender = np.divmod(pair, shards)
        send = np.zeros((shards, shards, width), np.int64)
        send[sender, receiver, rank] = position
        receive = np.full(shards * share, shards * width, np.int64)
        receive[np.flatnonzero(direct)] = (sender * width + rank)[slot]
        return cls(plan.nnz, shards, _compact(send), _compact(receive.reshape(shards, share)))

    def __call__(self, parts: Sequence[jax.Array], layout: ColorSharding) -> jax.Array:
        """Return the nonzero values, shape `(nnz,)`, split over `layout`'s color axes."""
        dtype = jnp.result_type(*parts)
        names = layout.names

        def local(send: jax.Array, receive: jax.Array, *shards: jax.Array) -> jax.Array:
            flat = jnp.concatenate([shard.reshape(-1).astype(dtype) for shard in shards])
            incoming = jax.lax.all_to_all(flat[send[0]], names, 0, 0, tiled=True)
            padded = jnp.concatenate([incoming.reshape(-1), jnp.zeros(1, dtype)])
            return padded[receive[0]]

        split = PartitionSpec(layout.axes)
        arrays = (self.send, self.receive, *(part for part in parts if part.shape[0]))
        if layout.explicit:
            arrays = tuple(
                jax.sharding.reshard(array, NamedSharding(layout.mesh, split))
                for array in arrays
            )
        values = jax.shard_map(
            local, mesh=layout.mesh, in_specs=(split,) * len(arrays), out_specs=split
        )(*arrays)
        if values.shape[0] == self.nnz:
            return values
        if layout.explicit:
            values = jax.sharding.reshard(values, NamedSharding(layout.mesh, PartitionSpec()))
        return values[: self.nnz]


class SplitDecompression:
    """Decompress the parts of `B` split by colors: locally where the plan is direct.

    Holds one `ExchangePlan` per shape of the parts and number of shards, built on the
    first call (at trace time, from static shapes).

    Attributes:
        plan: The decompression plan of the coloring.
        counts: The number of colors of each part (seed pass), before padding.
    """

    def __init__(self, plan: GatherPlan, counts: Sequence[int]) -> None:
        """Keep the plan; exchange plans are built when first needed."""
        self.plan = plan
        self.counts = tuple(int(count) for count in counts)
        self._exchanges: dict[tuple[Any, ...], ExchangePlan] = {}

    def applies(self, layout: ColorSharding | None) -> bool:
        """Whether `layout` splits the colors and the plan reads each nonzero directly.

        Examples:
            >>> import numpy as np
            >>> from asdex.coloring._schedule import direct_level, make_schedule
            >>> from asdex.decompression import GatherPlan
            >>> from asdex.decompression._exchange import SplitDecompression
            >>> level = direct_level(np.array([0]), np.array([0]), np.array([0]))
            >>> plan = GatherPlan.from_schedule(make_schedule([level], 1, (1, 1)))
            >>> SplitDecompression(plan, [1]).applies(None)
            False
        """
        return (
            layout is not None and layout.shards > 1 and self.plan.nnz > 0
            and is_direct(self.plan)
        )

    def __call__(self, parts: Sequence[jax.Array], layout: ColorSharding) -> jax.Array:
        """Return the nonzero values, shape `(nnz,)`, split over `layout`'s color axes."""
        key = (tuple(part.shape for part in parts), layout.shards)
        if key not in self._exchanges:
            self._exchanges[key] = ExchangePlan.build(
                self.plan, self.counts, [part.shape[0] for part in parts],
                [part.shape[1] for part in parts], layout.shards,
            )
        return self._exchanges[key](parts, layout)


def is_direct(plan: GatherPlan) -> bool:
    """Whether every nonzero is read from one entry of `B` (no substitution, no copies).

    Examples:
        >>> import numpy as np
        >>> from asdex.coloring._schedule import direct_level, make_schedule
        >>> from asdex.decompression import GatherPlan
        >>> level = direct_level(np.array([0]), np.array([0]), np.array([0]))
        >>> is_direct(GatherPlan.from_schedule(make_schedule([level], 1, (1, 1))))
        True
    """
    return not plan.levels and plan.stacked is None and not plan.mirror_targets.size
