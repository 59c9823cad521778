"""dot_general and conv_general_dilated: exact maps, zero-skipping, scale."""

from __future__ import annotations

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from jax import lax

from asdex.detection import Curvature, jacobian_sparsity
from asdex.detection._registry import lookup
from asdex.detection._rules.contractions import dot_general_terms


def detected(f, *args, argnums=0):
    return jacobian_sparsity(f, *args, argnums=argnums).todense().astype(bool)


def numeric(f, *args, argnums=0, points=1):
    """Union over random points of the nonzero pattern of `jax.jacfwd`."""
    argnums_t = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    found = None
    for seed in range(points):
        keys = jax.random.split(jax.random.key(seed), len(args))
        point = [
            jax.random.normal(k, jnp.shape(a)) if i in argnums_t else a
            for i, (k, a) in enumerate(zip(keys, args, strict=True))
        ]
        jac = jax.jacfwd(f, argnums=argnums_t)(*point)
        out_size = int(np.prod(jnp.shape(f(*point))))
        blocks = [np.asarray(j).reshape(out_size, -1) for j in jac]
        nonzero = np.concatenate(blocks, axis=1) != 0
        found = nonzero if found is None else found | nonzero
    return found


def assert_exact(f, *args, argnums=0):
    """Detected == numeric (no cancellation in these programs)."""
    d, n = detected(f, *args, argnums=argnums), numeric(f, *args, argnums=argnums)
    assert not (n & ~d).any(), f"missed {np.argwhere(n & ~d)[:5].tolist()}"
    assert not (d & ~n).any(), f"spurious {np.argwhere(d & ~n)[:5].tolist()}"
    return d


EINSUMS = [
    ("ij,j->i", (4, 5), (5,)),
    ("ij,jk->ik", (3, 4), (4, 5)),
    ("ij,jk->ki", (3, 4), (4, 5)),
    ("bij,bjk->bik", (2, 3, 4), (2, 4, 5)),
    ("bij,bjk->kbi", (2, 3, 4), (2, 4, 5)),
    ("ibj,kjb->bki", (3, 2, 4), (5, 4, 2)),
    ("ijk,jkl->il", (2, 3, 4), (3, 4, 2)),
    ("i,j->ij", (3,), (4,)),
    ("i,i->", (5,), (5,)),
    ("abc,cd->abd", (2, 3, 4), (4, 3)),
]


@pytest.mark.parametrize(("spec", "lhs_shape", "rhs_shape"), EINSUMS)
def test_dot_general_both_unknown_is_exact(spec, lhs_shape, rhs_shape):
    f = lambda a, b: jnp.einsum(spec, a, b)  # noqa: E731
    assert_exact(f, jnp.ones(lhs_shape), jnp.ones(rhs_shape), argnums=(0, 1))


@pytest.mark.parametrize(("spec", "lhs_shape", "rhs_shape"), EINSUMS)
@pytest.mark.parametrize("known", [0, 1])
def test_dot_general_zero_skipping_is_exact(spec, lhs_shape, rhs_shape, known):
    rng = np.random.default_rng(0)
    shapes = (lhs_shape, rhs_shape)
    constant = rng.normal(size=shapes[known]).astype(np.float32)
    constant[rng.random(constant.shape) < 0.5] = 0.0

    def f(x):
        args = (constant, x) if known == 0 else (x, constant)
        return jnp.einsum(spec, *args)

    assert_exact(f, jnp.ones(shapes[1 - known]))


