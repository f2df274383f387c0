"""Run folders: names, what they hold, whether a run is finished (standard library only)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._config import CliError, write_toml
from ._schema import RunConfig

CONFIG_FILE = "config.toml"
POLICY_FILE = "policy.msgpack"
SUMMARY_FILE = "summary.json"
PLOT_FILE = "learning_curves.png"
METRICS_FILE = "metrics.jsonl"


def default_name(env: str, method: str, seed: int) -> str:
    """``<env>-<method>-s<seed>`` with characters unsafe in paths replaced."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{env}-{method}-s{seed}")


def run_folder(config: RunConfig, method: str) -> Path:
    """The run folder of a new run: ``--out``, else ``runs/<--name or default name>``."""
    if config.out:
        return Path(config.out).expanduser()
    name = config.name or default_name(str(config.env), method, config.seed)
    return Path("runs") / name


def checkpoint_steps(run_dir: Path) -> list[int]:
    """Steps of the complete checkpoints in a run folder (the numbered folders)."""
    if not run_dir.is_dir():
        return []
    return sorted(int(p.name) for p in run_dir.iterdir() if p.is_dir() and p.name.isdigit())


def holds_run(run_dir: Path) -> bool:
    """True if ``run_dir`` holds (part of) a realax run."""
    if not run_dir.is_dir():
        return False
    files = (CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, POLICY_FILE, "config.json")
    return any((run_dir / f).exists() for f in files) or bool(checkpoint_steps(run_dir))


def check_fresh(run_dir: Path) -> None:
    """Refuse to start a run in a folder that already holds one (never overwrite silently)."""
    if holds_run(run_dir):
        shown = str(run_dir) if run_dir.is_absolute() else run_dir.as_posix()
        raise CliError(
            f"{shown} already holds a run; continue it with `realax resume {shown}`, or start "
            "a new run elsewhere with --out DIR or --name NAME (or delete the folder)"
        )


def save_config(run_dir: Path, config: RunConfig) -> None:
    """Write the resolved configuration as ``config.toml`` (usable again as ``--config``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    header = (
        "realax run configuration, written by the realax command line.\n"
        f"Continue the run: realax resume {run_dir.as_posix()}\n"
        "Start a new run like it: realax COMMAND --config config.toml --out OTHER_DIR"
    )
    write_toml(run_dir / CONFIG_FILE, config.as_dict(), header=header)


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    """``summary.json`` of a run, or None if it has none (yet)."""
    try:
        return json.loads((run_dir / SUMMARY_FILE).read_text())
    except (OSError, ValueError):
        return None


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> None:
    """summary.json, with ``compile`` (the command's compiles so far, see ``_cache``) added."""
    from . import _cache

    if _cache.enabled():
        summary = {**summary, "compile": _cache.stats()}
    (run_dir / SUMMARY_FILE).write_text(json.dumps(dict(summary), indent=2, default=float) + "\n")


def finished_summary(run_dir: Path, config: RunConfig) -> dict[str, Any] | None:
    """The summary of a run that already ran to the length ``config`` asks for, else None."""
    summary = read_summary(run_dir)
    if summary is None or not (run_dir / POLICY_FILE).is_file():
        return None
    done = summary.get("requested", summary.get(config.total_key))
    return summary if done == config.total else None
