"""Optimistix's ``verbose``, declared capabilities, and warnings at the user's line."""

import warnings

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optimistix as optx
import pytest

import asdex
from asdex_opt.lineax import (
    BlockDiagonalLU,
    DenseMaterialisationWarning,
    Preconditioned,
    SparseLU,
    SparseStructure,
    TridiagonalLU,
    choose_solver,
    sparse_hessian_operator,
)
from asdex_opt.optimistix import (
    GaussNewtonDescent,
    LevenbergMarquardtDescent,
    SparseGaussNewton,
    SparseLevenbergMarquardt,
    SparseNewton,
    SparseNewtonRootFinder,
    SparseTrustRegionNewton,
    Watchdog,
)


def _chain(x, _):
    return jnp.sum((x[1:] - x[:-1] ** 2) ** 2) + jnp.sum((x - 0.5) ** 2)


def _residuals(x, _):
    return jnp.concatenate([x[1:] - x[:-1] ** 2, x - 0.5])


def _cubic(x, _):
    return x**3 + 0.1 * jnp.roll(x, 1) - 1.0


SOLVES = [
    (optx.minimise, SparseNewton, _chain),
    (optx.minimise, lambda *a, **k: SparseNewton(*a, search=Watchdog(), **k), _chain),
    (optx.minimise, SparseTrustRegionNewton, _chain),
    (optx.least_squares, SparseGaussNewton, _residuals),
    (optx.least_squares, SparseLevenbergMarquardt, _residuals),
    (optx.root_find, SparseNewtonRootFinder, _cubic),
]


@pytest.mark.parametrize(("solve", "make", "fn"), SOLVES)
def test_every_solver_reports_its_steps(solve, make, fn):
    entries = []
    solver = make(1e-8, 1e-8, verbose=lambda **kw: entries.append(sorted(kw)))
    solve(fn, solver, jnp.full(6, 0.9), max_steps=50, throw=False)
    assert entries and {"num_steps", "loss_this_step", "step_size"} <= set(entries[0])
    with pytest.raises(ValueError, match="verbose"):
        make(1e-8, 1e-8, verbose="loud")


def test_verbose_takes_optimistix_forms(capsys):
    # Every solver reads `verbose` through one shared helper: one solver checks the forms.
    for verbose, starts in ((True, "Step: "), (frozenset({"step_size"}), "Step size")):
        optx.minimise(_chain, SparseNewton(1e-8, 1e-8, verbose=verbose), jnp.full(6, 0.9),
                      max_steps=50, throw=False)
        jax.effects_barrier()
        printed = capsys.readouterr().out.splitlines()
        assert printed and all(line.startswith((starts, "Newton step")) for line in printed)


def test_capabilities_are_declared_not_probed():
    assert SparseLU.reports_definiteness and TridiagonalLU.reports_definiteness
    assert BlockDiagonalLU.reports_definiteness and not Preconditioned.reports_definiteness
    assert GaussNewtonDescent(SparseLU()).needs_normal(square=False)
    assert not GaussNewtonDescent(SparseLU()).needs_normal(square=True)
    assert LevenbergMarquardtDescent(SparseLU()).needs_normal(square=True)
    chain = SparseStructure(
        np.array([[i, j] for i in range(40) for j in (i - 1, i, i + 1) if 0 <= j < 40]), (40, 40)
    )
    assert isinstance(choose_solver(chain), TridiagonalLU)


def test_warnings_point_at_the_users_line():
    f = lambda x, _: jnp.sum((x[:, None] * x[None, :]) ** 2)  # noqa: E731  (dense Hessian)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optx.minimise(f, SparseNewton(1e-6, 1e-6), jnp.ones(4), max_steps=3, throw=False)
    dense = [w for w in caught if issubclass(w.category, asdex.DenseColoringWarning)]
    assert dense and all(w.filename == __file__ for w in dense)

    H = sparse_hessian_operator(
        lambda x, _: jnp.sum(x[2:] * x[:-2]) + jnp.sum(x**4), jnp.ones(1000)
    )
    with pytest.warns(DenseMaterialisationWarning, match="choose_solver") as record:
        lx.linear_solve(H + 10.0 * lx.IdentityLinearOperator(H.in_structure()), jnp.ones(1000))
    assert record[0].filename == __file__
