"""``realax sweep`` (a grid x seeds as one program, then its report) and ``realax report``."""

from __future__ import annotations

import itertools
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ._common import table
from ._config import CliError, close_matches, flag
from ._folders import METRICS_FILE, check_fresh, checkpoint_steps, run_folder
from ._sweep_schema import ReportArgs, SweepArgs

SWEEP_FILE = "sweep.json"  # realax.log's name for a sweep's configurations


def _setup(of: str, base: Any) -> Any:
    if of == "evolve":
        from . import _evolve

        return _evolve.build(base)
    from . import _rl

    return _rl.build(base)


def _check_names(args: SweepArgs, trainer: Any) -> Any:
    """Unknown ``--set`` names (with close matches) before anything compiles; PPO's
    annealed learning rate becomes a constant one when ``learning_rate`` is swept."""
    traced, shape = dict(trainer.sweepable()), trainer.shape_settings()
    if args.of == "ppo" and getattr(trainer, "anneal_lr", False):
        if "learning_rate" in args.space:
            print("realax sweep: learning_rate is swept, so PPO's rate is constant (no annealing)")
            trainer = trainer.rebuild(anneal_lr=False)
        traced["learning_rate"] = 0.0  # sweepable once the rate is constant
    for name in args.space:
        if name == "n_devices" or (name not in traced and name not in shape):
            shaped = sorted(set(shape) - {"n_devices"})
            raise CliError(
                f"--set {name}: {args.of} has no setting {name!r} that can be swept."
                f"{close_matches(name, [*traced, *shaped])} Traced (one program): "
                f"{', '.join(sorted(traced)) or 'none'}; shape-changing: {', '.join(shaped)}"
            )
    if any(name in shape for name in args.space):
        fixed = [name for name in args.space if name in shape]
        raise CliError(
            f"--set {', '.join(fixed)}: shape-changing settings make one program per value, "
            "which the sweep's run folder (one metrics file, one checkpoint) cannot hold; "
            f"run one `realax sweep` per value of {', '.join(fixed)} (e.g. {flag(fixed[0])} ...)"
        )
    return trainer


def grid(space: dict[str, list]) -> list[dict[str, Any]]:
    """The configurations of a grid, in ``realax.train.sweep``'s order (the last name varies
    fastest).

    >>> grid({"a": [1, 2], "b": [0.5, 0.9]})
    [{'a': 1, 'b': 0.5}, {'a': 1, 'b': 0.9}, {'a': 2, 'b': 0.5}, {'a': 2, 'b': 0.9}]
    """
    names = list(space)
    return [dict(zip(names, v, strict=True)) for v in itertools.product(*space.values())]


def _metrics_fn(of: str) -> Any:
    if of == "evolve":
        import realax.log as rlog

        return rlog.default_es_metrics
    from realax.train.rl import default_rl_metrics

    return default_rl_metrics


def _logger(args: SweepArgs, run_dir: Path, configs: list[dict]) -> Any:
    """The sweep's Logger (a resumed sweep continues its folder: ``resume=True``)."""
    import realax.log as rlog

    base, mode = args.base, args.base.wandb
    logger = rlog.Logger(
        wandb_log=mode != "off",
        metrics_fn=_metrics_fn(args.of),
        ckpt_dir=run_dir,
        ckpt_freq=base.ckpt_freq or 1,
        mode=None if mode == "off" else mode,
        sweep_configs=configs,
        sweep_wandb=args.sweep_wandb,
        resume=args.resume is not None,
    )
    kwargs: dict[str, Any] = {}
    if mode != "off":
        name = run_dir.resolve().name
        kwargs = {
            "name": name + ("-resumed" if args.resume else ""),
            "dir": str(run_dir.resolve()),
            "group": name,
            "tags": ["realax-cli", "sweep"],
        }
    logger.init(project=base.project, config=base.as_dict(), **kwargs)
    return logger


def _write_meta(run_dir: Path, args: SweepArgs, metric: str) -> None:
    doc = {
        "command": "sweep",
        "of": args.of,
        "env": args.base.env,
        "metric": metric,
        "higher_is_better": True,  # returns and (maximised) fitness
        "seeds": args.seeds,
        "sweep_wandb": args.sweep_wandb,
        "space": args.space,
        "base": args.base.as_dict(),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SWEEP_FILE).write_text(json.dumps(doc, indent=1) + "\n")


