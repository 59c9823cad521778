"""Detection rules, one module per primitive family; importing them fills the table."""

from asdex.detection._rules import (  # noqa: F401
    calls,
    control_flow,
    elementwise,
    indexing,
    misc,
    random,
    reductions,
    structural,
)
