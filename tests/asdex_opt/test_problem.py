"""The floor: problems that index with arrays get their exact patterns in every front end."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import optimistix as optx
import pytest

import asdex
from asdex_opt import filter_jacobian
from asdex_opt.lineax import sparse_jacobian_operator
from asdex_opt.optax import scale_by_sparse_gauss_newton, scale_by_sparse_newton
from asdex_opt.optimistix import SparseGaussNewton, SparseLevenbergMarquardt, SparseNewton


def pose_graph(n: int = 60, loops: int = 20):
    """Planar poses ``(x, y, θ)``; odometry and loop-closure edges; a prior on pose 0."""
    rng = np.random.default_rng(0)
    odometry = np.arange(n - 1)
    first = rng.integers(0, n, loops)
    second = (first + rng.integers(5, n - 5, loops)) % n
    edges_i = jnp.asarray(np.concatenate([odometry, first]))
    edges_j = jnp.asarray(np.concatenate([odometry + 1, second]))
    measured = jnp.asarray(rng.normal(size=(edges_i.size, 3)) * 0.1 + [1.0, 0.0, 0.1])

    def residuals(poses, args):
        i, j, z = args
        pi, pj = poses[i], poses[j]
        c, s = jnp.cos(pi[:, 2]), jnp.sin(pi[:, 2])
        dx, dy = pj[:, 0] - pi[:, 0], pj[:, 1] - pi[:, 1]
        local = jnp.stack([c * dx + s * dy, -s * dx + c * dy, pj[:, 2] - pi[:, 2]], axis=1)
        return jnp.concatenate([(local - z).ravel(), poses[0]])

    poses = jnp.asarray(np.cumsum(rng.normal(size=(n, 3)) * 0.1 + [1.0, 0.0, 0.1], axis=0))
    return residuals, poses, (edges_i, edges_j, measured)


def mesh_laplacian(side: int = 12):
    """The triangles of a square grid: edge differences of vertex values, by index arrays."""
    index = np.arange(side * side).reshape(side, side)
    right = np.stack([index[:, :-1].ravel(), index[:, 1:].ravel()], axis=1)
    down = np.stack([index[:-1, :].ravel(), index[1:, :].ravel()], axis=1)
    diagonal = np.stack([index[:-1, :-1].ravel(), index[1:, 1:].ravel()], axis=1)
    edges = jnp.asarray(np.concatenate([right, down, diagonal]))
    weights = jnp.linspace(1.0, 2.0, edges.shape[0])

    def residuals(u, args):
        edges, weights = args
        return jnp.concatenate([weights * (u[edges[:, 0]] - u[edges[:, 1]]), u**2 - 1.0])

    return residuals, jnp.linspace(0.0, 1.0, side * side), (edges, weights)


def bundle_adjustment(num_cameras: int = 6, num_points: int = 40, per_point: int = 3):
    """Cameras (rotation angle, translation, focal) observe points; pytree unknowns."""
    rng = np.random.default_rng(1)
    camera = jnp.asarray(np.repeat(np.arange(num_cameras), num_points * per_point // num_cameras))
    point = jnp.asarray(rng.permutation(np.tile(np.arange(num_points), per_point)))
    observed = jnp.asarray(rng.normal(size=(camera.size, 2)))

    def residuals(y, args):
        camera, point, observed = args
        cams, pts = y["cameras"][camera], y["points"][point]
        c, s = jnp.cos(cams[:, 0]), jnp.sin(cams[:, 0])
        x = c * pts[:, 0] - s * pts[:, 1] + cams[:, 1]
        z = s * pts[:, 0] + c * pts[:, 1] + cams[:, 2] + 5.0
        v = pts[:, 2] + cams[:, 3]
        projected = cams[:, 4:5] * jnp.stack([x, v], axis=1) / z[:, None]
        return (projected - observed).ravel()

    y = {
        "cameras": jnp.asarray(rng.normal(size=(num_cameras, 5)) * 0.1 + [0, 0, 0, 0, 1.0]),
        "points": jnp.asarray(rng.normal(size=(num_points, 3))),
    }
    return residuals, y, (camera, point, observed)


PROBLEMS = [pose_graph, mesh_laplacian, bundle_adjustment]


def _expected(residuals, y, args) -> asdex.SparsityPattern:
    """The pattern asdex detects with the index arrays closed over."""
    return asdex.jacobian_sparsity(lambda y: residuals(y, args), y)


def _solver_structure(solver, fn, y, args):
    """The Jacobian structure a least-squares solver plans at ``init``, as in ``optx``."""

    def init():
        with_aux = lambda y, a: (fn(y, a), None)  # noqa: E731
        closed = eqx.filter_closure_convert(with_aux, y, args)
        f_struct = jax.eval_shape(fn, y, args)
        return solver.init(closed, y, args, {}, f_struct, None, frozenset())

    return eqx.filter_eval_shape(init).jacobian_fn.structure


def _same(structure, pattern: asdex.SparsityPattern) -> bool:
    return structure.shape == pattern.shape and np.array_equal(
        structure.indices, np.stack([pattern.rows, pattern.cols], axis=1)
    )


@pytest.mark.parametrize("problem", PROBLEMS)
def test_solver_pattern_is_asdex_pattern_closed_over_and_in_args(problem):
    residuals, y, args = problem()
    expected = _expected(residuals, y, args)
    n = sum(leaf.size for leaf in jax.tree.leaves(y))
    assert expected.nnz < 0.2 * expected.shape[0] * n  # really sparse
    closed_over = _solver_structure(
        SparseGaussNewton(1e-8, 1e-8), lambda y, _: residuals(y, args), y, None
    )
    assert _same(closed_over, expected)
    # Concrete index arrays in `args` are constants to detection too (outside `jit`).
    in_args = _solver_structure(SparseGaussNewton(1e-8, 1e-8), residuals, y, args)
    assert _same(in_args, expected)
    # So for the Lineax and Equinox front ends, with values checked against dense AD.
    flat, unravel = jax.flatten_util.ravel_pytree(y)
    flat_residuals = lambda x, a: residuals(unravel(x), a)  # noqa: E731
    operator = sparse_jacobian_operator(flat_residuals, flat, args)
    assert _same(operator.structure, expected)
    dense = jax.jacfwd(flat_residuals)(flat, args)
    np.testing.assert_allclose(operator.as_matrix(), dense, rtol=1e-5, atol=1e-6)
    jac = filter_jacobian(residuals)(y, args)
    np.testing.assert_allclose(jac.todense(), dense, rtol=1e-5, atol=1e-6)
    assert jac.nse == expected.nnz


def test_traced_index_arrays_warn_and_a_coloring_gives_the_exact_pattern():
    residuals, y, args = mesh_laplacian(side=6)
    with pytest.warns(UserWarning, match="traced"), warnings.catch_warnings():
        warnings.simplefilter("ignore", asdex.DenseColoringWarning)
        sol = optx.least_squares(residuals, SparseGaussNewton(1e-8, 1e-8), y, args, throw=False)
    coloring = asdex.jacobian_coloring(lambda y: residuals(y, args), y)
    solver = SparseGaussNewton(1e-8, 1e-8, coloring=coloring)
    exact = optx.least_squares(residuals, solver, y, args)
    np.testing.assert_allclose(exact.value, sol.value, rtol=1e-6, atol=1e-8)
    assert _same(_solver_structure(solver, residuals, y, args), coloring.sparsity)
    with pytest.raises(ValueError, match="coloring"):
        wrong = asdex.jacobian_coloring(lambda y: residuals(y, args)[:-1], y)
        optx.least_squares(residuals, SparseGaussNewton(1e-8, 1e-8, coloring=wrong), y, args)


def test_newton_with_closed_over_indices_matches_bfgs():
    residuals, u, args = mesh_laplacian(side=6)

    def objective(u, _):
        return 0.5 * jnp.sum(residuals(u, args) ** 2)

    # The default implicit adjoint traces the closed-over arrays; detection reads them
    # from the function as `optx.minimise` closure-converted it: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exact pattern: no traced indices, no dense coloring
        sol = optx.minimise(objective, SparseNewton(1e-10, 1e-10), u, max_steps=100)
    reference = optx.minimise(objective, optx.BFGS(1e-10, 1e-10), u, max_steps=1000)
    np.testing.assert_allclose(sol.value, reference.value, rtol=1e-5, atol=1e-6)


def test_indices_from_closed_over_floats_under_the_implicit_adjoint_are_read():
    # As sif2jax's LUKSAN17LS does: gather indices computed from float constants.
    offsets = jnp.array([0.0, 1.0, 2.0])

    def residuals(y, _):
        starts = jnp.arange(y.size - 2)[:, None] + offsets.astype(jnp.int32)
        return jnp.concatenate([y - 1.0, 0.3 * y[starts[:, 0]] * y[starts[:, 2]]])

    y0 = jnp.full(30, 0.5)
    expected = asdex.jacobian_coloring(lambda y: residuals(y, None), y0).sparsity
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a sparse pattern: no DenseColoringWarning
        fit = optx.least_squares(residuals, SparseLevenbergMarquardt(1e-6, 1e-6), y0)
    gradient = jax.grad(lambda y: 0.5 * jnp.sum(residuals(y, None) ** 2))(fit.value)
    assert float(jnp.max(jnp.abs(gradient))) < 1e-4
    assert _same(fit.state.jacobian_fn.structure, expected)


def test_optax_cache_is_keyed_on_the_program_not_the_function_object(monkeypatch):
    residuals, u, args = mesh_laplacian(side=5)
    calls = []
    detect = asdex.hessian_coloring

    def counting(*a, **k):
        calls.append(1)
        return detect(*a, **k)

    monkeypatch.setattr(asdex, "hessian_coloring", counting)
    newton = scale_by_sparse_newton()
    state = newton.init(u)
    for _ in range(3):
        value_fn = lambda u: jnp.sum(residuals(u, args) ** 2)  # noqa: E731
        newton.update(jax.grad(value_fn)(u), state, u, value_fn=value_fn)
    assert len(calls) == 1  # a new lambda every step, but the same program and constants
    other_edges = (args[0][::-1], args[1])
    value_fn = lambda u: jnp.sum(residuals(u, other_edges) ** 2)  # noqa: E731
    newton.update(jax.grad(value_fn)(u), state, u, value_fn=value_fn)
    assert len(calls) == 2  # other index values: another pattern


def test_optax_errors_name_the_argument():
    residuals, u, args = mesh_laplacian(side=4)
    newton = scale_by_sparse_newton()
    value_fn = lambda u: jnp.sum(residuals(u, args) ** 2)  # noqa: E731
    with pytest.raises(ValueError, match="value_fn"):
        newton.update(jax.grad(value_fn)(u), newton.init(u), u)
    with pytest.raises(ValueError, match="`updates`"):
        newton.update(jnp.ones(3), newton.init(u), u, value_fn=value_fn)
    gauss_newton = scale_by_sparse_gauss_newton(lambda u: residuals(u, args))
    with pytest.raises(ValueError, match="`updates`"):
        gauss_newton.update(jnp.ones(3), gauss_newton.init(u), u)
    chained = optax.chain(gauss_newton, optax.scale(-1.0))
    updates, _ = chained.update(jax.grad(value_fn)(u), chained.init(u), u)
    assert updates.shape == u.shape
