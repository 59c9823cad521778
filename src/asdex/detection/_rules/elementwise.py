"""Elementwise primitives: each result element depends on the same element of each operand.

Integer results have zero derivative (the engine empties their patterns), but their
bounds are tracked here so that indices computed in the program stay exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from asdex.detection._maps import Broadcast, DependencyMap, Identity
from asdex.detection._registry import register_rule
from asdex.detection._rule import (
    Curvature,
    Equation,
    Evaluation,
    Operand,
    Output,
    Rule,
    Terms,
)


def operand_map(operand: Operand, out_shape: tuple[int, ...]) -> DependencyMap:
    """Map of an operand broadcast (scalars, size-1 dimensions) to `out_shape`."""
    if operand.shape == out_shape:
        return Identity()
    ids = np.arange(operand.size, dtype=np.int64).reshape(operand.shape)
    return Broadcast(np.broadcast_to(ids, out_shape).reshape(-1))


def _maps(eqn: Equation, which: tuple[int, ...] | None = None) -> tuple:
    out_shape = eqn.out_shapes[0]
    indices = range(len(eqn.operands)) if which is None else which
    return tuple((k, operand_map(eqn.operands[k], out_shape)) for k in indices)


def elementwise_rule(eqn: Equation) -> list[Output]:
    """Every result depends elementwise on every operand."""
    return [Output(maps=_maps(eqn))]


def zero_rule(eqn: Equation) -> list[Output]:
    """Results with zero derivative (comparisons, rounding, bit operations, ...)."""
    return [Output() for _ in eqn.out_shapes]


def _first_operand_rule(eqn: Equation) -> list[Output]:
    """Results that depend on the first operand only (e.g. `nextafter`)."""
    return [Output(maps=_maps(eqn, (0,)))]


# --- integer bounds ---------------------------------------------------------------------


def _bounds(eqn: Equation) -> list[tuple[np.ndarray, np.ndarray]] | None:
    shape = eqn.out_shapes[0]
    found = []
    for operand in eqn.operands:
        b = operand.bounds()
        if b is None:
            return None
        found.append(tuple(np.broadcast_to(x, shape).astype(np.int64) for x in b))
    return found


def _with_bounds(compute):
    """An elementwise rule that also derives integer bounds with `compute`."""

    def rule(eqn: Equation) -> list[Output]:
        maps = _maps(eqn)
        bounds = _bounds(eqn) if np.dtype(eqn.out_dtypes[0]).kind in "biu" else None
        if bounds is None:
            return [Output(maps=maps)]
        lower, upper = compute(eqn, bounds)
        return [Output(maps=maps, lower=lower, upper=upper)]

    return rule


def known_zeros(operand: Operand, out_shape: tuple[int, ...]) -> np.ndarray:
    """Mask of the result elements where `operand` (broadcast) is a trusted known zero."""
    nonzero = operand.may_be_nonzero()
    if nonzero is None:
        return np.zeros(out_shape, bool)
    return np.broadcast_to(~nonzero, out_shape)


def cut(output: Output, cuts: dict[int, np.ndarray]) -> Output:
    """`output` with operand `k`'s map emptied on the result elements `cuts[k]`."""
    maps: list[tuple[int, DependencyMap]] = []
    for k, m in output.maps:
        where = cuts.get(k)
        if where is None or not where.any():
            maps.append((k, m))
            continue
        if where.all():
            continue
        source = np.arange(where.size) if isinstance(m, Identity) else m.source
        maps.append((k, Broadcast(np.where(where.reshape(-1), -1, source))))
    return dataclasses.replace(output, maps=tuple(maps))


def mul_rule(eqn: Equation) -> list[Output]:
    """`mul`: like any elementwise rule, but a known zero factor cuts the dependency."""
    (output,) = _with_bounds(_mul)(eqn)
    out_shape = eqn.out_shapes[0]
    zero = np.zeros(out_shape, bool)
    for operand in eqn.operands:
        zero = zero | known_zeros(operand, out_shape)
    return [cut(output, dict.fromkeys(range(len(eqn.operands)), zero))]


