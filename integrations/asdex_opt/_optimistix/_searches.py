"""Line searches for Newton's method: Wolfe, and ones that let full steps through valleys.

`Wolfe` is a line search for the Wolfe conditions (bracketing and cubic zoom, Nocedal &
Wright's Algorithms 3.5 and 3.6), the default of `SparseNewton`: it lengthens steps as
well as shortening them, and needs ``∇f`` at every trial.

`NonmonotoneArmijo` is the nonmonotone backtracking search of Grippo, Lampariello &
Lucidi (1986), an ``optimistix.AbstractSearch``; `Watchdog` is the watchdog technique of
Chamberlain, Powell, Lemaréchal & Pedersen (1982), an `AbstractRevisingSearch`: a
search that may also send the solver back to an earlier point, which `SparseNewton`
runs (any Optimistix search runs there through `revising`).

Newton's method with a monotone Armijo search takes short steps along curved valleys
(Rosenbrock's is the classic case): every trial must decrease ``f``, so full Newton
steps that overshoot the valley floor for one step are cut back. The nonmonotone rule
compares a trial with the *largest* of the last ``memory`` accepted values instead of
the last one,

``f(y + s d) ≤ max(f(y_k), …, f(y_{k-memory+1})) + c s ∇f(y_k)ᵀd``,

which lets such steps through while keeping global convergence for descent directions
(GLL, SIAM J. Numer. Anal. 23(4), 1986). ``memory = 1`` is the usual Armijo search.

Some Newton paths climb far above every recent value before they fall into the
valley: from Rosenbrock's (-1.2, 1) the second Newton step raises f from 4.7 to 1411
and the third brings it to 0.06. `Watchdog` takes such steps on probation: the path
may go on for ``relaxed_steps`` points, and unless a point of it then passes the
Armijo test of the step it left, the solver goes back to the point it left and
backtracks along its direction as usual (Chamberlain et al., Math. Programming Study
16, 1982).
"""

import abc
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from equinox.internal import ω
from jaxtyping import Array, PyTree, Scalar

__all__ = [
    "AbstractRevisingSearch",
    "NonmonotoneArmijo",
    "Point",
    "TrustRegion",
    "Watchdog",
    "Wolfe",
    "revising",
]

_ROUNDING_ULPS = 8
_TRIALS_BEFORE_JUMP = 3  # `Wolfe`'s extensions before a jump
_WIDE = 10.0  # a bracket whose ends are further apart than this factor: `_zoom`
_GRADIENT_CUT = 0.5  # `Wolfe`, where f cannot resolve a trial: the gradient's max-norm cut
_UNRESOLVED_CUT = 0.1  # ... and the step size factor after a rejection there


class _NonmonotoneState(eqx.Module):
    step_size: Scalar
    recent: Array  # the last `memory` accepted values of f, newest first; -inf unfilled


class NonmonotoneArmijo(optx.AbstractSearch[PyTree, Any, Any, _NonmonotoneState]):
    """Backtracking line search with the nonmonotone Armijo rule of Grippo et al.

    Accepts a trial point when it does better than the largest of the last ``memory``
    accepted function values plus ``slope`` times the predicted decrease; otherwise
    multiplies the step size by ``decrease_factor``. The step size starts again at
    ``step_init`` after every accepted step. Needs the gradient at the accepted points
    (any solver that ``optimistix.BacktrackingArmijo`` works with), and like it only
    accepts steps along descent directions.

    Attributes:
        memory: How many accepted values the reference maximum spans (1: monotone).
        decrease_factor: Step size factor after a rejected trial, in (0, 1).
        slope: Fraction of the predicted decrease to achieve, in (0, 1).
        step_init: First step size tried after an accepted step, > 0.

    Examples:
        >>> import jax.numpy as jnp, optimistix as optx
        >>> from asdex_opt.optimistix import NonmonotoneArmijo, SparseNewton
        >>> def rosenbrock(x, _):
        ...     return jnp.sum(100 * (x[1::2] - x[::2] ** 2) ** 2 + (1 - x[::2]) ** 2)
        >>> y0 = jnp.tile(jnp.array([-1.2, 1.0]), 50)
        >>> armijo = SparseNewton(1e-8, 1e-8, search=NonmonotoneArmijo(memory=1))
        >>> monotone = optx.minimise(rosenbrock, armijo, y0)
        >>> solver = SparseNewton(1e-8, 1e-8, search=NonmonotoneArmijo())
        >>> nonmonotone = optx.minimise(rosenbrock, solver, y0)
        >>> int(monotone.stats["num_hessians"]), int(nonmonotone.stats["num_hessians"])
        (21, 11)
    """

    memory: int = eqx.field(static=True, default=10)
    decrease_factor: float = 0.5
    slope: float = 1e-4
    step_init: float = 1.0

    def __check_init__(self):
        _check_parameters(
            self, memory=_COUNT, decrease_factor=_FRACTION, slope=_FRACTION, step_init=_POSITIVE
        )

    def init(self, y: PyTree, f_info_struct: Any) -> _NonmonotoneState:
        """Start with no accepted value."""
        del y
        recent = jnp.full(self.memory, -jnp.inf, f_info_struct.f.dtype)
        return _NonmonotoneState(jnp.array(self.step_init), recent)

    def step(
        self,
        first_step: Array,
        y: PyTree,
        y_eval: PyTree,
        f_info: Any,
        f_eval_info: Any,
        state: _NonmonotoneState,
    ) -> tuple[Scalar, Array, optx.RESULTS, _NonmonotoneState]:
        """Accept or reject ``y_eval``; the next step size."""
        if not hasattr(f_info, "compute_grad_dot"):
            raise ValueError(
                "`NonmonotoneArmijo` needs the gradient at accepted points, which this "
                f"solver does not evaluate (it gives `{type(f_info).__name__}`)."
            )
        predicted = f_info.compute_grad_dot((y_eval**ω - y**ω).ω)
        reference = jnp.max(state.recent)
        sufficient = _sufficient_decrease(
            f_eval_info.as_min(), reference, self.slope * predicted, y, y_eval
        )
        accept = first_step | (sufficient & (predicted <= 0))
        step_size = jnp.where(accept, self.step_init, self.decrease_factor * state.step_size)
        pushed = jnp.roll(state.recent, 1).at[0].set(f_eval_info.as_min())
        recent = jnp.where(accept, pushed, state.recent)
        return step_size, accept, optx.RESULTS.successful, _NonmonotoneState(step_size, recent)


