"""Session-wide test setup.

The suite compiles thousands of small programs and runs each a few times, so XLA's
compile time is most of its time. Unless `XLA_FLAGS` already sets them, the tests ask
XLA:CPU for its cheaper code generation (LLVM at -O0, its expensive passes off). The
programs compile faster; their results may differ in the last bits (LLVM fuses and
vectorizes less), which the tests' tolerances absorb. The docstring examples, which
print results as a user sees them, run in interpreters given the user's own `XLA_FLAGS`
(kept in the variable `USER_XLA_FLAGS` names). Benchmarks never run under these flags.

`import sif2jax` switches JAX to float64 globally. Importing it here, before any test
module, and restoring the default precision right after, makes every module see the same
default whichever modules a run collects; tests that need float64 ask for it themselves
(a fixture or `jax.enable_x64`).

sif2jax 0.0.8 spends most of its import (about a minute per process here, paid by each
xdist worker and the controller) in one module, CLEUVEN7's, which builds a 946-by-360
matrix by 35,948 eager `.at[].add` updates, each copying the matrix. The import below
builds that matrix with NumPy's `np.add.at` instead: the same additions, in the same
order and dtype, so the same bits (checked once against the eager loop). Where the
module's text differs from the loop this expects, it is imported unchanged.
"""

import importlib.abc
import importlib.util
import os
import sys
from pathlib import Path

FAST_CODEGEN = ("--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true")
USER_XLA_FLAGS = "ASDEX_TESTS_USER_XLA_FLAGS"
os.environ.setdefault(USER_XLA_FLAGS, os.environ.get("XLA_FLAGS", ""))
_flags = os.environ.get("XLA_FLAGS", "")
os.environ["XLA_FLAGS"] = " ".join(
    [_flags, *(flag for flag in FAST_CODEGEN if flag.split("=")[0] not in _flags)]
).strip()

import jax  # noqa: E402  (XLA reads XLA_FLAGS when its backend starts)

_CLEUVEN7 = "sif2jax.cutest._constrained_minimisation.cleuven7"
_EAGER_LOOP = """_ineq_matrix_dense = jnp.zeros((_n_ineq, 360))
for i in range(len(_ineq_rows)):
    _ineq_matrix_dense = _ineq_matrix_dense.at[_ineq_rows[i], _ineq_cols[i]].add(
        _ineq_vals[i]
    )
"""
_NUMPY_LOOP = """_ineq_matrix_dense = np.zeros((_n_ineq, 360), jnp.zeros(()).dtype)
np.add.at(
    _ineq_matrix_dense,
    (np.asarray(_ineq_rows), np.asarray(_ineq_cols)),
    np.asarray(_ineq_vals),
)
_ineq_matrix_dense = jnp.asarray(_ineq_matrix_dense)
"""


class _NumpyLoopLoader(importlib.abc.SourceLoader):
    """Loads CLEUVEN7's module from its file with the eager loop replaced (no bytecode cache)."""

    def __init__(self, path: str):
        self.path = path

    def get_filename(self, fullname: str) -> str:
        return self.path

    def get_data(self, path: str) -> bytes:
        return Path(path).read_text().replace(_EAGER_LOOP, _NUMPY_LOOP).encode()


class _CLEUVEN7Finder(importlib.abc.MetaPathFinder):
    """Finds CLEUVEN7's module where the other finders do, and loads it by `_NumpyLoopLoader`."""

    def find_spec(self, fullname, path, target=None):
        if fullname != _CLEUVEN7:
            return None
        others = (finder for finder in sys.meta_path if finder is not self)
        spec = next(filter(None, (f.find_spec(fullname, path, target) for f in others)), None)
        if spec is None or spec.origin is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=_NumpyLoopLoader(spec.origin)
        )


_finder = _CLEUVEN7Finder()
sys.meta_path.insert(0, _finder)
try:
    import sif2jax  # noqa: F401
finally:
    sys.meta_path.remove(_finder)

jax.config.update("jax_enable_x64", False)
