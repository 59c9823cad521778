from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from decompression_corpus import (
    HESSIAN_CASES,
    assert_trees_close,
    hessian_pattern,
    run_jitted,
)

from asdex import (
    SparsityPattern,
    hessian_coloring_from_sparsity,
    hessian_from_coloring,
    value_and_hessian_from_coloring,
)

pytestmark = pytest.mark.filterwarnings("ignore::asdex.DenseColoringWarning")


def _coloring(case, **kwargs):
    f = partial(case.f, **case.kwargs)
    pattern = hessian_pattern(f, case.args, case.argnums, case.has_aux, case.holomorphic)
    return hessian_coloring_from_sparsity(pattern, **kwargs)


def _expected(case):
    hess = jax.hessian(case.f, case.argnums, has_aux=case.has_aux, holomorphic=case.holomorphic)
    return run_jitted(hess, *case.args, **case.kwargs)


def _check(case, coloring, output_format):
    options = dict(has_aux=case.has_aux, holomorphic=case.holomorphic)
    expected = _expected(case)
    rtol = 1e-4
    actual = run_jitted(hessian_from_coloring(case.f, coloring, output_format, **options),
                        *case.args)
    assert_trees_close(actual, expected, rtol=rtol)
    value, hess = run_jitted(
        value_and_hessian_from_coloring(case.f, coloring, output_format, **options), *case.args
    )
    assert_trees_close(hess, expected[0] if case.has_aux else expected, rtol=rtol)
    assert_trees_close(value, run_jitted(case.f, *case.args), rtol=rtol)


@pytest.mark.parametrize("case", HESSIAN_CASES, ids=repr)
@pytest.mark.parametrize(
    ("mode", "output_format"),
    [("fwd_over_rev", "bcoo"), ("fwd_over_rev", "dense"), ("rev_over_fwd", "bcoo"),
     ("rev_over_rev", "dense")],
)
def test_star_matches_jax(case, mode, output_format):
    _check(case, _coloring(case, mode=mode), output_format)


@pytest.mark.parametrize("case", HESSIAN_CASES, ids=repr)
@pytest.mark.parametrize("kind", ["acyclic", "unsymmetric"])
def test_acyclic_and_unsymmetric_match_jax(case, kind):
    options = {"method": "acyclic"} if kind == "acyclic" else {"symmetric": False}
    _check(case, _coloring(case, **options), "bcoo")


def test_acyclic_substitution_on_banded_hessian():
    def f(x):
        return jnp.sum(jnp.sin(x[2:] * x[1:-1] * x[:-2])) + jnp.sum(x**3)

    x = jnp.linspace(0.1, 1.0, 40)
    pattern = hessian_pattern(f, (x,))
    star = hessian_coloring_from_sparsity(pattern)
    acyclic = hessian_coloring_from_sparsity(pattern, method="acyclic")
    assert acyclic.num_colors < star.num_colors
    expected = run_jitted(jax.hessian(f), x)
    for coloring in (star, acyclic):
        np.testing.assert_allclose(
            run_jitted(hessian_from_coloring(f, coloring, "dense"), x), expected, rtol=1e-4,
            atol=1e-5,
        )


def test_squeezes_size_one_output():
    def f(x):
        return jnp.sum(x**4).reshape(1, 1)

    x = jnp.arange(3.0)
    coloring = hessian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(3)))
    hess = run_jitted(hessian_from_coloring(f, coloring, "dense"), x)
    np.testing.assert_allclose(hess, np.diag(12 * np.asarray(x) ** 2))


def test_non_scalar_output_is_an_error():
    coloring = hessian_coloring_from_sparsity(SparsityPattern.from_dense(np.eye(3)))
    with pytest.raises(ValueError, match="scalar"):
        hessian_from_coloring(jnp.sin, coloring)(jnp.ones(3))


@pytest.mark.parametrize("mode", ["fwd_over_rev", "rev_over_fwd", "rev_over_rev"])
def test_chunk_size_and_single_trace(mode):
    calls = []

    def f(x):
        calls.append(1)
        return jnp.sum(x[1:] ** 2 * x[:-1])

    x = jnp.arange(1.0, 7.0)
    coloring = hessian_coloring_from_sparsity(hessian_pattern(f, (x,)), mode=mode)
    calls.clear()
    jax.make_jaxpr(value_and_hessian_from_coloring(f, coloring))(x)
    assert len(calls) == 1
    for chunk_size in (1, 2):
        hess = run_jitted(hessian_from_coloring(f, coloring, "dense", chunk_size=chunk_size), x)
        np.testing.assert_allclose(hess, run_jitted(jax.hessian(f), x), rtol=1e-5)


def test_allow_int_and_float64():
    def f(x, i):
        return jnp.sum(x**3 * i)

    with jax.enable_x64(True):
        args = (jnp.arange(3.0), jnp.arange(3))
        avals = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), args)
        pattern = SparsityPattern.from_coo([0, 1, 2], [0, 1, 2], (6, 6), input_avals=avals,
                                           argnums=(0, 1))
        coloring = hessian_coloring_from_sparsity(pattern)
        hess = run_jitted(hessian_from_coloring(f, coloring, "dense", allow_int=True), *args)
        assert hess[0][0].dtype == jnp.float64
        np.testing.assert_allclose(hess[0][0], np.diag(6.0 * np.arange(3) ** 2))
        assert hess[1][1].dtype == args[1].dtype and not np.asarray(hess[1][1]).any()


def test_vmap_and_grad():
    f = HESSIAN_CASES[0].f
    x = HESSIAN_CASES[0].args[0]
    hess_fn = hessian_from_coloring(f, _coloring(HESSIAN_CASES[0]))
    xs = jnp.stack([x, x + 0.5])
    np.testing.assert_allclose(
        run_jitted(jax.vmap(hess_fn), xs), run_jitted(jax.vmap(jax.hessian(f)), xs), rtol=1e-5
    )
    grad = run_jitted(jax.grad(lambda x: hess_fn(x).data.sum()), x)
    expected = run_jitted(jax.grad(lambda x: jax.hessian(f)(x).sum()), x)
    np.testing.assert_allclose(grad, expected, rtol=1e-4)


def test_long_substitution_schedules_run_as_one_scan():
    import asdex
    from asdex.coloring import hessian_coloring_from_sparsity, schedule
    from asdex.decompression._gather import MAX_UNROLLED_LEVELS

    def f(x):
        return jnp.sum((x[2:] * x[1:-1] * x[:-2]) ** 2) + jnp.sum(jnp.sin(x))

    x = jnp.linspace(0.1, 1.0, 300)
    star = asdex.hessian_coloring(f, x)
    acyclic = hessian_coloring_from_sparsity(star.sparsity, method="acyclic")
    assert len(schedule(acyclic).levels) > MAX_UNROLLED_LEVELS
    with jax.enable_x64(True):
        x64 = x.astype(jnp.float64)
        dense = jax.jit(asdex.hessian_from_coloring(f, acyclic, output_format="dense"))(x64)
        np.testing.assert_allclose(dense, jax.hessian(f)(x64), rtol=1e-9, atol=1e-9)
