import numpy as np
import pytest

from asdex import ColoredPattern, SparsityPattern, jacobian_coloring_from_sparsity, spy


def test_small_pattern_uses_dots():
    text = str(SparsityPattern.from_dense(np.eye(3)))
    assert text.splitlines()[0] == repr(SparsityPattern.from_dense(np.eye(3)))
    assert "│●⋅⋅│" in text


def test_large_pattern_uses_braille():
    n = 500
    pattern = SparsityPattern.from_coo(np.arange(n), np.arange(n), (n, n))
    lines = str(pattern).splitlines()
    assert all(len(line) <= 82 for line in lines) and len(lines) <= 23
    assert any(0x2800 < ord(ch) <= 0x28FF for ch in "".join(lines))


def test_coloring_summary_and_labels():
    pattern = SparsityPattern.from_dense(np.eye(4) + np.eye(4, k=1))
    colored = jacobian_coloring_from_sparsity(pattern, mode="fwd")
    text = str(colored)
    assert f"{colored.num_colors} JVPs (instead of 4 JVPs or 4 VJPs" in text
    assert "ColoredPattern(shape=(4, 4)" in repr(colored)
    hess = ColoredPattern(SparsityPattern.from_dense(np.eye(2)), np.array([0, 0]), 1, True,
                          "fwd_over_rev")
    assert "1 HVPs (fwd_over_rev) (instead of 2 HVPs" in str(hess)
    arrow = np.eye(6)
    arrow[0] = arrow[:, 0] = 1
    bicolored = jacobian_coloring_from_sparsity(arrow, method="bidirectional")
    jvps, vjps = (p.count for p in bicolored.plan.passes)
    assert (f"{jvps + vjps} JVPs + VJPs ({jvps} + {vjps}) (instead of 6 JVPs or 6 VJPs; "
            "unsymmetric coloring, bidirectional acyclic)") in str(bicolored)


def test_spy():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    pattern = SparsityPattern.from_dense(np.eye(5) + np.eye(5, k=2))
    colored = jacobian_coloring_from_sparsity(pattern, mode="rev")
    assert spy(pattern).images[0].get_array().shape == (5, 5)
    assert spy(colored).images[0].get_array().shape == (5, 5)
    compressed = spy(colored, compressed=True).images[0].get_array()
    assert compressed.shape == (colored.num_colors, 5)
    with pytest.raises(ValueError, match="compressed=True needs a ColoredPattern"):
        spy(pattern, compressed=True)
    n = 10_000
    big = SparsityPattern.from_coo(np.arange(n), np.arange(n), (n, n))
    assert max(spy(big).images[0].get_array().shape) <= 2000


def test_spy_large_patterns_stay_visible():
    """A 4096 x 4096 band binned to the axes' pixels, an elongated compressed panel."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = 4096
    rows = np.concatenate([np.arange(n), np.arange(n - 1)])
    cols = np.concatenate([np.arange(n), np.arange(1, n)])
    colored = jacobian_coloring_from_sparsity(SparsityPattern.from_coo(rows, cols, (n, n)))
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 4), dpi=100)
    image = spy(colored, ax=left).images[0].get_array()
    pixels = max(left.get_window_extent().width, left.get_window_extent().height)
    assert max(image.shape) <= pixels
    occupied = ~np.ma.getmaskarray(image)
    assert occupied.sum() >= min(image.shape) and np.all(occupied.any(axis=1))
    spy(colored, ax=right, compressed=True)
    assert right.get_aspect() == "auto"
    for ax in (left, right):
        assert all(len(line) <= 44 for line in ax.get_title().splitlines())
    plt.close(fig)