def div_rule(eqn: Equation) -> list[Output]:
    """`div`: where the numerator is a known zero, the quotient is constant (zero)."""
    (output,) = _with_bounds(_div)(eqn)
    if not _is_float(eqn.out_dtypes[0]):
        return [output]
    zero = known_zeros(eqn.operands[0], eqn.out_shapes[0])
    return [cut(output, {0: zero, 1: zero})]


def integer_pow_rule(eqn: Equation) -> list[Output]:
    """`integer_pow`: `x ** 0` is the constant one."""
    if eqn.params["y"] == 0:
        return [Output()]
    return elementwise_rule(eqn)


def pow_rule(eqn: Equation) -> list[Output]:
    """`pow(x, y)`: constant where `y` is a known zero, or `x` a known zero or one.

    JAX's derivative in `y`, `log(x) * x ** y` with `log(0)` replaced by 0, is zero
    there.
    """
    (output,) = elementwise_rule(eqn)
    base, exponent = eqn.operands
    out_shape = eqn.out_shapes[0]
    cuts = {0: known_zeros(exponent, out_shape)}
    if base.may_be_nonzero() is not None:
        base_one = dataclasses.replace(base, value=np.asarray(base.value) - 1)
        cuts[1] = known_zeros(base, out_shape) | known_zeros(base_one, out_shape)
    return [cut(output, cuts)]


def _is_float(dtype) -> bool:
    return np.issubdtype(np.dtype(dtype), np.inexact)


def _add(eqn, b):
    (la, ua), (lb, ub) = b
    return la + lb, ua + ub


def _sub(eqn, b):
    (la, ua), (lb, ub) = b
    return la - ub, ua - lb


def _mul(eqn, b):
    (la, ua), (lb, ub) = b
    corners = np.stack([la * lb, la * ub, ua * lb, ua * ub])
    return corners.min(0), corners.max(0)


def _neg(eqn, b):
    (la, ua), = b
    return -ua, -la


def _max(eqn, b):
    (la, ua), (lb, ub) = b
    return np.maximum(la, lb), np.maximum(ua, ub)


def _min(eqn, b):
    (la, ua), (lb, ub) = b
    return np.minimum(la, lb), np.minimum(ua, ub)


def _clamp(eqn, b):
    (llo, ulo), (lx, ux), (lhi, uhi) = b
    return np.minimum(np.maximum(lx, llo), lhi), np.minimum(np.maximum(ux, ulo), uhi)


def _abs(eqn, b):
    (la, ua), = b
    lower = np.where((la <= 0) & (ua >= 0), 0, np.minimum(np.abs(la), np.abs(ua)))
    return lower, np.maximum(np.abs(la), np.abs(ua))


def _rem(eqn, b):
    (la, ua), (lb, ub) = b
    span = np.maximum(np.abs(lb), np.abs(ub)) - 1
    lower = np.where(la >= 0, 0, -span)
    upper = np.where(ua <= 0, 0, span)
    return np.maximum(lower, np.minimum(la, 0)), np.minimum(upper, np.maximum(ua, 0))


def _div(eqn, b):
    (la, ua), (lb, ub) = b
    if np.any((lb <= 0) & (ub >= 0)):
        magnitude = np.maximum(np.abs(la), np.abs(ua))
        return -magnitude, magnitude
    corners = np.stack([np.fix(la / lb), np.fix(la / ub), np.fix(ua / lb), np.fix(ua / ub)])
    return corners.min(0).astype(np.int64), corners.max(0).astype(np.int64)


def _compare(decide):
    def compute(eqn, b):
        (la, ua), (lb, ub) = b
        always, never = decide(la, ua, lb, ub)
        return np.where(always, 1, 0), np.where(never, 0, 1)

    return compute


_COMPARISONS = {
    "lt": lambda la, ua, lb, ub: (ua < lb, la >= ub),
    "le": lambda la, ua, lb, ub: (ua <= lb, la > ub),
    "gt": lambda la, ua, lb, ub: (la > ub, ua <= lb),
    "ge": lambda la, ua, lb, ub: (la >= ub, ua < lb),
    "eq": lambda la, ua, lb, ub: ((la == ua) & (lb == ub) & (la == lb), (ua < lb) | (la > ub)),
    "ne": lambda la, ua, lb, ub: ((ua < lb) | (la > ub), (la == ua) & (lb == ub) & (la == lb)),
}


