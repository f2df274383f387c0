"""The local metrics file: one strict-JSON object per logged step (and seed), ``metrics.jsonl``.

Non-finite numbers (NaN, inf) are not JSON: they are written as ``null`` and read back by
:func:`read_metrics` as NaN.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

FILENAME = "metrics.jsonl"
_KEYS = ("step", "seed", "config")
#: the one NaN object read_metrics returns for ``null`` (as json.loads does for ``NaN``): rows
#: read twice compare equal (``==`` on containers tries identity first)
_NAN = float("nan")


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list):
        return [_finite_or_none(x) for x in v]
    return v


def to_json_value(x: Any) -> Any:
    """Numpy scalars/arrays -> Python numbers/lists, NaN and inf as ``None`` (JSON null)."""
    a = np.asarray(x)
    return _finite_or_none(a.item() if a.ndim == 0 else a.tolist())


def _none_to_nan(v: Any) -> Any:
    if v is None:
        return _NAN
    if isinstance(v, list):
        return [_none_to_nan(x) for x in v]
    return v


def metrics_path(run_dir: str | Path) -> Path:
    p = Path(run_dir).expanduser()
    return p if p.suffix == ".jsonl" else p / FILENAME


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Read the metrics file of a run (the ``ckpt_dir``/``log_dir`` of a Logger).

    Rows are returned sorted by ``(seed, step)`` (a sweep's: ``(config, seed, step)``); when a
    step appears more than once (a run resumed from an earlier checkpoint logs some steps
    again) the last row written wins.
    ``null`` values (NaN or inf when logged) are returned as NaN.

    Args:
        run_dir: the run directory, or the path of the ``metrics.jsonl`` file itself.

    Returns:
        A list of dicts, each with ``"step"`` (and ``"seed"`` for vmapped runs, ``"config"``
        for a sweep's) and the logged values.

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
            row = {k: v if k in _KEYS else _none_to_nan(v) for k, v in row.items()}
            seed = row.get("seed")
            seed_key = tuple(seed) if isinstance(seed, list) else (seed,)
            config = row.get("config")
            rows[(-1 if config is None else config, seed_key, row.get("step"))] = row

    def order(item):
        (config, seed_key, step), _ = item
        seeds = tuple(-1 if s is None else s for s in seed_key)
        return (config, seeds, -1 if step is None else step)

    return [row for _, row in sorted(rows.items(), key=order)]


def truncate_metrics(path: Path, last_step: int | None) -> None:
    """Keep the complete rows of ``path`` whose step is at most ``last_step`` (every complete
    row when ``None``); a line cut short by a crash is always dropped. Atomic (write + rename).
    """
    if not path.is_file():
        return
    data = path.read_bytes()
    kept = []
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            continue  # the last line of a killed run, cut short
        try:
            row = json.loads(line)
        except ValueError:
            continue
        step = row.get("step") if isinstance(row, dict) else None
        if last_step is None or (isinstance(step, int) and step <= last_step):
            kept.append(line)
    new = b"".join(kept)
    if new == data:
        return
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_bytes(new)
    os.replace(tmp, path)


class MetricsFile:
    """Append-only JSON-lines writer, flushed after each batch of lines.

    With ``resume``, the first batch written first drops the rows of the file at or after
    its first step: a run resumed from an older checkpoint than the newest (a damaged one
    is skipped by ``restore``) still leaves every step once, in order.
    """

    def __init__(self, run_dir: str | Path, *, resume: bool = False):
        self.path = metrics_path(run_dir)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._resume = resume
        self._f = self.path.open("a")

    def write_lines(self, rows: list[dict[str, Any]]) -> None:
        """Append rows with one write and one flush (whole lines only)."""
        if not rows:
            return
        if self._resume:
            self._resume = False
            steps = [r["step"] for r in rows if isinstance(r.get("step"), int)]
            if steps:
                self._f.close()
                truncate_metrics(self.path, min(steps) - 1)
                self._f = self.path.open("a")
        self._f.write("".join(json.dumps(row, allow_nan=False) + "\n" for row in rows))
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()
