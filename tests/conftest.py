"""Session-wide test setup.

`import sif2jax` switches JAX to float64 globally. Importing it here, before any test
module, and restoring the default precision right after, makes every module see the same
default whichever modules a run collects; tests that need float64 ask for it themselves
(a fixture or `jax.enable_x64`).
"""

import jax
import sif2jax  # noqa: F401

jax.config.update("jax_enable_x64", False)