def _comparison_rule(name: str):
    compute = _compare(_COMPARISONS[name])

    def rule(eqn: Equation) -> list[Output]:
        bounds = _bounds(eqn)
        if bounds is None:
            shape = eqn.out_shapes[0]
            return [Output(lower=np.zeros(shape, np.int64), upper=np.ones(shape, np.int64))]
        lower, upper = compute(eqn, bounds)
        return [Output(lower=lower, upper=upper)]

    return rule


def _sign(eqn: Equation) -> list[Output]:
    """`sign`: zero derivative; bounds of an integer operand carry over monotonically."""
    bounds = _bounds(eqn) if np.dtype(eqn.out_dtypes[0]).kind in "iu" else None
    if bounds is None:
        return [Output()]
    (lower, upper), = bounds
    return [Output(lower=np.sign(lower), upper=np.sign(upper))]


def _logical(combine):
    """Bounds of `and` / `or` on booleans (monotone in each operand), else none."""

    def rule(eqn: Equation) -> list[Output]:
        bounds = _bounds(eqn) if np.dtype(eqn.out_dtypes[0]) == np.bool_ else None
        if bounds is None:
            return [Output()]
        (la, ua), (lb, ub) = bounds
        return [Output(lower=combine(la, lb), upper=combine(ua, ub))]

    return rule


def _not(eqn: Equation) -> list[Output]:
    bounds = _bounds(eqn) if np.dtype(eqn.out_dtypes[0]) == np.bool_ else None
    if bounds is None:
        return [Output()]
    (lower, upper), = bounds
    return [Output(lower=1 - upper, upper=1 - lower)]


def select_n_rule(eqn: Equation) -> list[Output]:
    """`select_n(which, *cases)`: a case contributes only where `which` may select it."""
    which, cases = eqn.operands[0], eqn.operands[1:]
    out_shape = eqn.out_shapes[0]
    bounds = which.bounds()
    maps: list[tuple[int, DependencyMap]] = []
    for k, case in enumerate(cases, start=1):
        m = operand_map(case, out_shape)
        if bounds is not None:
            lower, upper = (np.broadcast_to(x, out_shape).reshape(-1) for x in bounds)
            possible = (lower <= k - 1) & (upper >= k - 1)
            if not possible.any():
                continue
            if not possible.all():
                source = np.arange(possible.size) if isinstance(m, Identity) else m.source
                m = Broadcast(np.where(possible, source, -1))
        maps.append((k, m))
    lower = upper = None
    case_bounds = [c.bounds() for c in cases]
    if all(b is not None for b in case_bounds) and np.dtype(eqn.out_dtypes[0]).kind in "biu":
        shaped = [tuple(np.broadcast_to(x, out_shape) for x in b) for b in case_bounds]
        possible_cases = range(len(cases))
        if bounds is not None:
            wl, wu = (np.broadcast_to(x, out_shape) for x in bounds)
            masks = [(wl <= k) & (wu >= k) for k in possible_cases]
        else:
            masks = [np.ones(out_shape, bool) for _ in possible_cases]
        big = np.iinfo(np.int64).max
        pairs = list(zip(masks, shaped, strict=True))
        lower = np.min([np.where(mk, lo, big) for mk, (lo, _) in pairs], 0)
        upper = np.max([np.where(mk, hi, -big) for mk, (_, hi) in pairs], 0)
    return [Output(maps=tuple(maps), lower=lower, upper=upper)]


def convert_element_type_rule(eqn: Equation) -> list[Output]:
    """Identity map; integer bounds survive integer-to-integer conversions."""
    operand = eqn.operands[0]
    bounds = operand.bounds()
    if bounds is not None and np.dtype(eqn.out_dtypes[0]).kind in "iu":
        info = np.iinfo(eqn.out_dtypes[0])
        if bounds[0].min() >= info.min and bounds[1].max() <= info.max:
            return [Output(maps=((0, Identity()),), lower=bounds[0], upper=bounds[1])]
    return [Output(maps=((0, Identity()),))]


