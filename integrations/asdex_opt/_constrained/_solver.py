"""`SparseInteriorPoint`: IPOPT's primal-dual interior-point method with a filter line search.

The algorithm of Wächter and Biegler (2006) on the problem

    min f(x)  s.t.  c_E(x) = 0,  c_I(x) - s = 0,  l ≤ x ≤ u,  s ≥ 0

(``w = [x; s]``, bounds only where finite): gradient-based scaling of the objective and
of each constraint, bounds relaxed by ``10⁻⁸`` relative and the start pushed inside
them, least-squares initial multipliers, the monotone barrier update, the primal-dual
KKT step with inertia correction, the fraction-to-the-boundary rule, a filter line
search on ``(θ, φ_μ)`` with the switching condition and Armijo's rule, second-order
corrections, the ``κ_Σ`` safeguard on the bound multipliers, and termination on the
scaled KKT error. The feasibility restoration phase is `restore`'s simpler scheme (see
there). Everything from the initial point on runs in one ``lax.while_loop``.
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, PyTree

from asdex_opt._constrained._barrier import (
    KAPPA_EPSILON,
    fraction_to_boundary,
    next_barrier,
    optimality_error,
    push_inside,
)
from asdex_opt._constrained._filter import GAMMA_PHI, GAMMA_THETA, Filter
from asdex_opt._constrained._inertia import (
    CorrectedFactorization,
    factor_with_inertia,
    refined_solve,
)
from asdex_opt._constrained._kkt import KKTStructure
from asdex_opt._constrained._linear import DenseKKTSolver, KKTSolver, SparseKKTSolver
from asdex_opt._constrained._problem import ConstrainedProblem
from asdex_opt._constrained._status import Status

__all__ = ["SparseInteriorPoint", "State"]

BOUND_RELAX = 1e-8
KAPPA_SIGMA = 1e10
KAPPA_SOC = 0.99
S_THETA, S_PHI, DELTA, ETA_PHI, GAMMA_ALPHA = 1.1, 2.3, 1.0, 1e-8, 0.05
MAX_BACKTRACKS = 60
DIVERGENCE = 1e20
RESTORATION_PENALTY = 1e3
"""IPOPT's ``resto_penalty_parameter`` (rho): see `Run.restoration_weights`."""
REGULAR, RESTORATION, ESTIMATE = 0, 1, 2


class SparseInteriorPoint(eqx.Module):
    """A primal-dual interior-point method with a filter line search (IPOPT's algorithm).

    Used through `asdex_opt.constrained.constrained_minimise`. The KKT matrix is
    assembled sparsely from the sparse Lagrangian Hessian and constraint Jacobian
    (detected and colored once per problem) in a structure built once.

    In single precision the tolerances are raised to what it can reach: ``tol`` to at
    least 100 and ``acceptable_tol`` to at least 1000 machine epsilons.

    Attributes:
        tol: Termination tolerance on the scaled KKT error (IPOPT's ``tol``).
        acceptable_tol: A solve also ends, successfully, after ``acceptable_iter``
            consecutive iterates with scaled KKT error below this.
        acceptable_iter: See ``acceptable_tol``.
        constr_viol_tol: Largest unscaled constraint violation at a solution.
        dual_inf_tol: Largest unscaled dual infeasibility at a solution.
        compl_inf_tol: Largest unscaled complementarity at a solution.
        mu_init: The initial barrier parameter.
        max_soc: Most second-order corrections per line search.
        max_restoration_steps: Most iterations of one feasibility restoration.
        linear_solver: ``"sparse"``: the supernodal sparse ``LDLᵀ`` of
            ``asdex_opt.lineax.SparseLDL`` (symbolic analysis once per problem, numeric
            work inside ``jit``, inertia from its pivots); ``"dense"``: a dense
            symmetric eigendecomposition, exact inertia, for up to a few hundred
            variables and constraints.

    Examples:
        >>> import jax.numpy as jnp
        >>> from asdex_opt.constrained import SparseInteriorPoint, constrained_minimise
        >>> sol = constrained_minimise(
        ...     lambda y, _: jnp.sum((y - 2.0) ** 2), SparseInteriorPoint(), jnp.zeros(3),
        ...     inequality=lambda y, _: 1.0 - jnp.sum(y))
        >>> [round(float(v), 4) for v in sol.value]
        [0.3333, 0.3333, 0.3333]
    """

    tol: float = 1e-8
    acceptable_tol: float = 1e-6
    acceptable_iter: int = 15
    constr_viol_tol: float = 1e-4
    dual_inf_tol: float = 1.0
    compl_inf_tol: float = 1e-4
    mu_init: float = 0.1
    max_soc: int = 4
    max_restoration_steps: int = 100
    linear_solver: Literal["sparse", "dense"] = "sparse"

    def kkt_solver(self, kkt: KKTStructure) -> KKTSolver:
        """The KKT solver for ``kkt``, built once per problem."""
        if self.linear_solver == "sparse":
            return SparseKKTSolver(kkt)
        if self.linear_solver == "dense":
            return DenseKKTSolver(kkt)
        raise ValueError(
            f"Unknown `linear_solver` {self.linear_solver!r}; use 'sparse' or 'dense'."
        )


