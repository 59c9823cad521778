import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

from asdex_opt.optimistix import NonmonotoneArmijo, Point, SparseNewton, Watchdog, Wolfe

pytestmark = pytest.mark.usefixtures("x64")


def _trial(search, state, f, f_eval, step=-1.0, grad=1.0, first=False, y=(0.0,)):
    """One search step from ``y`` to ``y + step``, with f(y) = f, ∇f(y) = grad.

    The step of `NonmonotoneArmijo`, the judgement of `Watchdog`.
    """
    y = jnp.asarray(y)
    f_info = optx.FunctionInfo.EvalGrad(jnp.array(f), jnp.broadcast_to(grad, y.shape))
    decide = search.judge if isinstance(search, Watchdog) else search.step
    return decide(
        jnp.array(first),
        y,
        y + step,
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


@pytest.mark.parametrize("search", [NonmonotoneArmijo(memory=1), Watchdog()])
def test_steps_at_the_rounding_level_of_y_pass_when_f_does_not_rise(search):
    # At a minimum where f is exactly 0 no decrease can be measured; a step of a few
    # ulps of y (here 1e-16 at |y| = 1) is accepted if f stays 0, a larger one is not.
    y = (1.0, 0.0)
    start = dict(grad=1e-12, y=y)
    state = search.init(jnp.zeros(2), optx.FunctionInfo.EvalGrad(jnp.array(0.0), jnp.zeros(2)))
    _, _, _, state = _trial(search, state, 0.0, 0.0, step=0.0, first=True, **start)

    def accepted(step, f_eval):
        _, accept, _, new_state = _trial(search, state, 0.0, f_eval, step=-step, **start)
        return bool(accept) and not (isinstance(search, Watchdog) and int(new_state.relaxed))

    assert accepted(1e-16, 0.0)
    assert not accepted(1e-16, 1e-300)
    assert not accepted(1e-3, 0.0)


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
    armijo = SparseNewton(1e-10, 1e-10, search=NonmonotoneArmijo(memory=1))
    monotone = optx.minimise(_extended_rosenbrock, armijo, y0)
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


# --- Watchdog ---------------------------------------------------------------------------


def _watchdog_start(watchdog):
    """The state after the initial point (f = 10) was accepted as a checkpoint."""
    f_info = optx.FunctionInfo.EvalGrad(jnp.array(0.0), jnp.zeros(1))
    state = watchdog.init(Point(jnp.zeros(1), f_info, None, None), f_info)
    _, accept, _, state = _trial(watchdog, state, 0.0, 10.0, first=True)
    assert bool(accept) and bool(state.at_checkpoint) and int(state.relaxed) == 0
    return state


def test_watchdog_takes_a_failed_full_step_on_probation():
    # From the checkpoint f = 10 (slope -1 along the unit step) the full step reaches
    # f = 50: monotone Armijo would reject it; the watchdog moves there on probation.
    watchdog = Watchdog(relaxed_steps=2)
    state = _watchdog_start(watchdog)
    size, accept, _, state = _trial(watchdog, state, 10.0, 50.0)
    assert bool(accept) and bool(state.leaving) and not bool(state.at_checkpoint)
    assert int(state.relaxed) == 1 and float(size) == 1.0
    assert float(state.base_f) == 10.0 and float(state.base_decrease) == -1.0
    # On probation the test is against the checkpoint, not the current point (f = 50):
    # f = 20 is a decrease from 50 but not from 10, so it is a second point on probation.
    _, accept, _, state = _trial(watchdog, state, 50.0, 20.0, grad=-30.0)
    assert bool(accept) and not bool(state.at_checkpoint) and int(state.relaxed) == 2
    # f = 9 passes the Armijo test of the step that left the checkpoint.
    _, accept, _, state = _trial(watchdog, state, 20.0, 9.0, grad=5.0)
    assert bool(accept) and bool(state.at_checkpoint) and int(state.relaxed) == 0
    assert not bool(state.restore)


@pytest.mark.parametrize("f_eval", [20.0, jnp.nan, jnp.inf])
def test_watchdog_goes_back_when_probation_fails(f_eval):
    watchdog = Watchdog(decrease_factor=0.25)
    state = _watchdog_start(watchdog)
    _, accept, _, state = _trial(watchdog, state, 10.0, 50.0)
    assert bool(accept) and int(state.relaxed) == 1
    size, accept, _, state = _trial(watchdog, state, 50.0, f_eval)
    assert not bool(accept) and bool(state.restore) and int(state.relaxed) == 0
    # The full step from the checkpoint failed already: backtracking starts below it.
    assert float(size) == 0.25
    # Backtracking from the checkpoint is monotone Armijo: no new probation.
    size, accept, _, state = _trial(watchdog, state, 10.0, 11.0, step=-0.25)
    assert not bool(accept) and not bool(state.restore) and float(size) == 0.25**2
    _, accept, _, state = _trial(watchdog, state, 10.0, 9.0, step=-0.0625)
    assert bool(accept) and bool(state.at_checkpoint)


def test_watchdog_backtracks_from_a_nonfinite_full_step():
    watchdog = Watchdog()
    state = _watchdog_start(watchdog)
    size, accept, _, state = _trial(watchdog, state, 10.0, jnp.nan)
    assert not bool(accept) and not bool(state.restore) and float(size) == 0.5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(relaxed_steps=0), "relaxed_steps"),
        (dict(relaxed_steps=1.5), "relaxed_steps"),
        (dict(decrease_factor=0.0), "decrease_factor"),
        (dict(slope=1.0), "slope"),
    ],
)
def test_watchdog_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Watchdog(**kwargs)


