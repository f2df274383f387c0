"""Dispatch of the ``realax`` commands (imported only once the arguments are valid)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

from ._common import table
from ._config import CliError
from ._folders import METRICS_FILE, PLOT_FILE, finished_summary, holds_run
from ._qd_schema import QDConfig
from ._schema import (
    OFFLINE_ALGOS,
    EvolveConfig,
    ListArgs,
    RunArgs,
    RunConfig,
    TrainConfig,
    plot_method,
)

# the commands that compile programs: the compilation cache is on for them (see _cache)
_COMPILING = ("evolve", "train", "qd", "resume", "eval", "sweep", "collect", "render")


def run(config: Any) -> int:
    """Run one command with its resolved configuration; returns the exit status.

    A command that compiles turns JAX's persistent compilation cache on first and, when it
    succeeds, ends with a line of how many programs it compiled, in how long, and how many
    came from the cache (also in its summary.json as ``compile``).
    """
    if config.command not in _COMPILING:
        return _dispatch(config)
    from . import _cache

    _cache.enable()
    status = _dispatch(config)
    if status == 0:
        print(f"realax: compiled {_cache.report(_cache.stats())}", flush=True)
    return status


def _dispatch(config: Any) -> int:
    if getattr(config, "render", False) or config.command == "render":
        # MuJoCo (brax) picks its OpenGL backend once, on import: headless EGL unless set
        import os

        os.environ.setdefault("MUJOCO_GL", "egl")
    if isinstance(config, EvolveConfig):
        from . import _evolve

        return _evolve.evolve(config)
    if isinstance(config, TrainConfig):
        return _module_for(config).train(config)
    if isinstance(config, QDConfig):
        from . import _qd

        return _qd.qd(config)
    if config.command in ("sweep", "report"):  # _sweep_schema.SweepArgs / ReportArgs
        from . import _sweep

        return (
            _sweep.run_sweep(config) if config.command == "sweep" else _sweep.report_command(config)
        )
    if config.command == "collect":  # a _collect.CollectArgs
        from . import _collect

        return _collect.collect(config)
    if config.command == "render":  # a _render.RenderArgs
        return _render_run(config)
    if isinstance(config, RunArgs):
        return _resume(config) if config.command == "resume" else _eval(config)
    if config.command == "plot":
        return _plot(config)
    if config.command == "envs":
        return _envs(config.suite)
    return _strategies()


def _module_for(saved: EvolveConfig | TrainConfig | QDConfig) -> Any:
    if isinstance(saved, EvolveConfig):
        from . import _evolve

        return _evolve
    if isinstance(saved, QDConfig):
        from . import _qd

        return _qd
    if saved.algo in OFFLINE_ALGOS:
        from . import _offline

        return _offline
    from . import _rl

    return _rl


def _resume(args: RunArgs) -> int:
    run_dir = Path(args.run).expanduser()
    saved = args.saved
    summary = finished_summary(run_dir, saved)
    if summary is not None:
        evolve = isinstance(saved, EvolveConfig)
        noun = "generations" if evolve else "train steps"
        steps = summary.get("generations", summary.get("train_steps"))
        shown = run_dir.as_posix()
        print(
            f"{shown} is finished ({steps} {noun}; policy mean return "
            f"{summary.get('eval_return_mean', float('nan')):.1f}); nothing to resume. Run it "
            f"longer with `realax resume {shown} --{saved.total_key} N`, or evaluate it with "
            f"`realax eval {shown}`."
        )
        return 0
    return _module_for(saved).resume(saved, run_dir)


def _render_setup(saved: Any, path: Path) -> Any:
    """The setup of an evolve or train run to render, its renderer checked (cli/_render.py)."""
    from . import _render

    if isinstance(saved, QDConfig):
        raise CliError("realax render draws evolve and train runs, not qd runs")
    module = _module_for(saved)
    one = saved.replace(devices=1)
    setup = module.build(one) if isinstance(saved, EvolveConfig) else module.build(one, devices=1)
    _render.preflight(setup, path, hint="")
    return setup


def _render_run(args: Any) -> int:
    """``realax render RUN_DIR [--out PATH] ...`` (a ``_render.RenderArgs``)."""
    import time

    from . import _render

    run_dir = Path(args.run).expanduser()
    path = Path(args.out) if args.out else run_dir / _render.ROLLOUT_FILE
    setup = _render_setup(args.saved, path)
    t0 = time.perf_counter()
    out = _render.write(
        setup, run_dir, path, seed=args.seed, max_steps=args.max_steps, fps=args.fps
    )
    print(f"{out} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _eval(args: RunArgs) -> int:
    run_dir = Path(args.run).expanduser()
    if args.render:  # renderer problems show before the evaluation
        from . import _render

        setup = _render_setup(args.saved, run_dir / _render.ROLLOUT_FILE)
    status = _module_for(args.saved).eval_policy(args.saved, run_dir, args.episodes, args.seed)
    if args.render and status == 0:
        print(_render.write(setup, run_dir, run_dir / _render.ROLLOUT_FILE))
    return status


def _plot(args: ListArgs) -> int:
    from ._resolve import run_config

    run_dir = Path(str(args.run)).expanduser()
    if not (run_dir / METRICS_FILE).is_file():
        raise CliError(
            f"{args.run!r} has no {METRICS_FILE}"
            + ("" if holds_run(run_dir) else " (is it a run folder?)")
        )
    metrics = None
    if args.metrics:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    out = Path(args.out) if args.out else None
    saved: RunConfig | None
    try:
        saved = run_config(run_dir)
        title: str | None = f"{saved.env}: {plot_method(saved)}"
    except CliError:  # a metrics file without config.toml: plot it untitled
        saved, title = None, None
    if metrics is None and out is None and saved is not None:
        metrics = _default_plot_metrics(run_dir, saved.command)
    try:
        import realax.log as rlog

        path = rlog.plot(run_dir, metrics=metrics, out=out or run_dir / PLOT_FILE, title=title)
    except ValueError as e:
        raise CliError(str(e)) from None
    print(path)
    return 0


def _default_plot_metrics(run_dir: Path, command: str) -> list[str] | None:
    import realax.log as rlog

    shown: tuple[str, ...] = ("fitness_max", "fitness_mean", "fitness_min", "best_fitness")
    if command == "train":
        shown = ("episode_return", "eval_return")
    rows = rlog.read_metrics(run_dir)
    chosen = [m for m in shown if rows and m in rows[-1]]
    return chosen or None


def _reason(e: BaseException) -> str:
    """Why an environment is unavailable: its first sentence, cut at a word if long."""
    import textwrap

    text = " ".join(str(e).split()) or type(e).__name__
    first = text.split(". ")[0].rstrip(".")
    return textwrap.shorten(first, width=90, placeholder=" ...")


def _envs(suite: str | None) -> int:
    import realax.tasks as rt

    known = rt.suites()  # the suite table: every suite realax.tasks has an adapter for
    if suite is not None and suite not in known:
        raise CliError(f"--suite must be one of {', '.join(known)} (got --suite {suite})")
    rows = []
    missing = []
    unknown: set[str] = set()  # suites with dimensions left out (slow to build, not cached)
    for s in (suite,) if suite else known:
        names = rt.registered_names(s)
        if not names:
            missing.append(s)
        for name in names:
            full = f"{s}/{name}"
            if suite is None and rt.slow_to_describe(s):
                info = rt.known_env_info(full)
                if info is None or info.reason is not None:
                    unknown.add(s)
                    rows.append((name, s, "?", "? (realax envs --suite " + s + ")"))
                    continue
            try:
                obs, act, discrete = rt.get_env_dimensions(full)
                kind = "discrete" if discrete else "continuous"
                rows.append((name, s, str(obs), f"{act} {kind}"))
            except Exception as e:  # an env that cannot be built here (e.g. needs a download)
                rows.append((name, s, "?", f"unavailable: {_reason(e)}"))
    header = ("name", "suite", "obs dims", "actions")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for s in sorted(unknown):
        print(
            f"({s}: dimensions not known yet; building each environment takes seconds or more: "
            f"`realax envs --suite {s}` builds them once and caches them)",
            file=sys.stderr,
        )
    for s in missing:
        extra = rt.suite_extra(s)
        print(f'({s} is not installed: pip install "realax-tasks[{extra}]")', file=sys.stderr)
    return 0


def _strategies() -> int:
    from evosax.algorithms import algorithms
    from evosax.algorithms.population_based.base import PopulationBasedAlgorithm
    from realax.train import STRATEGY_ALIASES, resolve_strategy

    rows = []
    restarts = {"IPOP_CMA_ES", "BIPOP_CMA_ES"}  # realax's compiled restarts of CMA-ES
    for name in sorted({*algorithms, *restarts}, key=str.lower):
        cls: type = algorithms.get(name) or resolve_strategy(name)[1]
        params = inspect.signature(cls).parameters
        notes = []
        if "optimizer" in params:
            notes.append("--lr")
        if "std_schedule" in params:
            notes.append("--sigma")
        aliases = [a for a, t in STRATEGY_ALIASES.items() if t == name]
        kind = "population" if issubclass(cls, PopulationBasedAlgorithm) else "distribution"
        if name in restarts:
            kind = "restarts"
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
