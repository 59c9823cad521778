"""filter_jit: arrays and numbers traced, other leaves static, non-array results kept."""

import jax.numpy as jnp
import numpy as np

from asdex.decompression import filter_jit


class Unhashable:
    __hash__ = None

    def __init__(self, scale):
        self.scale = scale

    def __eq__(self, other):
        return isinstance(other, Unhashable) and self.scale == other.scale


def test_static_leaves_key_the_compilation():
    traces = []

    def f(x, how, *, scale=1.0, obj=None):
        traces.append(how)
        factor = obj.scale if obj is not None else 1.0
        return {"y": x * scale * factor, "how": how, "n": 3}

    g = filter_jit(f)
    x = jnp.arange(3.0)
    out = g(x, "a", scale=2.0)
    assert out["how"] == "a" and out["n"] == 3
    np.testing.assert_allclose(out["y"], 2 * x)
    np.testing.assert_allclose(g(x, "a", scale=5.0)["y"], 5 * x)  # a number: traced
    assert traces == ["a"]
    assert g(x, "b")["how"] == "b"
    assert traces == ["a", "b"]
    obj = Unhashable(4.0)
    np.testing.assert_allclose(g(x, "a", obj=obj)["y"], 4 * x)
    g(x, "a", obj=obj)
    assert len(traces) == 3  # the same object: no retrace
    np.testing.assert_allclose(g(x, "a", obj=Unhashable(5.0))["y"], 5 * x)
    assert len(traces) == 4  # unhashable leaves compare by identity
