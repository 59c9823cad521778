"""The examples in every docstring of asdex and asdex_opt run as written (slow: ~3 min)."""

import doctest
import importlib
import pkgutil

import pytest

import asdex
import asdex_opt


def _modules(package) -> list[str]:
    names = [package.__name__]
    names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return sorted(names)


@pytest.mark.slow
@pytest.mark.parametrize("name", _modules(asdex) + _modules(asdex_opt))
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testmod(module, optionflags=flags, verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
