"""Coloring: `SparsityPattern` → `ColoredPattern` carrying its decompression plan.

Partial distance-2 coloring of rows or columns (Jacobians), star and acyclic coloring
(Hessians), bidirectional coloring, vertex orders, validity checks, and the plans (seed
passes and schedules) that tell decompression how to recover each nonzero from the
compressed matrix.
"""

from asdex._plan import DecompressionPlan, DecompressionSchedule, Level, SeedPass
from asdex.coloring._api import (
    hessian_coloring_from_sparsity,
    jacobian_coloring_from_sparsity,
)
from asdex.coloring._bidirectional import color_bidirectional
from asdex.coloring._check import (
    check_coloring_acyclic,
    check_coloring_cols,
    check_coloring_rows,
    check_coloring_symmetric,
)
from asdex.coloring._greedy import color_cols, color_rows
from asdex.coloring._orders import BEST_OF, ORDERS
from asdex.coloring._schedule import column_schedule, row_schedule, schedule
from asdex.coloring._symmetric import color_acyclic, color_symmetric

__all__ = [
    "jacobian_coloring_from_sparsity",
    "hessian_coloring_from_sparsity",
    "color_rows",
    "color_cols",
    "color_symmetric",
    "color_acyclic",
    "color_bidirectional",
    "ORDERS",
    "BEST_OF",
    "check_coloring_rows",
    "check_coloring_cols",
    "check_coloring_symmetric",
    "check_coloring_acyclic",
    "DecompressionPlan",
    "SeedPass",
    "DecompressionSchedule",
    "Level",
    "schedule",
    "column_schedule",
    "row_schedule",
]
