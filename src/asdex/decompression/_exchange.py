"""Decompression with `B` split by colors: each device receives only the entries it reads.

With the color axis of `B` split over `D` devices, the nonzeros are split into `D`
equal slices, and the nonzeros of one device read entries of `B` held by every device.
`ExchangePlan` is built on the host from the static decompression plan: for each pair
of devices, which entries of the sender's shard of `B` the receiver reads (each entry
once). Applied inside `jax.shard_map`, each device gathers what it sends into a
`(D, M)` buffer (`M`: the most entries one device sends another), one `all_to_all`
delivers the rows, and each device reads its nonzeros from what it received. No device
holds more of `B` than its own shard.

Every nonzero reads at most one entry of `B`: its value for direct decompression
(column, row, star and bidirectional colorings), the start of its substitution for
acyclic colorings, which then solve the split values level by level
(`asdex.decompression._level_exchange`).

The tables are built on the host and placed on the devices split like `B`'s colors
(each device holds its own rows), and passed to the compiled decompression as
arguments. Inside a `jax.jit` of the caller's, they are arrays the traced function
closes over, and so constants of that program, which every device holds whole.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AbstractMesh, NamedSharding, PartitionSpec

from asdex.decompression._gather import GatherPlan
from asdex.decompression._level_exchange import LevelExchange, first_reads
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
        colors of each part in turn, columns the entries of each part in turn. Each
        nonzero receives its one entry of `B` (`first_reads`): its value for direct
        decompression, the start of its substitution otherwise.

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
        counts, padded, widths = (np.asarray(a, np.int64) for a in (counts, padded, widths))
        rows_per_shard = padded // shards
        first_row = np.concatenate([[0], np.cumsum(counts)])
        first_col = np.concatenate([[0], np.cumsum(widths)])
        first_local = np.concatenate([[0], np.cumsum(rows_per_shard * widths)])
        span = max(int(first_local[-1]), 1)
        share = -(-plan.nnz // shards)
        reads = first_reads(plan)
        received = []
        for reader in range(shards):
            chunk = reads[reader * share : (reader + 1) * share].astype(np.int64)
            direct = chunk < plan.size
            color, entry = np.divmod(chunk[direct], first_col[-1])
            part = np.searchsorted(first_row[1:], color, side="right")
            owner, local_row = np.divmod(color - first_row[part], rows_per_shard[part])
            key = owner * span + (first_local[part] + local_row * widths[part]
                                  + entry - first_col[part])
            del color, entry, part, owner, local_row
            unique, slot = np.unique(key, return_inverse=True)
            del key
            received.append((direct, unique, slot.astype(np.int32)))
        per_pair = np.stack([np.bincount(unique // span, minlength=shards)
                             for _, unique, _ in received])
        width = max(int(per_pair.max(initial=0)), 1)
        send = np.zeros((shards, shards, width), _index_type(span))
        receive = np.full((shards, share), shards * width, _index_type(shards * width + 1))
        for reader, (direct, unique, slot) in enumerate(received):
            sender, position = np.divmod(unique, span)
            rank = np.arange(unique.size) - np.repeat(
                np.cumsum(per_pair[reader]) - per_pair[reader], per_pair[reader])
            send[sender, reader, rank] = position
            receive[reader, np.flatnonzero(direct)] = (sender * width + rank)[slot]
            received[reader] = None
        return cls(plan.nnz, shards, send, receive)

    def placed(self, layout: ColorSharding) -> tuple[Any, Any]:
        """Return `(send, receive)` on the devices, split like `B`'s colors.

        Device `d` holds `send[d]` and `receive[d]`, the rows it uses. Passed to the
        compiled decompression as arguments, the tables are not constants of the
        program (which every device would hold whole). On an abstract mesh (read from
        the types of traced arrays) there are no devices to place them on: the host
        tables come back, and become constants of the program.

        Examples:
            >>> import jax
            >>> import numpy as np
            >>> from asdex.coloring._schedule import direct_level, make_schedule
            >>> from asdex.decompression import ColorSharding, GatherPlan
            >>> from asdex.decompression._exchange import ExchangePlan
            >>> level = direct_level(np.array([0]), np.array([0]), np.array([0]))
            >>> plan = GatherPlan.from_schedule(make_schedule([level], 1, (1, 1)))
            >>> layout = ColorSharding.of((jax.make_mesh((1,), ("colors",)), "colors"))
            >>> send, receive = ExchangePlan.build(plan, [1], [1], [1], 1).placed(layout)
            >>> tuple(receive.sharding.spec)
            ('colors',)
        """
        return place((self.send, self.receive), layout, 0)

    def __call__(
        self,
        parts: Sequence[jax.Array],
        layout: ColorSharding,
        tables: tuple[jax.Array, jax.Array] | None = None,
    ) -> jax.Array:
        """Return the nonzero values, shape `(nnz,)`, split over `layout`'s color axes.

        `tables` are `placed(layout)`, or traced arguments standing for them; without
        them the host tables are constants of the program.
        """
        send, receive = (self.send, self.receive) if tables is None else tables
        return exchange_values(parts, layout, self.nnz, send, receive)


class SplitDecompression:
    """Decompress the parts of `B` split by colors, each device its share of the nonzeros.

    Holds the placed tables of one `ExchangePlan` (and, for substitution, one
    `LevelExchange`) per shape of the parts and layout, built when first asked for
    (from static shapes).

    Attributes:
        plan: The decompression plan of the coloring.
        counts: The number of colors of each part (seed pass), before padding.
    """

    def __init__(self, plan: GatherPlan, counts: Sequence[int]) -> None:
        """Keep the plan; exchange plans are built when first needed."""
        self.plan = plan
        self.counts = tuple(int(count) for count in counts)
        self._placed: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self._levels: dict[int, LevelExchange] = {}

    def applies(self, layout: ColorSharding | None) -> bool:
        """Whether `layout` splits the colors (and there are nonzeros to split).

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
        return layout is not None and layout.shards > 1 and self.plan.nnz > 0

    def tables(
        self, shapes: Sequence[tuple[int, int]], layout: ColorSharding
    ) -> tuple[Any, ...]:
        """Return the exchange tables for parts of these shapes, placed for `layout`.

        Built on the host and placed once per shapes and layout (only the placed
        tables are kept), to be passed to the compiled decompression as arguments
        (see `ExchangePlan.placed`).
        """
        key = (tuple(tuple(shape) for shape in shapes), layout.mesh, layout.axes)
        if key not in self._placed:
            tables = ExchangePlan.build(
                self.plan, self.counts, [shape[0] for shape in shapes],
                [shape[1] for shape in shapes], layout.shards,
            ).placed(layout)
            if not is_direct(self.plan):
                levels = self._level_exchange(layout.shards)
                tables += place((levels.send, levels.reads, levels.segments,
                                 levels.targets), layout, 1)
            self._placed[key] = tables
        return self._placed[key]

    def __call__(
        self,
        parts: Sequence[jax.Array],
        layout: ColorSharding,
        tables: tuple[Any, ...] | None = None,
    ) -> jax.Array:
        """Return the nonzero values, shape `(nnz,)`, split over `layout`'s color axes.

        `tables`: `tables(...)` or the traced arguments of the compiled program that
        stand for them; without them the placed tables are closed over (constants of
        the program being traced).
        """
        if tables is None:
            tables = self.tables([part.shape for part in parts], layout)
        levels = None if is_direct(self.plan) else self._level_exchange(layout.shards)
        return exchange_values(parts, layout, self.plan.nnz, *tables[:2],
                               levels=levels, level_tables=tuple(tables[2:]))

    def _level_exchange(self, shards: int) -> LevelExchange:
        if shards not in self._levels:
            self._levels[shards] = LevelExchange.build(self.plan, shards)
        return self._levels[shards]


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


