"""Table 7 -- start-up: how long ``realax --help`` and the imports of the packages take, each
in fresh subprocesses (the median of a few), so the command line's answer time is tracked.

``realax --help`` parses its arguments before anything imports JAX; the package imports show
what a script pays before its first line of work.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: what is measured: label -> the command (after the Python interpreter)
TARGETS = {
    "realax --help": ["-m", "realax.train.cli", "--help"],
    "import realax.log": ["-c", "import realax.log"],
    "import realax.train": ["-c", "import realax.train"],
    "import realax.tasks": ["-c", "import realax.tasks"],
    # the names load on first use: what a script pays for its first trainer or Logger
    "import jax (baseline)": ["-c", "import jax"],
    "from realax.log import Logger": ["-c", "from realax.log import Logger"],
    "from realax.train import EvosaxTrainer": ["-c", "from realax.train import EvosaxTrainer"],
}


def plan(quick: bool) -> list[dict[str, Any]]:
    repeats = 2 if quick else 5
    return [
        {
            "label": label,
            "module": "startup",
            "func": "measure",
            "realax": True,
            "cfg": {"label": label, "repeats": repeats},
        }
        for label in TARGETS
    ]


def _command(label: str) -> list[str]:
    if label == "realax --help":  # the installed console script, as a user runs it
        script = Path(sys.executable).with_name("realax")
        if script.exists() or shutil.which("realax"):
            return [str(script) if script.exists() else "realax", "--help"]
    return [sys.executable, *TARGETS[label]]


def measure(cfg: dict[str, Any]) -> dict[str, Any]:
    """Wall time of ``cfg["label"]`` in ``cfg["repeats"]`` fresh processes (after one warm-up,
    so the file-system cache is warm as for a user running it twice)."""
    cmd = _command(cfg["label"])
    subprocess.run(cmd, check=True, capture_output=True)
    times = []
    for _ in range(cfg["repeats"]):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "times_s": times}


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_s, short_error, table

    repeats = rows[0]["cfg"]["repeats"] if rows else 0
    body = []
    for r in rows:
        if not r.get("ok"):
            body.append([r["label"], "error: " + short_error(r.get("error") or "", 80), "-"])
            continue
        res = r["result"]
        body.append([r["label"], fmt_s(res["median_s"]), f"{fmt_s(min(res['times_s']))}"])
    return (
        f"Wall time of a fresh process, median of {repeats} after one warm-up"
        + (" (--quick)" if quick else "")
        + ".\n\n"
        + table(["command", "median (s)", "fastest (s)"], body)
    )