def _rounding(reference: Array) -> Array:
    """A few ulps of ``reference``: the slack for the rounding error of ``f``.

    Near a minimum the decrease asked for falls below the rounding error of ``f``;
    without the slack the search would halve the step down to nothing.
    """
    return _ROUNDING_ULPS * jnp.finfo(reference.dtype).eps * jnp.abs(reference)


def _sufficient_decrease(
    f_new: Array,
    reference: Array,
    required: Array,
    y: PyTree,
    y_eval: PyTree,
    by_gradient: tuple[Array, Array] | None = None,
) -> Array:
    """Armijo's test ``f_new - reference ≤ required`` (``required ≤ 0``), up to rounding.

    ``f`` gets the slack of `_rounding`. A step at the rounding level of ``y`` (no
    component moves by more than a few ulps of the largest one) passes if ``f`` does
    not rise beyond that slack: ``f`` cannot resolve the decrease asked of it, e.g. at a
    minimum where ``f`` is exactly 0. Such steps then meet the Cauchy termination test.
    ``by_gradient = (unresolved, passes)``, from a search that has the gradient at the
    trial: where ``unresolved``, ``passes`` replaces the test of ``f`` (not the one of
    ``y``).
    """
    slack = _rounding(reference)
    armijo = f_new - reference <= required + slack
    if by_gradient is not None:
        unresolved, passes = by_gradient
        armijo = jnp.where(unresolved, passes, armijo)
    no_rise = f_new - reference <= slack
    tiny_step = jax.lax.cond(
        no_rise & jnp.invert(armijo),
        lambda: _within_rounding(y, y_eval),
        lambda: jnp.array(False),
    )
    return armijo | tiny_step


def _within_rounding(y: PyTree, y_eval: PyTree) -> Array:
    """Whether ``y_eval`` moves from ``y`` by a few ulps of ``y``'s largest component."""
    leaves = jax.tree.leaves(y)
    if not leaves:
        return jnp.array(True)
    pairs = zip(leaves, jax.tree.leaves(y_eval), strict=True)
    steps = [jnp.max(jnp.abs(b - a), initial=0) for a, b in pairs]
    scale = jnp.max(jnp.stack([jnp.max(jnp.abs(a), initial=0) for a in leaves]))
    return jnp.max(jnp.stack(steps)) <= _rounding(scale)


class _WolfeState(eqx.Module):
    step_size: Scalar  # the step size of the trial being evaluated
    trials: Array  # trials of this line search before the one being evaluated
    zooming: Array  # whether [lo, hi] brackets a strong Wolfe step
    lo: Scalar  # the best step size with sufficient decrease so far (0: none yet)
    f_lo: Scalar
    slope_lo: Scalar
    hi: Scalar  # the other end of the bracket while zooming
    f_hi: Scalar
    slope_hi: Scalar


