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
"""

import os

FAST_CODEGEN = ("--xla_backend_optimization_level=0", "--xla_llvm_disable_expensive_passes=true")
USER_XLA_FLAGS = "ASDEX_TESTS_USER_XLA_FLAGS"
os.environ.setdefault(USER_XLA_FLAGS, os.environ.get("XLA_FLAGS", ""))
_flags = os.environ.get("XLA_FLAGS", "")
os.environ["XLA_FLAGS"] = " ".join(
    [_flags, *(flag for flag in FAST_CODEGEN if flag.split("=")[0] not in _flags)]
).strip()

import jax  # noqa: E402  (XLA reads XLA_FLAGS when its backend starts)
import sif2jax  # noqa: E402, F401

jax.config.update("jax_enable_x64", False)
