"""Shared setup of the asdex_opt tests."""

import jax
import pytest


@pytest.fixture
def x64():
    """Float64 for one test, through the global flag.

    Not the `jax.enable_x64` context: SparseLU's host callbacks run in other threads,
    where a thread-local context would not apply.
    """
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture(scope="module")
def x64_module():
    """Float64 for every test of a module (``pytestmark = usefixtures("x64_module")``)."""
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)