def _prepare(args: SweepArgs) -> tuple[Path, Any, list[dict], str]:
    """The run folder (fresh for a new sweep), the checked trainer, the grid, the metric."""
    if args.resume is None:
        run_dir = run_folder(args.base, f"sweep-{args.of}")
        check_fresh(run_dir)
    else:
        run_dir = Path(args.resume).expanduser()
    # --devices N splits the members (configurations x seeds) over N devices
    setup = _setup(args.of, args.base.replace(out=run_dir.as_posix(), devices=1))
    trainer = _check_names(args, setup.trainer)
    configs = grid(args.space)
    if (len(configs) * args.seeds) % args.devices:
        raise CliError(
            f"--devices {args.devices} splits the {len(configs) * args.seeds} runs "
            f"({len(configs)} configurations x {args.seeds} seeds) unevenly; choose --seeds so "
            f"that configurations x seeds is a multiple of {args.devices}"
        )
    return run_dir, trainer, configs, args.metric or trainer.algorithm.progress_metric


def _restored(args: SweepArgs, trainer: Any, run_dir: Path, key: Any) -> Any:
    """A resumed sweep's member-stacked state (its newest checkpoint), or None."""
    import realax.log as rlog
    from realax.train import sweep_init

    if args.resume is None or not checkpoint_steps(run_dir):
        return None
    like = sweep_init(trainer, args.space, key, seeds=args.seeds, n_devices=args.devices)
    state = rlog.restore(run_dir, like=like)
    print(f"realax resume: {run_dir} (sweep) from step {int(state.step.max())}", file=sys.stderr)
    return state


def run_sweep(args: SweepArgs) -> int:
    """``realax sweep METHOD ENV --set NAME=V1,V2 ... --seeds N``, and ``realax resume`` of
    a sweep's folder (from its newest checkpoint to the end)."""
    import jax
    from realax.train import sweep

    run_dir, trainer, configs, metric = _prepare(args)
    n = len(configs) * args.seeds
    print(
        f"realax sweep: {args.of} on {args.base.env}, {len(configs)} configurations x "
        f"{args.seeds} seeds = {n} runs in one program -> {run_dir}",
        flush=True,
    )
    _write_meta(run_dir, args, metric)
    key = jax.random.key(args.base.seed)
    resume = _restored(args, trainer, run_dir, key)
    logger = _logger(args, run_dir, configs)
    t0 = time.perf_counter()
    try:
        sweep(trainer, args.space, key, seeds=args.seeds, n_devices=args.devices,
              logger=logger, progress_bar=True, resume=resume)  # fmt: skip
    except (ValueError, TypeError) as e:
        logger.finish()
        if str(e).startswith("sweep") and args.resume is None:  # its checks, before compiling
            shutil.rmtree(run_dir, ignore_errors=True)  # fresh before: nothing was trained
            raise CliError(str(e)) from None
        raise
    except (KeyboardInterrupt, SystemExit):
        logger.finish()
        print(
            f"realax: sweep interrupted; continue with: realax resume {run_dir.as_posix()}",
            file=sys.stderr,
        )
        raise
    logger.finish()
    return _print_report(run_dir, metric, seconds=time.perf_counter() - t0)


def _print_report(run_dir: Path, metric: str | None, seconds: float | None = None) -> int:
    import realax.log as rlog

    meta = json.loads((run_dir / SWEEP_FILE).read_text())
    title = f"{meta.get('env')}: sweep of {meta.get('of')}"
    try:
        rep = rlog.report(run_dir, metric=metric, title=title)
    except ValueError as e:
        raise CliError(str(e)) from None
    best = rep.table[rep.best]
    rows = [
        (
            f"#{row['rank']} {row['label']}",
            f"final IQM {row['final_iqm']:.4g} [{row['final_iqm_lo']:.4g}, "
            f"{row['final_iqm_hi']:.4g}], mean {row['final_mean']:.4g}",
        )
        for row in sorted(rep.table, key=lambda r: r["rank"])
    ]
    rows.append(("best", f"{best['label']} ({rep.metric}, {best['n_seeds']} seeds)"))
    if seconds is not None:
        rows.append(("time", f"{seconds:.1f} s"))
    rows.append(("report", ", ".join(str(p) for p in rep.files.values())))
    print(table(rows, title=f"realax sweep: {rep.metric}, 95% bootstrap CIs over seeds"))
    return 0


def report_command(args: ReportArgs) -> int:
    """``realax report RUN_DIR``: redraw a sweep's report from its metrics file."""
    run_dir = Path(args.run).expanduser()
    if not (run_dir / METRICS_FILE).is_file() or not (run_dir / SWEEP_FILE).is_file():
        raise CliError(
            f"{args.run!r} is not a sweep's run folder (it needs {METRICS_FILE} and "
            f"{SWEEP_FILE}; `realax sweep` makes them)"
        )
    return _print_report(run_dir, args.metric)
