from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from decompression_corpus import (
    JACOBIAN_CASES,
    assert_trees_close,
    jacobian_pattern,
    run_jitted,
)

from asdex import (
    SparsityPattern,
    jacobian_coloring_from_sparsity,
    jacobian_from_coloring,
    value_and_jacobian_from_coloring,
)

pytestmark = pytest.mark.filterwarnings("ignore::asdex.DenseColoringWarning")


def _coloring(case, **kwargs):
    f = partial(case.f, **case.kwargs)
    pattern = jacobian_pattern(f, case.args, case.argnums, case.has_aux, case.holomorphic)
    return jacobian_coloring_from_sparsity(pattern, **kwargs)


def _expected(case):
    jac = jax.jacrev(case.f, case.argnums, has_aux=case.has_aux, holomorphic=case.holomorphic)
    return run_jitted(jac, *case.args, **case.kwargs)


@pytest.mark.parametrize("case", JACOBIAN_CASES, ids=repr)
@pytest.mark.parametrize("mode", ["fwd", "rev"])
@pytest.mark.parametrize("output_format", ["bcoo", "dense"])
def test_matches_jax(case, mode, output_format):
    coloring = _coloring(case, mode=mode)
    options = dict(has_aux=case.has_aux, holomorphic=case.holomorphic)
    expected = _expected(case)
    actual = run_jitted(
        jacobian_from_coloring(case.f, coloring, output_format, **options),
        *case.args, **case.kwargs,
    )
    assert_trees_close(actual, expected)

    value, jac = run_jitted(
        value_and_jacobian_from_coloring(case.f, coloring, output_format, **options),
        *case.args, **case.kwargs,
    )
    assert_trees_close(jac, expected[0] if case.has_aux else expected)
    assert_trees_close(value, run_jitted(case.f, *case.args, **case.kwargs))


def test_symmetric_jacobian_both_modes():
    gradient = jax.grad(lambda x: jnp.sum(x[1:] ** 2 * x[:-1]) + jnp.sum(jnp.sin(x)))
    x = jnp.linspace(0.0, 1.0, 8)
    pattern = jacobian_pattern(gradient, (x,))
    expected = run_jitted(jax.jacfwd(gradient), x)
    for mode in ("fwd", "rev"):
        coloring = jacobian_coloring_from_sparsity(pattern, mode=mode, symmetric=True)
        assert coloring.symmetric
        actual = run_jitted(jacobian_from_coloring(gradient, coloring, "dense"), x)
        np.testing.assert_allclose(actual, expected, rtol=1e-5)


def test_bcoo_blocks_are_sorted_with_full_sparse_dims():
    case = JACOBIAN_CASES[1]
    jac = jax.jit(jacobian_from_coloring(case.f, _coloring(case)))(*case.args)
    block = jac[1]["z"]["a"]
    assert block.shape == (3, 2, 3, 2)
    assert block.n_sparse == 4 and block.n_batch == 0 and block.n_dense == 0
    assert block.indices_sorted and block.unique_indices


def test_allow_int():
    def f(x, i):
        return x * i + x**2

    args = (jnp.arange(3.0), jnp.arange(3))
    pattern = SparsityPattern.from_coo(
        [0, 1, 2], [0, 1, 2], (3, 6), input_avals=jax.tree.map(
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), args), argnums=(0, 1)
    )
    expected = run_jitted(jax.jacrev(f, (0, 1), allow_int=True), *args)
    for mode in ("fwd", "rev"):
        coloring = jacobian_coloring_from_sparsity(pattern, mode=mode)
        for output_format in ("bcoo", "dense"):
            jac_fn = jacobian_from_coloring(f, coloring, output_format, allow_int=True)
            actual = run_jitted(jac_fn, *args)
            assert_trees_close(actual, expected)
        with pytest.raises(TypeError, match="allow_int"):
            jacobian_from_coloring(f, coloring)(*args)


def test_float64():
    with jax.enable_x64(True):
        x = jnp.linspace(0.1, 1.0, 6, dtype=jnp.float64)
        f = JACOBIAN_CASES[0].f
        coloring = jacobian_coloring_from_sparsity(jacobian_pattern(f, (x,)))
        jac = run_jitted(jacobian_from_coloring(f, coloring, "dense"), x)
        assert jac.dtype == jnp.float64
        np.testing.assert_allclose(jac, run_jitted(jax.jacrev(f), x), rtol=1e-13)


