"""Constrained minimisation: a sparse primal-dual interior-point method and its parts."""
