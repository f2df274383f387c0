"""Dispatch of the ``realax`` commands (imported only once the arguments are valid)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

from ._common import draw_curves, holds_run, table
from ._config import CliError


def run(command: str, config: dict[str, Any]) -> int:
    """Run one command with its resolved configuration; returns the exit status."""
    if command == "evolve":
        from . import _evolve

        return _evolve.evolve(config)
    if command == "train":
        from . import _rl

        return _rl.train(config)
    if command == "resume":
        return _resume(config)
    if command == "eval":
        return _eval(config)
    if command == "plot":
        return _plot(config)
    if command == "envs":
        return _envs(config.get("suite"))
    if command == "strategies":
        return _strategies()
    raise CliError(f"unknown command {command!r}")  # pragma: no cover - argparse rejects it


def _module_for(saved: dict[str, Any]) -> Any:
    if saved["command"] == "evolve":
        from . import _evolve

        return _evolve
    from . import _rl

    return _rl


def _resume(config: dict[str, Any]) -> int:
    run_dir = Path(config["run"]).expanduser()
    saved = dict(config["saved"])
    if config["total"] is not None:
        saved["generations" if saved["command"] == "evolve" else "steps"] = config["total"]
    if config["wandb"] is not None:
        saved["wandb"] = config["wandb"]
    return _module_for(saved).resume(saved, run_dir)


def _eval(config: dict[str, Any]) -> int:
    run_dir = Path(config["run"]).expanduser()
    saved = config["saved"]
    return _module_for(saved).eval_policy(saved, run_dir, config["episodes"], config["seed"])


def _plot(config: dict[str, Any]) -> int:
    import realax.log as rlog

    run_dir = Path(config["run"]).expanduser()
    if not (run_dir / "metrics.jsonl").is_file():
        raise CliError(
            f"{config['run']!r} has no metrics.jsonl"
            + ("" if holds_run(run_dir) else " (is it a run folder?)")
        )
    metrics = None
    if config.get("metrics"):
        metrics = [m.strip() for m in config["metrics"].split(",") if m.strip()]
    out = Path(config["out"]) if config.get("out") else None
    if out is None and metrics is None:
        path = draw_curves(run_dir, _default_plot_metrics(run_dir))
        if path is None:
            return 1
    else:
        try:
            path = rlog.plot(run_dir, metrics=metrics, out=out)
        except ValueError as e:
            raise CliError(str(e)) from None
    print(path)
    return 0


def _default_plot_metrics(run_dir: Path) -> list[str] | None:
    import realax.log as rlog

    from ._evolve import PLOT_METRICS

    rows = rlog.read_metrics(run_dir)
    chosen = [m for m in PLOT_METRICS if rows and m in rows[-1]]
    return chosen or None


def _envs(suite: str | None) -> int:
    import realax.tasks as rt

    suites = (suite,) if suite else ("gymnax", "brax", "jumanji")
    rows = []
    missing = []
    for s in suites:
        names = rt.registered_names(s)
        if not names:
            missing.append(s)
        for name in names:
            try:
                obs, act, discrete = rt.get_env_dimensions(f"{s}/{name}")
                kind = "discrete" if discrete else "continuous"
                rows.append((name, s, str(obs), f"{act} {kind}"))
            except Exception as e:  # an env that cannot be built here (e.g. needs a download)
                rows.append((name, s, "?", f"unavailable: {' '.join(str(e).split())[:60]}"))
    header = ("name", "suite", "obs dims", "actions")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for s in missing:
        print(f'({s} is not installed: pip install "realax-tasks[{s}]")', file=sys.stderr)
    return 0


def _strategies() -> int:
    from evosax.algorithms import algorithms
    from evosax.algorithms.population_based.base import PopulationBasedAlgorithm
    from realax.train import STRATEGY_ALIASES

    rows = []
    for name in sorted(algorithms, key=str.lower):
        cls = algorithms[name]
        params = inspect.signature(cls.__init__).parameters
        notes = []
        if "optimizer" in params:
            notes.append("--lr")
        if "std_schedule" in params:
            notes.append("--sigma")
        aliases = [a for a, t in STRATEGY_ALIASES.items() if t == name]
        kind = "population" if issubclass(cls, PopulationBasedAlgorithm) else "distribution"
        rows.append((name, kind, ", ".join(aliases), " ".join(notes)))
    print(
        table(
            [
                (r[0], f"{r[1]:<12}  {('aliases: ' + r[2]) if r[2] else '':<28}  {r[3]}".rstrip())
                for r in rows
            ],
            title="evosax strategies (realax evolve --strategy NAME):",
        )
    )
    return 0