@pytest.mark.parametrize("chunk_size", [1, 2, 100])
@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_chunk_size(chunk_size, mode):
    case = JACOBIAN_CASES[0]
    coloring = _coloring(case, mode=mode)
    jac = jax.jit(jacobian_from_coloring(case.f, coloring, "dense", chunk_size=chunk_size))
    np.testing.assert_allclose(jac(*case.args), _expected(case), rtol=1e-6)


def test_jit_vmap_grad():
    case = JACOBIAN_CASES[0]
    coloring = _coloring(case)
    jac_fn = jacobian_from_coloring(case.f, coloring)
    x = case.args[0]
    np.testing.assert_allclose(run_jitted(jac_fn, x), _expected(case), rtol=1e-6)

    xs = jnp.stack([x, 2 * x, -x])
    batched = run_jitted(jax.vmap(jac_fn), xs)
    np.testing.assert_allclose(batched, run_jitted(jax.vmap(jax.jacrev(case.f)), xs), rtol=1e-6)

    dense_fn = jacobian_from_coloring(case.f, coloring, "dense")
    sparse_grad = run_jitted(jax.grad(lambda x: jnp.sum(jac_fn(x).data ** 2)), x)
    dense_grad = run_jitted(jax.grad(lambda x: jnp.sum(jax.jacrev(case.f)(x) ** 2)), x)
    np.testing.assert_allclose(sparse_grad, dense_grad, rtol=1e-5)
    np.testing.assert_allclose(
        run_jitted(jax.grad(lambda x: jnp.sum(dense_fn(x) ** 2)), x), dense_grad, rtol=1e-5
    )


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_one_trace_of_f_per_call(mode):
    calls = []

    def f(x):
        calls.append(1)
        return jnp.sin(x) * x[::-1]

    x = jnp.arange(4.0)
    coloring = jacobian_coloring_from_sparsity(jacobian_pattern(f, (x,)), mode=mode)
    calls.clear()
    jax.make_jaxpr(value_and_jacobian_from_coloring(f, coloring))(x)
    assert len(calls) == 1


def test_patterns_are_static_pytrees_without_recompiling():
    case = JACOBIAN_CASES[0]
    traces = []

    @jax.jit
    def jac(x, coloring):
        traces.append(1)
        return jacobian_from_coloring(case.f, coloring, "dense")(x)

    first, second = _coloring(case), _coloring(case)
    assert first is not second
    assert jax.tree_util.tree_leaves(first) == []
    jac(case.args[0], first)
    jac(case.args[0] + 1, second)
    assert len(traces) == 1
    other = _coloring(case, mode="rev")
    jac(case.args[0], other)
    assert len(traces) == 2


@pytest.mark.parametrize("output_format", ["bcoo", "dense"])
def test_bidirectional_coloring(output_format):
    def arrow(x):
        return jnp.concatenate([x * x[0], jnp.sum(x**2)[None]])

    x = jnp.arange(1.0, 9.0)
    pattern = jacobian_pattern(arrow, (x,))
    coloring = jacobian_coloring_from_sparsity(pattern, method="bidirectional")
    assert coloring.num_colors < min(pattern.shape)
    value, jac = run_jitted(value_and_jacobian_from_coloring(arrow, coloring, output_format), x)
    np.testing.assert_allclose(jac, run_jitted(jax.jacrev(arrow), x), rtol=1e-6)
    np.testing.assert_allclose(value, arrow(x), rtol=1e-6)


def test_seeds_built_in_graph_beyond_constant_limit(monkeypatch):
    from asdex.decompression import _compress

    monkeypatch.setattr(_compress, "SEED_CONSTANT_LIMIT", 0)
    case = JACOBIAN_CASES[0]
    for mode in ("fwd", "rev"):
        jac_fn = jacobian_from_coloring(case.f, _coloring(case, mode=mode), "dense",
                                        chunk_size=2)
        np.testing.assert_allclose(run_jitted(jac_fn, *case.args), _expected(case), rtol=1e-6)
