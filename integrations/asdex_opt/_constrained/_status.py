"""How an interior-point solve ended: status codes, their messages and RESULTS."""

import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array

__all__ = ["MESSAGES", "Status", "to_result"]


class Status:
    """Integer codes of ``stats["status"]``."""

    SOLVED = 0
    MAX_STEPS = 1
    INFEASIBLE = 2
    RESTORATION_FAILED = 3
    UNBOUNDED = 4
    NONFINITE_START = 5
    NONFINITE = 6
    INCONSISTENT_BOUNDS = 7
    RUNNING = 8


MESSAGES = (
    "",
    "The maximum number of interior-point iterations was reached; increase `max_steps`.",
    "Converged to a point of local infeasibility: the constraints cannot be satisfied "
    "near it (the problem may be infeasible). Check the constraints or start elsewhere.",
    "The feasibility restoration phase failed to find a point acceptable to the filter "
    "(the problem may be degenerate or badly scaled).",
    "The iterates diverge (|y| > 1e20 or the objective < -1e20): the problem may be "
    "unbounded below. Add bounds or constraints.",
    "The objective, the constraints or their derivatives are not finite (NaN or inf) at "
    "the initial point (moved inside its bounds); start elsewhere.",
    "A NaN or inf appeared in the objective, the constraints or their derivatives "
    "during the solve.",
    "Inconsistent bounds: lower > upper for some variable.",
    "Still running.",
)

_RESULTS = (
    optx.RESULTS.successful,
    optx.RESULTS.nonlinear_max_steps_reached,
    optx.RESULTS.nonlinear_divergence,
    optx.RESULTS.nonlinear_divergence,
    optx.RESULTS.nonlinear_divergence,
    optx.RESULTS.nonfinite,
    optx.RESULTS.nonfinite,
    optx.RESULTS.nonlinear_divergence,
    optx.RESULTS.nonlinear_max_steps_reached,
)


def to_result(status: Array) -> optx.RESULTS:
    """The Optimistix result of a status code.

    Examples:
        >>> import jax.numpy as jnp, optimistix as optx
        >>> to_result(jnp.array(Status.SOLVED)) == optx.RESULTS.successful
        Array(True, dtype=bool)
    """
    result = optx.RESULTS.successful
    for code, item in enumerate(_RESULTS):
        result = optx.RESULTS.where(jnp.asarray(status) == code, item, result)
    return result
