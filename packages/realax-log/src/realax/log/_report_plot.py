"""The picture of a sweep's report: learning curves with confidence bands, and a ranking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import _stats
from ._plot import _import_matplotlib

#: curves are drawn at most at this many steps (evenly spaced, the last one included)
_MAX_POINTS = 200
#: bootstrap resamples of a band (per step; bands are a picture, not a table)
_BAND_REPS = 1000
#: a legend in the curves panel up to this many configurations
_LEGEND_UP_TO = 10


def _thin(n: int) -> np.ndarray:
    if n <= _MAX_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, _MAX_POINTS).round().astype(int))


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(1, n - 1)) for i in range(n)]


def _draw_curves(ax, curves, steps, table, colours, metric, confidence, seed) -> None:
    cols = _thin(curves.shape[-1])
    xs = np.asarray(steps)[cols]
    for c, row in enumerate(table):
        point, lo, hi = _stats.curve_intervals(
            curves[c][:, cols], "iqm", reps=_BAND_REPS, confidence=confidence, seed=seed
        )
        ax.plot(xs, point, lw=1.5, color=colours[c], label=row["label"])
        ax.fill_between(xs, lo, hi, color=colours[c], alpha=0.2, lw=0)
    ax.set_xlabel("step")
    ax.set_ylabel(f"{metric} (IQM over seeds)")
    ax.grid(alpha=0.3)
    if len(table) <= _LEGEND_UP_TO:
        ax.legend(fontsize="x-small")


def _draw_ranking(ax, table, colours, metric, higher) -> None:
    order = sorted(range(len(table)), key=lambda c: table[c]["rank"], reverse=True)
    ys = np.arange(len(order))
    for y, c in zip(ys, order, strict=True):
        row = table[c]
        point, lo, hi = row["final_iqm"], row["final_iqm_lo"], row["final_iqm_hi"]
        ax.errorbar(
            point,
            y,
            xerr=[[max(0.0, point - lo)], [max(0.0, hi - point)]],
            fmt="o",
            color=colours[c],
            capsize=3,
        )
    ax.set_yticks(ys, [table[c]["label"] for c in order], fontsize="x-small")
    ax.set_xlabel(f"final {metric}, IQM ({'higher' if higher else 'lower'} is better)")
    ax.grid(alpha=0.3, axis="x")


def draw(
    path: Path,
    curves: np.ndarray,
    steps: np.ndarray,
    table: list[dict[str, Any]],
    *,
    metric: str,
    title: str | None,
    confidence: float,
    seed: int,
    higher: bool = True,
) -> Path:
    """Write ``report.png``: the curves panel (left) and the ranking panel (right)."""
    Figure, FigureCanvasAgg = _import_matplotlib()
    n = len(table)
    fig = Figure(figsize=(11.0, max(3.6, 0.9 + 0.28 * n)), layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, width_ratios=[1.5, 1.0])
    colours = _colours(n)
    _draw_curves(left, curves, steps, table, colours, metric, confidence, seed)
    _draw_ranking(right, table, colours, metric, higher)
    share = round(100 * confidence)
    right.set_title(f"{share}% bootstrap CIs over {table[0]['n_seeds']} seeds", fontsize="small")
    left.set_title(f"IQM with {share}% bootstrap bands", fontsize="small")
    if title:
        fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