class Point(eqx.Module):
    """Scaled evaluations at ``w``: objective, gradient, residuals, Jacobian nonzeros."""

    f: Array
    g: Array
    c: Array
    jac: Array
    finite: Array


class State(eqx.Module):
    """The iterate, its evaluation and the algorithm's memory.

    ``mode`` says what the next iteration factors and does: `REGULAR` (a step of the
    method), `RESTORATION` (a step of feasibility restoration, which began at
    violation ``reference`` with proximity weights ``anchor``) or `ESTIMATE` (the
    least-squares multipliers, at the start and after restoration).
    """

    w: Array
    y: Array
    zl: Array
    zu: Array
    point: Point
    mu: Array
    tau: Array
    filter: Filter
    delta_w_last: Array
    delta_c_last: Array
    steps: Array
    restoration_steps: Array
    acceptable_count: Array
    status: Array
    error: Array
    theta_min: Array
    theta_max: Array
    mode: Array
    reference: Array
    anchor: Array
    restoration_count: Array


class Run:
    """One problem's solve: static structure built once, jit-able methods."""

    def __init__(
        self,
        problem: ConstrainedProblem,
        options: SparseInteriorPoint,
        dynamic: PyTree,
        max_steps: int,
    ):
        self.problem, self.options, self.dynamic = problem, options, dynamic
        self.max_steps = max_steps
        self.n, self.me, self.mi = problem.n, problem.num_equality, problem.num_inequality
        self.m = self.me + self.mi
        self.size_w = self.n + self.mi
        self.kkt = KKTStructure(
            self.n,
            self.me,
            self.mi,
            problem.hess_rows,
            problem.hess_cols,
            problem.jac_rows,
            problem.jac_cols,
        )
        self.solver = options.kkt_solver(self.kkt)
        dtype = problem.dtype
        self.dtype = dtype
        eps = float(jnp.finfo(dtype).eps)
        self.tol = max(options.tol, 100 * eps)
        self.acceptable_tol = max(options.acceptable_tol, 1000 * eps)
        inf = jnp.full(self.mi, jnp.inf, dtype)
        lower = jnp.concatenate([problem.lower, jnp.zeros(self.mi, dtype)])
        upper = jnp.concatenate([problem.upper, inf])
        self.has_lo, self.has_up = jnp.isfinite(lower), jnp.isfinite(upper)
        relax_lo = BOUND_RELAX * jnp.maximum(1, jnp.abs(lower))
        relax_up = BOUND_RELAX * jnp.maximum(1, jnp.abs(upper))
        self.lower = jnp.where(self.has_lo, lower - relax_lo, lower)
        self.upper = jnp.where(self.has_up, upper + relax_up, upper)
        self.original = (problem.lower, problem.upper)

    # ------------------------------------------------------------ evaluations

    def raw(self, x: Array) -> tuple[Array, Array, Array, Array]:
        f, g = self.problem.gradient(x, self.dynamic)
        c, jac = self.problem.jacobian(x, self.dynamic)
        return f, g, c, jac

    def evaluate(self, w: Array, scale: tuple[Array, Array]) -> Point:
        obj_scale, con_scale = scale
        x, s = w[: self.n], w[self.n :]
        f, g, c, jac = self.raw(x)
        point = Point(
            obj_scale * f,
            jnp.concatenate([obj_scale * g, jnp.zeros(self.mi, self.dtype)]),
            self.residual(con_scale * c, s),
            jac * con_scale[self.problem.jac_rows],
            jnp.array(True),
        )
        finite = jnp.isfinite(point.f)
        for array in (point.g, point.c, point.jac):
            finite = finite & jnp.all(jnp.isfinite(array))
        return eqx.tree_at(lambda p: p.finite, point, finite)

    def residual(self, c: Array, s: Array) -> Array:
        return c.at[self.me :].add(-s)

    def trial(self, w: Array, scale: tuple[Array, Array]) -> tuple[Array, Array, Array]:
        """Scaled ``(f, residuals)`` at ``w`` and whether both are finite."""
        obj_scale, con_scale = scale
        x, s = w[: self.n], w[self.n :]
        f = obj_scale * self.problem.objective(x, self.dynamic)[0]
        c = self.residual(con_scale * self.problem.constraints(x, self.dynamic), s)
        return f, c, jnp.isfinite(f) & jnp.all(jnp.isfinite(c))

    def jac_t(self, jac: Array, y: Array) -> Array:
        """``Aᵀ y`` with ``A = [[J_E, 0], [J_I, -I]]``."""
        p = self.problem
        jty = jax.ops.segment_sum(jac * y[p.jac_rows], p.jac_cols, num_segments=self.n)
        return jnp.concatenate([jty, -y[self.me :]])

    def distances(self, w: Array) -> tuple[Array, Array]:
        return (
            jnp.where(self.has_lo, w - self.lower, 1.0),
            jnp.where(self.has_up, self.upper - w, 1.0),
        )

    def barrier(self, w: Array, f: Array, mu: Array) -> Array:
        dl, du = self.distances(w)
        logs = jnp.sum(jnp.where(self.has_lo, jnp.log(dl), 0)) + jnp.sum(
            jnp.where(self.has_up, jnp.log(du), 0)
        )
        return f - mu * logs

    def dual_residual(self, point: Point, y: Array, zl: Array, zu: Array) -> Array:
        return point.g + self.jac_t(point.jac, y) - zl + zu

    def complementarity(self, w: Array, zl: Array, zu: Array, mu: Array) -> Array:
        dl, du = self.distances(w)
        return jnp.concatenate(
            [jnp.where(self.has_lo, zl * dl - mu, 0), jnp.where(self.has_up, zu * du - mu, 0)]
        )

    def error(self, w: Array, y: Array, zl: Array, zu: Array, point: Point, mu: Array) -> Array:
        return optimality_error(
            self.dual_residual(point, y, zl, zu),
            point.c,
            self.complementarity(w, zl, zu, mu),
            y,
            jnp.concatenate([zl, zu]),
            jnp.concatenate([self.has_lo, self.has_up]),
        )

    def estimate_system(self, point: Point, zl: Array, zu: Array) -> tuple[Array, Array, Array]:
        """``(Σ, δ_c, rhs)`` of the least-squares multiplier system at ``point``."""
        diag = jnp.ones(self.size_w, self.dtype)
        delta_c = jnp.asarray(1e-8 if self.solver.regularise else 0.0, self.dtype)
        rhs = jnp.concatenate([-(point.g - zl + zu), jnp.zeros(self.m, self.dtype)])
        return diag, delta_c, rhs

    def estimate_multipliers(self, solution: Array) -> Array:
        """``y`` from the solution of `estimate_system`, or zero when it is large."""
        y = solution[self.size_w :]
        good = jnp.all(jnp.isfinite(y)) & (jnp.max(jnp.abs(y), initial=0.0) <= 1e3)
        return jnp.where(good, y, 0.0)

    @property
    def kkt_hess_size(self) -> int:
        return int(self.problem.hess_rows.size)

    def safeguard(self, w: Array, zl: Array, zu: Array, mu: Array) -> tuple[Array, Array]:
        """IPOPT's ``κ_Σ`` reset: keep ``Σ`` within a factor ``κ_Σ`` of ``μ X⁻²``."""
        dl, du = self.distances(w)
        zl = jnp.where(
            self.has_lo, jnp.clip(zl, mu / (KAPPA_SIGMA * dl), KAPPA_SIGMA * mu / dl), 0.0
        )
        zu = jnp.where(
            self.has_up, jnp.clip(zu, mu / (KAPPA_SIGMA * du), KAPPA_SIGMA * mu / du), 0.0
        )
        return zl, zu

    # ------------------------------------------------------------ start

    def scaling(self, x: Array) -> tuple[Array, Array]:
        """IPOPT's gradient-based scaling: largest gradient entries at most 100."""
        _, g, _, jac = self.raw(x)
        obj_scale = jnp.minimum(1.0, 100.0 / jnp.maximum(jnp.max(jnp.abs(g)), 1e-300))
        row_max = jax.ops.segment_max(jnp.abs(jac), self.problem.jac_rows, num_segments=self.m)
        con_scale = jnp.minimum(1.0, 100.0 / jnp.maximum(row_max, 1e-300))
        finite = jnp.isfinite(obj_scale) & jnp.all(jnp.isfinite(con_scale))
        return (
            jnp.where(finite, obj_scale, 1.0).astype(self.dtype),
            jnp.where(finite, con_scale, 1.0).astype(self.dtype),
        )

    def init(self, x0: Array) -> tuple[State, tuple[Array, Array]]:
        opts = self.options
        x0 = jnp.asarray(x0, self.dtype)
        x = push_inside(x0, self.lower[: self.n], self.upper[: self.n])
        scale = self.scaling(x)
        c0 = scale[1] * self.problem.constraints(x, self.dynamic)
        s = push_inside(c0[self.me :], self.lower[self.n :], self.upper[self.n :])
        w = jnp.concatenate([x, s])
        point = self.evaluate(w, scale)
        zl = jnp.where(self.has_lo, 1.0, 0.0).astype(self.dtype)
        zu = jnp.where(self.has_up, 1.0, 0.0).astype(self.dtype)
        y = jnp.zeros(self.m, self.dtype)  # estimated by the first iteration
        mu = jnp.asarray(opts.mu_init, self.dtype)
        theta = jnp.sum(jnp.abs(point.c))
        status = jnp.where(
            jnp.all(jnp.isfinite(x0)) & point.finite, Status.RUNNING, Status.NONFINITE_START
        )
        status = jnp.where(
            jnp.any(self.original[0] > self.original[1]), Status.INCONSISTENT_BOUNDS, status
        )
        state = State(
            w=w,
            y=y,
            zl=zl,
            zu=zu,
            point=point,
            mu=mu,
            tau=jnp.maximum(0.99, 1 - mu),
            filter=Filter.empty(max(self.max_steps, 1) + 1, self.dtype),
            delta_w_last=jnp.zeros((), self.dtype),
            delta_c_last=jnp.zeros((), self.dtype),
            steps=jnp.array(0, jnp.int32),
            restoration_steps=jnp.array(0, jnp.int32),
            acceptable_count=jnp.array(0, jnp.int32),
            status=status.astype(jnp.int32),
            error=jnp.asarray(jnp.inf, self.dtype),
            theta_min=1e-4 * jnp.maximum(1.0, theta),
            theta_max=1e4 * jnp.maximum(1.0, theta),
            mode=jnp.array(self.after_restoration, jnp.int32),
            reference=jnp.zeros((), self.dtype),
            anchor=jnp.zeros(self.size_w, self.dtype),
            restoration_count=jnp.array(0, jnp.int32),
        )
        return (state if self.m else self.check(state, scale)), scale

    @property
    def after_restoration(self) -> int:
        """The mode after restoration (and at the start): `ESTIMATE` if there are constraints."""
        return ESTIMATE if self.m else REGULAR

    # ------------------------------------------------------------ termination

    def check(self, state: State, scale: tuple[Array, Array]) -> State:
        """The KKT error of the iterate, and the status it implies."""
        obj_scale, con_scale = scale
        opts = self.options
        w, y, zl, zu, point = state.w, state.y, state.zl, state.zu, state.point
        error = self.error(w, y, zl, zu, point, jnp.zeros((), self.dtype))
        x = w[: self.n]
        violation = self.violation(w, point, con_scale)
        dual = jnp.max(jnp.abs(self.dual_residual(point, y, zl, zu)), initial=0.0) / obj_scale
        compl = jnp.max(jnp.abs(self.complementarity(w, zl, zu, 0.0)), initial=0.0) / obj_scale
        solved = (
            (error <= self.tol)
            & (violation <= opts.constr_viol_tol)
            & (dual <= opts.dual_inf_tol)
            & (compl <= opts.compl_inf_tol)
        )
        acceptable = (error <= self.acceptable_tol) & (violation <= 1e-2)
        count = jnp.where(acceptable, state.acceptable_count + 1, 0)
        diverged = (jnp.max(jnp.abs(x)) > DIVERGENCE) | (point.f / obj_scale < -DIVERGENCE)
        running = state.status == Status.RUNNING
        status = jnp.where(
            running & ~point.finite,
            Status.NONFINITE,
            jnp.where(
                running & (solved | (count >= opts.acceptable_iter)),
                Status.SOLVED,
                jnp.where(running & diverged, Status.UNBOUNDED, state.status),
            ),
        )
        return eqx.tree_at(
            lambda st: (st.error, st.acceptable_count, st.status), state, (error, count, status)
        )

    def violation(self, w: Array, point: Point, con_scale: Array) -> Array:
        """Return the largest violation of the original (unscaled) constraints."""
        raw_c = point.c.at[self.me :].add(w[self.n :]) / con_scale
        return jnp.maximum(
            jnp.max(jnp.abs(raw_c[: self.me]), initial=0.0),
            jnp.max(-raw_c[self.me :], initial=0.0),
        )

    # ------------------------------------------------------------ one iteration

    def update_barrier(self, state: State) -> State:
        tol = self.tol

        def cond(st):
            e_mu = self.error(st.w, st.y, st.zl, st.zu, st.point, st.mu)
            return (
                (st.mode == REGULAR)
                & (e_mu <= KAPPA_EPSILON * st.mu)
                & (st.mu > tol / 10 * (1 + 1e-12))
            )

        def body(st):
            mu, tau = next_barrier(st.mu, tol)
            return eqx.tree_at(lambda s: (s.mu, s.tau, s.filter), st, (mu, tau, st.filter.reset()))

        return lax.while_loop(cond, body, state)

    def restoration_weights(self, state: State) -> tuple[Array, Array]:
        """Return restoration's barrier and proximity weights ``(μ_R, ζ)``.

        IPOPT's restoration minimises ``rho ‖c‖₁`` plus ``√μ`` times the proximity term
        minus ``μ`` times the barrier. The gradient of ``½‖c‖²`` is ``‖c‖`` times
        smaller than that of ``‖c‖₁``, so both weights are scaled by ``θ_k / rho`` (at
        most 1), ``θ_k`` the violation restoration began at: near a feasible point
        the barrier would otherwise push the iterate away from its bounds faster than
        the violation pulls it back.
        """
        weight = jnp.minimum(1.0, state.reference / RESTORATION_PENALTY)
        return state.mu * weight, jnp.sqrt(state.mu) * weight

    def system(self, state: State, sigma: Array, r_dual: Array) -> tuple[Array, Array, Array]:
        """``(diagonal, constraint block floor, rhs)`` of the matrix the mode factors."""
        w, point = state.w, state.point
        mu, zeta = self.restoration_weights(state)
        dl, du = self.distances(w)
        barrier_grad = -jnp.where(self.has_lo, mu / dl, 0) + jnp.where(self.has_up, mu / du, 0)
        restoration_diag = (
            zeta * state.anchor
            + jnp.where(self.has_lo, mu / dl**2, 0)
            + jnp.where(self.has_up, mu / du**2, 0)
        )
        e_diag, e_floor, e_rhs = self.estimate_system(point, state.zl, state.zu)
        regular_rhs = -jnp.concatenate([r_dual, point.c])
        restoration_rhs = -jnp.concatenate([barrier_grad, point.c])
        mode = state.mode
        diag = jnp.where(
            mode == REGULAR, sigma, jnp.where(mode == RESTORATION, restoration_diag, e_diag)
        )
        floor = jnp.where(
            mode == REGULAR, 0.0, jnp.where(mode == RESTORATION, 1.0, e_floor)
        ).astype(self.dtype)
        rhs = jnp.where(
            mode == REGULAR, regular_rhs, jnp.where(mode == RESTORATION, restoration_rhs, e_rhs)
        )
        return diag, floor, rhs

    def step(self, state: State, scale: tuple[Array, Array]) -> State:
        """One iteration: the mode's matrix factored (one place), then the mode's update."""
        state = self.update_barrier(state)
        w, y, zl, zu, point, mu = state.w, state.y, state.zl, state.zu, state.point, state.mu
        obj_scale, con_scale = scale
        dl, du = self.distances(w)
        hess = lax.cond(
            state.mode == REGULAR,
            lambda: self.problem.hessian(w[: self.n], obj_scale, con_scale * y, self.dynamic),
            lambda: jnp.zeros(self.kkt_hess_size, self.dtype),
        )
        sigma = jnp.where(self.has_lo, zl / dl, 0) + jnp.where(self.has_up, zu / du, 0)
        grad_phi = point.g - jnp.where(self.has_lo, mu / dl, 0) + jnp.where(self.has_up, mu / du, 0)
        r_dual = grad_phi + self.jac_t(point.jac, y)
        diag, floor, rhs = self.system(state, sigma, r_dual)
        corrected = factor_with_inertia(
            self.solver,
            self.kkt,
            hess,
            diag,
            point.jac,
            mu,
            state.delta_w_last,
            rhs,
            floor,
            state.delta_c_last,
        )
        state = lax.switch(
            state.mode,
            [
                lambda: self.regular_update(state, scale, corrected, grad_phi, r_dual),
                lambda: self.restoration_update(state, scale, corrected.solution),
                lambda: self.estimate_update(state, corrected.solution),
            ],
        )
        checked = self.check(state, scale)
        regular = state.mode == REGULAR
        return jax.tree.map(lambda a, b: jnp.where(regular, a, b), checked, state)

    def regular_update(
        self,
        state: State,
        scale: tuple[Array, Array],
        corrected: CorrectedFactorization,
        grad_phi: Array,
        r_dual: Array,
    ) -> State:
        """The line search and the step, or the start of restoration when it fails."""
        w, y, zl, zu, mu, tau = state.w, state.y, state.zl, state.zu, state.mu, state.tau
        dl, du = self.distances(w)

        def solve(c_rhs):
            rhs = -jnp.concatenate([r_dual, c_rhs])
            sol = refined_solve(corrected.factor, self.kkt, corrected.data, rhs, corrected.exact)
            return sol[: self.size_w], sol[self.size_w :]

        dw, dy = corrected.solution[: self.size_w], corrected.solution[self.size_w :]
        search = self.line_search(state, scale, grad_phi, dw, dy, solve, dl, du)
        accepted = corrected.ok & search["accepted"]
        state = eqx.tree_at(
            lambda st: (st.delta_w_last, st.delta_c_last, st.steps),
            state,
            (
                jnp.where(corrected.delta_w > 0, corrected.delta_w, state.delta_w_last),
                corrected.delta_c,
                state.steps + 1,
            ),
        )

        def take_step():
            dw, dy, alpha = search["dw"], search["dy"], search["alpha"]
            dzl = jnp.where(self.has_lo, mu / dl - zl - zl / dl * dw, 0)
            dzu = jnp.where(self.has_up, mu / du - zu + zu / du * dw, 0)
            alpha_z = jnp.minimum(
                fraction_to_boundary(zl, dzl, tau, self.has_lo),
                fraction_to_boundary(zu, dzu, tau, self.has_up),
            )
            w_new = w + alpha * dw
            zl_new, zu_new = self.safeguard(w_new, zl + alpha_z * dzl, zu + alpha_z * dzu, mu)
            flt = lax.cond(
                search["augment"],
                lambda f: f.add(search["theta"], search["phi"]),
                lambda f: f,
                state.filter,
            )
            return eqx.tree_at(
                lambda st: (st.w, st.y, st.zl, st.zu, st.point, st.filter),
                state,
                (w_new, y + alpha * dy, zl_new, zu_new, self.evaluate(w_new, scale), flt),
            )

        def start_restoration():
            return eqx.tree_at(
                lambda st: (st.filter, st.mode, st.reference, st.anchor, st.restoration_count),
                state,
                (
                    state.filter.add(search["theta"], search["phi"]),
                    jnp.array(RESTORATION, jnp.int32),
                    search["theta"],
                    jnp.minimum(1.0, 1.0 / jnp.abs(w)) ** 2,
                    jnp.array(0, jnp.int32),
                ),
            )

        return lax.cond(accepted, take_step, start_restoration)

    def estimate_update(self, state: State, solution: Array) -> State:
        """The least-squares multipliers from the factored `estimate_system`."""
        return eqx.tree_at(
            lambda st: (st.y, st.mode),
            state,
            (self.estimate_multipliers(solution), jnp.array(REGULAR, jnp.int32)),
        )

    # ------------------------------------------------------------ line search

    def line_search(self, state, scale, grad_phi, dw, dy, solve, dl, du) -> dict:
        """Backtracking filter line search with second-order corrections (section 2.3)."""
        w, point, mu, tau, flt = state.w, state.point, state.mu, state.tau, state.filter
        theta_k = jnp.sum(jnp.abs(point.c))
        phi_k = self.barrier(w, point.f, mu)
        gdw = jnp.dot(grad_phi, dw)
        eps = jnp.finfo(self.dtype).eps
        alpha_max = jnp.minimum(
            fraction_to_boundary(dl, dw, tau, self.has_lo),
            fraction_to_boundary(du, -dw, tau, self.has_up),
        )
        descent = gdw < 0
        alpha_min = GAMMA_ALPHA * jnp.where(
            descent,
            jnp.where(
                theta_k <= state.theta_min,
                jnp.minimum(
                    jnp.minimum(GAMMA_THETA, GAMMA_PHI * theta_k / -gdw),
                    DELTA * theta_k**S_THETA / jnp.abs(gdw) ** S_PHI,
                ),
                jnp.minimum(GAMMA_THETA, GAMMA_PHI * theta_k / -gdw),
            ),
            GAMMA_THETA,
        )
        tiny = jnp.max(jnp.abs(dw) / (1 + jnp.abs(w)), initial=0.0) < 10 * eps

        def test(alpha_ref, w_trial):
            f_t, c_t, finite = self.trial(w_trial, scale)
            theta_t = jnp.sum(jnp.abs(c_t))
            phi_t = self.barrier(w_trial, f_t, mu)
            round_off = 10 * eps * jnp.abs(phi_k)
            switching = descent & (alpha_ref * (-gdw) ** S_PHI > DELTA * theta_k**S_THETA)
            armijo = phi_t - phi_k <= ETA_PHI * alpha_ref * gdw + round_off
            f_type = switching & (theta_k <= state.theta_min)
            decrease = (theta_t <= (1 - GAMMA_THETA) * theta_k) | (
                phi_t <= phi_k - GAMMA_PHI * theta_k + round_off
            )
            ok = (
                finite
                & jnp.isfinite(phi_t)
                & flt.acceptable(theta_t, phi_t)
                & (theta_t <= state.theta_max)
                & jnp.where(f_type, armijo, decrease)
            )
            return ok, ~(switching & armijo), theta_t, c_t

        # One loop tries, in turn: the full step alpha_max; up to `max_soc` second-order
        # corrections when it increased the violation; then alpha_max/2, alpha_max/4, ...
        max_soc = self.options.max_soc

        def cond(carry):
            k, alpha, soc, *_, ok, _ = carry
            regular_left = (alpha >= alpha_min) & (k < MAX_BACKTRACKS + max_soc)
            return ~ok & ((soc >= 0) | regular_left)

        def body(carry):
            k, alpha, soc, c_soc, theta_old, _, _, _, _, _ = carry
            in_soc = soc >= 0
            direction = lax.cond(in_soc, lambda: solve(c_soc), lambda: (dw, dy))
            step = jnp.where(
                in_soc,
                jnp.minimum(
                    fraction_to_boundary(dl, direction[0], tau, self.has_lo),
                    fraction_to_boundary(du, -direction[0], tau, self.has_up),
                ),
                alpha,
            )
            ok, aug, theta_t, c_t = test(
                jnp.where(in_soc, alpha_max, alpha), w + step * direction[0]
            )
            start_soc = (k == 0) & (theta_t >= theta_k) & (max_soc > 0)
            soc_failed = in_soc & ((soc + 1 >= max_soc) | (theta_t > KAPPA_SOC * theta_old))
            next_soc = jnp.where(start_soc, 0, jnp.where(in_soc & ~soc_failed, soc + 1, -1))
            next_c = jnp.where(start_soc, alpha_max * point.c + c_t, step * c_soc + c_t)
            next_alpha = jnp.where(start_soc | (in_soc & ~soc_failed), alpha, alpha / 2)
            return (
                k + 1,
                next_alpha,
                next_soc,
                next_c,
                theta_t,
                direction[0],
                direction[1],
                step,
                ok,
                aug,
            )

        init = (
            jnp.array(0),
            alpha_max,
            jnp.array(-1),
            point.c,
            theta_k,
            dw,
            dy,
            alpha_max,
            tiny,
            jnp.array(False),
        )
        *_, dw_acc, dy_acc, alpha_acc, ok, aug = lax.while_loop(cond, body, init)
        return {
            "accepted": ok,
            "alpha": alpha_acc,
            "dw": dw_acc,
            "dy": dy_acc,
            "augment": aug,
            "theta": theta_k,
            "phi": phi_k,
        }

    # ------------------------------------------------------------ restoration

    def restoration_update(
        self, state: State, scale: tuple[Array, Array], solution: Array
    ) -> State:
        """One step of a simple feasibility restoration: damped Gauss-Newton on the violation.

        Restoration minimises ``½‖c(w)‖² - μ Σ log(bound distances)`` from ``w_k`` by
        proximal steps: each minimises the model of ``½‖c(w)‖² + ½ζ‖D_R (w - w_j)‖²``
        about the current ``w_j`` (``ζ = √μ``, ``D_R = diag(min(1, 1/|w_k|))``, IPOPT's
        restoration proximity term, re-anchored at every step so that the steps can
        reach a feasible point rather than a compromise with ``w_k``), from the
        quasi-definite system ``[[ζ D_R² + μ X⁻², Aᵀ], [A, -I]]`` (always the right
        inertia; ``solution`` is its solution, factored by `step`), the
        fraction-to-the-boundary rule and Armijo backtracking. It ends at the first
        point with ``θ ≤ 0.9 θ_k`` that the filter (with ``(θ_k, φ_k)`` added) accepts,
        whose multipliers the next iteration estimates; when the steps stall first, the
        status is ``INFEASIBLE`` if ``‖Aᵀc‖`` is small against ``‖c‖`` (a stationary
        point of the violation) while the original constraints are violated by more
        than ``constr_viol_tol``, and ``RESTORATION_FAILED`` otherwise, as it is after
        ``max_restoration_steps`` steps.
        """
        w, point, tau = state.w, state.point, state.tau
        mu_r, zeta = self.restoration_weights(state)
        eps = jnp.finfo(self.dtype).eps
        dl, du = self.distances(w)
        barrier_grad = -jnp.where(self.has_lo, mu_r / dl, 0) + jnp.where(
            self.has_up, mu_r / du, 0
        )
        d = solution[: self.size_w]

        def merit(w_trial, c):
            dl, du = self.distances(w_trial)
            logs = jnp.sum(jnp.where(self.has_lo, jnp.log(dl), 0)) + jnp.sum(
                jnp.where(self.has_up, jnp.log(du), 0)
            )
            proximity = 0.5 * zeta * jnp.sum(state.anchor * (w_trial - w) ** 2)
            return 0.5 * jnp.sum(c**2) + proximity - mu_r * logs

        slope = jnp.dot(barrier_grad + self.jac_t(point.jac, point.c), d)
        alpha_max = jnp.minimum(
            fraction_to_boundary(dl, d, tau, self.has_lo),
            fraction_to_boundary(du, -d, tau, self.has_up),
        )
        m0 = merit(w, point.c)

        def bt_cond(c):
            _, ok, count = c
            return ~ok & (count < MAX_BACKTRACKS)

        def bt_body(c):
            alpha, _, count = c
            _, c_t, finite = self.trial(w + alpha * d, scale)
            ok = finite & (merit(w + alpha * d, c_t) <= m0 + 1e-4 * alpha * slope)
            return jnp.where(ok, alpha, alpha / 2), ok, count + 1

        alpha, moved, _ = lax.while_loop(bt_cond, bt_body, (alpha_max, jnp.array(False), 0))
        w_new = jnp.where(moved, w + alpha * d, w)
        point_new = self.evaluate(w_new, scale)
        theta = jnp.sum(jnp.abs(point_new.c))
        phi = self.barrier(w_new, point_new.f, state.mu)
        done = (theta <= 0.9 * state.reference) & state.filter.acceptable(theta, phi)
        stalled = ~moved | (jnp.max(jnp.abs(alpha * d) / (1 + jnp.abs(w)), initial=0.0) < 10 * eps)
        stationary = (
            jnp.max(jnp.abs(self.jac_t(point_new.jac, point_new.c)), initial=0.0)
            <= 1e-6 * jnp.maximum(1.0, jnp.max(jnp.abs(point_new.c), initial=0.0))
        ) & (self.violation(w_new, point_new, scale[1]) > self.options.constr_viol_tol)
        count = state.restoration_count + 1
        status = jnp.where(
            done,
            Status.RUNNING,
            jnp.where(
                stationary,
                Status.INFEASIBLE,
                jnp.where(
                    stalled | (count >= self.options.max_restoration_steps),
                    Status.RESTORATION_FAILED,
                    Status.RUNNING,
                ),
            ),
        )
        zl, zu = self.safeguard(w_new, state.zl, state.zu, state.mu)
        return eqx.tree_at(
            lambda st: (
                st.w,
                st.zl,
                st.zu,
                st.point,
                st.status,
                st.mode,
                st.restoration_count,
                st.restoration_steps,
            ),
            state,
            (
                w_new,
                jnp.where(done, zl, state.zl),
                jnp.where(done, zu, state.zu),
                point_new,
                status.astype(jnp.int32),
                jnp.where(done, self.after_restoration, RESTORATION).astype(jnp.int32),
                count,
                state.restoration_steps + 1,
            ),
        )

    # ------------------------------------------------------------ the loop

    def run(self, x0: Array) -> tuple[State, tuple[Array, Array]]:
        """Solve from ``x0``; return the final state and the scaling factors."""
        state, scale = self.init(x0)

        def cond(st):
            return (st.status == Status.RUNNING) & (st.steps < self.max_steps)

        state = lax.while_loop(cond, lambda st: self.step(st, scale), state)
        status = jnp.where(state.status == Status.RUNNING, Status.MAX_STEPS, state.status)
        return eqx.tree_at(lambda st: st.status, state, status.astype(jnp.int32)), scale