def test_watchdog_is_not_an_optimistix_search():
    bfgs = eqx.tree_at(lambda solver: solver.search, optx.BFGS(1e-8, 1e-8), Watchdog())
    with pytest.raises(TypeError, match="SparseNewton"):
        optx.minimise(lambda x, _: jnp.sum(x**2), bfgs, jnp.ones(3))


def test_sparse_newton_with_watchdog_follows_pure_newton_on_rosenbrock():
    y0 = jnp.tile(jnp.array([-1.2, 1.0]), 100)
    pure = SparseNewton(1e-10, 1e-10, search=optx.LearningRate(1.0))
    watchdog = SparseNewton(1e-10, 1e-10, search=Watchdog())
    nonmonotone = SparseNewton(1e-10, 1e-10, search=NonmonotoneArmijo())
    sols = {
        name: jax.jit(lambda y, s=solver: optx.minimise(_extended_rosenbrock, s, y))(y0)
        for name, solver in [("pure", pure), ("watchdog", watchdog), ("gll", nonmonotone)]
    }
    np.testing.assert_allclose(sols["watchdog"].value, 1.0, atol=1e-8)
    # Newton's path climbs to f = 1411 at its second step; the watchdog follows it.
    np.testing.assert_allclose(sols["watchdog"].value, sols["pure"].value, atol=1e-12)
    hessians = {name: int(sol.stats["num_hessians"]) for name, sol in sols.items()}
    assert hessians["watchdog"] <= hessians["pure"] < hessians["gll"], hessians


def _pseudo_huber(x, args):
    # Newton's step is x -> -x³: from x = 2 it goes to -8 (uphill), then to 512.
    del args
    return jnp.sum(jnp.sqrt(1 + x**2))


def test_sparse_newton_with_watchdog_goes_back_and_backtracks():
    solver = SparseNewton(1e-10, 1e-10, search=Watchdog(), verbose=False)
    y0 = jnp.full(4, 2.0)
    sol = optx.minimise(_pseudo_huber, solver, y0, max_steps=100)
    np.testing.assert_allclose(sol.value, 0.0, atol=1e-8)
    # Pure Newton diverges from here; the monotone search gets there too.
    pure = SparseNewton(1e-10, 1e-10, search=optx.LearningRate(1.0))
    diverged = optx.minimise(_pseudo_huber, pure, y0, max_steps=100, throw=False)
    assert not bool(jnp.all(jnp.abs(diverged.value) < 1e-3))


def test_sparse_newton_with_watchdog_returns_the_checkpoint_when_stopped_on_probation():
    solver = SparseNewton(1e-10, 1e-10, search=Watchdog())
    y0 = jnp.full(4, 2.0)
    # Step 1 accepts y0, step 2 moves to -8 on probation; max_steps stops it there.
    sol = optx.minimise(_pseudo_huber, solver, y0, max_steps=2, throw=False)
    assert sol.result == optx.RESULTS.nonlinear_max_steps_reached
    np.testing.assert_array_equal(sol.value, y0)
    longer = optx.minimise(_pseudo_huber, solver, y0, max_steps=3, throw=False)
    np.testing.assert_array_equal(longer.value, y0)  # back at the checkpoint


