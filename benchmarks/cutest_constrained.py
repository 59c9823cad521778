"""The sif2jax constrained problems that the constrained benchmark and tests solve.

One place for the selection (every sif2jax constrained minimisation problem with at most
``MAX_N`` variables, smallest first) and for turning a problem into the keyword arguments
of ``asdex_opt.constrained.constrained_minimise`` and ``asdex_opt.ipopt.IpoptProblem``.
"""

from typing import Any

import jax

MAX_N = 5000
"""The largest number of variables of the selected problems."""


def num_variables(problem: Any) -> int:
    """Return the number of variables of a sif2jax problem."""
    return sum(leaf.size for leaf in jax.tree.leaves(jax.eval_shape(lambda: problem.y0)))


def inputs(problem: Any) -> dict[str, Any]:
    """Return the ``equality``, ``inequality`` and ``bounds`` keywords of a problem.

    sif2jax's ``constraint(y)`` returns the pair ``(equalities, inequalities)`` with
    ``None`` for a kind the problem lacks; its inequalities are ``>= 0``, as
    ``constrained_minimise`` takes them.
    """
    eq, ineq = problem.constraint(problem.y0)
    return {
        "equality": None if eq is None else (lambda y, a: problem.constraint(y)[0]),
        "inequality": None if ineq is None else (lambda y, a: problem.constraint(y)[1]),
        "bounds": problem.bounds,
    }


def problems(max_n: int = MAX_N, min_n: int = 0) -> dict[str, Any]:
    """Return the problems with ``min_n <= n <= max_n`` by class name, smallest first.

    Imports all of sif2jax (every problem of every category is built at import).
    """
    import sif2jax

    sizes = {type(p).__name__: (num_variables(p), p)
             for p in sif2jax.constrained_minimisation_problems}
    chosen = sorted((s, name) for name, (s, _) in sizes.items() if min_n <= s <= max_n)
    return {name: sizes[name][1] for _, name in chosen}


def load(name: str) -> Any:
    """Return the default instance of the problem ``name``, importing only its module.

    sif2jax's constrained list holds its constrained minimisation and its constrained
    quadratic problems. Through ``cutest.problem_class``, which turns on float64
    (``jax_enable_x64``).
    """
    from cutest import catalogue, problem_class

    category = "constrained" if name in catalogue("constrained") else "constrained QP"
    return problem_class(category, name)()