class Wolfe(optx.AbstractSearch[PyTree, Any, Any, _WolfeState]):
    """Line search for the Wolfe conditions, by bracketing and cubic zoom.

    Nocedal & Wright's Algorithms 3.5 and 3.6, one trial per solver step. Along the line
    ``φ(s) = f(y + s d)`` of the descent (``d`` the step of size 1), a trial is accepted
    when it decreases ``f`` enough, ``φ(s) ≤ φ(0) + slope · s φ'(0)`` (with the rounding
    slack of `NonmonotoneArmijo`), and the slope has flattened, ``φ'(s) ≥ curvature ·
    φ'(0)``, and has not turned uphill more steeply than it started downhill, ``φ'(s) ≤
    overshoot · |φ'(0)|`` (with ``strong``, ``|φ'(s)| ≤ curvature · |φ'(0)|`` instead).
    A trial with sufficient decrease whose slope is still steeply downhill is extended
    (``increase_factor`` times the step size, twice that where the slope has not
    flattened since the last trial: the line is straight or curves downwards there):
    unlike backtracking, the search lengthens steps that a shifted Newton direction made
    too short. Where it still has not flattened at the fourth trial (``φ`` straight or
    curving downwards along the line, as along a direction of negative curvature), the
    next trial is ``jump_factor`` times further: the quadratic model says nothing about
    how far the line goes down, and doubling would stop at its first flat point, e.g.
    the first of many humps on a function that falls far beyond them. Once a trial
    overshoots, the search zooms into the bracket with the minimiser of the cubic
    through its two ends' values and slopes (kept at least a tenth of the bracket from
    either end), or with the geometric mean of the ends where they are more than a
    factor 10 apart (after a jump). After ``max_trials`` trials the search accepts the
    best point with sufficient decrease found (or the next one). Where the decrease the
    line predicts, ``-s φ'(0)``, is below the rounding error of ``f`` (near a minimum,
    once the gradient is at its own rounding level), values of ``f`` say nothing about a
    trial: the search then accepts a trial whose gradient's max-norm is at most half the
    current one, and otherwise cuts the step size tenfold, down to a step at the
    rounding level of ``y`` (which meets the solver's Cauchy termination test), instead
    of letting rounding errors of ``f`` pick points.

    The default of `SparseNewton`, which evaluates ``∇f`` at every trial for it (by
    reverse mode: no Hessian per trial) and reuses it if the trial is accepted, and
    whose descent scales a shifted direction so that the first trial is the quadratic
    model's minimiser along it, where it has one (`ShiftedNewtonDescent`);
    Optimistix's own solvers give ``f`` alone at trials and are refused. The descent's
    steps must lie on one line, proportional to the step size. Newton's method needs
    no curvature condition to keep its matrix positive definite, so the strong
    condition is not the default: a step past the minimum along the line is accepted if
    it decreases ``f`` enough, unless ``f`` rises there more steeply (``overshoot``
    times) than it fell at the start. Such a trial lies far beyond the minimum along a
    line on which ``f`` climbs steeply (a valley's far wall, a hump), and zooming
    back to that minimum saves Newton steps. A trial more than 10 times as long as
    the best one before it (after a jump) is exempt: the line between them may cross
    many humps, and zooming back over them would cost many trials.

    Attributes:
        slope: Fraction of the predicted decrease to achieve, in (0, 1).
        curvature: The slope's reduction that ends the search, in (slope, 1).
        increase_factor: Step size factor while the slope stays steep, > 1 (doubled
            while it does not flatten).
        jump_factor: Step size factor where the slope still steepens at the fourth
            trial, > 1.
        overshoot: The steepest uphill slope accepted, as a multiple of ``|φ'(0)|``,
            > 0 (``inf``: the weak Wolfe conditions).
        max_trials: Trials after which the best sufficient decrease is accepted.
        strong: Whether to ask for the strong Wolfe conditions.

    Examples:
        >>> import jax.numpy as jnp, optimistix as optx
        >>> from asdex_opt.optimistix import SparseNewton, Wolfe
        >>> def rosenbrock(x, _):
        ...     return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
        >>> solver = SparseNewton(1e-8, 1e-8, search=Wolfe(strong=True))
        >>> sol = optx.minimise(rosenbrock, solver, jnp.zeros(20))
        >>> bool(jnp.allclose(sol.value, 1.0))
        True
    """

    slope: float = 1e-4
    curvature: float = 0.9
    increase_factor: float = 2.0
    jump_factor: float = 1000.0
    overshoot: float = 1.0
    max_trials: int = eqx.field(static=True, default=20)
    strong: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        _check_parameters(
            self,
            slope=_FRACTION,
            curvature=_FRACTION,
            increase_factor=_GROWTH,
            jump_factor=_GROWTH,
            overshoot=_POSITIVE,
            max_trials=_COUNT,
        )
        if not self.slope < self.curvature:
            raise ValueError(
                f"`Wolfe(slope=..., curvature=...)` needs slope < curvature, got "
                f"{self.slope!r} and {self.curvature!r}."
            )

    def init(self, y: PyTree, f_info_struct: Any) -> _WolfeState:
        """Start a line search at step size 1."""
        del y
        zero = jnp.zeros((), f_info_struct.f.dtype)
        return _WolfeState(
            zero + 1, jnp.array(0), jnp.array(False), zero, zero, zero, zero, zero, zero
        )

    def step(
        self,
        first_step: Array,
        y: PyTree,
        y_eval: PyTree,
        f_info: Any,
        f_eval_info: Any,
        state: _WolfeState,
    ) -> tuple[Scalar, Array, optx.RESULTS, _WolfeState]:
        """Accept ``y_eval``, or the next trial's step size: extended, or zoomed into."""
        if not (hasattr(f_info, "compute_grad_dot") and hasattr(f_eval_info, "grad")):
            raise ValueError(
                "`Wolfe` needs the gradient at every trial point, which this solver "
                f"does not evaluate (it gives `{type(f_eval_info).__name__}`)."
            )
        size = state.step_size
        diff = (y_eval**ω - y**ω).ω
        per_size = 1 / jnp.where(size > 0, size, 1)
        slope_0 = f_info.compute_grad_dot(diff) * per_size
        f_new = f_eval_info.as_min()
        slope_new = _tree_dot(f_eval_info.grad, diff) * per_size
        start = state.trials == 0
        lo = jnp.where(start, 0, state.lo)
        f_lo = jnp.where(start, f_info.f, state.f_lo)
        slope_lo = jnp.where(start, slope_0, state.slope_lo)

        finite = jnp.isfinite(f_new) & jnp.isfinite(slope_new)
        # Where the decrease the line predicts is below the rounding error of f, f cannot
        # judge a trial, nor the sign of its slope: the gradient does (its max-norm must
        # fall by `_GRADIENT_CUT`), and a trial that passes needs no flatter slope.
        # A rejected one is shortened by `_UNRESOLVED_CUT`, down to a step at the
        # rounding level of y, which ends the solve (Cauchy's test).
        unresolved = -size * slope_0 <= _rounding(f_info.f)
        progress = optx.max_norm(f_eval_info.grad) <= _GRADIENT_CUT * optx.max_norm(f_info.grad)
        decrease = finite & ((slope_0 <= 0) | unresolved)
        decrease = decrease & _sufficient_decrease(
            f_new, f_info.f, self.slope * size * slope_0, y, y_eval, (unresolved, progress)
        )
        if self.strong:
            flat = jnp.abs(slope_new) <= -self.curvature * slope_0
        else:
            # After a jump, the line between lo and the trial may cross many humps:
            # zooming back to a minimum there would cost many trials.
            jumped = (lo > 0) & (size > _WIDE * lo)
            gentle = jumped | (slope_new <= -self.overshoot * slope_0)
            flat = (slope_new >= self.curvature * slope_0) & gentle
        worse = jnp.invert(decrease) | ((lo > 0) & (f_new >= f_lo))
        # After `max_trials`, the best sufficient decrease will do: `lo`, tried again.
        give_up = state.trials >= self.max_trials - 1
        best = decrease & jnp.invert((lo > 0) & (f_new > f_lo))
        accept = (
            first_step | (decrease & (flat | unresolved) & jnp.invert(worse)) | (give_up & best)
        )

        # The new bracket: [lo, hi] with lo the best sufficient decrease.
        uphill = slope_new * (state.hi - lo) >= 0
        to_hi = worse
        swap = jnp.invert(worse) & jnp.where(state.zooming, uphill, slope_new >= 0)
        extend = jnp.invert(worse | state.zooming | (slope_new >= 0))
        # A straight line or downward curvature (the slope has not flattened since the
        # last trial): the Newton model says nothing about how far the line goes down.
        # Still so at the fourth trial, the search jumps: doubling would stop at the
        # line's first flat point.
        straight = slope_new <= slope_lo
        jump = straight & (state.trials >= _TRIALS_BEFORE_JUMP)
        factor = jnp.where(straight, 2 * self.increase_factor, self.increase_factor)
        extension = jnp.where(jump, self.jump_factor, factor) * size
        zooming = state.zooming | to_hi | swap
        hi, f_hi, slope_hi = _pick(
            to_hi,
            (size, f_new, slope_new),
            _pick(swap, (lo, f_lo, slope_lo), (state.hi, state.f_hi, state.slope_hi)),
        )
        lo, f_lo, slope_lo = _pick(to_hi, (lo, f_lo, slope_lo), (size, f_new, slope_new))
        zoomed = _zoom(lo, f_lo, slope_lo, hi, f_hi, slope_hi)
        following = jnp.where(extend, extension, zoomed)
        following = jnp.where(unresolved, _UNRESOLVED_CUT * size, following)
        following = jnp.where(give_up & (lo > 0), lo, following)
        following = jnp.where(accept, 1, following).astype(size.dtype)
        new_state = _WolfeState(
            step_size=following,
            trials=jnp.where(accept, 0, state.trials + 1),
            zooming=zooming & jnp.invert(accept),
            lo=lo,
            f_lo=f_lo,
            slope_lo=slope_lo,
            hi=hi,
            f_hi=f_hi,
            slope_hi=slope_hi,
        )
        return following, accept, optx.RESULTS.successful, new_state


