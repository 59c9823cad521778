"""Indexing primitives: gather, the scatter family, dynamic_slice, dynamic_update_slice.

Known indices move each element exactly; indices with known bounds move it into the
union of the positions they allow; unknown indices anywhere the mode allows (see
`boxes`).
"""

from asdex.detection._rules.indexing import dynamic, gather, scatter  # noqa: F401
