"""Load the user's function from `MODULE:FUNCTION` or `path/to/file.py:FUNCTION`."""

from __future__ import annotations

import importlib
import importlib.util
import pathlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from asdex._cli._errors import CLIError

_LISTED = 12
"""How many of the module's functions a 'no such function' message names."""


def _import_file(path: pathlib.Path) -> ModuleType:
    if not path.is_file():
        raise CLIError(f"there is no file {str(path)!r}.")
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CLIError(f"cannot load {str(path)!r} as a Python module.")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))  # the file may import its siblings
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _import(location: str, debug: bool) -> ModuleType:
    is_file = location.endswith(".py") or "/" in location or "\\" in location
    try:
        if is_file:
            return _import_file(pathlib.Path(location))
        if "" not in sys.path and "." not in sys.path:
            sys.path.insert(0, "")  # `asdex inspect` is run from the user's project
        return importlib.import_module(location)
    except CLIError:
        raise
    except BaseException as error:
        if debug or isinstance(error, KeyboardInterrupt):
            raise
        hint = (" (is it on the Python path? run from the directory that holds it, or "
                "give a file path such as path/to/file.py:FUNCTION)"
                if isinstance(error, ModuleNotFoundError) and not is_file else "")
        raise CLIError(f"cannot import {location!r}: {type(error).__name__}: {error}{hint}."
                       ) from error


def load_function(target: str, *, debug: bool = False) -> tuple[str, Callable[..., Any]]:
    """Import `MODULE:FUNCTION` (a dotted module or a `.py` file) and return the function.

    `FUNCTION` may be a dotted attribute path (`Class.method`, `model.apply`).

    Args:
        target: `MODULE:FUNCTION`; `MODULE` is a module importable from the current
            directory (`package.module`) or a file (`path/to/file.py`).
        debug: Let errors raised while importing propagate with their traceback.

    Returns:
        `(name, function)`, where `name` is `FUNCTION` as given.

    Raises:
        CLIError: If `target` has no `:`, the module does not import, or it has no
            callable of that name.

    Examples:
        >>> from asdex._cli._loading import load_function
        >>> name, fn = load_function("math:sqrt")
        >>> name, fn(4.0)
        ('sqrt', 2.0)
    """
    location, colon, name = target.rpartition(":")
    if not colon or not location or not name:
        raise CLIError(f"expected MODULE:FUNCTION (e.g. mymodule:residual or "
                       f"path/to/file.py:residual), got {target!r}.")
    module = _import(location, debug)
    found: Any = module
    for part in name.split("."):
        if not hasattr(found, part):
            public = sorted(k for k, v in vars(module).items()
                            if callable(v) and not k.startswith("_")
                            and getattr(v, "__module__", None) == module.__name__)
            more = f" and {len(public) - _LISTED} more" if len(public) > _LISTED else ""
            listed = f" It defines: {', '.join(public[:_LISTED])}{more}." if public else ""
            raise CLIError(f"module {location!r} has no function {name!r}.{listed}")
        found = getattr(found, part)
    if not callable(found):
        raise CLIError(f"{location}:{name} is not a function: it is {found!r:.60}.")
    return name, found