def _pick(condition: Array, a: tuple, b: tuple) -> tuple:
    return tuple(jnp.where(condition, x, y) for x, y in zip(a, b, strict=True))


def _zoom(a: Array, f_a: Array, slope_a: Array, b: Array, f_b: Array, slope_b: Array) -> Array:
    """The next trial in the bracket between ``a`` and ``b``.

    The geometric mean of the ends where they lie more than a factor 10 apart (after
    a jump: a cubic through ends that far apart says little about the middle, and
    the 10% margin would shorten the bracket by only that much per trial), else the
    `_cubic_minimiser`.
    """
    low, high = jnp.minimum(a, b), jnp.maximum(a, b)
    wide = (low > 0) & (high > _WIDE * low)
    geometric = jnp.sqrt(low * jnp.where(wide, high, 1))
    return jnp.where(wide, geometric, _cubic_minimiser(a, f_a, slope_a, b, f_b, slope_b))


def _cubic_minimiser(
    a: Array, f_a: Array, slope_a: Array, b: Array, f_b: Array, slope_b: Array
) -> Array:
    """The minimiser of the cubic through ``(a, f_a, slope_a)`` and ``(b, f_b, slope_b)``.

    Kept at least a tenth of ``|b - a|`` inside the interval; its midpoint where the
    cubic has no minimiser there or ``f_b`` is not finite (Nocedal & Wright, eq. 3.59).
    """
    d1 = slope_a + slope_b - 3 * (f_a - f_b) / jnp.where(a == b, 1, a - b)
    radicand = d1**2 - slope_a * slope_b
    d2 = jnp.sign(b - a) * jnp.sqrt(jnp.maximum(radicand, 0))
    denominator = slope_b - slope_a + 2 * d2
    ok = (radicand >= 0) & (denominator != 0) & jnp.isfinite(f_b) & jnp.isfinite(slope_b)
    cubic = b - (b - a) * (slope_b + d2 - d1) / jnp.where(denominator == 0, 1, denominator)
    low, high = jnp.minimum(a, b), jnp.maximum(a, b)
    margin = 0.1 * (high - low)
    clipped = jnp.clip(cubic, low + margin, high - margin)
    return jnp.where(ok & jnp.isfinite(cubic), clipped, 0.5 * (a + b))


