"""The shifted Newton direction: ``(H + τI) p = g`` with the smallest safe shift ``τ``.

A Newton direction ``p`` solves ``(H + τI) p = g``; the step is ``-p`` (times a step
size). For an indefinite ``H`` the plain Newton direction may point uphill, or towards
a saddle point, so the shift ``τ ≥ 0`` is raised as in Nocedal & Wright's "Cholesky
with added multiple of the identity" (Algorithm 3.3): start at ``τ = 0`` when the
diagonal of ``H`` is positive and at ``β - min(diag H)`` otherwise, and multiply by four
(starting from ``β = 10⁻³ max|diag H|``) until

* ``H + τI`` is positive definite, where the solver reports it: `SparseLDL` by the
  inertia of its ``LDLᵀ`` factorization (``(n, 0, 0)``), the LU-based direct solvers of
  `asdex_opt.lineax` (`SparseLU`, `BlockDiagonalLU`, `BorderedBlockLU`,
  `TridiagonalLU`) by a check like the Cholesky factorization of the algorithm; and
* ``gᵀp > ε ‖g‖ ‖p‖``: ``p`` is a descent direction (``ε`` the machine epsilon; the test
  fails for a non-finite ``p``, e.g. from a singular matrix);

or until ``g = 0`` (a stationary point, where the zero step is the answer). ``τ = 0``
is not tried where a diagonal entry of ``H`` is zero or negative: ``H`` cannot be
positive definite then, and the factorization would be wasted. The first attempt and
the raised ones run in one loop, so the compiled program holds one copy of the solve.

Along a sequence of Hessians (Newton's method) the shift needed changes slowly, so a
caller may pass the shift accepted for the previous matrix, ``τ₋``, as IPOPT does in
its inertia correction (Wächter & Biegler 2006, §3.1). Where ``τ₋ / 4 ≥ β`` the schedule
starts there, not at zero: one factorization per step where the last step's shift (or
a quarter of it) still works, two where it has to be raised back to ``τ₋``, instead of
a failed ``τ = 0`` and the climb from ``β``. Shifts on that grid stay within a factor of
four of the smallest that passes, and once a quarter of the last shift falls below
``β`` the schedule tries ``τ = 0`` first again, so pure Newton steps (and quadratic
convergence) come back where ``H`` turns positive definite. Where ``τ = 0`` still fails
(``H`` singular at a minimum, or nearly so), the climb restarts from that quarter and
goes on by factors of four, not from ``β``: the shift keeps falling by four per step,
down to ``10⁻⁹ β``. A shift held at ``β`` would damp the Newton step along every
direction of curvature below ``β`` and make convergence there linear and slow. For the
same reason a small resumed quarter, not ``β``, is the margin above a diagonal entry
``≤ 0`` (``τ₋ / 4 - min(diag H)``): a zero on the diagonal (a variable the function
does not curve in, at this point) no longer pins the shift at ``β``.

For an exact solve ``gᵀp = pᵀ(H + τI)p``, so the descent test means that the (shifted)
quadratic model curves upwards along ``p``. With solvers that report no definiteness
(Krylov solvers, Lineax's own solvers) it is the only test: every step still goes
downhill, but Newton's method may then converge to a saddle point. If no shift passes
(only possible when ``H`` has non-finite entries or the solver keeps failing), the
direction falls back to the limit ``g / τ`` of shifted Newton, i.e. steepest descent.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, Scalar

from asdex_opt._lineax._definite import positive_definite
from asdex_opt._lineax._finite import all_finite
from asdex_opt._lineax._fold import fold_sparse
from asdex_opt._lineax._operator import SparseMatrixLinearOperator

__all__ = ["search_shift", "shifted", "shifted_newton_direction"]

_MAX_SHIFTS = 40
_GROWTH = 4.0
_SMALLEST = 1e-9  # the smallest resumed shift, as a fraction of β


def _solve(
    operator: SparseMatrixLinearOperator,
    shift: Scalar,
    vector: Array,
    linear_solver: lx.AbstractLinearSolver,
) -> tuple[Array, Array]:
    """Solve ``(A + shift I) x = vector``; whether ``A + shift I`` is positive definite.

    Definiteness as the solver reports it (by the inertia for `SparseLDL`, see
    `positive_definite`); true when it does not. The solver's ``result`` is not read:
    the descent test that follows rejects a non-finite ``x`` (e.g. of a singular
    matrix), and an inexact but descent direction (say, of an iterative solver that ran
    out of steps) is still a valid step.
    """
    solution = lx.linear_solve(shifted(operator, shift), vector, linear_solver, throw=False)
    return solution.value, positive_definite(linear_solver, solution)


def shifted(operator: SparseMatrixLinearOperator, shift: Scalar) -> SparseMatrixLinearOperator:
    """``A + shift I``, tagged symmetric positive semidefinite.

    When the structure stores the whole diagonal, the shift is added in place and the
    structure kept (solvers then reuse their plans); otherwise `fold_sparse` adds the
    diagonal to the structure.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jax.experimental.sparse import BCOO
        >>> from asdex_opt._lineax._newton import shifted
        >>> from asdex_opt.lineax import SparseMatrixLinearOperator
        >>> A = SparseMatrixLinearOperator(BCOO.fromdense(jnp.array([[1.0, 2.0], [2.0, 0.0]])))
        >>> shifted(A, 0.5).as_matrix().tolist()
        [[1.5, 2.0], [2.0, 0.5]]
    """
    tags = frozenset({lx.symmetric_tag, lx.positive_semidefinite_tag})
    structure = operator.structure
    if structure.has_full_diagonal:
        data = operator.data
        # A boolean mask: the program's constant is an eighth of a float64 one.
        data = jnp.where(structure.diagonal_mask, data + shift, data)
        return SparseMatrixLinearOperator.from_structure(data, structure, operator.tags | tags)
    identity = lx.IdentityLinearOperator(operator.in_structure())
    return fold_sparse(operator + shift * identity, tags=tags)


def search_shift(
    attempt: Callable[[Array], tuple[Array, Array]],
    grad: Array,
    first: Array,
    start: Array,
    beta: Array,
    finite: Array,
) -> tuple[Array, Array, Array]:
    """Return the first shift of the schedule that ``attempt`` accepts, and its ``p``.

    The schedule's loop, for any solve: ``attempt(τ)`` returns ``(p, ok)`` for
    ``(A + τI) p = g``. It tries ``first``; then ``start`` where that is larger; then
    four times the last shift, at least ``beta``; at most 40 shifts after the first, and
    none after it where ``finite`` is false. Every attempt runs in one ``while_loop``,
    so the solve is traced (and compiled) once. If no shift passes, the limit of
    shifted Newton is returned: steepest descent ``g / τ``.

    Returns:
        ``(p, τ, first_passed)``: the accepted (or last) shift, and whether ``first``
        passed.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt._lineax._newton import search_shift
        >>> A, g = jnp.diag(jnp.array([1.0, -1.0])), jnp.ones(2)
        >>> def attempt(tau):
        ...     p = jnp.linalg.solve(A + tau * jnp.eye(2), g)
        ...     return p, jnp.all(jnp.linalg.eigvalsh(A + tau * jnp.eye(2)) > 0)
        >>> zero = jnp.array(0.0)
        >>> p, tau, first_passed = search_shift(attempt, g, zero, zero, jnp.array(1e-3),
        ...                                     jnp.array(True))
        >>> bool(tau > 1.0), bool(jnp.vdot(p, g) > 0), bool(first_passed)
        (True, True, False)
    """

    def cond(carry):
        _, _, ok, tries = carry
        return jnp.invert(ok) & (tries <= _MAX_SHIFTS) & ((tries == 0) | finite)

    def body(carry):
        _, tau, _, tries = carry
        raised = jnp.where((tries == 1) & (start > tau), start, jnp.maximum(_GROWTH * tau, beta))
        tau = jnp.where(tries == 0, tau, raised)
        p, ok = attempt(tau)
        return p, tau, ok, tries + 1

    carry = (jnp.zeros_like(grad), jnp.asarray(first, grad.dtype), jnp.array(False), jnp.array(0))
    p, tau, ok, tries = jax.lax.while_loop(cond, body, carry)
    return jnp.where(ok, p, grad / jnp.maximum(tau, beta)), tau, ok & (tries == 1)


def shifted_newton_direction(
    grad: Array,
    hessian: SparseMatrixLinearOperator,
    linear_solver: lx.AbstractLinearSolver,
    min_shift: Scalar | None = None,
    previous_shift: Scalar | None = None,
) -> tuple[Array, Scalar, Array]:
    """Return a descent direction ``p`` from ``(H + τI) p = g`` with the smallest shift tried.

    See the module docstring for the shift schedule. The step to take is ``-p``.

    Args:
        grad: The gradient ``g`` (flat).
        hessian: The sparse symmetric matrix ``H``.
        linear_solver: The Lineax solver for the shifted systems.
        min_shift: A lower bound on ``τ`` (e.g. a trust-region damping); ``None``: 0.
        previous_shift: The shift accepted for the previous matrix of a sequence (the
            last Newton step's), or ``None``. Where a quarter of it is at least ``β``,
            the schedule starts there instead of at zero; below, that quarter is the
            margin above a diagonal entry ``<= 0``, or follows a failed zero (see the
            module docstring).

    Returns:
        ``(p, τ, finite)``; ``finite`` is false for a non-finite ``g``, or a non-finite
        ``H`` that spoils the first solve.

    Examples:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from jax.experimental.sparse import BCOO
        >>> from asdex_opt._lineax._newton import shifted_newton_direction
        >>> from asdex_opt.lineax import SparseMatrixLinearOperator
        >>> H = SparseMatrixLinearOperator(BCOO.fromdense(jnp.diag(jnp.array([1.0, -1.0]))))
        >>> p, tau, finite = shifted_newton_direction(jnp.ones(2), H, lx.LU())
        >>> bool(tau > 1.0), bool(jnp.vdot(p, jnp.ones(2)) > 0), bool(finite)
        (True, True, True)
    """
    dtype = grad.dtype
    eps = jnp.finfo(dtype).eps
    floor = jnp.zeros((), dtype) if min_shift is None else jnp.asarray(min_shift, dtype)
    grad_norm = jnp.sqrt(jnp.vdot(grad, grad))
    stationary = grad_norm == 0

    diag = lx.diagonal(hessian).astype(dtype)
    min_diag = jnp.min(diag, initial=jnp.inf)
    scale = jnp.max(jnp.where(jnp.isfinite(diag), jnp.abs(diag), 0), initial=0.0)
    beta = 1e-3 * jnp.where(scale > 0, scale, 1.0)

    def above_diagonal(margin: Array) -> Array:
        """Nocedal & Wright's first shift with ``margin`` for their ``β`` (at least ``floor``).

        Zero where the diagonal is positive, ``margin - min(diag H)`` otherwise.
        """
        return jnp.maximum(jnp.where(min_diag > 0, 0, margin - min_diag), floor)

    def attempt(tau):
        p, definite = _solve(hessian, tau, grad, linear_solver)
        # False for a non-finite p. At a stationary point (g = 0) the zero step is the
        # answer: no shift needed.
        descent = jnp.vdot(grad, p) > eps * grad_norm * jnp.sqrt(jnp.vdot(p, p))
        return p, (descent & definite) | stationary

    start = above_diagonal(beta)
    finite = all_finite(grad, hessian.data)
    first, second, lowest = start, jnp.maximum(start, beta), beta
    if previous_shift is not None:
        resumed = jnp.asarray(previous_shift, dtype) / _GROWTH
        first = jnp.where(resumed >= beta, jnp.maximum(resumed, start), first)
        small = (resumed < beta) & (resumed >= _SMALLEST * beta)
        # A small resumed shift is also the margin above a diagonal entry <= 0.
        first = jnp.where(small, above_diagonal(resumed), first)
        small = small & (first < resumed)
        second = jnp.where(small, resumed, second)
        lowest = jnp.where(small, resumed, beta)

    p, shift, first_passed = search_shift(attempt, grad, first, second, lowest, finite)
    p = jnp.where(stationary, jnp.zeros_like(p), p)
    # A descent direction at the first attempt implies a finite gradient.
    return p, shift, finite | first_passed
