import jax
import numpy as np
import pytest

from asdex import ColoredPattern, SparsityPattern, hessian_coloring_from_sparsity


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


def test_coloring_round_trip(tmp_path):
    pattern = SparsityPattern.from_dense(np.eye(4) + np.eye(4, k=1) + np.eye(4, k=-1))
    for method in ("star", "acyclic"):
        colored = hessian_coloring_from_sparsity(pattern, method=method)
        colored.save(tmp_path / "c.npz")
        loaded = ColoredPattern.load(tmp_path / "c.npz")
        assert loaded.sparsity == colored.sparsity
        np.testing.assert_array_equal(loaded.colors, colored.colors)
        assert (loaded.num_colors, loaded.mode, loaded.symmetric, loaded.method) == (
            colored.num_colors, colored.mode, colored.symmetric, colored.method)
        assert (loaded.star_set is None) == (colored.star_set is None)
        assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(colored)


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
