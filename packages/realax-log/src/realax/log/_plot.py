"""Learning curves from a run's metrics file (matplotlib, the ``plot`` extra)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._metrics_file import metrics_path, read_metrics

_SKIP = {"step", "seed"}
#: a curve with at most this many finite points also gets a marker per point
_MARKERS_UP_TO = 40


def _import_matplotlib():
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError('realax.log.plot needs matplotlib: pip install "realax-log[plot]"') from e
    del matplotlib
    return Figure, FigureCanvasAgg


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _numeric_metrics(rows: list[dict]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names += [k for k, v in row.items() if k not in _SKIP and k not in names and _is_number(v)]
    return names


def _choose(metrics: Sequence[str] | str | None, numeric: list[str], where: Path) -> list[str]:
    if metrics is None:
        chosen = numeric
    else:
        chosen = [metrics] if isinstance(metrics, str) else list(metrics)
        missing = [m for m in chosen if m not in numeric]
        if missing:
            raise ValueError(
                f"metrics {missing} are not numeric scalars in {where}; available: {numeric}"
            )
    if not chosen:
        raise ValueError(f"no numeric metric to plot in {where}")
    return chosen


def _grid(n: int) -> tuple[int, int]:
    """(rows, columns) for n panels: at most 3 columns, 2x2 for 4."""
    ncols = 2 if n == 4 else min(3, n)
    return math.ceil(n / ncols), ncols


def _cells(n: int, nrows: int, ncols: int) -> tuple[int, list[tuple[int, slice]]]:
    """A gridspec width and each panel's (row, columns): the last row's panels are widened
    so that no cell stays empty."""
    last = n - (nrows - 1) * ncols
    width = ncols * last
    cells = []
    for i in range(n):
        r, c = divmod(i, ncols)
        span = width // (last if r == nrows - 1 else ncols)
        cells.append((r, slice(c * span, (c + 1) * span)))
    return width, cells


def _finite_points(rows: list[dict], name: str) -> tuple[list, list]:
    pts = [(r["step"], r[name]) for r in rows if _is_number(r.get(name)) and math.isfinite(r[name])]
    return [p[0] for p in pts], [p[1] for p in pts]


def _draw(ax: Any, name: str, seeds: dict[str | None, list[dict]]) -> None:
    for seed, seed_rows in seeds.items():
        xs, ys = _finite_points(seed_rows, name)
        if not xs:
            continue
        # a line through the finite points: NaN steps (e.g. no episode ended) leave no gap
        marker = "." if len(xs) <= _MARKERS_UP_TO else None
        ax.plot(xs, ys, lw=1.4, marker=marker, label=None if seed is None else f"seed {seed}")
    ax.set_xlabel("step")
    ax.set_ylabel(name)
    ax.grid(alpha=0.3)


def plot(
    run_dir: str | Path,
    metrics: Sequence[str] | None = None,
    out: str | Path | None = None,
    title: str | None = None,
) -> Path:
    """Draw learning curves (one panel per metric, one line per seed) from ``metrics.jsonl``.

    Each curve joins the finite values of its metric: steps where it is NaN (logged as
    ``null``, e.g. an episode return on steps where no episode ended) are skipped, and
    sparse curves get a marker per point. Panels fill their grid (a short last row is
    widened).

    Args:
        run_dir: the run directory (``ckpt_dir``/``log_dir`` of the Logger) or the
            ``metrics.jsonl`` file.
        metrics: names of the metrics to draw (default: every numeric scalar metric).
        out: PNG path (default: ``<run_dir>/learning_curves.png``).
        title: the figure's title, e.g. ``"CartPole-v1, PPO"`` (default: the run folder's
            name).

    Returns:
        Path of the written PNG.

    Raises:
        ImportError: matplotlib is missing (``pip install "realax-log[plot]"``).
        ValueError: a requested metric is not in the file.

    Example:
        >>> import realax.log as rlog
        >>> png = rlog.plot("runs/es", metrics=["fitness_max"], title="CartPole-v1, Open_ES")
        ... # doctest: +SKIP
    """
    Figure, FigureCanvasAgg = _import_matplotlib()
    where = metrics_path(run_dir)
    rows = read_metrics(run_dir)
    if not rows:
        raise ValueError(f"{where} holds no logged step yet")
    chosen = _choose(metrics, _numeric_metrics(rows), where)
    seeds: dict[str | None, list[dict]] = {}
    for row in rows:
        seed = row.get("seed")
        seeds.setdefault(str(seed) if seed is not None else None, []).append(row)

    nrows, ncols = _grid(len(chosen))
    fig = Figure(figsize=(4.2 * ncols, 3.0 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    width, cells = _cells(len(chosen), nrows, ncols)
    grid = fig.add_gridspec(nrows, width)
    for i, (name, (r, cols)) in enumerate(zip(chosen, cells, strict=True)):
        ax = fig.add_subplot(grid[r, cols])
        _draw(ax, name, seeds)
        if len(seeds) > 1 and i == 0:
            ax.legend(fontsize="small")
    fig.suptitle(title if title is not None else where.parent.name)
    out = Path(out) if out is not None else where.parent / "learning_curves.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out
