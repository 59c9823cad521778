"""The color axis (and the batch axis under vmap) sharded over 4 forced host devices.

Results equal the unsharded ones, the compressed matrices are really sharded, and so are
the decompressed nonzeros (each device holds its share, decompressed from the entries of
`B` it receives; the exchange plan is also checked on the host, device by device).

XLA reads `--xla_force_host_platform_device_count` when JAX starts, so the checks run in
a fresh interpreter.
"""

import os
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asdex import SparsityPattern
from asdex.coloring import hessian_coloring_from_sparsity, jacobian_coloring_from_sparsity
from asdex.decompression import GatherPlan
from asdex.decompression._exchange import ExchangePlan, is_direct
from asdex.decompression._level_exchange import LevelExchange, first_reads

PRELUDE = textwrap.dedent(
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P

    import asdex

    assert jax.device_count() == 4, jax.devices()
    mesh = jax.make_mesh((4,), ("colors",))

    def residual(x):
        lap = jnp.roll(x, 1) + jnp.roll(x, -1) - 2 * x
        return jnp.concatenate([lap + x**2, x[:3] * x[-3:]])

    def objective(x):
        return jnp.sum((x[1:] - x[:-1] ** 2) ** 2) + jnp.sum(jnp.cos(x) * x[::-1])

    x = jnp.linspace(0.2, 1.3, 12)
    auto = jax.make_mesh((2, 2), ("batch", "colors"), axis_types=(AxisType.Auto,) * 2)
    explicit = jax.make_mesh((2, 2), ("batch", "colors"),
                             axis_types=(AxisType.Explicit,) * 2)
    xs = jnp.stack([x, 2 * x, -x, 0.5 * x])
    placed = jax.device_put(xs, NamedSharding(explicit, P("batch")))
    pattern = asdex.jacobian_sparsity(residual, x)
    hess_pattern = asdex.hessian_sparsity(objective, x)
    Js = jax.vmap(jax.jacfwd(residual))(xs)
    Hs = jax.vmap(jax.hessian(objective))(xs)


    def raises(call, words):
        try:
            call()
        except ValueError as error:
            assert words in str(error), error
        else:
            raise AssertionError(f"expected a ValueError saying {words!r}")
    """
)

SCRIPT = PRELUDE + textwrap.dedent(
    """
    def check_sharded(B, num_colors):
        assert isinstance(B.sharding, NamedSharding), B.sharding
        assert B.sharding.spec[0] == "colors", B.sharding.spec
        assert B.shape[0] % 4 == 0 and num_colors <= B.shape[0] < num_colors + 4
        shard_rows = {s.data.shape[0] for s in B.addressable_shards}
        assert shard_rows == {B.shape[0] // 4}, shard_rows
        assert len({s.device for s in B.addressable_shards}) == 4

    J = jax.jacfwd(residual)(x)
    for method, mode in [(None, "fwd"), (None, "rev"), ("bidirectional", None)]:
        coloring = asdex.jacobian_coloring_from_sparsity(pattern, mode=mode, method=method)
        for sharding in [(mesh, "colors"), NamedSharding(mesh, P("colors"))]:
            jac = jax.jit(asdex.jacobian_from_coloring(residual, coloring, "dense",
                                                       sharding=sharding))(x)
            np.testing.assert_allclose(jac, J, rtol=1e-5, atol=1e-6)
            B = asdex.compressed_jacobian_from_coloring(residual, coloring,
                                                        sharding=sharding)(x)
            parts = B if method else (B,)
            unsharded = asdex.compressed_jacobian_from_coloring(residual, coloring)(x)
            for part, plain in zip(parts, unsharded if method else (unsharded,)):
                if plain.shape[0]:  # a bicoloring may need no colors on one side
                    check_sharded(part, plain.shape[0])
                np.testing.assert_allclose(part[: plain.shape[0]], plain, rtol=1e-6)
                np.testing.assert_array_equal(part[plain.shape[0]:], 0.0)
            np.testing.assert_allclose(asdex.decompress(B, coloring, "dense"), J,
                                       rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(jax.jit(asdex.decompress_data)(B, coloring),
                                       J[coloring.sparsity.rows, coloring.sparsity.cols],
                                       rtol=1e-5, atol=1e-6)

    H = jax.hessian(objective)(x)
    for method, mode in [("star", "fwd_over_rev"), ("acyclic", "rev_over_fwd"),
                         ("star", "rev_over_rev")]:
        coloring = asdex.hessian_coloring_from_sparsity(hess_pattern, mode=mode,
                                                        method=method)
        value, hess = asdex.value_and_hessian_from_coloring(
            objective, coloring, sharding=(mesh, "colors"))(x)
        np.testing.assert_allclose(hess.todense(), H, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(value, objective(x), rtol=1e-6)
        if method == "acyclic":  # substitution runs on the split values: B stays split
            text = jax.jit(asdex.hessian_from_coloring(objective, coloring, sharding=(
                mesh, "colors"))).lower(x).compile().as_text()
            assert "all-to-all" in text and "all-gather" not in text
        B = jax.jit(asdex.compressed_hessian_from_coloring(
            objective, coloring, sharding=(mesh, "colors")))(x)
        check_sharded(B, coloring.num_colors)
        np.testing.assert_allclose(asdex.decompress(B, coloring, "dense"), H,
                                   rtol=1e-4, atol=1e-5)

    jac_fn = asdex.jacobian(residual, x, sharding=(mesh, "colors"), chunk_size=2)
    np.testing.assert_allclose(jac_fn(x).todense(), J, rtol=1e-5, atol=1e-6)
    raises(lambda: asdex.jacobian(residual, x, sharding=(mesh, "devices")),
           "not an axis of the mesh")

    # Decompression is split too: each device holds its share of the nonzeros (and of
    # the rows of a dense output), where the shards divide them.
    def cyclic(x):
        return jnp.roll(x, 1) * x  # 24 nonzeros

    coloring = asdex.jacobian_coloring(cyclic, x)
    jac = jax.jit(asdex.jacobian_from_coloring(cyclic, coloring, sharding=(mesh, "colors")))(x)
    np.testing.assert_allclose(jac.todense(), jax.jacfwd(cyclic)(x), rtol=1e-6)
    for leaf, block in [(jac.data, (6,)), (jac.indices, (6, 2))]:
        assert leaf.sharding.spec[0] == "colors", leaf.sharding
        assert {s.data.shape for s in leaf.addressable_shards} == {block}
    def cubic(x):
        return jnp.sum(jnp.roll(x, 1) * x**2)  # 36 nonzeros

    hess = jax.jit(asdex.hessian(cubic, x, output_format="dense",
                                 sharding=(mesh, "colors")))(x)
    np.testing.assert_allclose(hess, jax.hessian(cubic)(x), rtol=1e-5)
    assert {s.data.shape for s in hess.addressable_shards} == {(3, 12)}, hess.sharding

    # Direct decompression is local: each device receives the entries of B its nonzeros
    # read (one all_to_all), never the whole of B (XLA used to all-gather it).
    def band(x):
        return jnp.roll(x, 1) * x + jnp.roll(x, -1) ** 2  # 3 colors, 3 nonzeros a row

    x_band = jnp.linspace(0.2, 1.3, 4096)
    coloring = asdex.jacobian_coloring(band, x_band)
    J_band = jax.jacfwd(band)(x_band)
    band_fn = asdex.jacobian_from_coloring(band, coloring, sharding=(mesh, "colors"))
    jac_fn = jax.jit(band_fn)
    compiled = jac_fn.lower(x_band).compile()
    B = asdex.compressed_jacobian_from_coloring(band, coloring, sharding=(mesh, "colors"))(
        x_band)
    assert "all-to-all" in compiled.as_text() and "all-gather" not in compiled.as_text()
    assert compiled.memory_analysis().temp_size_in_bytes < B.nbytes
    np.testing.assert_allclose(jac_fn(x_band).todense(), J_band, rtol=1e-6)
    # The exchange tables are arguments of the library's program, placed split by colors
    # (each device holds its rows); under an outer jit they are its constants.
    traced = jax.make_jaxpr(band_fn)(x_band)
    (program,) = traced.jaxpr.eqns
    send, receive = traced.consts
    assert send.shape[:2] == (4, 4) and receive.shape == (4, coloring.sparsity.nnz // 4)
    assert [v.aval.shape for v in program.invars[:2]] == [send.shape, receive.shape]
    assert not any(np.shape(c) in (send.shape, receive.shape)
                   for c in program.params["jaxpr"].consts)
    for table in (send, receive):
        assert {s.data.shape[0] for s in table.addressable_shards} == {1}, table.sharding
    # Public decompression keeps the split: read from B, or given inside jit.
    plain = asdex.decompress_data(np.asarray(B), coloring)  # on the host: not split
    share = {(coloring.sparsity.nnz // 4,)}
    for values in [asdex.decompress_data(B, coloring),
                   jax.jit(lambda B: asdex.decompress_data(B, coloring,
                                                           sharding=(mesh, "colors")))(B),
                   asdex.decompress(B, coloring).data]:
        assert values.sharding.spec[0] == "colors", values.sharding
        assert {s.data.shape for s in values.addressable_shards} == share
        np.testing.assert_array_equal(values, plain)
    raises(lambda: asdex.decompress_data(jnp.concatenate([B, B[:1]]), coloring,
                                         sharding=(mesh, "colors")),
           "which they do not divide")

    # Bad input: a second spec entry that does not divide B (15 rows of the JVPs over
    # 2 devices), and inputs split over the axis of the colors.
    fwd = asdex.jacobian_coloring_from_sparsity(pattern, mode="fwd")
    raises(lambda: jax.jit(asdex.compressed_jacobian_from_coloring(
        residual, fwd, sharding=NamedSharding(auto, P("colors", "batch"))))(x),
        "do not divide it")
    raises(lambda: jax.jit(asdex.jacobian_from_coloring(residual, fwd,
                                                        sharding=(explicit, "colors")))(
        jax.device_put(x, NamedSharding(explicit, P("colors")))),
        "an input is split over the mesh axis")

    # The batch axis under jax.vmap: a 2 x 2 mesh, batch over "batch", colors over "colors".
    coloring = asdex.jacobian_coloring_from_sparsity(pattern)
    k = coloring.num_colors
    B_fn = asdex.compressed_jacobian_from_coloring(residual, coloring,
                                                   sharding=(auto, "colors"))
    plain = jax.vmap(asdex.compressed_jacobian_from_coloring(residual, coloring))(xs)
    values = jax.jit(jax.vmap(lambda B: asdex.decompress_data(B, coloring)))
    batched = {
        "spmd_axis_name": jax.jit(jax.vmap(B_fn, spmd_axis_name="batch"))(xs),
        "placed, Auto axes": jax.jit(jax.vmap(B_fn))(
            jax.device_put(xs, NamedSharding(auto, P("batch")))),
        "placed, Explicit axes": jax.jit(jax.vmap(B_fn))(
            jax.device_put(xs, NamedSharding(explicit, P("batch")))),
    }
    for how, Bs in batched.items():
        assert tuple(Bs.sharding.spec)[:2] == ("batch", "colors"), (how, Bs.sharding)
        blocks = {s.data.shape for s in Bs.addressable_shards}
        assert blocks == {(2, Bs.shape[1] // 2, Bs.shape[2])}, (how, blocks)
        assert len({s.device for s in Bs.addressable_shards}) == 4, how
        np.testing.assert_allclose(np.asarray(Bs)[:, :k], plain, rtol=1e-6, err_msg=how)
        np.testing.assert_array_equal(np.asarray(Bs)[:, k:], 0.0)
        np.testing.assert_allclose(
            values(Bs), Js[:, coloring.sparsity.rows, coloring.sparsity.cols],
            rtol=1e-5, atol=1e-6, err_msg=how)
    jac_fn = asdex.jacobian_from_coloring(residual, coloring, "dense",
                                          sharding=(auto, "colors"))
    np.testing.assert_allclose(jax.jit(jax.vmap(jac_fn, spmd_axis_name="batch"))(xs), Js,
                               rtol=1e-5, atol=1e-6)
    coloring = asdex.hessian_coloring_from_sparsity(hess_pattern)
    hess_fn = asdex.hessian_from_coloring(objective, coloring, "dense",
                                          sharding=(auto, "colors"))
    np.testing.assert_allclose(jax.jit(jax.vmap(hess_fn, spmd_axis_name="batch"))(xs), Hs,
                               rtol=1e-4, atol=1e-5)
    try:
        jax.jit(asdex.compressed_jacobian_from_coloring(residual, coloring=asdex.
            jacobian_coloring_from_sparsity(pattern), sharding=(mesh, "colors")))(
            jax.device_put(x, NamedSharding(explicit, P())))
    except ValueError as error:
        assert "pass the inputs' mesh to `sharding`" in str(error), error
    else:
        raise AssertionError("inputs on another explicit mesh must raise")
    # Inputs placed on explicit axes: the dense output and Hessian decompression.
    coloring = asdex.hessian_coloring_from_sparsity(hess_pattern, method="acyclic")
    hess_fn = asdex.hessian_from_coloring(objective, coloring, "dense",
                                          sharding=(explicit, "colors"))
    np.testing.assert_allclose(jax.jit(jax.vmap(hess_fn))(placed), Hs, rtol=1e-4, atol=1e-5)
    jac_fn = asdex.jacobian_from_coloring(residual, fwd, "dense")
    np.testing.assert_allclose(jax.jit(jax.vmap(jac_fn))(placed), Js, rtol=1e-5, atol=1e-6)
    print("SHARDING OK")
    """
)

EXPLICIT_SCRIPT = PRELUDE + textwrap.dedent(
    """
    # Every output format and Hessian mode under vmap over batches placed on explicit
    # axes, with and without `sharding=`.
    def dense(out):
        return np.asarray(out) if isinstance(out, jax.Array) else np.asarray(
            jax.vmap(lambda block: block.todense())(jax.device_get(out)))

    def check_formats(build, f, coloring, expected, sharding, rtol, atol):
        for fmt in ["dense", "bcoo"]:
            fn = build(f, coloring, fmt, sharding=sharding)
            np.testing.assert_allclose(dense(jax.jit(jax.vmap(fn))(placed)), expected,
                                       rtol=rtol, atol=atol, err_msg=(coloring.mode, fmt))

    for sharding in [None, (explicit, "colors")]:
        for method, mode in [("star", "fwd_over_rev"), ("acyclic", "fwd_over_rev"),
                             ("star", "rev_over_fwd"), ("star", "rev_over_rev")]:
            coloring = asdex.hessian_coloring_from_sparsity(hess_pattern, method=method,
                                                            mode=mode)
            check_formats(asdex.hessian_from_coloring, objective, coloring, Hs, sharding,
                          1e-4, 1e-5)
            B = jax.jit(jax.vmap(asdex.compressed_hessian_from_coloring(
                objective, coloring, sharding=sharding)))(placed)
            values = jax.jit(jax.vmap(lambda B: asdex.decompress_data(B, coloring)))(B)
            np.testing.assert_allclose(
                values, Hs[:, coloring.sparsity.rows, coloring.sparsity.cols],
                rtol=1e-4, atol=1e-5)
        for method, mode in [(None, "fwd"), (None, "rev"), ("bidirectional", None)]:
            coloring = asdex.jacobian_coloring_from_sparsity(pattern, mode=mode,
                                                             method=method)
            check_formats(asdex.jacobian_from_coloring, residual, coloring, Js, sharding,
                          1e-5, 1e-6)
    print("SHARDING OK")
    """
)


def _exchanged(exchange: ExchangePlan, parts: list[np.ndarray]) -> np.ndarray:
    """Apply `exchange` as the devices would, one NumPy array per device."""
    shards = exchange.shards
    held = [
        np.concatenate([part.reshape(shards, -1, part.shape[1])[device].ravel()
                        for part in parts if part.shape[0]])
        for device in range(shards)
    ]
    sent = [held[device][exchange.send[device]] for device in range(shards)]
    values = [
        np.append(np.stack([sent[source][device] for source in range(shards)]).ravel(),
                  0.0)[exchange.receive[device]]
        for device in range(shards)
    ]
    return np.concatenate(values)


def _solved(levels: LevelExchange, raw: np.ndarray, shards: int) -> np.ndarray:
    """Apply the substitution levels as the devices would, from each device's raw reads."""
    share = raw.size // shards
    start = [np.append(raw[d * share : (d + 1) * share], 0.0) for d in range(shards)]
    values = [held.copy() for held in start]
    count = levels.targets.shape[-1]
    for lvl, sign in enumerate(levels.signs):
        sent = [[values[e][levels.send[lvl, e, d]] for d in range(shards)]
                for e in range(shards)]
        for d in range(shards):
            received = np.append(np.concatenate([sent[e][d] for e in range(shards)]), 0.0)
            sums = np.zeros(count + 1)
            np.add.at(sums, levels.segments[lvl, d], received[levels.reads[lvl, d]])
            targets = levels.targets[lvl, d]
            values[d][targets] = start[d][targets] + sign * sums[:count]
    return np.concatenate([held[:-1] for held in values])


def _colorings(pattern: SparsityPattern) -> list[Any]:
    square = SparsityPattern.from_dense(pattern.todense() | pattern.todense().T)
    return [
        jacobian_coloring_from_sparsity(pattern, mode="fwd"),
        jacobian_coloring_from_sparsity(pattern, mode="rev"),
        jacobian_coloring_from_sparsity(pattern, method="bidirectional"),
        hessian_coloring_from_sparsity(square, method="star"),
        hessian_coloring_from_sparsity(square, method="acyclic"),
    ]


def _host_plan(plan: GatherPlan, stacked: np.ndarray) -> np.ndarray:
    """`plan(stacked)` in NumPy (`GatherPlan.__call__`, without compiling per shape)."""
    flat = np.append(stacked.ravel(), 0.0)
    values = np.append(flat[plan.initial], 0.0)  # a scratch value for stacked padding
    levels = [(lv.targets, lv.reads, lv.subtract, lv.segments) for lv in plan.levels]
    if plan.stacked is not None:
        levels += zip(plan.stacked.targets, plan.stacked.reads, plan.stacked.subtract,
                      plan.stacked.segments, strict=True)
    for targets, reads, subtract, segments in levels:
        sums = np.zeros(targets.size + 1)
        np.add.at(sums, segments, values[subtract])
        values[targets] = flat[reads] - sums[: targets.size]
    values[plan.mirror_targets] = values[plan.mirror_sources]
    return values[:-1]


def _check_split(coloring: Any, shards: int, rng: np.random.Generator) -> bool:
    """Check each device's share against the plan's values; return whether it substitutes.

    The padding rows of `B` hold NaN: the exchange never reads them. Substitution runs
    level by level on the split values (`_solved`). The reference is the plan applied
    in NumPy (`_host_plan`); the four-device script checks against `jax.hessian`.
    """
    plan = GatherPlan.from_schedule(coloring.plan.schedule)
    passes = coloring.plan.passes
    m, n = coloring.sparsity.shape
    widths = [m if p.kind == "jvp" else n for p in passes]
    counts = [p.count for p in passes]
    padded = [-(-count // shards) * shards for count in counts]
    parts = [
        np.concatenate([rng.standard_normal((count, width)),
                        np.full((rows - count, width), np.nan)])
        for count, rows, width in zip(counts, padded, widths, strict=True)
    ]
    exchange = ExchangePlan.build(plan, counts, padded, widths, shards)
    assert exchange.receive.shape == (shards, -(-plan.nnz // shards))
    stacked = np.zeros((sum(counts), sum(widths)))
    for i, (part, count) in enumerate(zip(parts, counts, strict=True)):
        rows, cols = sum(counts[:i]), sum(widths[:i])
        stacked[rows : rows + count, cols : cols + widths[i]] = part[:count]
    values = _exchanged(exchange, parts)
    np.testing.assert_array_equal(values[: plan.nnz],
                                  np.append(stacked.ravel(), 0.0)[first_reads(plan)])
    if not is_direct(plan):
        values = _solved(LevelExchange.build(plan, shards), values, shards)
    np.testing.assert_allclose(values[: plan.nnz], _host_plan(plan, stacked), rtol=1e-12)
    return not is_direct(plan)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), shards=st.integers(2, 5))
def test_exchange_plan_reads_what_the_gather_plan_reads(seed: int, shards: int) -> None:
    """Each device's share, from the exchanged entries (and levels), is the plan's."""
    rng = np.random.default_rng(seed)
    pattern = SparsityPattern.from_dense(rng.random((9, 9)) < 0.3)
    for coloring in _colorings(pattern):
        _check_split(coloring, shards, rng)


def test_substitution_levels_on_split_values() -> None:
    """An acyclic coloring of a band substitutes; split over 3 devices it is solved."""
    band = np.abs(np.subtract.outer(np.arange(12), np.arange(12))) <= 2
    coloring = hessian_coloring_from_sparsity(SparsityPattern.from_dense(band),
                                              method="acyclic")
    assert _check_split(coloring, 3, np.random.default_rng(0))


def _run(script: str) -> None:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
               JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "SHARDING OK" in result.stdout


@pytest.mark.slow
def test_color_axis_sharded_over_four_host_devices():
    _run(SCRIPT)


@pytest.mark.slow
def test_every_format_and_mode_with_batches_on_explicit_axes():
    _run(EXPLICIT_SCRIPT)
