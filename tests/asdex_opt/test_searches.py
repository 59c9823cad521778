import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

from asdex_opt.optimistix import NonmonotoneArmijo, SparseNewton

pytestmark = pytest.mark.usefixtures("x64")


def _trial(search, state, f, f_eval, step=-1.0, grad=1.0, first=False):
    """One search step from y = 0 to y_eval = step (1-D), f(0) = f, f(step) = f_eval."""
    f_info = optx.FunctionInfo.EvalGrad(jnp.array(f), jnp.array([grad]))
    return search.step(
        jnp.array(first),
        jnp.zeros(1),
        jnp.array([step]),
        f_info,
        optx.FunctionInfo.Eval(jnp.array(f_eval)),
        state,
    )


def _accepted_after(search, values):
    """The search state after accepting the function values ``values`` in turn."""
    state = search.init(jnp.zeros(1), optx.FunctionInfo.EvalGrad(jnp.array(0.0), jnp.zeros(1)))
    for i, value in enumerate(values):
        _, accept, _, state = _trial(search, state, value, value, first=i == 0)
        assert bool(accept)
    return state


def test_compares_with_the_largest_recent_value():
    # Accepted values 5, 3, 1 (the last one is f(y) = 1); the trial is at f = 4 with a
    # predicted decrease of -1: monotone Armijo rejects it, memory 3 accepts (4 <= 5 - c).
    history = [5.0, 3.0, 1.0]
    for memory, expected in [(1, False), (2, False), (3, True)]:
        search = NonmonotoneArmijo(memory=memory)
        _, accept, _, _ = _trial(search, _accepted_after(search, history), 1.0, 4.0)
        assert bool(accept) is expected, memory


def test_memory_forgets_old_values():
    search = NonmonotoneArmijo(memory=2)
    state = _accepted_after(search, [100.0, 3.0, 2.0, 1.0])
    np.testing.assert_array_equal(state.recent, [1.0, 2.0])
    _, accept, _, _ = _trial(search, state, 1.0, 50.0)
    assert not bool(accept)


def test_step_size_halves_on_rejection_and_resets_on_acceptance():
    search = NonmonotoneArmijo(memory=1, decrease_factor=0.25, step_init=2.0)
    state = _accepted_after(search, [1.0])
    size, accept, _, state = _trial(search, state, 1.0, 10.0)
    assert not bool(accept) and float(size) == 0.5
    size, accept, _, state = _trial(search, state, 1.0, 0.9, step=-0.5)
    assert bool(accept) and float(size) == 2.0


@pytest.mark.parametrize(
    ("f_eval", "step", "why"),
    [(jnp.nan, -1.0, "nan"), (jnp.inf, -1.0, "inf"), (0.5, 1.0, "uphill direction")],
)
def test_rejects_nonfinite_values_and_ascent_directions(f_eval, step, why):
    search = NonmonotoneArmijo(memory=5)
    state = _accepted_after(search, [10.0, 1.0])
    _, accept, _, _ = _trial(search, state, 1.0, f_eval, step=step)
    assert not bool(accept), why


def test_rounding_slack_accepts_no_measurable_change():
    # The decrease asked for (1e-30) is far below the rounding error of f = 1: a trial
    # that changes f by one ulp is accepted, one that changes it by 1e-10 is not.
    search = NonmonotoneArmijo(memory=1)
    state = _accepted_after(search, [1.0])
    ulp = float(jnp.finfo(jnp.float64).eps)
    tiny = dict(step=-1e-30)
    assert bool(_trial(search, state, 1.0, 1.0 + ulp, **tiny)[1])
    assert not bool(_trial(search, state, 1.0, 1.0 + 1e-10, **tiny)[1])


def test_needs_gradients():
    search = NonmonotoneArmijo()
    state = search.init(jnp.zeros(1), optx.FunctionInfo.EvalGrad(jnp.array(0.0), jnp.zeros(1)))
    with pytest.raises(ValueError, match="needs the gradient"):
        search.step(
            jnp.array(False),
            jnp.zeros(1),
            jnp.ones(1),
            optx.FunctionInfo.Eval(jnp.array(1.0)),
            optx.FunctionInfo.Eval(jnp.array(1.0)),
            state,
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(memory=0), "memory"),
        (dict(memory=2.5), "memory"),
        (dict(decrease_factor=1.0), "decrease_factor"),
        (dict(slope=0.0), "slope"),
        (dict(step_init=-1.0), "step_init"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NonmonotoneArmijo(**kwargs)


def _extended_rosenbrock(x, args):
    del args
    return jnp.sum(100 * (x[1::2] - x[::2] ** 2) ** 2 + (1 - x[::2]) ** 2)


def test_sparse_newton_takes_fewer_newton_steps_on_rosenbrock():
    y0 = jnp.tile(jnp.array([-1.2, 1.0]), 100)
    monotone = optx.minimise(_extended_rosenbrock, SparseNewton(1e-10, 1e-10), y0)
    solver = SparseNewton(1e-10, 1e-10, search=NonmonotoneArmijo(memory=10))
    nonmonotone = jax.jit(lambda y: optx.minimise(_extended_rosenbrock, solver, y))(y0)
    np.testing.assert_allclose(nonmonotone.value, 1.0, atol=1e-8)
    # A full Newton step out of the valley is accepted: 14 Hessians instead of 23.
    assert int(nonmonotone.stats["num_hessians"]) < int(monotone.stats["num_hessians"]) - 5


def test_works_with_optimistix_bfgs():
    def fn(x, _):
        return jnp.sum(jnp.cosh(x - jnp.arange(x.size))) + jnp.sum((x[1:] - x[:-1]) ** 2)

    bfgs = optx.BFGS(1e-10, 1e-10)
    nonmonotone = eqx.tree_at(lambda solver: solver.search, bfgs, NonmonotoneArmijo())
    sol = optx.minimise(fn, nonmonotone, jnp.zeros(8))
    reference = optx.minimise(fn, optx.BFGS(1e-10, 1e-10), jnp.zeros(8))
    np.testing.assert_allclose(sol.value, reference.value, atol=1e-6)
