"""A nonmonotone backtracking line search (Grippo, Lampariello & Lucidi, 1986).

Newton's method with a monotone Armijo search takes short steps along curved valleys
(Rosenbrock's is the classic case): every trial must decrease ``f``, so full Newton
steps that overshoot the valley floor for one step are cut back. The nonmonotone rule
compares a trial with the *largest* of the last ``memory`` accepted values instead of
the last one,

``f(y + s d) ≤ max(f(y_k), …, f(y_{k-memory+1})) + c s ∇f(y_k)ᵀd``,

which lets such steps through while keeping global convergence for descent directions
(GLL, SIAM J. Numer. Anal. 23(4), 1986). ``memory = 1`` is the usual Armijo search.
"""

from typing import Any

import equinox as eqx
import jax.numpy as jnp
import optimistix as optx
from equinox.internal import ω
from jaxtyping import Array, PyTree, Scalar

__all__ = ["NonmonotoneArmijo"]

_ROUNDING_ULPS = 8


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

    Example:
        >>> import jax.numpy as jnp, optimistix as optx
        >>> from asdex_opt.optimistix import NonmonotoneArmijo, SparseNewton
        >>> def rosenbrock(x, _):
        ...     return jnp.sum(100 * (x[1::2] - x[::2] ** 2) ** 2 + (1 - x[::2]) ** 2)
        >>> y0 = jnp.tile(jnp.array([-1.2, 1.0]), 50)
        >>> monotone = optx.minimise(rosenbrock, SparseNewton(1e-8, 1e-8), y0)
        >>> solver = SparseNewton(1e-8, 1e-8, search=NonmonotoneArmijo())
        >>> nonmonotone = optx.minimise(rosenbrock, solver, y0)
        >>> int(monotone.stats["num_hessians"]), int(nonmonotone.stats["num_hessians"])
        (23, 13)
    """

    memory: int = eqx.field(static=True, default=10)
    decrease_factor: float = 0.5
    slope: float = 1e-4
    step_init: float = 1.0

    def __check_init__(self):
        if not (isinstance(self.memory, int) and self.memory >= 1):
            raise ValueError(
                f"`NonmonotoneArmijo(memory=...)` must be an int >= 1, got {self.memory!r}."
            )
        for name in ("decrease_factor", "slope"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(
                    f"`NonmonotoneArmijo({name}=...)` must be in (0, 1), got {value}."
                )
        if not self.step_init > 0:
            raise ValueError(
                f"`NonmonotoneArmijo(step_init=...)` must be > 0, got {self.step_init}."
            )

    def init(self, y: PyTree, f_info_struct: Any) -> _NonmonotoneState:
        """Starts with no accepted value."""
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
        """Accepts or rejects ``y_eval``; the next step size."""
        if not hasattr(f_info, "compute_grad_dot"):
            raise ValueError(
                "`NonmonotoneArmijo` needs the gradient at accepted points, which this "
                f"solver does not evaluate (it gives `{type(f_info).__name__}`)."
            )
        predicted = f_info.compute_grad_dot((y_eval**ω - y**ω).ω)
        reference = jnp.max(state.recent)
        # Near a minimum the decrease asked for falls below the rounding error of f; a
        # few ulps of slack stop the search from halving the step down to nothing.
        rounding = _ROUNDING_ULPS * jnp.finfo(reference.dtype).eps * jnp.abs(reference)
        sufficient = f_eval_info.as_min() - reference <= self.slope * predicted + rounding
        accept = first_step | (sufficient & (predicted <= 0))
        step_size = jnp.where(accept, self.step_init, self.decrease_factor * state.step_size)
        pushed = jnp.roll(state.recent, 1).at[0].set(f_eval_info.as_min())
        recent = jnp.where(accept, pushed, state.recent)
        return step_size, accept, optx.RESULTS.successful, _NonmonotoneState(step_size, recent)
