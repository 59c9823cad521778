"""Session-wide test setup."""

import jax


def pytest_collection_finish(session):
    """Start every run in JAX's default precision, whichever modules were collected.

    `import sif2jax` switches JAX to float64 globally; tests that need float64 ask for
    it themselves (a fixture or `jax.enable_x64`), so a file behaves the same alone
    and in the full run.
    """
    del session
    jax.config.update("jax_enable_x64", False)