LINEAR_UNARY = ("real", "imag", "conj", "reduce_precision")
NONLINEAR_UNARY = (
    "exp", "exp2", "expm1", "log", "log1p", "sin", "cos", "tan", "asin", "acos", "atan",
    "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "sqrt", "rsqrt", "cbrt", "logistic",
    "erf", "erfc", "erf_inv", "lgamma", "digamma", "bessel_i0e", "bessel_i1e", "square",
)
PIECEWISE_LINEAR_UNARY = ("abs",)
NONLINEAR_NARY = (
    "atan2", "igamma", "igammac", "igamma_grad_a", "random_gamma_grad",
    "polygamma", "zeta", "regularized_incomplete_beta",
)
ZERO_DERIVATIVE = (
    "floor", "ceil", "round", "xor", "shift_left",
    "shift_right_logical", "shift_right_arithmetic", "population_count", "clz",
    "stop_gradient", "mulhi", "bitcast_convert_type", "is_finite",
)
EXACT_ZEROS = frozenset({
    "mul", "neg", "abs", "sign", "floor", "ceil", "round", "sqrt", "square", "integer_pow",
    "max", "min", "clamp", "select_n", "convert_element_type", "real", "imag", "conj",
})
"""Primitives whose float zeros are zeros under any compilation (unlike sums, where a
fused multiply-add may leave a tiny nonzero): their entries trust their zeros."""


def iota_rule(eqn: Equation) -> list[Output]:
    """`iota`: zero derivative, and a known value."""
    shape, dimension = eqn.out_shapes[0], eqn.params["dimension"]
    along = np.arange(shape[dimension]).reshape([-1 if d == dimension else 1
                                                 for d in range(len(shape))])
    return [Output(value=np.broadcast_to(along, shape).astype(eqn.out_dtypes[0]))]


def _div_curvature(eqn: Equation) -> frozenset[tuple[int, int]]:
    """`x / y` is linear in `x`: no `x`-`x` pairs."""
    return frozenset({(0, 1), (1, 1)})


def _integer_pow_curvature(eqn: Equation) -> Curvature:
    """`x ** 0` and `x ** 1` are linear."""
    return Curvature.ZERO if eqn.params["y"] in (0, 1) else Curvature.NONLINEAR


def _pow_curvature(eqn: Equation) -> Curvature | list[Terms]:
    """`x ** y` with a known `y` couples `x` with itself where `y` is neither 0 nor 1."""
    base, exponent = eqn.operands
    if exponent.value is None or exponent.approximate:
        return Curvature.NONLINEAR
    out_shape = eqn.out_shapes[0]
    value = np.asarray(exponent.value)
    curved = np.broadcast_to((value != 0) & (value != 1), out_shape).reshape(-1)
    ids = np.arange(base.size, dtype=np.int64).reshape(base.shape)
    ids = np.broadcast_to(ids, out_shape).reshape(-1)
    elements = np.flatnonzero(curved)
    return [Terms(0, elements, 0, ids[elements], 0, ids[elements])]


def _binary(ufunc: np.ufunc) -> Callable[..., np.ndarray]:
    return lambda params, a, b: ufunc(a, b)


def _select_n(params: dict[str, Any], which: np.ndarray, *cases: np.ndarray) -> np.ndarray:
    return np.choose(which.astype(np.int64), np.broadcast_arrays(*cases))


_ROUNDED = (np.dtype(np.float32), np.dtype(np.float64))
"""Dtypes in which NumPy and XLA both round division and square roots correctly."""