class _TrustRegionState(eqx.Module):
    radius: Scalar


class TrustRegion(optx.AbstractSearch[PyTree, Any, Any, _TrustRegionState]):
    """A trust region whose radius is a length, updated from the step taken.

    The step size is the radius (the 2-norm of the step; infinite at first), for
    descents that cut their step to it (`TruncatedNewtonDescent`, or
    ``optimistix.DoglegDescent``). With ``r`` the ratio of the actual to the predicted
    reduction ``gᵀd + ½dᵀHd`` of the step ``d``: a trial is accepted if
    ``r > accept_cutoff`` (with the rounding slack of `NonmonotoneArmijo`), and a
    rejected trial sets the radius to ``low_constant ‖d‖``, a fraction of the step
    actually taken, so that the next trial is shorter whatever the radius was; if
    ``r > high_cutoff`` and the step reached the radius, the radius grows by
    ``high_constant``. The radius shrinks only on rejection, as with
    ``optimistix.ClassicalTrustRegion`` (whose cutoffs follow Gould et al., 2005), but
    ``ClassicalTrustRegion`` multiplies the old step size, which leaves a radius far
    longer than the steps taken without effect for several rejections, and grows it
    only for ratios above 0.99, which a nonconvex function rarely gives.

    Attributes:
        accept_cutoff: Smallest ratio accepted, in [0, 1).
        high_cutoff: Ratio above which a step at the radius lets it grow, in (0, 1).
        low_constant: The radius after a rejection, as a fraction of the step's length,
            in (0, 1).
        high_constant: The radius's growth factor, > 1.

    Examples:
        >>> import jax.numpy as jnp, optimistix as optx
        >>> from asdex_opt.optimistix import SparseTrustRegionNewton, TrustRegion
        >>> def rosenbrock(x, _):
        ...     return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
        >>> solver = SparseTrustRegionNewton(1e-8, 1e-8)
        >>> isinstance(solver.search, TrustRegion)
        True
        >>> sol = optx.minimise(rosenbrock, solver, jnp.zeros(20))
        >>> bool(jnp.allclose(sol.value, 1.0))
        True
    """

    accept_cutoff: float = 1e-4
    high_cutoff: float = 0.75
    low_constant: float = 0.25
    high_constant: float = 3.5

    def __check_init__(self):
        _check_parameters(
            self,
            accept_cutoff=_CUTOFF,
            high_cutoff=_FRACTION,
            low_constant=_FRACTION,
            high_constant=_GROWTH,
        )

    def init(self, y: PyTree, f_info_struct: Any) -> _TrustRegionState:
        """Start from an infinite radius: the first trial is the descent's full step."""
        del y
        return _TrustRegionState(jnp.array(jnp.inf, f_info_struct.f.dtype))

    def step(
        self,
        first_step: Array,
        y: PyTree,
        y_eval: PyTree,
        f_info: Any,
        f_eval_info: Any,
        state: _TrustRegionState,
    ) -> tuple[Scalar, Array, optx.RESULTS, _TrustRegionState]:
        """Accept or reject ``y_eval``; return the next radius."""
        if not isinstance(f_info, optx.FunctionInfo.EvalGradHessian):
            raise ValueError(
                "`TrustRegion` predicts the reduction with the Hessian, which this solver "
                f"does not give it (it gives `{type(f_info).__name__}`)."
            )
        diff = (y_eval**ω - y**ω).ω
        curvature = _tree_dot(diff, f_info.hessian.mv(diff))
        predicted = f_info.compute_grad_dot(diff) + 0.5 * curvature
        f_new = f_eval_info.as_min()
        sufficient = _sufficient_decrease(
            f_new, f_info.f, self.accept_cutoff * predicted, y, y_eval
        )
        accept = first_step | (sufficient & (predicted <= 0))
        length = jnp.sqrt(_tree_dot(diff, diff))
        good = (
            jnp.invert(first_step)
            & (predicted < 0)
            & (f_new - f_info.f <= self.high_cutoff * predicted)
            & (length >= 0.99 * state.radius)
        )
        radius = jnp.where(good, self.high_constant * state.radius, state.radius)
        radius = jnp.where(accept, radius, self.low_constant * length)
        return radius, accept, optx.RESULTS.successful, _TrustRegionState(radius)


