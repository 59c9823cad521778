"""Implementation of :mod:`asdex_opt.lineax`: operator, folding and solvers."""
