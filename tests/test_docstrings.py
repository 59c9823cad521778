"""The examples in every docstring of asdex and asdex_opt run as written (slow: ~4 min).

Each module's examples run in a fresh interpreter: with JAX's default configuration,
as a user would run them, and apart from the rest of the slow suite. (Run in the same
process after the sif2jax sweeps, XLA:CPU's compiler segfaulted while compiling one
of them, with jax 0.10.2; alone they pass.)
"""

import doctest
import importlib
import pkgutil
import subprocess
import sys

import pytest

import asdex
import asdex_opt

_RUN = """
import doctest, importlib, sys
module = importlib.import_module(sys.argv[1])
result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
sys.exit(1 if result.failed else 0)
"""


def _modules(package) -> list[str]:
    names = [package.__name__]
    names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    return sorted(names)


def _has_examples(name: str) -> bool:
    tests = doctest.DocTestFinder().find(importlib.import_module(name))
    return any(test.examples for test in tests)


@pytest.mark.slow
@pytest.mark.parametrize("name", _modules(asdex) + _modules(asdex_opt))
def test_docstring_examples_run(name):
    if not _has_examples(name):
        pytest.skip("no examples")
    run = subprocess.run([sys.executable, "-c", _RUN, name], capture_output=True, text=True)
    output = run.stdout[-6000:] + run.stderr[-3000:]
    assert run.returncode == 0, f"examples of {name} failed:\n{output}"