def test_banded_constant_times_x_gives_the_band():
    n = 8
    band = np.diag(np.ones(n)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    np.testing.assert_array_equal(detected(lambda x: band @ x, jnp.ones(n)), band != 0)
    # a constant with no zeros keeps the dense (Groups) map
    dense = np.ones((3, n))
    assert detected(lambda x: dense @ x, jnp.ones(n)).all()


def test_nan_in_constant_is_not_skipped():
    constant = np.array([[0.0, np.nan], [1.0, 0.0]])
    np.testing.assert_array_equal(
        detected(lambda x: constant @ x, jnp.ones(2)), [[False, True], [True, False]]
    )


def test_integer_dot_has_no_derivative():
    f = lambda x: jnp.dot(jnp.arange(6).reshape(2, 3), x.astype(jnp.int32)).astype(float)  # noqa: E731
    assert not detected(f, jnp.ones(3)).any()


@pytest.mark.slow
def test_dot_general_scales():
    n = 1000
    p = detected(lambda a, x: a @ x, jnp.ones((n, n)), jnp.ones(n), argnums=(0, 1))
    assert p.shape == (n, n * n + n)
    assert p[:, n * n:].all() and p[:, : n * n].sum() == n * n
    # a constant 1000 x 1000 banded matrix times x: exactly the band
    band = np.eye(n) + np.eye(n, k=1)
    assert jacobian_sparsity(lambda x: band @ x, jnp.ones(n)).nnz == 2 * n - 1
    # a batched matmul of unknown operands
    pb = jacobian_sparsity(lambda a, b: a @ b, jnp.ones((64, 32, 32)), jnp.ones((64, 32, 32)),
                           argnums=(0, 1))
    assert pb.nnz == 64 * 32 * 32 * 64


def _conv_config(draw):
    rank = draw(st.integers(1, 3))
    spatial = [draw(st.integers(1, 5)) for _ in range(rank)]
    window = [draw(st.integers(1, 3)) for _ in range(rank)]
    strides = [draw(st.integers(1, 2)) for _ in range(rank)]
    padding = [(draw(st.integers(-1, 2)), draw(st.integers(-1, 2))) for _ in range(rank)]
    lhs_dilation = [draw(st.integers(1, 2)) for _ in range(rank)]
    rhs_dilation = [draw(st.integers(1, 2)) for _ in range(rank)]
    groups = draw(st.sampled_from([(1, 1), (2, 1), (1, 2)]))
    channels = draw(st.integers(1, 2))
    out_per_group = draw(st.integers(1, 2))
    names = "HWD"[:rank]
    perm = lambda s: "".join(draw(st.permutations(list(s))))  # noqa: E731
    dn = (perm("NC" + names), perm("OI" + names), perm("NC" + names))
    return dict(rank=rank, spatial=spatial, window=window, strides=strides, padding=padding,
                lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation, groups=groups,
                channels=channels, out_per_group=out_per_group, dn=dn)


def _conv_setup(cfg):
    feature_groups, batch_groups = cfg["groups"]
    in_channels = cfg["channels"] * feature_groups
    out_channels = cfg["out_per_group"] * feature_groups * batch_groups
    batch = 2 * batch_groups
    lhs_dims = dict(N=batch, C=in_channels, **dict(zip("HWD", cfg["spatial"], strict=False)))
    rhs_dims = dict(O=out_channels, I=cfg["channels"], **dict(zip("HWD", cfg["window"],
                                                                  strict=False)))
    lhs_shape = tuple(lhs_dims[c] for c in cfg["dn"][0])
    rhs_shape = tuple(rhs_dims[c] for c in cfg["dn"][1])

    def f(lhs, rhs):
        return lax.conv_general_dilated(
            lhs, rhs, cfg["strides"], cfg["padding"], cfg["lhs_dilation"], cfg["rhs_dilation"],
            dimension_numbers=cfg["dn"], feature_group_count=feature_groups,
            batch_group_count=batch_groups,
        )

    return f, lhs_shape, rhs_shape


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(st.data())
def test_conv_random_configs_are_exact(data):
    cfg = _conv_config(data.draw)
    f, lhs_shape, rhs_shape = _conv_setup(cfg)
    try:
        out = jax.eval_shape(f, jnp.ones(lhs_shape), jnp.ones(rhs_shape))
    except (TypeError, ValueError):
        return  # an invalid geometry for lax itself
    if 0 in out.shape:
        return
    assert_exact(f, jnp.ones(lhs_shape), jnp.ones(rhs_shape), argnums=(0, 1))


@pytest.mark.slow
@settings(max_examples=20, deadline=None)
@given(st.data(), st.integers(0, 2**31 - 1))
def test_conv_zero_skipping_is_exact(data, seed):
    cfg = _conv_config(data.draw)
    f, lhs_shape, rhs_shape = _conv_setup(cfg)
    try:
        out = jax.eval_shape(f, jnp.ones(lhs_shape), jnp.ones(rhs_shape))
    except (TypeError, ValueError):
        return
    if 0 in out.shape:
        return
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=rhs_shape).astype(np.float32)
    kernel[rng.random(rhs_shape) < 0.4] = 0.0
    image = rng.normal(size=lhs_shape).astype(np.float32)
    image[rng.random(lhs_shape) < 0.4] = 0.0
    assert_exact(lambda x: f(x, kernel), jnp.ones(lhs_shape))
    assert_exact(lambda w: f(image, w), jnp.ones(rhs_shape))


