"""Krylov Lineax solvers preconditioned from a sparse matrix."""

from typing import Any, ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
from jaxtyping import Array, PyTree

from asdex_opt._lineax._definite import AbstractSparseSolver

__all__ = ["Preconditioned", "jacobi_preconditioner"]


def jacobi_preconditioner(operator: lx.AbstractLinearOperator) -> lx.AbstractLinearOperator:
    """The Jacobi (inverse-diagonal) preconditioner of an operator.

    Zero diagonal entries are replaced by one. For a positive or negative semidefinite
    operator the result is ``diag(1 / |d|)``, tagged positive semidefinite as
    ``lineax.CG`` requires (CG solves ``-A x = -b`` for negative definite ``A``).

    Args:
        operator: Any square operator supported by ``lineax.diagonal``.

    Returns:
        A diagonal operator, to pass as ``options={"preconditioner": ...}``.

    Examples:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from jax.experimental.sparse import BCOO
        >>> from asdex_opt.lineax import SparseMatrixLinearOperator, jacobi_preconditioner
        >>> A = SparseMatrixLinearOperator(BCOO.fromdense(jnp.array([[4.0, 1.0], [1.0, 2.0]])))
        >>> lx.diagonal(jacobi_preconditioner(A))
        Array([0.25, 0.5 ], dtype=float32)
    """
    diag = lx.diagonal(operator)
    definite = lx.is_positive_semidefinite(operator) or lx.is_negative_semidefinite(operator)
    if definite:
        diag = jnp.abs(diag)
    inverse = jnp.where(diag == 0, 1, 1 / jnp.where(diag == 0, 1, diag))
    preconditioner = lx.DiagonalLinearOperator(inverse)
    if definite:
        return lx.TaggedLinearOperator(preconditioner, lx.positive_semidefinite_tag)
    return preconditioner


_PRECONDITIONERS = {"jacobi": jacobi_preconditioner}


class _PreconditionedState(eqx.Module):
    inner: PyTree[Any]  # the inner solver's state (None for CG, which runs its own loop)
    operator: lx.AbstractLinearOperator | None  # for CG: the operator, made positive
    negated: bool = eqx.field(static=True)  # for CG: whether that is ``-A``
    preconditioner: lx.AbstractLinearOperator


class Preconditioned(AbstractSparseSolver[_PreconditionedState]):
    """An iterative Lineax solver with a preconditioner built from the operator.

    Wraps ``lineax.CG``, ``lineax.GMRES`` or ``lineax.BiCGStab``: at ``init`` the
    preconditioner is built once from the operator (for ``"jacobi"``, from its diagonal,
    which is cheap for a `SparseMatrixLinearOperator` or a sum like ``H + λI``) and then
    used by every solve, including the transposed solves of differentiation. GMRES and
    BiCGStab get it through their public ``options={"preconditioner": ...}``. CG runs
    as `_preconditioned_cg`, with ``lineax.CG``'s tolerances and a breakdown test that
    suits a preconditioned iteration in float32. Reports no definiteness.

    Attributes:
        solver: The inner Krylov solver.
        preconditioner: Which preconditioner to build; only ``"jacobi"`` for now.

    Examples:
        >>> import jax.numpy as jnp, lineax as lx
        >>> from jax.experimental.sparse import BCOO
        >>> from asdex_opt.lineax import Preconditioned, SparseMatrixLinearOperator
        >>> A = BCOO.fromdense(jnp.array([[4.0, 1.0], [1.0, 2.0]]))
        >>> op = SparseMatrixLinearOperator(A, lx.positive_semidefinite_tag)
        >>> solver = Preconditioned(lx.CG(rtol=1e-6, atol=1e-6))
        >>> lx.linear_solve(op, jnp.array([5.0, 3.0]), solver).value
        Array([1., 1.], dtype=float32)
    """

    solver: lx.AbstractLinearSolver
    preconditioner: Literal["jacobi"] = "jacobi"
    reports_definiteness: ClassVar[bool] = False

    def __check_init__(self):
        if self.preconditioner not in _PRECONDITIONERS:
            raise ValueError(
                f"Unknown preconditioner {self.preconditioner!r}; expected one of "
                f"{sorted(_PRECONDITIONERS)}."
            )

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        """Build the preconditioner and the inner solver's state (CG: its own)."""
        if "preconditioner" in options:
            raise ValueError(
                "`Preconditioned` builds its own preconditioner; pass "
                "`options={'preconditioner': ...}` to the inner solver directly instead."
            )
        preconditioner = _PRECONDITIONERS[self.preconditioner](operator)
        if type(self.solver) is not lx.CG:
            inner = self.solver.init(operator, options)
            return _PreconditionedState(inner, None, False, preconditioner)
        if operator.in_structure() != operator.out_structure():
            raise ValueError("`Preconditioned(lineax.CG(...))` needs a square operator.")
        negated = lx.is_negative_semidefinite(operator)
        if not (negated or lx.is_positive_semidefinite(operator)):
            raise ValueError(
                "`Preconditioned(lineax.CG(...))` needs an operator tagged positive or "
                "negative semidefinite (`lineax.positive_semidefinite_tag`), as "
                "`lineax.CG` does; use `lineax.GMRES` or `lineax.BiCGStab` otherwise."
            )
        operator = -operator if negated else operator
        return _PreconditionedState(None, operator, negated, preconditioner)

    def compute(
        self, state: _PreconditionedState, vector: PyTree[Array], options: dict[str, Any]
    ) -> tuple[PyTree[Array], lx.RESULTS, dict[str, Any]]:
        """Run the inner solver with the preconditioner (CG: see `_preconditioned_cg`)."""
        if state.operator is None:
            options = {**options, "preconditioner": state.preconditioner}
            return self.solver.compute(state.inner, vector, options)
        solution, result, stats = _preconditioned_cg(
            self.solver, state.operator, state.preconditioner, vector, options
        )
        if state.negated:
            solution = jax.tree.map(jnp.negative, solution)
        return solution, result, stats

    def transpose(self, state: _PreconditionedState, options: dict[str, Any]):
        """Transpose the inner state (or operator) and the preconditioner."""
        preconditioner = state.preconditioner.transpose()
        if state.operator is None:
            inner, options = self.solver.transpose(state.inner, options)
            return _PreconditionedState(inner, None, False, preconditioner), options
        operator = state.operator.transpose()
        return _PreconditionedState(None, operator, state.negated, preconditioner), options

    def conj(self, state: _PreconditionedState, options: dict[str, Any]):
        """Conjugate the inner state (or operator) and the preconditioner."""
        preconditioner = lx.conj(state.preconditioner)
        if state.operator is None:
            inner, options = self.solver.conj(state.inner, options)
            return _PreconditionedState(inner, None, False, preconditioner), options
        operator = lx.conj(state.operator)
        return _PreconditionedState(None, operator, state.negated, preconditioner), options

    def assume_full_rank(self) -> bool:
        """As the inner solver."""
        return self.solver.assume_full_rank()


