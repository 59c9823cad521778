"""The flat nonlinear program behind every constrained front end.

``minimise fn(y, args)  subject to  equality(y, args) = 0,  inequality(y, args) >= 0,
lower <= y <= upper`` becomes a problem over one vector ``x``: the inexact array leaves
of ``y`` in ``ravel_pytree`` order (the other leaves are held fixed, as
``eqx.partition`` splits them), with the constraint outputs flattened into one vector
``c(x) = [equality; inequality]``. The array leaves of ``(fn, equality, inequality,
args)`` are passed to every evaluation (they may be traced), the rest is closed over,
so that sparsity detection sees shapes and dtypes only.

The sparsity of the constraint Jacobian and of the Hessian of the Lagrangian
``sigma f(x) + λᵀ c(x)`` (``sigma`` and ``λ`` not differentiated: one pattern and one coloring
serve every multiplier) are detected and colored once, here.
"""

import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, PyTree

import asdex

__all__ = ["ConstrainedProblem"]


def _struct(tree: PyTree) -> PyTree:
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), tree)


def _zeros_like_struct(tree: PyTree, dtype: Any) -> PyTree:
    return jax.tree.map(lambda s: np.zeros(s.shape, dtype), tree)


def _is_concrete(value: Any) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(value))


class ConstrainedProblem:
    """A constrained problem flattened, checked, and with its sparsity colored once.

    Attributes:
        n: Number of optimised variables.
        num_equality: Number of equality constraints ``me``.
        num_inequality: Number of inequality constraints ``mi``.
        lower: Flat lower bounds (``-inf`` where none).
        upper: Flat upper bounds (``+inf`` where none).
        jac_rows: Rows of the nonzeros of the ``(me + mi, n)`` constraint Jacobian.
        jac_cols: Their columns, in the order of `jacobian`'s data.
        hess_rows: Rows of the lower triangle of the Lagrangian Hessian's pattern.
        hess_cols: Their columns (``hess_rows >= hess_cols``), in `hessian`'s order.
    """

    def __init__(
        self,
        fn: Callable,
        y0: PyTree,
        args: PyTree,
        equality: Callable | None,
        inequality: Callable | None,
        bounds: tuple[PyTree, PyTree] | None,
        has_aux: bool,
    ):
        self.has_aux = has_aux
        diff, self.y_static = eqx.partition(y0, eqx.is_inexact_array)
        self._diff_spec = jax.tree.map(eqx.is_inexact_array, y0)
        x0, self.unravel_x = ravel_pytree(diff)
        if x0.size == 0:
            raise ValueError(
                "`y0` has no floating-point array leaves to optimise; pass the variables "
                "as arrays of a floating dtype."
            )
        self.n = int(x0.size)
        self.dtype = x0.dtype
        self.dynamic, self._static = eqx.partition(
            (fn, equality, inequality, args), eqx.is_array
        )
        x_struct = jax.ShapeDtypeStruct((self.n,), self.dtype)
        dyn_struct = _struct(self.dynamic)

        f_struct = jax.eval_shape(
            lambda x, d: self._raw_objective(x, d)[0], x_struct, dyn_struct
        )
        if f_struct.shape not in ((), (1,)):
            raise ValueError(
                f"The objective must return a scalar, got shape {f_struct.shape}"
                + (" (with `has_aux=True` it returns `(value, aux)`)." if has_aux else ".")
            )
        eq_struct, ineq_struct = jax.eval_shape(self._raw_constraints, x_struct, dyn_struct)
        self.equality_struct, self.inequality_struct = eq_struct, ineq_struct
        _, self.unravel_equality = ravel_pytree(_zeros_like_struct(eq_struct, self.dtype))
        _, self.unravel_inequality = ravel_pytree(_zeros_like_struct(ineq_struct, self.dtype))
        self.num_equality = sum(int(np.prod(s.shape)) for s in jax.tree.leaves(eq_struct))
        self.num_inequality = sum(int(np.prod(s.shape)) for s in jax.tree.leaves(ineq_struct))
        self.lower, self.upper = self._flat_bounds(bounds, diff)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", asdex.DenseColoringWarning)
            self._color_jacobian(x_struct, dyn_struct)
            self._color_hessian(x_struct, dyn_struct)

    @property
    def num_constraints(self) -> int:
        """``me + mi``."""
        return self.num_equality + self.num_inequality

    # ---------------------------------------------------------------- flattening

    def flatten(self, y: PyTree) -> Array:
        """The flat vector of the optimised leaves of ``y``."""
        return ravel_pytree(eqx.filter(y, self._diff_spec))[0].astype(self.dtype)

    def unflatten(self, x: Array) -> PyTree:
        """The pytree ``y`` with the optimised leaves from ``x``."""
        return eqx.combine(self.unravel_x(x), self.y_static)

    def _functions(self, dyn: PyTree) -> tuple[Callable, Any, Any, PyTree]:
        return eqx.combine(dyn, self._static)

    def _raw_objective(self, x: Array, dyn: PyTree) -> tuple[Any, PyTree]:
        fn, _, _, args = self._functions(dyn)
        out = fn(self.unflatten(x), args)
        return out if self.has_aux else (out, None)

    def objective(self, x: Array, dyn: PyTree) -> tuple[Array, PyTree]:
        """``(f(x), aux)``; ``aux`` is ``None`` without ``has_aux``."""
        value, aux = self._raw_objective(x, dyn)
        return jnp.reshape(value, ()).astype(self.dtype), aux

    def _raw_constraints(self, x: Array, dyn: PyTree) -> tuple[PyTree, PyTree]:
        _, equality, inequality, args = self._functions(dyn)
        y = self.unflatten(x)
        eq = () if equality is None else equality(y, args)
        ineq = () if inequality is None else inequality(y, args)
        return eq, ineq

    def constraints(self, x: Array, dyn: PyTree) -> Array:
        """``c(x) = [equality; inequality]`` as one vector."""
        eq, ineq = self._raw_constraints(x, dyn)
        leaves = [jnp.ravel(leaf).astype(self.dtype) for leaf in jax.tree.leaves((eq, ineq))]
        return jnp.concatenate(leaves) if leaves else jnp.zeros(0, self.dtype)

    def _lagrangian(self, x: Array, sigma: Array, lam: Array, dyn: PyTree) -> Array:
        f = self.objective(x, dyn)[0]
        if self.num_constraints == 0:
            return sigma * f
        return sigma * f + jnp.dot(lam, self.constraints(x, dyn))

    # ---------------------------------------------------------------- bounds

    def _flat_bounds(self, bounds: tuple[PyTree, PyTree] | None, diff: PyTree) -> tuple:
        n, dtype = self.n, self.dtype
        if bounds is None:
            return jnp.full(n, -jnp.inf, dtype), jnp.full(n, jnp.inf, dtype)
        if not (isinstance(bounds, tuple | list) and len(bounds) == 2):
            raise ValueError("`bounds` must be a pair `(lower, upper)` of pytrees like `y0`.")
        flat = []
        for side, value, fill in (("lower", bounds[0], -jnp.inf), ("upper", bounds[1], jnp.inf)):
            if value is None:
                flat.append(jnp.full(n, fill, dtype))
                continue
            try:
                selected = eqx.filter(value, self._diff_spec)
                leaves = jax.tree.map(
                    lambda ref, b, side=side: self._bound_leaf(side, ref, b), diff, selected
                )
            except ValueError as error:
                raise ValueError(
                    f"The {side} bound must be a pytree with the structure of `y0` (leaves "
                    f"of the same shapes, or scalars; ±inf for no bound): {error}"
                ) from None
            flat.append(ravel_pytree(leaves)[0].astype(dtype))
        lower, upper = flat
        for side, value in (("lower", lower), ("upper", upper)):
            if _is_concrete(value) and np.isnan(np.asarray(value)).any():
                raise ValueError(f"The {side} bound holds NaN; use -inf/+inf for no bound.")
        if _is_concrete((lower, upper)):
            bad = np.flatnonzero(np.asarray(lower) > np.asarray(upper))
            if bad.size:
                raise ValueError(
                    f"Inconsistent bounds: lower > upper at flat indices {bad[:10].tolist()}"
                    f"{' ...' if bad.size > 10 else ''} of `y0`."
                )
        return lower, upper

    @staticmethod
    def _bound_leaf(side: str, ref: Array, bound: Any) -> Array:
        shape = jnp.shape(bound)
        if shape != jnp.shape(ref) and shape != ():
            raise ValueError(
                f"a {side} bound leaf has shape {shape} where `y0` has {jnp.shape(ref)}"
            )
        return jnp.broadcast_to(jnp.asarray(bound, jnp.result_type(ref)), jnp.shape(ref))

    # ---------------------------------------------------------------- sparsity

    def _color_jacobian(self, x_struct: Any, dyn_struct: PyTree) -> None:
        m = self.num_constraints
        if m == 0:
            self.jac_rows = self.jac_cols = np.zeros(0, np.int64)
            self._jacobian = None
            return
        coloring = asdex.jacobian_coloring(self.constraints, x_struct, dyn_struct)
        rows = np.asarray(coloring.sparsity.rows, np.int64)
        cols = np.asarray(coloring.sparsity.cols, np.int64)
        empty = np.flatnonzero(np.bincount(rows, minlength=m) == 0)
        if empty.size:
            me = self.num_equality
            names = [f"equality[{i}]" if i < me else f"inequality[{i - me}]" for i in empty[:10]]
            raise ValueError(
                f"The constraint(s) {', '.join(names)} (flat output indices) depend on no "
                "variable: such a constraint is either always satisfied or never; remove it."
            )
        self.jac_rows, self.jac_cols = rows, cols
        self._jacobian = asdex.value_and_jacobian_from_coloring(self.constraints, coloring)
        self.jacobian_coloring = coloring

    def _color_hessian(self, x_struct: Any, dyn_struct: PyTree) -> None:
        sigma = jax.ShapeDtypeStruct((), self.dtype)
        lam = jax.ShapeDtypeStruct((self.num_constraints,), self.dtype)
        coloring = asdex.hessian_coloring(self._lagrangian, x_struct, sigma, lam, dyn_struct)
        rows = np.asarray(coloring.sparsity.rows, np.int64)
        cols = np.asarray(coloring.sparsity.cols, np.int64)
        lower = np.flatnonzero(rows >= cols)
        self.hess_rows, self.hess_cols = rows[lower], cols[lower]
        self._hess_lower = lower
        self._hessian = (
            asdex.hessian_from_coloring(self._lagrangian, coloring) if rows.size else None
        )
        self.hessian_coloring = coloring

    # ---------------------------------------------------------------- derivatives

    def gradient(self, x: Array, dyn: PyTree) -> tuple[Array, Array]:
        """``(f(x), ∇f(x))``."""
        return jax.value_and_grad(lambda z: self.objective(z, dyn)[0])(x)

    def jacobian(self, x: Array, dyn: PyTree) -> tuple[Array, Array]:
        """``(c(x), data)``: the constraints and the Jacobian's nonzeros."""
        if self._jacobian is None:
            return jnp.zeros(0, self.dtype), jnp.zeros(0, self.dtype)
        c, jac = self._jacobian(x, dyn)
        return c, jac.data

    def hessian(self, x: Array, sigma: Array, lam: Array, dyn: PyTree) -> Array:
        """Lower-triangle nonzeros of the Hessian of ``sigma f(x) + λᵀ c(x)`` in ``x``."""
        if self._hessian is None:
            return jnp.zeros(0, self.dtype)
        sigma = jnp.asarray(sigma, self.dtype)
        return self._hessian(x, sigma, lam.astype(self.dtype), dyn).data[self._hess_lower]
