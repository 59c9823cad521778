"""Sharding the color axis of the compressed evaluation across devices.

The passes of the compressed evaluation (one JVP, VJP or HVP per color) are independent,
so the seed matrix and the compressed matrix `B` are split along their leading (color)
axis. XLA shards only axes that divide evenly, so the color axis is padded with zero
seeds up to a multiple of the number of shards.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

ShardingLike = NamedSharding | tuple[Mesh, str]
"""A `NamedSharding` whose spec names the color axis first, or `(mesh, axis_name)`."""


@dataclasses.dataclass(frozen=True)
class ColorSharding:
    """How to lay the color axis of seeds and of `B` out over devices.

    Attributes:
        mesh: The device mesh (its axes made `Auto`, so that sharding constraints apply
            inside `jit` without a mesh context).
        axes: Mesh axis name(s) that split the color axis.
        rest: Partition of the remaining axis of `B`, as given (usually `None`).
    """

    mesh: Mesh
    axes: Any
    rest: Any = None

    @classmethod
    def of(cls, sharding: Any) -> ColorSharding | None:
        """Read a `NamedSharding` or `(mesh, axis_name)`; `None` stays `None`.

        Examples:
            >>> import jax
            >>> mesh = jax.make_mesh((1,), ("colors",))
            >>> ColorSharding.of((mesh, "colors")).shards
            1
        """
        if sharding is None:
            return None
        if isinstance(sharding, tuple) and len(sharding) == 2 and isinstance(sharding[0], Mesh):
            mesh, axis = sharding
            if axis not in mesh.axis_names:
                raise ValueError(
                    f"`sharding`: axis {axis!r} is not an axis of the mesh, whose axes are "
                    f"{mesh.axis_names}."
                )
            return cls(_auto(mesh), axis)
        if isinstance(sharding, NamedSharding):
            spec = tuple(sharding.spec)
            if not spec or spec[0] is None:
                raise ValueError(
                    "`sharding`: the spec must name the mesh axis that splits the color "
                    f"axis first, e.g. PartitionSpec('colors'); got {sharding.spec}."
                )
            if len(spec) > 2:
                raise ValueError(
                    "`sharding`: the compressed matrix is 2-D (colors, dim), but the spec "
                    f"{sharding.spec} has {len(spec)} entries."
                )
            return cls(_auto(sharding.mesh), spec[0], spec[1] if len(spec) == 2 else None)
        raise TypeError(
            "`sharding` must be a jax.sharding.NamedSharding (its spec naming the color "
            "axis first) or a pair (mesh, axis_name), got "
            f"{type(sharding).__name__}."
        )

    @property
    def shards(self) -> int:
        """Number of pieces the color axis is cut into."""
        names = self.axes if isinstance(self.axes, tuple) else (self.axes,)
        return math.prod(self.mesh.shape[name] for name in names)

    def padded(self, count: int) -> int:
        """`count` rounded up to a multiple of `shards`."""
        return -(-count // self.shards) * self.shards

    def constrain(self, tree: Any, *, rest: bool = False) -> Any:
        """Shard the leading axis of every leaf; with `rest`, the second axis as given."""

        def one(leaf: Any) -> Any:
            trailing = (self.rest,) if rest and self.rest is not None else ()
            spec = PartitionSpec(self.axes, *trailing)
            return jax.lax.with_sharding_constraint(leaf, NamedSharding(self.mesh, spec))

        return jax.tree_util.tree_map(one, tree)


def _auto(mesh: Mesh) -> Mesh:
    """The same devices and axis names, every axis `Auto`."""
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * mesh.devices.ndim)
