"""realax.log.stats against rliable's published definitions.

The reference numbers were produced with rliable 1.2.0 itself in a throw-away venv (it does
not import with the workspace's pandas 3): ``uv venv /tmp/rl && uv pip install --python
/tmp/rl rliable "pandas<3"``, then for each metric ``f`` of ``rliable.metrics``
(``aggregate_mean``, ``aggregate_median``, ``aggregate_iqm``, ``aggregate_optimality_gap``)
``rliable.library.get_interval_estimates({"x": X}, lambda s: np.array([f(s)]), reps=50000,
random_state=np.random.RandomState(0))`` (95% percentile intervals), and for the probability
of improvement ``get_interval_estimates({"xy": (X, Y)}, lambda a, b:
np.array([metrics.probability_of_improvement(a, b)]), reps=20000, ...)``. ``X`` and ``Y`` are
``np.round(np.random.default_rng(17).normal(...), 2)`` draws, written out below.

Point estimates match to float rounding (rliable sums in another order); intervals match to
the bootstrap's sampling tolerance (different generators, 50000 resamples).
"""

from __future__ import annotations

import numpy as np
import pytest
from realax.log import stats

X = np.array(
    [[1.55, 1.17, 0.73], [0.37, 0.05, 1.01], [0.59, 0.56, 0.89], [0.97, -0.14, 1.46],
     [-0.01, 1.93, 1.3], [0.76, 1.67, 1.01], [1.35, 1.05, 1.55], [1.53, 0.55, 0.69],
     [1.17, 0.89, -0.14], [2.01, -0.09, -0.04]]
)  # fmt: skip
Y = np.array(
    [[1.55, 1.08, 1.7], [0.68, 0.6, 0.89], [0.62, 0.84, 0.23], [1.02, 1.0, -0.42],
     [0.74, 0.88, 1.08], [0.39, 0.14, 0.32], [1.07, 0.37, 0.42], [1.37, 0.41, 0.35]]
)  # fmt: skip

# rliable 1.2.0: metric -> (point, (low, high)) on X (10 runs x 3 tasks)
RLIABLE = {
    "mean": (0.8796666666666667, (0.664, 1.0976666666666666)),
    "median": (0.8459999999999999, (0.609, 1.135)),
    "iqm": (0.9181250000000001, (0.6299843750000006, 1.16)),
    "optimality_gap": (0.31233333333333335, (0.17500000000000004, 0.46499999999999997)),
}
# rliable 1.2.0 on X[:, :1] (one task); its median of one task is the mean, see below
RLIABLE_TASK0 = {
    "mean": (1.029, (0.6669999999999999, 1.381)),
    "iqm": (1.0616666666666668, (0.6066666666666666, 1.45)),
    "optimality_gap": (0.23199999999999998, (0.04800000000000004, 0.45499999999999996)),
}
RLIABLE_POI = (0.5708333333333333, (0.4083333333333334, 0.7291666666666666))

POINT = 1e-12  # float summation order
CI = 0.012  # bootstrap sampling tolerance at 50000 resamples


@pytest.mark.parametrize("metric", sorted(RLIABLE))
def test_point_estimates_and_cis_match_rliable(metric):
    fn = getattr(stats, metric)
    point, (lo, hi) = RLIABLE[metric]
    assert fn(X) == pytest.approx(point, abs=POINT)
    got, (glo, ghi) = stats.interval_estimate(X, metric, reps=50_000, seed=0)
    assert got == pytest.approx(point, abs=POINT)
    assert glo == pytest.approx(lo, abs=CI)
    assert ghi == pytest.approx(hi, abs=CI)


@pytest.mark.parametrize("metric", sorted(RLIABLE_TASK0))
def test_one_task_matches_rliable(metric):
    point, (lo, hi) = RLIABLE_TASK0[metric]
    for scores in (X[:, 0], X[:, :1]):
        got, (glo, ghi) = stats.interval_estimate(scores, metric, reps=50_000, seed=0)
        assert got == pytest.approx(point, abs=POINT)
        assert (glo, ghi) == pytest.approx((lo, hi), abs=CI)


def test_median_of_one_task_is_the_median_of_its_runs():
    # rliable's aggregate median of one task is that task's mean; over seeds the median of
    # the runs is what is meant, and what realax.log.stats.median gives
    assert stats.median(X[:, 0]) == np.median(X[:, 0])
    assert stats.median(X[:, :1]) == np.median(X[:, 0])


def test_probability_of_improvement_matches_rliable():
    point, (lo, hi) = RLIABLE_POI
    assert stats.probability_of_improvement(X, Y) == pytest.approx(point, abs=POINT)
    got, (glo, ghi) = stats.probability_of_improvement_ci(X, Y, reps=20_000, seed=0)
    assert got == pytest.approx(point, abs=POINT)
    assert (glo, ghi) == pytest.approx((lo, hi), abs=CI)


def test_probability_of_improvement_ties_count_half_and_is_complementary():
    assert stats.probability_of_improvement([1.0, 2.0], [1.0, 2.0]) == 0.5
    assert stats.probability_of_improvement([2.0], [1.0]) == 1.0
    p = stats.probability_of_improvement(X, Y)
    assert p + stats.probability_of_improvement(Y, X) == pytest.approx(1.0)


def test_iqm_is_the_trimmed_mean_of_the_pooled_runs():
    flat = np.sort(X.ravel())  # 30 values: trim int(0.25 * 30) = 7 from each end
    assert stats.iqm(X) == pytest.approx(flat[7:23].mean(), abs=POINT)


def test_bootstrap_is_reproducible_and_narrows_with_confidence():
    a = stats.interval_estimate(X, "iqm", reps=2000, seed=3)
    assert stats.interval_estimate(X, "iqm", reps=2000, seed=3) == a
    wide = stats.interval_estimate(X, "iqm", reps=2000, seed=3, confidence=0.99)[1]
    narrow = stats.interval_estimate(X, "iqm", reps=2000, seed=3, confidence=0.5)[1]
    assert wide[0] <= narrow[0] <= narrow[1] <= wide[1]


def test_constant_scores_have_a_point_interval():
    assert stats.interval_estimate([2.0] * 5, "mean", reps=100) == (2.0, (2.0, 2.0))


def test_custom_vectorised_statistic():
    point, (lo, hi) = stats.interval_estimate(X, lambda s: s.max(axis=(1, 2)), reps=500)
    assert point == X.max()
    assert hi <= X.max()


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match=r"scores must be a non-empty"):
        stats.iqm([])
    with pytest.raises(ValueError, match=r"same number of tasks"):
        stats.probability_of_improvement(X, Y[:, :2])
    with pytest.raises(ValueError, match=r"unknown metric 'iqr'.*'iqm'"):
        stats.interval_estimate(X, "iqr")
    with pytest.raises(ValueError, match=r"reps must be a positive int"):
        stats.interval_estimate(X, reps=0)
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        stats.interval_estimate(X, confidence=95)