def _preconditioned_cg(
    cg: lx.CG,
    operator: lx.AbstractLinearOperator,
    preconditioner: lx.AbstractLinearOperator,
    vector: PyTree[Array],
    options: dict[str, Any],
) -> tuple[PyTree[Array], lx.RESULTS, dict[str, Any]]:
    """Preconditioned CG for a positive (semi)definite operator, with ``cg``'s tolerances.

    The same iteration, stopping test and results as ``lineax.CG.compute``, except for
    its breakdown test ``|pᵀAp| ≤ 100 n ε |rᵀz|`` (``z = M⁻¹r``), which compares
    quantities of different scales once a preconditioner is used: ``pᵀAp / rᵀz`` is a
    Rayleigh quotient of ``M⁻¹A``, about 1 for a Jacobi-preconditioned matrix, while
    ``100 n ε`` exceeds 1 in float32 from n ≈ 84 000, so every solve "broke down" into
    NaN at its first step. Here a step breaks down only when the curvature ``pᵀAp`` is
    not positive (``A`` not positive definite), as in exact arithmetic.
    """
    y0 = options["y0"] if "y0" in options else jax.tree.map(jnp.zeros_like, vector)
    leaves = jax.tree.leaves(vector)
    size = sum(leaf.size for leaf in leaves)
    max_steps = 10 * size if cg.max_steps is None else cg.max_steps
    tolerances = (cg.atol, cg.rtol)
    has_scale = not all(isinstance(t, int | float) and t == 0 for t in tolerances)
    b_scale = jax.tree.map(lambda b: cg.atol + cg.rtol * jnp.abs(b), vector)

    def tree_dot(a, b):
        return sum(
            jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        )

    def axpy(alpha, x, y):
        return jax.tree.map(lambda u, v: alpha * u + v, x, y)

    def residual(y):
        return jax.tree.map(jnp.subtract, vector, operator.mv(y))

    def not_converged(r, diff, y):
        if not has_scale:
            return jnp.array(True)
        y_scale = jax.tree.map(lambda v: cg.atol + cg.rtol * jnp.abs(v), y)
        norm1 = cg.norm(jax.tree.map(jnp.divide, r, b_scale))
        norm2 = cg.norm(jax.tree.map(jnp.divide, diff, y_scale))
        return (norm1 > 1) | (norm2 > 1)

    def cond(carry):
        diff, y, r, _, gamma, step = carry
        return (gamma > 0) & (step < max_steps) & not_converged(r, diff, y)

    def body(carry):
        _, y, r, p, gamma, step = carry
        mat_p = operator.mv(p)
        curvature = tree_dot(mat_p, p)
        alpha = jnp.where(curvature > 0, gamma / curvature, jnp.nan)
        diff = jax.tree.map(lambda u: alpha * u, p)
        y = jax.tree.map(jnp.add, y, diff)
        step = step + 1
        if cg.stabilise_every is None:
            r = axpy(-alpha, mat_p, r)
        elif cg.stabilise_every == 1:
            r = residual(y)
        else:
            r = jax.lax.cond(
                step % cg.stabilise_every == 0,
                lambda: residual(y),
                lambda: axpy(-alpha, mat_p, r),
            )
        z = preconditioner.mv(r)
        gamma, gamma_prev = tree_dot(z, r), gamma
        p = axpy(gamma / gamma_prev, p, z)
        return diff, y, r, p, gamma, step

    r0 = residual(y0)
    p0 = preconditioner.mv(r0)
    infinite = jax.tree.map(lambda v: jnp.full_like(v, jnp.inf), y0)
    carry = (infinite, y0, r0, p0, tree_dot(p0, r0), jnp.array(0))
    _, solution, _, _, _, num_steps = jax.lax.while_loop(cond, body, carry)
    if cg.max_steps is None:
        failure = lx.RESULTS.singular
    elif has_scale:
        failure = lx.RESULTS.max_steps_reached
    else:
        failure = lx.RESULTS.successful
    result = lx.RESULTS.where(num_steps == max_steps, failure, lx.RESULTS.successful)
    return solution, result, {"num_steps": num_steps, "max_steps": cg.max_steps}
