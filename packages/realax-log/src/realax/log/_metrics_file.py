"""The local metrics file: one JSON object per logged step (and seed), ``metrics.jsonl``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

FILENAME = "metrics.jsonl"


def to_json_value(x: Any) -> Any:
    """Numpy scalars/arrays -> Python numbers/lists (NaN and inf kept, as Python's json does)."""
    a = np.asarray(x)
    if a.ndim == 0:
        v = a.item()
        if isinstance(v, float) and math.isnan(v):
            return float("nan")
        return v
    return a.tolist()


def metrics_path(run_dir: str | Path) -> Path:
    p = Path(run_dir).expanduser()
    return p if p.suffix == ".jsonl" else p / FILENAME


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Read the metrics file of a run (the ``ckpt_dir``/``log_dir`` of a Logger).

    Rows are returned sorted by ``(seed, step)``; when a step appears more than once (a run
    resumed from an earlier checkpoint logs some steps again) the last row written wins.

    Args:
        run_dir: the run directory, or the path of the ``metrics.jsonl`` file itself.

    Returns:
        A list of dicts, each with ``"step"`` (and ``"seed"`` for vmapped runs) and the logged
        values.

    Example:
        >>> from realax.log import read_metrics
        >>> rows = read_metrics("runs/es")  # doctest: +SKIP
        >>> [r["fitness_max"] for r in rows]  # doctest: +SKIP
    """
    path = metrics_path(run_dir)
    if not path.is_file():
        raise FileNotFoundError(
            f"no metrics file at {path}; pass the ckpt_dir (or log_dir) given to Logger"
        )
    rows: dict[tuple, dict] = {}
    with path.open() as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            seed = row.get("seed")
            seed_key = tuple(seed) if isinstance(seed, list) else (seed,)
            rows[(seed_key, row.get("step"))] = row

    def order(item):
        (seed_key, step), _ = item
        return (tuple(-1 if s is None else s for s in seed_key), -1 if step is None else step)

    return [row for _, row in sorted(rows.items(), key=order)]


class MetricsFile:
    """Append-only JSON-lines writer, flushed after each batch of lines."""

    def __init__(self, run_dir: str | Path):
        self.path = metrics_path(run_dir)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = self.path.open("a")

    def write(self, row: dict[str, Any]) -> None:
        self.write_lines([row])

    def write_lines(self, rows: list[dict[str, Any]]) -> None:
        """Append rows with one write and one flush (whole lines only)."""
        if rows:
            self._f.write("".join(json.dumps(row) + "\n" for row in rows))
            self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()
