"""Implementation of :mod:`asdex_opt.optimistix` (and the steps :mod:`asdex_opt.optax` reuses)."""