# --- Wolfe ------------------------------------------------------------------------


def _line_search(search, fn, y, direction, max_trials=30):
    """Run ``search`` along ``y + s direction`` until it accepts: (sizes tried, accepted)."""
    value_and_grad = jax.value_and_grad(fn)
    f, grad = value_and_grad(y)
    f_info = optx.FunctionInfo.EvalGrad(f, grad)
    state = search.init(y, f_info)
    size, accept, _, state = search.step(jnp.array(True), y, y, f_info, f_info, state)
    assert bool(accept)
    sizes = []
    for _ in range(max_trials):
        sizes.append(float(size))
        y_eval = y + size * direction
        f_eval_info = optx.FunctionInfo.EvalGrad(*value_and_grad(y_eval))
        size, accept, _, state = search.step(
            jnp.array(False), y, y_eval, f_info, f_eval_info, state
        )
        if bool(accept):
            return sizes, sizes[-1]
    raise AssertionError(f"no step accepted among {sizes}")


def _strong_wolfe(fn, y, direction, size, slope=1e-4, curvature=0.9):
    phi = lambda s: fn(y + s * direction)  # noqa: E731
    slope_0, slope_s = jax.grad(phi)(0.0), jax.grad(phi)(size)
    return bool(phi(size) <= phi(0.0) + slope * size * slope_0) and bool(
        abs(slope_s) <= curvature * abs(slope_0)
    )


def test_wolfe_extends_short_steps_along_a_steep_slope():
    # Along a unit direction towards a minimum 100 away, backtracking from 1 would stay at
    # 1; the search doubles the step until the slope has flattened.
    fn = lambda x: jnp.sum((x - 100.0) ** 2)  # noqa: E731
    y, direction = jnp.zeros(1), jnp.ones(1)
    sizes, accepted = _line_search(Wolfe(), fn, y, direction)
    assert sizes[:3] == [1.0, 2.0, 4.0] and accepted > 10
    assert _strong_wolfe(fn, y, direction, accepted)


def test_wolfe_zooms_to_the_minimiser_of_a_quadratic():
    # The full step overshoots (f rises): the cubic through the two ends' values and
    # slopes is the quadratic itself, whose minimiser 0.3 is the second trial.
    fn = lambda x: jnp.sum((x - 0.3) ** 2)  # noqa: E731
    sizes, accepted = _line_search(Wolfe(), fn, jnp.zeros(1), jnp.ones(1))
    assert len(sizes) == 2
    np.testing.assert_allclose(accepted, 0.3, rtol=1e-12)


def test_wolfe_zooms_between_an_extension_and_an_overshoot():
    # The slope is still a third of the initial one at 4; 8 overshoots (f as at 4).
    fn = lambda x: jnp.sum((x - 6.0) ** 2)  # noqa: E731
    y, direction = jnp.zeros(1), jnp.ones(1)
    sizes, accepted = _line_search(Wolfe(curvature=0.1), fn, y, direction)
    assert sizes == [1.0, 2.0, 4.0, 8.0, 6.0]
    assert _strong_wolfe(fn, y, direction, accepted, curvature=0.1)


def test_wolfe_accepts_an_overshoot_unless_strong():
    # The unit step passes the minimum at 0.55 and decreases f enough, but its slope
    # (+0.9) is steeper than half the initial one (-1.1): only the strong conditions
    # reject it, and zoom to the minimum.
    fn = lambda x: jnp.sum((x - 0.55) ** 2)  # noqa: E731
    y, direction = jnp.zeros(1), jnp.ones(1)
    assert _line_search(Wolfe(curvature=0.5), fn, y, direction) == ([1.0], 1.0)
    sizes, accepted = _line_search(Wolfe(curvature=0.5, strong=True), fn, y, direction)
    assert len(sizes) == 2
    np.testing.assert_allclose(accepted, 0.55, rtol=1e-12)


