"""Repertoire heat maps (plot_repertoire) of 1-, 2- and 3-D repertoires."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
import realax.log as rlog


class Repertoire:
    """Shaped like qdax's MapElitesRepertoire: centroids (n, d), fitnesses (n, 1)."""

    def __init__(self, centroids, fitnesses):
        self.centroids, self.fitnesses = centroids, fitnesses[:, None]


def _grid(n):
    xs = (np.arange(n) + 0.5) / n
    return np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)


def test_two_descriptors_colours_filled_cells_and_greys_empty_ones(tmp_path):
    centroids = _grid(10)
    # left half empty, right half filled with fitness rising to the top
    fits = np.where(centroids[:, 0] > 0.5, centroids[:, 1], -np.inf)
    out = rlog.plot_repertoire(
        Repertoire(centroids, fits), tmp_path / "sub" / "repertoire.png",
        descriptor_bounds=(0.0, 1.0), descriptor_names=["x", "y"],
    )  # fmt: skip
    assert out == tmp_path / "sub" / "repertoire.png"
    image = matplotlib.image.imread(out)[..., :3]
    assert image.shape[:2] == (460, 560)
    # inside the axes: the empty left half is uniform grey, the right half has colours
    rows = slice(120, 340)
    left, right = image[rows, 120:200], image[rows, 300:380]
    np.testing.assert_allclose(left, 0xE6 / 255, atol=0.01)
    assert right.std() > 0.05 and np.abs(right - 0xE6 / 255).max() > 0.2


def test_segments_are_drawn_over_the_map(tmp_path):
    centroids = _grid(10)
    fits = np.full(100, -np.inf)  # empty: a grey map, only the wall is dark
    out = rlog.plot_repertoire(
        centroids, tmp_path / "walls.png", fitnesses=fits, descriptor_bounds=(0.0, 1.0),
        segments=[(0.0, 0.5, 1.0, 0.5)],
    )  # fmt: skip
    image = matplotlib.image.imread(out)[..., :3]
    dark = image.mean(-1) < 0.2
    rows = np.nonzero(dark[60:380, 200])[0]  # a column inside the axes, spines left out
    assert rows.size and np.ptp(rows) < 10  # one thin horizontal line
    assert 150 < 60 + rows.mean() < 290  # half way up


def test_cvt_like_centroids_one_and_three_descriptors(tmp_path):
    rng = np.random.default_rng(0)
    cvt = rng.uniform(-1, 1, (64, 2))
    fits = -np.sum(cvt**2, 1)
    rlog.plot_repertoire(cvt, tmp_path / "cvt.png", fitnesses=fits, title="CVT")
    one = rlog.plot_repertoire(
        np.linspace(0, 1, 8)[:, None], tmp_path / "one.png", fitnesses=np.arange(8.0)
    )
    three = rng.uniform(0, 1, (50, 3))
    rlog.plot_repertoire(three, tmp_path / "three.png", fitnesses=three[:, 2], dims=(0, 2))
    for name in ("cvt", "one", "three"):
        image = matplotlib.image.imread(tmp_path / f"{name}.png")
        assert image[..., :3].std() > 0.05
    assert matplotlib.image.imread(one).shape[:2] == (220, 600)


def test_empty_repertoire_and_bad_input(tmp_path):
    centroids = _grid(4)
    out = rlog.plot_repertoire(centroids, tmp_path / "empty.png", fitnesses=np.full(16, -np.inf))
    assert out.exists()
    with pytest.raises(ValueError, match="centroids \\(n, d\\) and fitnesses"):
        rlog.plot_repertoire(centroids, tmp_path / "x.png", fitnesses=np.zeros(3))
    with pytest.raises(TypeError, match="pass state.repertoire"):
        rlog.plot_repertoire(object(), tmp_path / "x.png")
    with pytest.raises(ValueError, match="dims must name two different"):
        rlog.plot_repertoire(centroids, tmp_path / "x.png", fitnesses=np.zeros(16), dims=(0, 0))