def _float_div(params: dict[str, Any], x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """Float division; not integers (XLA truncates, and differs on division by zero)."""
    return np.divide(x, y) if x.dtype in _ROUNDED and y.dtype == x.dtype else None


def _float_sqrt(params: dict[str, Any], x: np.ndarray) -> np.ndarray | None:
    """Float square root (correctly rounded in both)."""
    return np.sqrt(x) if x.dtype in _ROUNDED else None


def _integer_pow(params: dict[str, Any], x: np.ndarray) -> np.ndarray | None:
    """`x ** y` by the square-and-multiply JAX lowers it to (integers, float32, float64)."""
    y = params["y"]
    if not (x.dtype.kind in "iu" or x.dtype in _ROUNDED):
        return None
    if y == 0:
        return np.ones_like(x)
    power, result = abs(y), None
    while power:
        if power & 1:
            result = x if result is None else result * x
        power >>= 1
        if power:
            x = x * x
    return np.divide(np.ones_like(result), result) if y < 0 else result


def _convert(params: dict[str, Any], x: np.ndarray) -> np.ndarray | None:
    """Conversions NumPy does as XLA does.

    Floats go to integers only when finite and in range (both truncate toward zero),
    never to booleans.
    """
    target = np.dtype(params["new_dtype"])
    if np.issubdtype(x.dtype, np.inexact) and not np.issubdtype(target, np.inexact):
        if target.kind not in "iu" or x.dtype.kind != "f" or not np.isfinite(x).all():
            return None
        info = np.iinfo(target)
        whole = np.trunc(x)
        if x.size and (whole.min() < info.min or whole.max() >= float(int(info.max) + 1)):
            return None
    return x.astype(target)


NUMPY = {
    "add": _binary(np.add), "sub": _binary(np.subtract), "mul": _binary(np.multiply),
    "max": _binary(np.maximum), "min": _binary(np.minimum),
    "lt": _binary(np.less), "le": _binary(np.less_equal), "gt": _binary(np.greater),
    "ge": _binary(np.greater_equal), "eq": _binary(np.equal), "ne": _binary(np.not_equal),
    "and": _binary(np.bitwise_and), "or": _binary(np.bitwise_or),
    "neg": lambda params, x: np.negative(x), "not": lambda params, x: np.invert(x),
    "select_n": _select_n, "convert_element_type": _convert,
    "div": _float_div, "sqrt": _float_sqrt, "integer_pow": _integer_pow,
}
"""NumPy functions that compute what XLA computes, bit for bit (IEEE arithmetic,
wrapping integers), for the known values of the most common elementwise primitives."""


def _register(name: str, rule: Rule, curvature: Curvature | Callable[..., Any]) -> None:
    register_rule(name, rule, curvature=curvature, evaluation=Evaluation.ELEMENTWISE,
                  numpy=NUMPY.get(name), trusts_zeros=name in EXACT_ZEROS)


for _name in LINEAR_UNARY:
    _register(_name, elementwise_rule, Curvature.ZERO)
for _name in PIECEWISE_LINEAR_UNARY:
    _register(_name, _with_bounds(_abs), Curvature.ZERO)
for _name in NONLINEAR_UNARY + NONLINEAR_NARY:
    _register(_name, elementwise_rule, Curvature.NONLINEAR)
for _name in ZERO_DERIVATIVE:
    _register(_name, zero_rule, Curvature.ZERO)
for _name in _COMPARISONS:
    _register(_name, _comparison_rule(_name), Curvature.ZERO)

_register("add", _with_bounds(_add), Curvature.ZERO)
_register("sign", _sign, Curvature.ZERO)
_register("and", _logical(np.minimum), Curvature.ZERO)
_register("or", _logical(np.maximum), Curvature.ZERO)
_register("not", _not, Curvature.ZERO)
_register("add_any", elementwise_rule, Curvature.ZERO)
_register("sub", _with_bounds(_sub), Curvature.ZERO)
_register("neg", _with_bounds(_neg), Curvature.ZERO)
_register("mul", mul_rule, Curvature.BILINEAR)
_register("div", div_rule, _div_curvature)
_register("integer_pow", integer_pow_rule, _integer_pow_curvature)
_register("pow", pow_rule, _pow_curvature)
_register("complex", elementwise_rule, Curvature.ZERO)
_register("rem", _with_bounds(_rem), Curvature.ZERO)
_register("max", _with_bounds(_max), Curvature.ZERO)
_register("min", _with_bounds(_min), Curvature.ZERO)
_register("clamp", _with_bounds(_clamp), Curvature.ZERO)
_register("nextafter", _first_operand_rule, Curvature.ZERO)
_register("select_n", select_n_rule, Curvature.ZERO)
_register("convert_element_type", convert_element_type_rule, Curvature.ZERO)
register_rule("iota", iota_rule, curvature=Curvature.ZERO)
