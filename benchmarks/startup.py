"""Table 7 -- start-up: how long ``realax --help`` and the imports of the packages take, each
in fresh subprocesses (the median of a few), so the command line's answer time is tracked.

``realax --help`` parses its arguments before anything imports JAX; the package imports show
what a script pays before its first line of work. The commands run interleaved (round r of
every command before round r + 1, the order rotating), so each one's ratio to ``import jax``
in the same round is reported with its min-max over the rounds.
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


#: the issue's targets (#18): seconds a fresh process may take
TARGET_S = {"import realax.log": 2.0, "import realax.train": 2.0}
BASELINE = "import jax (baseline)"


def plan(quick: bool) -> list[dict[str, Any]]:
    return [
        {
            "label": "every command, interleaved",
            "module": "startup",
            "func": "measure_all",
            "realax": True,
            "cfg": {"labels": list(TARGETS), "repeats": 2 if quick else 5},
        }
    ]


def _command(label: str) -> list[str]:
    if label == "realax --help":  # the installed console script, as a user runs it
        script = Path(sys.executable).with_name("realax")
        if script.exists() or shutil.which("realax"):
            return [str(script) if script.exists() else "realax", "--help"]
    return [sys.executable, *TARGETS[label]]


def measure_all(cfg: dict[str, Any]) -> dict[str, Any]:
    """Wall time of every command of ``cfg["labels"]`` in fresh processes: one warm-up of each
    (so the file-system cache is warm as for a user running it twice), then
    ``cfg["repeats"]`` rounds of every command, the order rotating by one per round."""
    from benchmarks._common import ratio_stats

    labels = cfg["labels"]
    cmds = {label: _command(label) for label in labels}
    for cmd in cmds.values():
        subprocess.run(cmd, check=True, capture_output=True)
    times: dict[str, list[float]] = {label: [] for label in labels}
    for r in range(cfg["repeats"]):
        for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
            t0 = time.perf_counter()
            subprocess.run(cmds[label], check=True, capture_output=True)
            times[label].append(time.perf_counter() - t0)
    base = times.get(BASELINE)
    return {
        "commands": {
            label: {
                "median_s": statistics.median(ts),
                "times_s": ts,
                "vs_jax": ratio_stats(ts, base) if base else None,
            }
            for label, ts in times.items()
        }
    }


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_ratio, fmt_s, short_error, table

    body, repeats = [], 0
    for r in rows:
        if not r.get("ok"):
            body.append([r["label"], "error: " + short_error(r.get("error") or "", 80), "-"])
            continue
        repeats = r["cfg"]["repeats"]
        # older results: one row per command; now one row holding every command
        commands = r["result"].get("commands") or {r["label"]: r["result"]}
        for label, res in commands.items():
            target = TARGET_S.get(label)
            met = "" if target is None else ("met" if res["median_s"] < target else "not met")
            body.append([label, fmt_s(res["median_s"]), fmt_s(min(res["times_s"])),
                         fmt_ratio(res.get("vs_jax")),
                         "" if target is None else f"< {target:.0f} s: {met}"])  # fmt: skip
    return (
        f"Wall time of a fresh process, median of {repeats} after one warm-up, the commands "
        "interleaved round by round"
        + (" (--quick)" if quick else "")
        + ".\n\n"
        + table(
            ["command", "median (s)", "fastest (s)", "vs `import jax` (min-max)", "target"], body
        )  # fmt: skip
    )
