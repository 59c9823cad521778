"""The index arrays a numeric plan reads, by name: program constants or ``jit`` arguments.

The numeric factorization and solves (`_numeric`, `_level_numeric`) take their index
arrays from one dictionary rather than from the analysis, so that the same code runs
with the arrays embedded in the program as constants (the default: each pattern
compiles a program of its own, and its index arrays grow with ``n``) or passed in as
arguments of the jitted function (``SparseLDL.from_structure``: the program holds the
loop bodies only, and compiles in about the same time for every ``n``).
"""

import numpy as np

from asdex_opt._lineax._ldl._symbolic import Analysis

__all__ = ["operands"]


def _unsigned(array: np.ndarray) -> np.ndarray:
    """Return indices as unsigned integers (JAX then adds no wrapping of negative ones)."""
    if array.size == 0 or array.max() < 2**32 - 1:
        return np.ascontiguousarray(array, np.uint32)
    return np.ascontiguousarray(array, np.uint64)


def _signed(array: np.ndarray) -> np.ndarray:
    """Return nonnegative indices as ``int32`` (``int64`` if they need it)."""
    if array.size == 0 or array.max() < 2**31 - 1:
        return np.ascontiguousarray(array, np.int32)
    return np.ascontiguousarray(array, np.int64)


def operands(analysis: Analysis) -> dict[str, np.ndarray]:
    """Return the index arrays of the analysis's numeric plan, by name.

    ``lower`` (the stored lower entries, for the refinement's products) always; with the
    scalar plan ``assemble``, ``updates``, ``columns``, ``forward``, ``offsets`` and
    ``order`` (see `LevelPlan`; ``int32`` indices, read without wrapping); with dense
    fronts, for class ``c`` the arrays
    ``c/pivots``, ``c/variables``, ``c/entry_source``, ``c/entry_target``
    and, for its ``e``-th `Extend`, ``c/e/front``, ``c/e/slot`` and ``c/e/position``.

    Examples:
        >>> import numpy as np
        >>> from asdex_opt._lineax._ldl import analyse
        >>> arrays = operands(analyse(2, np.array([0, 1, 1]), np.array([0, 0, 1])))
        >>> sorted(arrays)[:3], arrays["order"].dtype
        (['assemble', 'columns', 'forward'], dtype('int32'))
    """
    arrays = {"lower": _unsigned(analysis.lower)}
    plan = analysis.levels
    if plan is not None:
        arrays.update(
            assemble=_signed(plan.assemble),
            updates=_signed(plan.updates),
            columns=_signed(plan.columns),
            forward=_signed(plan.forward),
            offsets=_signed(plan.offsets),
            order=_signed(analysis.order),
        )
    for c, size_class in enumerate(analysis.classes):
        arrays[f"{c}/pivots"] = size_class.pivots.astype(np.int32)
        arrays[f"{c}/variables"] = _unsigned(size_class.variables)
        arrays[f"{c}/entry_source"] = _unsigned(size_class.entry_source)
        arrays[f"{c}/entry_target"] = _unsigned(size_class.entry_target)
        for e, extend in enumerate(size_class.extends):
            arrays[f"{c}/{e}/front"] = _unsigned(extend.front)
            arrays[f"{c}/{e}/slot"] = _unsigned(extend.slot)
            arrays[f"{c}/{e}/position"] = _unsigned(extend.position)
    return arrays