def _tree_dot(a: PyTree, b: PyTree) -> Array:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return sum((jnp.vdot(x, y) for x, y in pairs), jnp.zeros(()))


# A parameter's rule: a test of its value, and what the error message asks for.
_Rule = tuple[Callable[[Any], bool], str]
_COUNT: _Rule = (lambda value: isinstance(value, int) and value >= 1, "an int >= 1")
_FRACTION: _Rule = (lambda value: 0 < value < 1, "in (0, 1)")
_CUTOFF: _Rule = (lambda value: 0 <= value < 1, "in [0, 1)")
_POSITIVE: _Rule = (lambda value: value > 0, "> 0")
_GROWTH: _Rule = (lambda value: value > 1, "> 1")


def _check_parameters(module: eqx.Module, **rules: _Rule) -> None:
    """Raise a ``ValueError`` naming the first parameter of ``module`` its rule rejects."""
    for name, (valid, meaning) in rules.items():
        value = getattr(module, name)
        if not valid(value):
            raise ValueError(
                f"`{type(module).__name__}({name}=...)` must be {meaning}, got {value!r}."
            )


class Point(eqx.Module):
    """An accepted point and what the solver knows there.

    Attributes:
        y: The point (flat).
        f_info: Its function information, as the search reads it.
        aux: Its auxiliary output.
        descent_state: The descent's state queried there.
    """

    y: Array
    f_info: Any
    aux: PyTree
    descent_state: PyTree


_SearchState = TypeVar("_SearchState")


