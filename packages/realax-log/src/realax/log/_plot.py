"""Learning curves from a run's metrics file (matplotlib, the ``plot`` extra)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from ._metrics_file import metrics_path, read_metrics

_SKIP = {"step", "seed"}


def _import_matplotlib():
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError('realax.log.plot needs matplotlib: pip install "realax-log[plot]"') from e
    del matplotlib
    return Figure, FigureCanvasAgg


def plot(
    run_dir: str | Path,
    metrics: Sequence[str] | None = None,
    out: str | Path | None = None,
) -> Path:
    """Draw learning curves (one panel per metric, one line per seed) from ``metrics.jsonl``.

    Args:
        run_dir: the run directory (``ckpt_dir``/``log_dir`` of the Logger) or the
            ``metrics.jsonl`` file.
        metrics: names of the metrics to draw (default: every numeric scalar metric).
        out: PNG path (default: ``<run_dir>/learning_curves.png``).

    Returns:
        Path of the written PNG.

    Raises:
        ImportError: matplotlib is missing (``pip install "realax-log[plot]"``).
        ValueError: a requested metric is not in the file.

    Example:
        >>> import realax.log as rlog
        >>> png = rlog.plot("runs/es", metrics=["fitness_max", "best_fitness"])  # doctest: +SKIP
    """
    Figure, FigureCanvasAgg = _import_matplotlib()
    rows = read_metrics(run_dir)
    if not rows:
        raise ValueError(f"{metrics_path(run_dir)} holds no logged step yet")
    numeric = []
    for row in rows:
        for k, v in row.items():
            is_num = isinstance(v, int | float) and not isinstance(v, bool)
            if k not in _SKIP and k not in numeric and is_num:
                numeric.append(k)
    if metrics is None:
        metrics = numeric
    else:
        if isinstance(metrics, str):
            metrics = [metrics]
        missing = [m for m in metrics if m not in numeric]
        if missing:
            raise ValueError(
                f"metrics {missing} are not numeric scalars in {metrics_path(run_dir)}; "
                f"available: {numeric}"
            )
    if not metrics:
        raise ValueError(f"no numeric metric to plot in {metrics_path(run_dir)}")

    seeds: dict = {}
    for row in rows:
        seed = row.get("seed")
        seeds.setdefault(str(seed) if seed is not None else None, []).append(row)

    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.0 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    for i, name in enumerate(metrics):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        for seed, seed_rows in seeds.items():
            pts = [(r["step"], r[name]) for r in seed_rows if isinstance(r.get(name), int | float)]
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, lw=1.4, label=None if seed is None else f"seed {seed}")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if len(seeds) > 1 and i == 0:
            ax.legend(fontsize="small")
    out = Path(out) if out is not None else metrics_path(run_dir).parent / "learning_curves.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out