def test_wolfe_zooms_back_from_a_steep_overshoot():
    # φ(s) = -s + 0.7 s⁴: the unit step decreases f enough (φ(1) = -0.3) and its slope
    # has flattened, but it climbs (+1.8) more steeply than the line fell at 0 (-1): the
    # weak conditions alone accept it, far past the minimum at 0.709; the search zooms.
    fn = lambda x: jnp.sum(-x + 0.7 * x**4)  # noqa: E731
    y, direction = jnp.zeros(1), jnp.ones(1)
    assert _line_search(Wolfe(overshoot=jnp.inf), fn, y, direction) == ([1.0], 1.0)
    sizes, accepted = _line_search(Wolfe(), fn, y, direction)
    assert sizes[0] == 1.0 and len(sizes) == 2
    phi = lambda s: fn(y + s * direction)  # noqa: E731
    assert phi(accepted) < phi(1.0)
    assert abs(jax.grad(phi)(accepted)) <= abs(jax.grad(phi)(0.0))
    # A steeper allowance accepts the unit step again.
    assert _line_search(Wolfe(overshoot=2.0), fn, y, direction) == ([1.0], 1.0)


def test_wolfe_accepts_a_steep_overshoot_after_a_jump():
    # φ(s) = -s - s²/2 + s⁴/10¹⁰: the jump from 64 to 64000 passes the minimum
    # (s ≈ 50000) and climbs there (slope +40857 against -1 at 0), but f is far lower:
    # the search does not zoom back over a line it has jumped across.
    fn = lambda x: jnp.sum(-x - 0.5 * x**2 + x**4 / 1e10)  # noqa: E731
    y, direction = jnp.zeros(1), jnp.ones(1)
    sizes = [1.0, 4.0, 16.0, 64.0, 64000.0]
    assert _line_search(Wolfe(), fn, y, direction) == (sizes, 64000.0)


def test_wolfe_jumps_where_the_line_curves_downwards():
    # φ(s) = -s - s²/2 + s⁴/(4·10⁶): the slope steepens up to s ≈ 577, the minimum is
    # at s ≈ 1000. The steps grow fourfold while the slope steepens; after four such
    # trials the search jumps a thousandfold, overshoots, and zooms back by geometric
    # means while the bracket spans more than a factor 10.
    fn = lambda x: jnp.sum(-x - 0.5 * x**2 + x**4 / 4e6)  # noqa: E731
    y, direction = jnp.zeros(1), jnp.ones(1)
    sizes, accepted = _line_search(Wolfe(), fn, y, direction)
    assert sizes[:5] == [1.0, 4.0, 16.0, 64.0, 64000.0]
    np.testing.assert_allclose(sizes[5:7], [(64000 * 64) ** 0.5, ((64000 * 64) ** 0.5 * 64) ** 0.5])
    assert len(sizes) <= 10
    phi = lambda s: fn(y + s * direction)  # noqa: E731
    assert phi(accepted) <= phi(0.0) + 1e-4 * accepted * jax.grad(phi)(0.0)
    assert jax.grad(phi)(accepted) >= 0.9 * jax.grad(phi)(0.0)
    # With a jump of only twice the step, the weak conditions stop at the first flat point.
    sizes, accepted = _line_search(Wolfe(jump_factor=2.0, overshoot=jnp.inf), fn, y, direction)
    assert sizes == [1.0, 4.0, 16.0, 64.0, 128.0, 256.0, 512.0, 1024.0] and accepted == 1024.0


@pytest.mark.parametrize("f_eval", [jnp.nan, jnp.inf])
def test_wolfe_rejects_nonfinite_values(f_eval):
    search = Wolfe()
    f_info = optx.FunctionInfo.EvalGrad(jnp.array(1.0), -jnp.ones(1))
    state = search.init(jnp.zeros(1), f_info)
    _, _, _, state = search.step(jnp.array(True), jnp.zeros(1), jnp.zeros(1), f_info, f_info, state)
    trial = optx.FunctionInfo.EvalGrad(jnp.array(f_eval), jnp.full(1, f_eval))
    size, accept, _, _ = search.step(
        jnp.array(False), jnp.zeros(1), jnp.ones(1), f_info, trial, state
    )
    assert not bool(accept) and 0 < float(size) < 1


def test_wolfe_accepts_the_best_decrease_after_max_trials():
    # f decreases without end along the direction: the step grows (fourfold: the slope
    # does not flatten) until the trial budget is spent, and the last (best) trial is
    # accepted.
    fn = lambda x: -jnp.sum(x)  # noqa: E731
    sizes, accepted = _line_search(Wolfe(max_trials=4), fn, jnp.zeros(1), jnp.ones(1))
    assert sizes == [1.0, 4.0, 16.0, 64.0] and accepted == 64.0


