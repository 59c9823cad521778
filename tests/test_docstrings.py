"""The examples in the docstrings of asdex and asdex_opt run as written, on their own.

The docstrings of every public object (the public modules, and what their ``__all__``
names, wherever it is defined): each one's examples run in an empty namespace, with
only the imports they write themselves (not the globals of their module), in a fresh
interpreter with JAX's default configuration, as a user pasting them would run them.
One interpreter per package runs all of its examples. Every example section (of
private objects too) is titled ``Examples:``, the title mkdocstrings renders as code.
"""

import ast
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = {"asdex": ROOT / "src" / "asdex", "asdex_opt": ROOT / "integrations" / "asdex_opt"}

_RUN = """
import doctest, gc, importlib, pkgutil, sys

import jax

package = importlib.import_module(sys.argv[1])
names = [package.__name__]
names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
public = [n for n in sorted(names) if not any(p.startswith("_") for p in n.split("."))]
finder = doctest.DocTestFinder(exclude_empty=True)
tests = {}
for name in public:
    module = importlib.import_module(name)
    found = finder.find(module)
    for attr in getattr(module, "__all__", []):
        obj = getattr(module, attr)
        if not isinstance(obj, type(module)):
            found += finder.find(obj, f"{name}.{attr}", module=False, globs={})
    for test in found:
        tests.setdefault((test.filename, test.lineno, test.docstring), test)
runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
for test in tests.values():
    test.globs = {"__name__": "__main__"}  # only the example's own imports
    runner.run(test)
    # Free each example's compiled programs: one process holding them all runs out of
    # the kernel's memory mappings (LLVM "Unable to allocate section memory").
    jax.clear_caches()
    gc.collect()
count = sum(len(test.examples) for test in tests.values())
print(f"{count} examples of public objects, {runner.failures} failed")
sys.exit(1 if runner.failures or not count else 0)
"""


@pytest.mark.slow
@pytest.mark.parametrize("package", ["asdex", "asdex_opt"])
def test_docstring_examples_run_on_their_own(package):
    # The user's XLA_FLAGS, without the suite's cheaper code generation (conftest.py).
    env = {**os.environ, "XLA_FLAGS": os.environ.get("ASDEX_TESTS_USER_XLA_FLAGS", "")}
    run = subprocess.run(
        [sys.executable, "-c", _RUN, package], capture_output=True, text=True, timeout=900,
        env=env,
    )
    output = run.stdout[-8000:] + run.stderr[-3000:]
    assert run.returncode == 0, f"examples of {package} failed:\n{output}"


_SINGULAR = re.compile(r"^\s*Example:\s*$", re.MULTILINE)


def _docstrings(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield getattr(node, "name", path.stem), doc


def test_example_sections_are_titled_examples():
    singular = [
        f"{path.relative_to(ROOT)}: {name}"
        for root in PACKAGES.values()
        for path in sorted(root.rglob("*.py"))
        for name, doc in _docstrings(path)
        if _SINGULAR.search(doc)
    ]
    assert not singular, "'Example:' sections (write 'Examples:'):\n" + "\n".join(singular)
