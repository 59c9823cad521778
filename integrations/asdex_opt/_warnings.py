"""Warnings that point at the user's line, not at the library frame that raised them."""

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

import equinox
import jax
import lineax
import optax
import optimistix

import asdex

__all__ = ["at_user", "warn_at_user"]

# Frames inside these packages (and `contextlib`'s) are skipped to find the user's line.
_LIBRARIES = (
    *(
        os.path.dirname(module.__file__) + os.sep
        for module in (asdex, equinox, jax, lineax, optax, optimistix)
    ),
    os.path.dirname(__file__) + os.sep,
    contextlib.__file__,
)


def _user_stacklevel() -> int:
    """The ``stacklevel`` of the first frame outside the libraries, for a call from here."""
    frame, level = sys._getframe(2), 2
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARIES):
        frame, level = frame.f_back, level + 1
    return level


def warn_at_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` attributed to the user's line.

    Examples:
        >>> import warnings
        >>> from asdex_opt._warnings import warn_at_user
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_at_user("look here")
        >>> caught[0].filename.endswith("_warnings.py")
        False
    """
    warnings.warn(message, category, stacklevel=_user_stacklevel())


@contextlib.contextmanager
def at_user() -> Iterator[None]:
    """Re-issue the warnings raised inside the block at the user's line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        warn_at_user(str(warning.message), warning.category)
