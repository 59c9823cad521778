import json

import jax
import numpy as np
import pytest

from asdex import (
    ColoredPattern,
    SparsityPattern,
    hessian_coloring_from_sparsity,
    jacobian_coloring_from_sparsity,
)


def _pattern():
    avals = (
        {
            "a": jax.ShapeDtypeStruct((2, 2), np.float32),
            "b": [jax.ShapeDtypeStruct((), np.float32)],
        },
        None,
        jax.ShapeDtypeStruct((3,), np.int32),
    )
    return SparsityPattern.from_coo([0, 1, 4, 4], [1, 0, 4, 2], (5, 5), input_avals=avals,
                                    argnums=(0,))


def test_sparsity_round_trip(tmp_path):
    pattern = _pattern()
    pattern.save(tmp_path / "p.npz")
    loaded = SparsityPattern.load(tmp_path / "p.npz")
    assert loaded == pattern
    assert loaded.input_avals == pattern.input_avals
    assert loaded.argnums == (0,)


def _colorings():
    pattern = SparsityPattern.from_dense(np.eye(4) + np.eye(4, k=1) + np.eye(4, k=-1))
    arrow = np.eye(6)
    arrow[0] = arrow[:, 0] = 1
    yield hessian_coloring_from_sparsity(pattern, method="star")
    yield hessian_coloring_from_sparsity(pattern, method="acyclic")
    yield jacobian_coloring_from_sparsity(pattern, mode="rev")
    yield jacobian_coloring_from_sparsity(arrow, method="bidirectional")


@pytest.mark.parametrize("colored", list(_colorings()))
def test_coloring_round_trip(tmp_path, colored):
    colored.save(tmp_path / "c.npz")
    loaded = ColoredPattern.load(tmp_path / "c.npz")
    assert loaded.sparsity == colored.sparsity
    np.testing.assert_array_equal(loaded.colors, colored.colors)
    fields = ("num_colors", "mode", "symmetric", "algorithm", "partition", "order")
    assert [getattr(loaded, f) for f in fields] == [getattr(colored, f) for f in fields]
    assert (loaded.star_set is None) == (colored.star_set is None)
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(colored)
    for ours, theirs in zip(loaded.plan.passes, colored.plan.passes, strict=True):
        assert (ours.kind, ours.count) == (theirs.kind, theirs.count)
        np.testing.assert_array_equal(ours.colors, theirs.colors)
    values = np.random.default_rng(0).normal(size=colored.plan.schedule.b_shape)
    np.testing.assert_array_equal(loaded.plan.schedule.apply(values),
                                  colored.plan.schedule.apply(values))


def test_version_1_files(tmp_path):
    """Version 1 patterns still load; version 1 colorings (no plan) are a clear error."""
    pattern = SparsityPattern.from_dense(np.eye(3))
    header = {"format": "asdex", "version": 1, "kind": "SparsityPattern", "shape": [3, 3],
              "argnums": 0, "input_avals": {"tuple": [{"aval": [[3], "<f4"]}]}}
    np.savez(tmp_path / "p.npz", header=np.array(json.dumps(header)), rows=pattern.rows,
             cols=pattern.cols)
    assert SparsityPattern.load(tmp_path / "p.npz") == pattern
    header.update(kind="ColoredPattern", coloring={"num_colors": 1, "symmetric": False,
                                                   "mode": "fwd", "method": "greedy"})
    np.savez(tmp_path / "c.npz", header=np.array(json.dumps(header)), rows=pattern.rows,
             cols=pattern.cols, colors=np.zeros(3, np.int32))
    with pytest.raises(ValueError, match=r"version 1.*no decompression plan.*color it again"):
        ColoredPattern.load(tmp_path / "c.npz")


def test_foreign_and_malformed_files(tmp_path):
    _pattern().save(tmp_path / "p.npz")
    with pytest.raises(ValueError, match="holds a SparsityPattern, not a ColoredPattern"):
        ColoredPattern.load(tmp_path / "p.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="not a readable asdex"):
        SparsityPattern.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "foreign.npz", rows=np.ones(3))
    with pytest.raises(ValueError, match="not one saved by asdex"):
        SparsityPattern.load(tmp_path / "foreign.npz")
    np.savez(tmp_path / "pickled.npz", header=np.array([{"format": "asdex"}], dtype=object))
    with pytest.raises(ValueError, match="not a readable asdex"):
        SparsityPattern.load(tmp_path / "pickled.npz")
    with pytest.raises(FileNotFoundError):
        SparsityPattern.load(tmp_path / "missing.npz")


def test_unsupported_structure_is_a_clear_error(tmp_path):
    class Box:
        pass

    pattern = SparsityPattern.from_dense(np.eye(2))
    object.__setattr__(pattern, "input_avals", (Box(),))
    with pytest.raises(ValueError, match="Cannot save an input structure containing Box"):
        pattern.save(tmp_path / "p.npz")