def exchange_values(
    parts: Sequence[jax.Array],
    layout: ColorSharding,
    nnz: int,
    send: Any,
    receive: Any,
    *,
    levels: LevelExchange | None = None,
    level_tables: tuple[Any, ...] = (),
) -> jax.Array:
    """Return the `nnz` values read by the exchange tables `send` and `receive`.

    Runs in `jax.shard_map` over `layout`'s color axes: each device gathers what it
    sends, one `all_to_all` delivers it, and each device reads its share of the values.
    With `levels` (and their placed `level_tables`), each device then solves its share
    by substitution, one exchange of solved values per level.
    """
    dtype = jnp.result_type(*parts)
    names = layout.names
    parts = [part for part in parts if part.shape[0]]

    def local(send: jax.Array, receive: jax.Array, *arrays: jax.Array) -> jax.Array:
        tables, shards = arrays[: len(level_tables)], arrays[len(level_tables):]
        flat = jnp.concatenate([shard.reshape(-1).astype(dtype) for shard in shards])
        incoming = jax.lax.all_to_all(flat[send[0]], names, 0, 0, tiled=True)
        padded = jnp.concatenate([incoming.reshape(-1), jnp.zeros(1, dtype)])
        raw = padded[receive[0]]
        return raw if levels is None else levels.solve(raw, tables, names)

    split = PartitionSpec(layout.axes)
    specs = (split, split, *(PartitionSpec(None, layout.axes),) * len(level_tables),
             *(split,) * len(parts))
    arrays = (send, receive, *level_tables, *parts)
    if layout.explicit:
        arrays = tuple(
            jax.sharding.reshard(array, NamedSharding(layout.mesh, spec))
            for array, spec in zip(arrays, specs, strict=True)
        )
    values = jax.shard_map(local, mesh=layout.mesh, in_specs=specs, out_specs=split)(*arrays)
    if values.shape[0] == nnz:
        return values
    if layout.explicit:
        values = jax.sharding.reshard(values, NamedSharding(layout.mesh, PartitionSpec()))
    return values[: nnz]


def _index_type(bound: int) -> type:
    """`np.int32` for indices below `bound` where it holds them, else `np.int64`."""
    return np.int32 if bound < np.iinfo(np.int32).max else np.int64


def place(tables: tuple[np.ndarray, ...], layout: ColorSharding, axis: int) -> tuple[Any, ...]:
    """Put host `tables` on `layout`'s devices, split along `axis` like `B`'s colors.

    On an abstract mesh (read from the types of traced arrays) there are no devices to
    place them on: the host tables come back, and become constants of the program.

    Examples:
        >>> import jax
        >>> import numpy as np
        >>> from asdex.decompression import ColorSharding
        >>> layout = ColorSharding.of((jax.make_mesh((1,), ("colors",)), "colors"))
        >>> tuple(place((np.zeros((1, 3), np.int32),), layout, 1)[0].sharding.spec)
        (None, 'colors')
    """
    if isinstance(layout.mesh, AbstractMesh):
        return tables
    split = NamedSharding(layout.mesh, PartitionSpec(*(None,) * axis, layout.axes))
    with jax.ensure_compile_time_eval():
        return tuple(jax.device_put(table, split) for table in tables)