class AbstractRevisingSearch(eqx.Module, Generic[_SearchState]):
    """A search that may send the solver back to an earlier point.

    The contract with the solver (`AbstractSparseNewton`), at every step:

    1. `judge` takes the arguments of ``optimistix.AbstractSearch.step`` and returns
       what it returns: ``accept`` moves the solver to ``y_eval``.
    2. `revise` gets the point the solver was at and the one it is now at (``y_eval``
       if accepted, else the same), and returns the point to go on from, which may be
       one the search kept in its state.
    3. `may_stop` says whether the current point may end the solve.
    4. `final` gives the point to return when the solve stops (e.g. by ``max_steps``).

    `revising` turns any ``optimistix.AbstractSearch`` into one that never revises.
    """

    @abc.abstractmethod
    def init(self, point: Point, f_info_struct: Any) -> _SearchState:
        """The initial state, from the initial point (of the solve's structure)."""

    @abc.abstractmethod
    def judge(
        self,
        first_step: Array,
        y: Array,
        y_eval: Array,
        f_info: Any,
        f_eval_info: Any,
        state: _SearchState,
    ) -> tuple[Scalar, Array, optx.RESULTS, _SearchState]:
        """``(step_size, accept, result, state)`` as ``optimistix.AbstractSearch.step``."""

    @abc.abstractmethod
    def revise(
        self, previous: Point, current: Point, state: _SearchState
    ) -> tuple[Point, _SearchState]:
        """The point to go on from, after the solver moved from ``previous`` to ``current``."""

    @abc.abstractmethod
    def may_stop(self, state: _SearchState) -> Array:
        """Whether the current point may end the solve."""

    @abc.abstractmethod
    def final(self, point: Point, state: _SearchState) -> Point:
        """The point to return when the solve stops at ``point``."""


class _Plain(AbstractRevisingSearch[Any]):
    """An Optimistix search as a revising search that never revises."""

    search: optx.AbstractSearch

    def init(self, point: Point, f_info_struct: Any) -> Any:
        return self.search.init(point.y, f_info_struct)

    def judge(self, first_step, y, y_eval, f_info, f_eval_info, state):
        return self.search.step(first_step, y, y_eval, f_info, f_eval_info, state)

    def revise(self, previous: Point, current: Point, state: Any) -> tuple[Point, Any]:
        del previous
        return current, state

    def may_stop(self, state: Any) -> Array:
        del state
        return jnp.array(True)

    def final(self, point: Point, state: Any) -> Point:
        del state
        return point


def revising(search: "optx.AbstractSearch | AbstractRevisingSearch") -> AbstractRevisingSearch:
    """``search`` itself if it is an `AbstractRevisingSearch`, else one that never revises.

    Examples:
        >>> import optimistix as optx
        >>> from asdex_opt._optimistix._searches import revising
        >>> from asdex_opt.optimistix import Watchdog
        >>> type(revising(optx.BacktrackingArmijo())).__name__, type(revising(Watchdog())).__name__
        ('_Plain', 'Watchdog')
    """
    return search if isinstance(search, AbstractRevisingSearch) else _Plain(search)


class _WatchdogState(eqx.Module):
    step_size: Scalar
    relaxed: Array  # points on probation since the checkpoint (0: at the checkpoint)
    base_f: Scalar  # f at the checkpoint
    base_decrease: Scalar  # ∇f(checkpoint)ᵀ(full step from it), < 0
    restore: Array  # whether to go back to the checkpoint
    checkpoint: Point  # the last checkpoint

    @property
    def at_checkpoint(self) -> Array:
        """Whether the current point (accepted, or gone back to) is a checkpoint."""
        return self.relaxed == 0

    @property
    def leaving(self) -> Array:
        """Whether the point just accepted left the checkpoint, on probation."""
        return self.relaxed == 1


