"""Statistics over seeds with the definitions of rliable (Agarwal et al., 2021), numpy only.

A score matrix has shape ``(runs, tasks)``: ``scores[n, m]`` is run ``n`` (a seed) on task
``m``; a 1-D array is the runs of one task. The point estimates follow rliable's
``metrics`` module exactly; the confidence intervals come from a vectorised stratified
bootstrap (runs resampled with replacement within each task, the percentile interval), which
is what ``rliable.library.get_interval_estimates`` computes with ``arch``.

Example:
    >>> import numpy as np
    >>> from realax.log import stats
    >>> scores = np.array([1.0, 2.0, 3.0, 4.0, 100.0])  # five seeds of one configuration
    >>> float(stats.iqm(scores))  # the middle runs only: the outlier does not count
    3.0
    >>> point, (lo, hi) = stats.interval_estimate(scores, "iqm", reps=1000, seed=0)
    >>> bool(lo <= point <= hi)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "METRICS",
    "bootstrap_ci",
    "curve_intervals",
    "interval_estimate",
    "iqm",
    "mean",
    "median",
    "optimality_gap",
    "probability_of_improvement",
    "probability_of_improvement_ci",
]

#: reps per vectorised block of the bootstrap (bounds the memory of one block)
_BLOCK_ELEMENTS = 4_000_000


def _matrix(scores: Any, name: str = "scores") -> np.ndarray:
    a = np.asarray(scores, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(
            f"{name} must be a non-empty (runs,) or (runs, tasks) array, got shape "
            f"{np.shape(scores)}; e.g. one final return per seed"
        )
    return a


# ----------------------------------------------------------------- batched statistics
# Each takes resampled scores of shape (reps, runs, tasks) and returns (reps,).


def _b_mean(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=1).mean(axis=-1)


def _b_median(x: np.ndarray) -> np.ndarray:
    if x.shape[-1] == 1:  # one task: the median of its runs
        return np.median(x[..., 0], axis=1)
    return np.median(x.mean(axis=1), axis=-1)


def _b_iqm(x: np.ndarray) -> np.ndarray:
    flat = np.sort(x.reshape(x.shape[0], -1), axis=1)
    n = flat.shape[1]
    cut = int(0.25 * n)  # scipy.stats.trim_mean(proportiontocut=0.25, axis=None)
    return flat[:, cut : n - cut].mean(axis=1)


def _b_optimality_gap(x: np.ndarray, threshold: float = 1.0) -> np.ndarray:
    return threshold - np.minimum(x, threshold).reshape(x.shape[0], -1).mean(axis=1)


def _b_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # the Mann-Whitney U statistic of x > y over (runs_x * runs_y), ties half, per task
    xe, ye = x[:, :, None, :], y[:, None, :, :]
    u = (xe > ye).sum(axis=(1, 2)) + 0.5 * (xe == ye).sum(axis=(1, 2))
    return (u / (x.shape[1] * y.shape[1])).mean(axis=-1)


#: the statistics :func:`interval_estimate` knows by name
METRICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": _b_mean,
    "median": _b_median,
    "iqm": _b_iqm,
    "optimality_gap": _b_optimality_gap,
}


def _point(fn: Callable[..., np.ndarray], *matrices: np.ndarray) -> float:
    return float(fn(*(m[None] for m in matrices))[0])


# ----------------------------------------------------------------- point estimates
def mean(scores: Any) -> float:
    """rliable's aggregate mean: the mean over tasks of each task's mean over runs.

    Example:
        >>> float(mean([[1.0, 10.0], [3.0, 20.0]]))
        8.5
    """
    return _point(_b_mean, _matrix(scores))


def median(scores: Any) -> float:
    """rliable's aggregate median: the median over tasks of each task's mean over runs.

    With one task (a 1-D array, or one column) this is the median of its runs instead (the
    median of a single mean would be the mean).

    Example:
        >>> float(median([1.0, 2.0, 10.0]))
        2.0
    """
    return _point(_b_median, _matrix(scores))


def iqm(scores: Any) -> float:
    """Interquartile mean: the mean of the middle 50% of all runs x tasks, pooled (rliable's
    ``aggregate_iqm``, ``scipy.stats.trim_mean(scores, 0.25, axis=None)``).

    Example:
        >>> float(iqm([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1000.0]))
        3.5
    """
    return _point(_b_iqm, _matrix(scores))


def optimality_gap(scores: Any, threshold: float = 1.0) -> float:
    """How far the scores fall short of ``threshold``: ``threshold - mean(min(scores,
    threshold))`` (rliable's ``aggregate_optimality_gap``, ``gamma=threshold``); meant for
    normalised scores (lower is better).

    Example:
        >>> float(optimality_gap([0.5, 1.5]))
        0.25
    """
    return float(_b_optimality_gap(_matrix(scores)[None], float(threshold))[0])


def probability_of_improvement(scores_x: Any, scores_y: Any) -> float:
    """P(X > Y): the probability that a run of X scores above a run of Y on the same task,
    ties counting half (the Mann-Whitney U statistic over ``runs_x * runs_y``), averaged
    over tasks (rliable's ``probability_of_improvement``).

    Example:
        >>> float(probability_of_improvement([3.0, 4.0], [1.0, 3.0]))
        0.875
    """
    x, y = _pair(scores_x, scores_y)
    return _point(_b_improvement, x, y)


def _pair(scores_x: Any, scores_y: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = _matrix(scores_x, "scores_x"), _matrix(scores_y, "scores_y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(
            f"scores_x and scores_y must have the same number of tasks (columns), got "
            f"{x.shape[1]} and {y.shape[1]}"
        )
    return x, y


# ----------------------------------------------------------------- bootstrap
def _check_bootstrap(reps: Any, confidence: Any) -> None:
    if isinstance(reps, bool) or not isinstance(reps, int | np.integer) or reps < 1:
        raise ValueError(f"reps must be a positive int (got reps={reps!r}); e.g. reps=10000")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1) (got confidence={confidence!r}); e.g. 0.95")


def _percentiles(dist: np.ndarray, confidence: float) -> np.ndarray:
    """The percentile interval of a bootstrap distribution (resamples on axis 0)."""
    tail = 100.0 * (1.0 - float(confidence)) / 2.0
    return np.percentile(dist, [tail, 100.0 - tail], axis=0)


def _resample(rng: np.random.Generator, m: np.ndarray, reps: int) -> np.ndarray:
    """``reps`` stratified resamples of ``m``: within each task (column), runs drawn with
    replacement; shape (reps, runs, tasks)."""
    runs, tasks = m.shape
    idx = rng.integers(0, runs, size=(reps, runs, tasks))
    return m[idx, np.arange(tasks)]


def bootstrap_ci(
    statistic: Callable[..., np.ndarray],
    *samples: Any,
    reps: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Stratified percentile bootstrap interval of a vectorised statistic.

    Each sample is a ``(runs, tasks)`` score matrix; each is resampled independently, runs
    within each task with replacement (rliable's ``StratifiedBootstrap`` /
    ``StratifiedIndependentBootstrap``), ``reps`` times.

    Args:
        statistic: maps resampled matrices of shape ``(reps, runs, tasks)`` (one per sample)
            to ``(reps,)`` values, e.g. ``lambda x: x.mean(axis=(1, 2))``.
        *samples: the score matrices (1-D arrays are one task).
        reps: bootstrap resamples.
        confidence: the interval's coverage, e.g. 0.95.
        seed: the numpy generator's seed (the same seed gives the same interval).

    Returns:
        ``(low, high)``, the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
        percentiles of the bootstrap distribution.

    Example:
        >>> lo, hi = bootstrap_ci(lambda x: x.mean(axis=(1, 2)), [1.0, 2.0, 3.0], seed=0)
        >>> bool(1.0 <= lo < hi <= 3.0)
        True
    """
    _check_bootstrap(reps, confidence)
    matrices = [_matrix(s, f"samples[{i}]") for i, s in enumerate(samples)]
    rng = np.random.default_rng(seed)
    per_rep = sum(m.size for m in matrices) * max(m.shape[0] for m in matrices)
    block = max(1, _BLOCK_ELEMENTS // max(1, per_rep))
    values = []
    for start in range(0, int(reps), block):
        n = min(block, int(reps) - start)
        values.append(np.asarray(statistic(*(_resample(rng, m, n) for m in matrices))))
    lo, hi = _percentiles(np.concatenate(values), confidence)
    return float(lo), float(hi)


def _metric_fn(metric: str | Callable) -> Callable[[np.ndarray], np.ndarray]:
    if callable(metric):
        return metric
    fn = METRICS.get(metric)
    if fn is None:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(METRICS)}")
    return fn


def interval_estimate(
    scores: Any,
    metric: str | Callable[[np.ndarray], np.ndarray] = "iqm",
    *,
    reps: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, tuple[float, float]]:
    """A statistic of a score matrix with its stratified bootstrap confidence interval.

    Args:
        scores: ``(runs, tasks)`` or ``(runs,)`` scores.
        metric: ``"mean"``, ``"median"``, ``"iqm"``, ``"optimality_gap"`` (threshold 1), or a
            vectorised statistic as for :func:`bootstrap_ci`.
        reps: bootstrap resamples (rliable's default is 50000).
        confidence: the interval's coverage.
        seed: the bootstrap's seed.

    Returns:
        ``(point, (low, high))``.

    Example:
        >>> point, (lo, hi) = interval_estimate([1.0, 2.0, 3.0, 4.0], "mean", seed=0)
        >>> point
        2.5
    """
    fn = _metric_fn(metric)
    m = _matrix(scores)
    return _point(fn, m), bootstrap_ci(fn, m, reps=reps, confidence=confidence, seed=seed)


def probability_of_improvement_ci(
    scores_x: Any,
    scores_y: Any,
    *,
    reps: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, tuple[float, float]]:
    """:func:`probability_of_improvement` with its bootstrap interval (X and Y resampled
    independently, within each task).

    Returns:
        ``(P(X > Y), (low, high))``.

    Example:
        >>> p, (lo, hi) = probability_of_improvement_ci([3.0, 4.0, 5.0], [1.0, 2.0, 3.5])
        >>> round(p, 4)
        0.8889
    """
    x, y = _pair(scores_x, scores_y)
    ci = bootstrap_ci(_b_improvement, x, y, reps=reps, confidence=confidence, seed=seed)
    return _point(_b_improvement, x, y), ci


def curve_intervals(
    curves: Any,
    metric: str | Callable[[np.ndarray], np.ndarray] = "iqm",
    *,
    reps: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A statistic over runs at every step of learning curves, with bootstrap bands.

    Whole curves are resampled (a run keeps its values at every step), and the statistic is
    taken over runs at each step, as one task (``median`` is the median of the runs).

    Args:
        curves: ``(runs, steps)`` values.
        metric: as for :func:`interval_estimate`.
        reps: bootstrap resamples.
        confidence: the bands' coverage.
        seed: the bootstrap's seed.

    Returns:
        ``(point, low, high)``, each of shape ``(steps,)``.

    Example:
        >>> point, lo, hi = curve_intervals([[0.0, 1.0, 2.0], [0.0, 3.0, 4.0]], "mean")
        >>> point.tolist()
        [0.0, 2.0, 3.0]
    """
    _check_bootstrap(reps, confidence)
    fn = _metric_fn(metric)
    a = np.asarray(curves, dtype=np.float64)
    if a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"curves must be a non-empty (runs, steps) array, got shape {a.shape}")
    runs, steps = a.shape

    def per_step(x: np.ndarray) -> np.ndarray:  # (n, runs, steps) -> (n, steps)
        n = x.shape[0]
        return fn(x.transpose(0, 2, 1).reshape(n * steps, runs, 1)).reshape(n, steps)

    point = per_step(a[None])[0]
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_ELEMENTS // a.size)
    dist = np.concatenate(
        [
            per_step(a[rng.integers(0, runs, size=(min(block, reps - i), runs))])
            for i in range(0, int(reps), block)
        ]
    )
    lo, hi = _percentiles(dist, confidence)
    return point, lo, hi