FIXED_CONVS = [
    dict(rank=2, spatial=[5, 4], window=[2, 3], strides=[2, 1], padding=[(1, 0), (-1, 2)],
         lhs_dilation=[1, 2], rhs_dilation=[2, 1], groups=(2, 1), channels=2, out_per_group=2,
         dn=("NHWC", "HWIO", "NCHW")),
    dict(rank=1, spatial=[6], window=[3], strides=[1], padding=[(2, 1)], lhs_dilation=[2],
         rhs_dilation=[1], groups=(1, 2), channels=1, out_per_group=2, dn=("CNH", "OIH", "HNC")),
    dict(rank=3, spatial=[3, 2, 3], window=[2, 1, 2], strides=[1, 2, 1],
         padding=[(0, 0), (1, 0), (0, -1)], lhs_dilation=[1, 1, 2], rhs_dilation=[1, 1, 1],
         groups=(1, 1), channels=2, out_per_group=1, dn=("NCHWD", "OIHWD", "NCHWD")),
]


@pytest.mark.parametrize("cfg", FIXED_CONVS)
def test_conv_fixed_configs_are_exact(cfg):
    f, lhs_shape, rhs_shape = _conv_setup(cfg)
    assert_exact(f, jnp.ones(lhs_shape), jnp.ones(rhs_shape), argnums=(0, 1))
    kernel = np.random.default_rng(0).normal(size=rhs_shape).astype(np.float32)
    kernel.reshape(-1)[::3] = 0.0
    assert_exact(lambda x: f(x, kernel), jnp.ones(lhs_shape))


def test_conv_transpose_and_known_kernel():
    x = jnp.ones((1, 6, 2))
    w = np.zeros((3, 2, 1), np.float32)
    w[1] = 1.0  # only the centre tap: each output reads its own position
    f = lambda x: lax.conv_general_dilated(  # noqa: E731
        x, w, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC"))
    p = assert_exact(f, x)
    np.testing.assert_array_equal(p, np.kron(np.eye(6), np.ones((1, 2))).astype(bool))
    g = lambda x, k: lax.conv_transpose(x, k, (2,), "SAME", dimension_numbers=("NWC", "WIO", "NWC"))  # noqa: E731
    assert_exact(g, jnp.ones((1, 4, 2)), jnp.ones((3, 2, 3)), argnums=(0, 1))


@pytest.mark.slow
def test_conv_1d_scales():
    n = 20000
    w1 = np.random.default_rng(0).normal(size=(8, 1, 3)).astype(np.float32)
    w2 = np.random.default_rng(1).normal(size=(8, 8, 3)).astype(np.float32)

    def net(x):
        h = jnp.tanh(lax.conv(x[None, None], w1, (1,), "SAME"))
        return lax.conv(h, w2, (1,), "SAME").sum(axis=1)

    p = jacobian_sparsity(net, jnp.ones(n))
    assert p.nnz == 5 * n - 6


def test_curvature():
    # dot_general pairs each lhs element only with the rhs elements of its own products
    assert lookup("dot_general").curvature is dot_general_terms
    assert lookup("conv_general_dilated").curvature is Curvature.BILINEAR
