"""Detection rules, one module per primitive family; importing them fills the table."""

from asdex.detection._rules import (  # noqa: F401
    calls,
    contractions,
    control_flow,
    ecosystem,
    elementwise,
    indexing,
    linalg,
    misc,
    random,
    reductions,
    sparse,
    structural,
    windows,
)
