"""varprop.plot draws measured +- 2 SE and the theory dashed, on log axes."""

import pytest

import varprop


def test_plot_returns_axes():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    df = varprop.run(width=16, depth=10, batch=4, networks=2, progress=False)
    ax = varprop.plot(df, quantity="q_post")
    assert ax.get_yscale() == "log"
    styles = [line.get_linestyle() for line in ax.get_lines()]
    assert styles == ["-", "--"]  # measured, theory dashed
    with pytest.raises(ValueError, match="^quantity"):
        varprop.plot(df, quantity="nope")