class Watchdog(AbstractRevisingSearch[_WatchdogState]):
    """The watchdog technique: full Newton steps on probation, backtracking if they fail.

    At a checkpoint (an accepted point that passed the Armijo test) the full step is
    tried first. If it passes the Armijo test, it is the next checkpoint. If it fails
    but ``f`` is finite there, the solver moves there anyway, on probation, computes
    its Newton step and tries that in full, up to ``relaxed_steps`` points in a row.
    The first point on the path with ``f ≤ f(checkpoint) + slope · ∇f(checkpoint)ᵀd``
    (``d`` the full step that failed) becomes the next checkpoint; if none does, the
    solver goes back to the checkpoint and backtracks along ``d`` from half of it, as
    a monotone Armijo search would. Checkpoints thus decrease ``f`` at least as much as
    Armijo steps would (the global convergence argument of Chamberlain et al., 1982),
    while the path between them can follow pure Newton steps uphill and out of curved
    valleys. The solve only ends at a checkpoint, and a solve stopped by ``max_steps``
    on probation returns its last checkpoint.

    An `AbstractRevisingSearch`: going back to a checkpoint is a move that the
    Optimistix search interface does not have, so `SparseNewton` runs it (and
    Optimistix's own solvers refuse it).

    Attributes:
        relaxed_steps: How many points in a row may be on probation, >= 1.
        decrease_factor: Step size factor after a rejected trial, in (0, 1).
        slope: Fraction of the predicted decrease to achieve, in (0, 1).

    Examples:
        >>> import jax.numpy as jnp, optimistix as optx
        >>> from asdex_opt.optimistix import SparseNewton, Watchdog
        >>> def rosenbrock(x, _):
        ...     return jnp.sum(100 * (x[1::2] - x[::2] ** 2) ** 2 + (1 - x[::2]) ** 2)
        >>> y0 = jnp.tile(jnp.array([-1.2, 1.0]), 50)
        >>> sol = optx.minimise(rosenbrock, SparseNewton(1e-8, 1e-8, search=Watchdog()), y0)
        >>> int(sol.stats["num_hessians"]), bool(jnp.allclose(sol.value, 1.0))
        (6, True)
    """

    relaxed_steps: int = eqx.field(static=True, default=1)
    decrease_factor: float = 0.5
    slope: float = 1e-4

    def __check_init__(self):
        _check_parameters(self, relaxed_steps=_COUNT, decrease_factor=_FRACTION, slope=_FRACTION)

    def init(self, point: Point, f_info_struct: Any) -> _WatchdogState:
        """Start at a checkpoint (the initial point)."""
        zero = jnp.zeros((), f_info_struct.f.dtype)
        return _WatchdogState(jnp.array(1.0), jnp.array(0), zero, zero, jnp.array(False), point)

    def step(self, *args: Any, **kwargs: Any) -> None:
        """Not an Optimistix search step: see `judge`."""
        raise TypeError(
            "`Watchdog` needs a solver that can go back to a checkpoint, which Optimistix "
            "searches cannot ask for; use it with `asdex_opt.SparseNewton(search=...)`."
        )

    def judge(
        self,
        first_step: Array,
        y: Array,
        y_eval: Array,
        f_info: Any,
        f_eval_info: Any,
        state: _WatchdogState,
    ) -> tuple[Scalar, Array, optx.RESULTS, _WatchdogState]:
        """Judge ``y_eval``: a checkpoint, on probation, rejected, or back to the checkpoint.

        ``y`` is the current point (a checkpoint, or on probation) and ``f_info`` its
        function information. ``accept`` means a new checkpoint or a point on
        probation; `revise` then goes back to the checkpoint where the path failed.
        """
        f_new = f_eval_info.as_min()
        predicted = f_info.compute_grad_dot((y_eval**ω - y**ω).ω)
        at_checkpoint = state.at_checkpoint
        reference = jnp.where(at_checkpoint, f_info.f, state.base_f)
        decrease = jnp.where(at_checkpoint, predicted, state.base_decrease)
        armijo = _sufficient_decrease(f_new, reference, self.slope * decrease, y, y_eval) & (
            decrease <= 0
        )
        checkpoint = first_step | armijo
        full_step = jnp.invert(at_checkpoint) | (state.step_size == 1)
        relax = (
            jnp.invert(checkpoint)
            & jnp.isfinite(f_new)
            & full_step
            & (state.relaxed < self.relaxed_steps)
        )
        restore = jnp.invert(checkpoint | relax | at_checkpoint)
        accept = checkpoint | relax
        step_size = jnp.where(
            accept,
            1.0,
            jnp.where(restore, self.decrease_factor, self.decrease_factor * state.step_size),
        )
        leaving = at_checkpoint & relax
        new_state = _WatchdogState(
            step_size=step_size,
            relaxed=jnp.where(relax, state.relaxed + 1, 0),
            base_f=jnp.where(leaving, f_info.f, state.base_f),
            base_decrease=jnp.where(leaving, predicted, state.base_decrease),
            restore=restore,
            checkpoint=state.checkpoint,
        )
        return step_size, accept, optx.RESULTS.successful, new_state

    def revise(
        self, previous: Point, current: Point, state: _WatchdogState
    ) -> tuple[Point, _WatchdogState]:
        """Keep the checkpoint a path on probation leaves; go back to it if it failed."""
        checkpoint = jax.lax.cond(state.leaving, lambda: previous, lambda: state.checkpoint)
        current = jax.lax.cond(state.restore, lambda: checkpoint, lambda: current)
        return current, eqx.tree_at(lambda s: s.checkpoint, state, checkpoint)

    def may_stop(self, state: _WatchdogState) -> Array:
        """Only at a checkpoint."""
        return state.at_checkpoint

    def final(self, point: Point, state: _WatchdogState) -> Point:
        """The last checkpoint, if the solve stopped on probation."""
        return jax.tree.map(
            lambda a, b: jnp.where(state.at_checkpoint, a, b), point, state.checkpoint
        )
