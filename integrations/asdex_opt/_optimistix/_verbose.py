"""Optimistix's ``verbose=``: what a solver prints (or hands to a callable) every step."""

import functools
from collections.abc import Callable
from typing import Any

import jax

__all__ = ["as_verbose"]


def as_verbose(verbose: bool | frozenset[str] | Callable[..., None]) -> Callable[..., None]:
    """A callable ``**entries -> None`` for any of the forms Optimistix solvers take.

    ``verbose`` may be a bool (print every scalar entry, or nothing), a callable,
    called with keyword arguments ``name=(label, value)`` at every step (Optimistix 0.1's form), or
    a frozenset of entry names to print (the form of earlier Optimistix versions). The
    entries of asdex_opt's solvers: ``num_steps``, ``loss_this_step``,
    ``loss_last_accepted_step``, ``step_size``, ``grad_norm`` (the max-norm of the
    gradient at the last accepted point), ``y`` and ``y_last_accepted_step``.

    Examples:
        >>> from asdex_opt._optimistix._verbose import as_verbose
        >>> seen = []
        >>> as_verbose(frozenset({"step_size"}))  # doctest: +ELLIPSIS
        <function ...>
        >>> as_verbose(lambda **kw: seen.append(sorted(kw)))(step_size=("Step size", 1.0))
        >>> seen
        [['step_size']]
    """
    if callable(verbose):
        return verbose
    if verbose is True:
        return _printer(None)
    if verbose is False:
        return _silent
    if isinstance(verbose, frozenset | set) and all(isinstance(v, str) for v in verbose):
        return _printer(frozenset(verbose))
    raise ValueError(
        f"`verbose` must be a bool, a frozenset of entry names or a callable "
        f"`**kwargs -> None` (as Optimistix solvers take it), got {verbose!r}."
    )


def _silent(**entries: Any) -> None:
    del entries


@functools.cache  # one function per selection: solvers that print alike hash alike
def _printer(names: frozenset[str] | None) -> Callable[..., None]:
    def show(**entries: tuple[str, Any]) -> None:
        shown = [
            (label, value)
            for key, (label, value) in entries.items()
            if (key not in _LONG if names is None else key in names)
        ]
        if shown:
            text = ", ".join(f"{label}: {{}}" for label, _ in shown)
            jax.debug.print(text, *(value for _, value in shown))

    return show


# Printed only when asked for by name: whole vectors flood the terminal.
_LONG = frozenset({"y", "y_last_accepted_step"})
