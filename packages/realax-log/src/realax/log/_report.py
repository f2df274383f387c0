"""The report of a sweep: per-configuration statistics over seeds as CSV/JSON, and a PNG.

A sweep's curves are an array ``(n_configs, n_seeds, n_steps)`` of one metric. For each
configuration the report gives, over its seeds, the mean, median and interquartile mean of
the final value and of the best value of the curve, each with a stratified bootstrap
confidence interval (:mod:`realax.log.stats`), the rank by final IQM, and the probability
that the best configuration beats it; one row per configuration and seed; and a picture:
learning curves (IQM over seeds, with its confidence band) next to a ranking plot.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _stats
from ._metrics_file import metrics_path, read_metrics
from ._sweep_log import SWEEP_FILE

_STATS = ("mean", "median", "iqm")


@dataclasses.dataclass(frozen=True)
class Report:
    """What :func:`report` computed and wrote.

    Attributes:
        metric: the metric's name.
        configs: the configurations, in sweep order.
        table: one dict per configuration (the rows of ``report.csv``).
        runs: one dict per configuration and seed (the rows of ``report_runs.csv``).
        best: index of the best configuration (highest IQM of the final value; lowest with
            ``higher_is_better=False``).
        files: ``{"csv", "runs_csv", "json", "png"}`` -> the paths written.
    """

    metric: str
    configs: list[dict[str, Any]]
    table: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    best: int
    files: dict[str, Path]


def label(config: Mapping[str, Any]) -> str:
    """A configuration as a short label, e.g. ``"learning_rate=0.0003 gamma=0.99"``."""
    if not config:
        return "default"
    return " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in config.items()
    )


def forward_fill(curves: np.ndarray) -> np.ndarray:
    """NaN entries of each curve (last axis) replaced by the curve's previous finite value
    (e.g. an episode return on steps where no episode ended); leading NaNs stay."""
    out = np.array(curves, dtype=np.float64, copy=True)
    finite = np.isfinite(out)
    idx = np.where(finite, np.arange(out.shape[-1]), 0)
    np.maximum.accumulate(idx, axis=-1, out=idx)
    filled = np.take_along_axis(out, idx, axis=-1)
    seen = np.maximum.accumulate(finite, axis=-1)
    return np.where(seen, filled, np.nan)


def _curves_of(source: Any, metric: str | None) -> np.ndarray:
    curves = getattr(source, "curves", source)
    if isinstance(curves, Mapping):
        if metric is None or metric not in curves:
            raise ValueError(
                f"metric must name one of the curves {sorted(curves)} (got metric={metric!r})"
            )
        curves = curves[metric]
    a = np.asarray(curves, dtype=np.float64)
    if a.ndim == 2:
        a = a[:, :, None]  # one value per run: a one-step curve
    if a.ndim != 3 or 0 in a.shape:
        raise ValueError(
            f"curves must be a non-empty (n_configs, n_seeds, n_steps) array, got shape "
            f"{np.shape(curves)}"
        )
    return a


def _configs_of(source: Any, configs: Sequence[Mapping] | None, n: int) -> list[dict]:
    if configs is None:
        configs = getattr(source, "configs", None)
    if configs is None:
        return [{"config": i} for i in range(n)]
    out = [dict(c) for c in configs]
    if len(out) != n:
        raise ValueError(f"configs has {len(out)} entries, the curves {n} configurations")
    return out


def read_sweep(run_dir: str | Path, metric: str | None = None) -> dict[str, Any]:
    """A sweep's curves from its run folder: ``metrics.jsonl`` rows with ``config`` and
    ``seed`` columns, and ``sweep.json`` (the configurations, the default metric).

    Returns:
        ``{"curves": (n_configs, n_seeds, n_steps), "steps": (n_steps,), "configs": [...],
        "metric": name, "higher_is_better": bool}``.
    """
    where = metrics_path(run_dir)
    meta_path = where.parent / SWEEP_FILE
    if not meta_path.exists():
        raise FileNotFoundError(
            f"{meta_path} not found: {where.parent} is not a sweep's run folder (a sweep "
            "is logged with Logger(..., sweep_configs=[config, ...]))"
        )
    meta = json.loads(meta_path.read_text())
    configs = list(meta["configs"])
    metric = metric or meta.get("metric")
    rows = [r for r in read_metrics(run_dir) if "config" in r]
    names = sorted({k for r in rows for k in r} - {"step", "seed", "config"})
    if metric not in names:
        raise ValueError(f"metric must be one of {names} (got metric={metric!r}) in {where}")
    steps = np.array(sorted({int(r["step"]) for r in rows}), dtype=np.int64)
    n_seeds = 1 + max((int(r.get("seed") or 0) for r in rows), default=0)
    curves = np.full((len(configs), n_seeds, len(steps)), np.nan)
    col = {int(s): i for i, s in enumerate(steps)}
    for r in rows:
        value = r.get(metric)
        if isinstance(value, int | float) and not isinstance(value, bool):
            curves[int(r["config"]), int(r.get("seed") or 0), col[int(r["step"])]] = value
    return {
        "curves": curves,
        "steps": steps,
        "configs": configs,
        "metric": metric,
        "higher_is_better": bool(meta.get("higher_is_better", True)),
    }


def _summaries(
    scores: np.ndarray, prefix: str, reps: int, confidence: float, seed: int
) -> dict[str, float]:
    row: dict[str, float] = {}
    for name in _STATS:
        point, (lo, hi) = _stats.interval_estimate(
            scores, name, reps=reps, confidence=confidence, seed=seed
        )
        row |= {f"{prefix}_{name}": point, f"{prefix}_{name}_lo": lo, f"{prefix}_{name}_hi": hi}
    return row


def _finite_or_none(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _tables(
    curves: np.ndarray,
    configs: list[dict],
    higher: bool,
    reps: int,
    confidence: float,
    seed: int,
) -> tuple[list[dict], list[dict], int]:
    filled = forward_fill(curves)
    final = filled[:, :, -1]
    with warnings.catch_warnings():  # a run without one finite value: NaN, no warning
        warnings.simplefilter("ignore", RuntimeWarning)
        best_values = np.nanmax(filled, axis=-1) if higher else np.nanmin(filled, axis=-1)
    table = []
    for c, config in enumerate(configs):
        row: dict[str, Any] = {"config": c, "label": label(config), **config}
        row["n_seeds"] = int(curves.shape[1])
        row |= _summaries(final[c], "final", reps, confidence, seed)
        row |= _summaries(best_values[c], "best", reps, confidence, seed)
        table.append(row)
    iqms = np.array([r["final_iqm"] for r in table])
    order = np.argsort(np.where(np.isnan(iqms), np.inf, -iqms if higher else iqms), kind="stable")
    best = int(order[0])
    for rank, c in enumerate(order, start=1):
        table[int(c)]["rank"] = rank
    for c, row in enumerate(table):
        x, y = (final[best], final[c]) if higher else (-final[best], -final[c])
        p, (lo, hi) = _stats.probability_of_improvement_ci(
            x, y, reps=reps, confidence=confidence, seed=seed
        )
        row |= {"p_best_better": p, "p_best_better_lo": lo, "p_best_better_hi": hi}
    runs = [
        {
            "config": c,
            "seed": s,
            **configs[c],
            "final": float(final[c, s]),
            "best": float(best_values[c, s]),
        }
        for c in range(curves.shape[0])
        for s in range(curves.shape[1])
    ]
    return table, runs, best


def _json_default(v: Any) -> Any:
    if isinstance(v, np.generic | np.ndarray):
        return v.tolist()
    return repr(v)


def _write_csv(path: Path, rows: list[dict]) -> None:
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def report(
    source: Any,
    out: str | Path | None = None,
    *,
    configs: Sequence[Mapping[str, Any]] | None = None,
    metric: str | None = None,
    steps: Sequence[int] | np.ndarray | None = None,
    higher_is_better: bool | None = None,
    confidence: float = 0.95,
    reps: int = 5000,
    seed: int = 0,
    title: str | None = None,
    plot: bool = True,
) -> Report:
    """Statistics over seeds for each configuration of a sweep, written as tables and a PNG.

    Files written into ``out``: ``report.csv`` (one row per configuration: for the final
    and the best value of each run's curve the mean, median and IQM over seeds, each with
    ``_lo``/``_hi`` bootstrap bounds; ``rank`` by final IQM; ``p_best_better``, the
    probability that a run of the best configuration beats one of this one, with its
    bounds), ``report_runs.csv`` (one row per configuration and seed: ``final``, ``best``),
    ``report.json`` (both tables and the settings) and ``report.png`` (learning curves: the
    IQM over seeds per step with its confidence band, one line per configuration; and the
    configurations ranked by final IQM with their intervals). NaN values of a curve (steps
    where the metric was not measured) take the curve's previous value.

    Args:
        source: a sweep's run folder (``metrics.jsonl`` with a ``config`` column and
            ``sweep.json``, as ``Logger(..., sweep_configs=...)`` writes them), an array
            ``(n_configs, n_seeds, n_steps)`` (or ``(n_configs, n_seeds)``: final values), or
            an object with ``curves`` (such an array, or a dict of them by metric),
            ``configs`` and optionally ``metric`` and ``maximize`` (the defaults of
            ``metric`` and ``higher_is_better``), e.g. ``realax.train.SweepResult``.
        out: the folder of the files (default: the run folder; required for arrays).
        configs: the configurations (dicts of hyperparameter values), in sweep order
            (default: from the source, else numbered).
        metric: the metric to report (a run folder: default ``sweep.json``'s; a dict of
            curves: required); also the plots' axis label.
        steps: the x values of the curves (default ``0 .. n_steps - 1``).
        higher_is_better: whether a larger metric is better (default True, or
            ``sweep.json``'s).
        confidence: the coverage of the intervals.
        reps: bootstrap resamples per interval.
        seed: the bootstrap's seed: the same inputs give the same report.
        title: the picture's title.
        plot: also draw ``report.png`` (needs matplotlib, the ``plot`` extra).

    Returns:
        A :class:`Report`.

    Example:
        >>> import numpy as np, realax.log as rlog
        >>> curves = np.cumsum(np.ones((2, 4, 10)), axis=-1) * np.array([1.0, 2.0])[:, None, None]
        >>> rep = rlog.report(curves, "runs/sweep", configs=[{"lr": 0.1}, {"lr": 0.2}],
        ...                   metric="return", plot=False)  # doctest: +SKIP
        >>> rep.configs[rep.best]  # doctest: +SKIP
        {'lr': 0.2}
    """
    if isinstance(source, str | Path):
        run_dir = metrics_path(source).parent
        sweep = read_sweep(run_dir, metric)
        curves, metric = sweep["curves"], sweep["metric"]
        configs = configs if configs is not None else sweep["configs"]
        steps = sweep["steps"] if steps is None else steps
        if higher_is_better is None:
            higher_is_better = sweep["higher_is_better"]
        out = run_dir if out is None else out
    else:
        metric = metric if metric is not None else getattr(source, "metric", None)
        if higher_is_better is None and hasattr(source, "maximize"):
            higher_is_better = bool(source.maximize)
        curves = _curves_of(source, metric)
        if out is None:
            raise ValueError("out must name the report's folder when source is not a run folder")
    higher = True if higher_is_better is None else bool(higher_is_better)
    config_list = _configs_of(source, configs, curves.shape[0])
    xs = np.arange(curves.shape[-1]) if steps is None else np.asarray(steps)
    if xs.shape != (curves.shape[-1],):
        raise ValueError(f"steps must have {curves.shape[-1]} entries, got shape {xs.shape}")
    name = metric or "score"
    table, runs, best = _tables(curves, config_list, higher, reps, confidence, seed)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"csv": folder / "report.csv", "runs_csv": folder / "report_runs.csv"}
    _write_csv(files["csv"], table)
    _write_csv(files["runs_csv"], runs)
    files["json"] = folder / "report.json"
    doc = {
        "metric": name,
        "higher_is_better": higher,
        "confidence": confidence,
        "reps": reps,
        "best": best,
        "configs": config_list,
        "table": [{k: _finite_or_none(v) for k, v in r.items()} for r in table],
        "runs": [{k: _finite_or_none(v) for k, v in r.items()} for r in runs],
    }
    files["json"].write_text(json.dumps(doc, indent=1, default=_json_default) + "\n")
    if plot:
        from ._report_plot import draw

        files["png"] = draw(
            folder / "report.png",
            forward_fill(curves),
            xs,
            table,
            metric=name,
            title=title,
            confidence=confidence,
            seed=seed,
            higher=higher,
        )
    return Report(name, config_list, table, runs, best, files)