def _wolfe_trial(search, state, f, grad, f_eval, grad_eval, size, direction):
    """One Wolfe step from y = 0 to ``size * direction``: (next size, accept, state)."""
    f_info = optx.FunctionInfo.EvalGrad(jnp.array(f), grad)
    trial = optx.FunctionInfo.EvalGrad(jnp.array(f_eval), grad_eval)
    y = jnp.zeros_like(direction)
    size, accept, _, state = search.step(
        jnp.array(False), y, size * direction, f_info, trial, state
    )
    return float(size), bool(accept), state


def test_wolfe_judges_by_the_gradient_where_f_cannot_resolve_the_decrease():
    # At f = 5 with max|∇f| = 1e-12 the line predicts a decrease of 1e-17, below the
    # rounding error of f (about 1e-15): a trial whose f is lower by 4e-14 (rounding)
    # but whose gradient is 1e4 times larger is rejected and the step cut tenfold;
    # one whose gradient falls by more than half is accepted, though f rises by an ulp.
    search = Wolfe()
    grad, direction = jnp.array([-1e-12, 0.0]), jnp.array([1e-5, 1e-5])
    state = search.init(jnp.zeros(2), optx.FunctionInfo.EvalGrad(jnp.array(5.0), grad))
    noise_drop = 5.0 - 4e-14
    size, accept, _ = _wolfe_trial(
        search, state, 5.0, grad, noise_drop, jnp.array([1e-8, 1e-8]), 1.0, direction
    )
    assert not accept and size == pytest.approx(0.1)
    ulp_rise = 5.0 + float(jnp.finfo(jnp.float64).eps) * 5
    _, accept, _ = _wolfe_trial(
        search, state, 5.0, grad, ulp_rise, jnp.array([-4e-13, 1e-13]), 1.0, direction
    )
    assert accept


def test_wolfe_needs_trial_gradients():
    search = Wolfe()
    f_info = optx.FunctionInfo.EvalGrad(jnp.array(1.0), jnp.ones(1))
    state = search.init(jnp.zeros(1), f_info)
    with pytest.raises(ValueError, match="gradient at every trial"):
        search.step(
            jnp.array(False),
            jnp.zeros(1),
            jnp.ones(1),
            f_info,
            optx.FunctionInfo.Eval(jnp.array(1.0)),
            state,
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(slope=0.0), "slope"),
        (dict(curvature=1.0), "curvature"),
        (dict(slope=0.5, curvature=0.4), "slope < curvature"),
        (dict(increase_factor=1.0), "increase_factor"),
        (dict(jump_factor=1.0), "jump_factor"),
        (dict(overshoot=0.0), "overshoot"),
        (dict(max_trials=0), "max_trials"),
    ],
)
def test_wolfe_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Wolfe(**kwargs)


def test_wolfe_is_refused_by_solvers_without_trial_gradients():
    # optx.BFGS evaluates only f at a trial point.
    bfgs = eqx.tree_at(lambda solver: solver.search, optx.BFGS(1e-8, 1e-8), Wolfe())
    with pytest.raises(ValueError, match="gradient at every trial"):
        optx.minimise(lambda x, _: jnp.sum(x**2), bfgs, jnp.ones(3))


def test_sparse_newton_with_strong_wolfe_under_vmap_matches_single_solves():
    # The minimiser of a strictly convex chain, from two starts; vmapped and one by one.
    def fn(x, target):
        return jnp.sum(jnp.cosh(x - target)) + jnp.sum((x[1:] - x[:-1]) ** 2)

    solver = SparseNewton(1e-12, 1e-12, search=Wolfe())
    targets = jnp.stack([jnp.linspace(-3.0, 3.0, 12), jnp.linspace(5.0, -1.0, 12)])
    solve = lambda target: optx.minimise(fn, solver, jnp.zeros(12), target).value  # noqa: E731
    batched = jax.jit(jax.vmap(solve))(targets)
    for target, value in zip(targets, batched, strict=True):
        np.testing.assert_allclose(value, solve(target), atol=1e-10)
        np.testing.assert_allclose(jax.grad(fn)(value, target), 0.0, atol=1e-9)
