"""Sharding the color axis of the compressed evaluation across devices.

The passes of the compressed evaluation (one JVP, VJP or HVP per color) are independent,
so the seed matrix and the compressed matrix `B` are split along their leading (color)
axis. XLA shards only axes that divide evenly, so the color axis is padded with zero
seeds up to a multiple of the number of shards.

Under `jax.vmap` the batch axis follows JAX's rules for sharding constraints: with
`spmd_axis_name` it is split over that mesh axis, without it its layout is left to the
inputs (unconstrained). Inputs placed on a mesh with `Explicit` axes carry their layout
in their types; the color axis then follows that mesh (`ColorSharding.following`).

Decompression's outputs are split over the same axes by their leading axis
(`ColorSharding.spread`): each device computes and holds its share of the nonzeros,
and receives only the entries of `B` that its share reads (and, for substitution, the
solved values its share subtracts; `asdex.decompression._exchange`). `color_layout`
reads the split from a given `B`.
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
            inside `jit` without a mesh context, unless `following` gave it the axis types
            of explicitly sharded inputs).
        axes: Mesh axis name(s) that split the color axis.
        rest: Partition of the remaining axis of `B`, as given (usually `None`).
        explicit: Whether the color axes are `Explicit`, so that the layout is set with
            `jax.sharding.reshard` (part of the array's type) rather than a constraint.
    """

    mesh: Mesh
    axes: Any
    rest: Any = None
    explicit: bool = False

    @classmethod
    def of(cls, sharding: Any) -> ColorSharding | None:
        """Read a `NamedSharding` or `(mesh, axis_name)`; `None` stays `None`.

        Examples:
            >>> import jax
            >>> from asdex.decompression import ColorSharding
            >>> mesh = jax.make_mesh((1,), ("colors",))
            >>> ColorSharding.of((mesh, "colors")).shards
            1
        """
        if sharding is None:
            return None
        if isinstance(sharding, tuple) and len(sharding) == 2 and isinstance(sharding[0], Mesh):
            mesh, axis = sharding
            unknown = [name for name in (axis if isinstance(axis, tuple) else (axis,))
                       if name not in mesh.axis_names]
            if unknown:
                raise ValueError(
                    f"`sharding`: {', '.join(map(repr, unknown))} is not an axis of the mesh, "
                    f"whose axes are {mesh.axis_names}; name one of them (or a tuple of "
                    "them) to split the colors over."
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
    def names(self) -> tuple[str, ...]:
        """The mesh axis names that split the color axis."""
        return self.axes if isinstance(self.axes, tuple) else (self.axes,)

    @property
    def shards(self) -> int:
        """Number of pieces the color axis is cut into."""
        return math.prod(self.mesh.shape[name] for name in self.names)

    def following(self, primals: Any, *, inputs: bool = True) -> ColorSharding:
        """Return the layout for these traced inputs: theirs if on an explicit mesh.

        Inputs placed with `jax.device_put` on a mesh with `Explicit` axes (the default
        of `jax.make_mesh`) carry that mesh in their types, and the seeds must share it.
        Inputs without explicit axes leave the layout as it is. With `inputs=False` the
        arrays are compressed matrices, which the color axes split by design.

        Examples:
            >>> import jax, jax.numpy as jnp
            >>> from asdex.decompression import ColorSharding
            >>> layout = ColorSharding.of((jax.make_mesh((1,), ("colors",)), "colors"))
            >>> layout.following([jnp.ones(3)]) is layout
            True
        """
        meshes = {
            mesh for leaf in jax.tree_util.tree_leaves(primals)
            if not (mesh := jax.typeof(leaf).sharding.mesh).empty
            and not mesh.are_all_axes_auto
        }
        if not meshes:
            return self
        if len(meshes) > 1:
            raise ValueError(
                "`sharding`: the inputs are placed on different meshes with explicit "
                f"axes ({sorted(map(str, meshes))}); place them all on the mesh of "
                "`sharding`."
            )
        (mesh,) = meshes
        if (mesh.axis_names, mesh.axis_sizes) != (self.mesh.axis_names, self.mesh.axis_sizes):
            raise ValueError(
                f"`sharding`: the inputs are placed on the mesh {mesh}, with explicit axes, "
                f"but `sharding` names the mesh {dict(self.mesh.shape)}; pass the inputs' "
                "mesh to `sharding` (or place the inputs on the mesh of `sharding`)."
            )
        if inputs:
            self._check_inputs_whole(primals)
        types = dict(zip(mesh.axis_names, mesh.axis_types, strict=True))
        color_types = {types[name] for name in self.names}
        if color_types - {AxisType.Explicit, AxisType.Auto} or len(color_types) > 1:
            raise ValueError(
                f"`sharding`: the color axes {self.names} of the inputs' mesh must be all "
                f"`Explicit` or all `Auto`, got {[types[name] for name in self.names]}."
            )
        typed = Mesh(self.mesh.devices, self.mesh.axis_names, axis_types=mesh.axis_types)
        return dataclasses.replace(
            self, mesh=typed, explicit=color_types == {AxisType.Explicit}
        )

    def _check_inputs_whole(self, primals: Any) -> None:
        """Raise a `ValueError` if an input's type splits it over a color axis."""
        for leaf in jax.tree_util.tree_leaves(primals):
            used = {
                name for part in jax.typeof(leaf).sharding.spec if part is not None
                for name in (part if isinstance(part, tuple) else (part,))
            }
            if used & set(self.names):
                raise ValueError(
                    f"`sharding`: an input is split over the mesh axis(es) "
                    f"{sorted(used & set(self.names))}, which `sharding` uses for the "
                    "colors; place the inputs whole along it (e.g. jax.device_put(x, "
                    "NamedSharding(mesh, PartitionSpec())), or a batch over another axis) "
                    "or split the colors over another mesh axis."
                )

    def padded(self, count: int) -> int:
        """`count` rounded up to a multiple of `shards`."""
        return -(-count // self.shards) * self.shards

    def constrain(self, tree: Any, *, rest: bool = False) -> Any:
        """Shard the leading axis of every leaf; with `rest`, the second axis as given."""

        def one(leaf: Any) -> Any:
            trailing = (self.rest,) if rest and self.rest is not None else ()
            if trailing:
                self._check_rest(leaf.shape[-1])
            layout = NamedSharding(self.mesh, PartitionSpec(self.axes, *trailing))
            if self.explicit:
                return jax.sharding.reshard(leaf, layout)
            return jax.lax.with_sharding_constraint(leaf, layout)

        return jax.tree_util.tree_map(one, tree)

    def _check_rest(self, length: int) -> None:
        """Raise a `ValueError` if the spec's second entry cannot split an axis this long."""
        names = self.rest if isinstance(self.rest, tuple) else (self.rest,)
        pieces = math.prod(self.mesh.shape[name] for name in names)
        if length % pieces:
            raise ValueError(
                f"`sharding`: the spec's second entry {self.rest!r} splits the compressed "
                f"matrix's second axis, of length {length}, into {pieces} pieces, which do "
                "not divide it; leave it out (PartitionSpec(colors_axis)) or name mesh "
                f"axes whose sizes divide {length}."
            )

    def spread(self, tree: Any) -> Any:
        """Split the leading axis of every leaf whose length the shards divide.

        Applied to what decompression returns (the nonzero values, the data and indices
        of BCOO blocks, the rows of dense blocks), so that each device computes and
        holds its share. Leaves without axes, or whose leading axis the shards do not
        divide, are left as they are (XLA shards only axes that divide evenly).

        Examples:
            >>> import jax, jax.numpy as jnp
            >>> from asdex.decompression import ColorSharding
            >>> layout = ColorSharding.of((jax.make_mesh((1,), ("colors",)), "colors"))
            >>> layout.spread({"values": jnp.ones(4)})["values"].tolist()
            [1.0, 1.0, 1.0, 1.0]
        """

        def one(leaf: Any) -> Any:
            if not isinstance(leaf, jax.Array) or not leaf.ndim or leaf.shape[0] % self.shards:
                return leaf
            layout = NamedSharding(self.mesh, PartitionSpec(self.axes))
            if self.explicit:
                return jax.sharding.reshard(leaf, layout)
            return jax.lax.with_sharding_constraint(leaf, layout)

        return jax.tree_util.tree_map(one, tree)


def color_layout(parts: Any) -> ColorSharding | None:
    """Return the layout that splits the leading (color) axis of these compressed matrices.

    Read from each array's sharding (inside `jax.jit`, from its type, which carries it
    on meshes with `Explicit` axes). `None` where the color axis is not split, or where
    the parts are split differently.

    Examples:
        >>> import jax
        >>> from jax.sharding import NamedSharding, PartitionSpec
        >>> from asdex.decompression._sharding import color_layout
        >>> mesh = jax.make_mesh((1,), ("colors",))
        >>> B = jax.device_put(jax.numpy.ones((2, 3)), NamedSharding(mesh, PartitionSpec("colors")))
        >>> color_layout([B]).names
        ('colors',)
    """
    found = set()
    for part in parts:
        if not part.shape[0]:
            continue
        sharding = (jax.typeof(part).sharding if isinstance(part, jax.core.Tracer)
                    else getattr(part, "sharding", None))
        spec = tuple(sharding.spec) if isinstance(sharding, NamedSharding) else ()
        if not spec or spec[0] is None or sharding.mesh.empty:
            return None
        found.add((sharding.mesh, spec[0]))
    if len(found) != 1:
        return None
    ((mesh, axes),) = found
    types = dict(zip(mesh.axis_names, mesh.axis_types, strict=True))
    names = axes if isinstance(axes, tuple) else (axes,)
    return ColorSharding(mesh, axes, explicit=types[names[0]] == AxisType.Explicit)


def replicated_layout(array: jax.Array) -> NamedSharding | None:
    """Return the replicated layout on `array`'s mesh if its type has explicit axes.

    Scatters into a new array (the "dense" output) read updates whose layout is part
    of their type on such a mesh; JAX then asks for the result's layout, which this
    gives (under `jax.vmap` the batch axis keeps its own split).

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex.decompression._sharding import replicated_layout
        >>> replicated_layout(jnp.ones(2)) is None
        True
    """
    mesh = jax.typeof(array).sharding.mesh
    if mesh.empty or AxisType.Explicit not in mesh.axis_types:
        return None
    return NamedSharding(mesh, PartitionSpec())


def on_inputs_mesh(seeds: Any, primals: Any) -> Any:
    """Place `seeds` replicated on the inputs' mesh if the inputs' types have explicit axes.

    Seeds are constants without a mesh. Pulled back through a gradient under `jax.vmap`
    over inputs placed on explicit axes, such constants meet cotangents that carry the
    batch's layout, which JAX (0.10) fails to add; seeds placed on the inputs' mesh
    avoid it. Without such inputs the seeds come back as they are.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex.decompression._sharding import on_inputs_mesh
        >>> on_inputs_mesh([jnp.ones(2)], [jnp.zeros(3)])[0].tolist()
        [1.0, 1.0]
    """
    layouts = {
        layout for leaf in jax.tree_util.tree_leaves(primals)
        if (layout := replicated_layout(leaf)) is not None
    }
    if len(layouts) != 1:
        return seeds
    (layout,) = layouts
    return jax.tree_util.tree_map(lambda seed: jax.sharding.reshard(seed, layout), seeds)


def replicated(array: jax.Array) -> jax.Array:
    """`array` gathered onto every device when its type splits it over explicit axes.

    Decompression reads arbitrary entries of `B`; with explicit axes JAX asks for the
    layout of such reads, so the color axis is gathered first. Arrays whose layout is
    not part of their type (`Auto` axes, or no mesh) come back as they are, and XLA
    chooses how to gather.

    Examples:
        >>> import jax.numpy as jnp
        >>> replicated(jnp.ones(2)).tolist()
        [1.0, 1.0]
    """
    sharding = jax.typeof(array).sharding
    mesh = sharding.mesh
    if mesh.empty or not any(
        types == AxisType.Explicit for types in mesh.axis_types
    ) or all(part is None for part in sharding.spec):
        return array
    return jax.sharding.reshard(array, NamedSharding(mesh, PartitionSpec()))


def _auto(mesh: Mesh) -> Mesh:
    """The same devices and axis names, every axis `Auto`."""
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * mesh.devices.ndim)
