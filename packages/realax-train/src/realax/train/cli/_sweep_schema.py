"""``realax sweep`` and ``realax report``: their arguments and sub-parsers (standard library
only, so bad ``--set`` values answer before JAX loads)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
from typing import Any

from ._config import CliError

#: what ``realax sweep`` can sweep: ``evolve`` (``realax evolve``'s flags) or an RL algorithm
SWEEP_OF = ("evolve", "ppo", "dqn", "sac")
SWEEP_WANDB = ("per_config", "table")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT = re.compile(r"^[+-]?\d+$")


@dataclasses.dataclass(frozen=True)
class SweepArgs:
    """A resolved ``realax sweep``: the base configuration and the grid over it."""

    command: str  # "sweep"
    of: str  # "evolve", "ppo", "dqn" or "sac"
    base: Any  # the EvolveConfig / TrainConfig every configuration starts from
    space: dict[str, list[float | int]]  # --set NAME=V1,V2 (in the order given)
    seeds: int
    metric: str | None
    sweep_wandb: str
    resume: str | None = None  # ``realax resume RUN_DIR`` of a sweep: its folder

    @property
    def devices(self) -> int:
        return int(self.base.devices)


@dataclasses.dataclass(frozen=True)
class ReportArgs:
    """``realax report RUN_DIR [--metric NAME]``."""

    command: str  # "report"
    run: str
    metric: str | None = None
    devices: int = 1


def _number(name: str, text: str) -> float | int:
    text = text.strip()
    if _INT.match(text):
        return int(text)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise CliError(
            f"--set {name}: {text!r} is not a number; give comma-separated numbers, e.g. "
            f"--set {name}=1e-4,3e-4"
        )
    return value


def parse_set(items: list[str] | None) -> dict[str, list[float | int]]:
    """``["learning_rate=1e-4,3e-4", "gamma=0.99"]`` -> ``{"learning_rate": [0.0001,
    0.0003], "gamma": [0.99]}``; a CliError naming the entry otherwise.

    >>> parse_set(["learning_rate=1e-4,3e-4", "num_envs=4,8"])
    {'learning_rate': [0.0001, 0.0003], 'num_envs': [4, 8]}
    """
    if not items:
        raise CliError(
            "sweep needs at least one --set NAME=V1,V2,...; e.g. --set learning_rate=1e-4,3e-4"
        )
    space: dict[str, list[float | int]] = {}
    for item in items:
        name, eq, values = item.partition("=")
        name = name.strip()
        if not eq or not _NAME.match(name):
            raise CliError(
                f"--set {item!r}: expected NAME=V1,V2,... with a setting's name, e.g. "
                "--set learning_rate=1e-4,3e-4"
            )
        if name in space:
            raise CliError(f"--set {name} is given twice; give all its values in one --set")
        parts = [v for v in values.split(",") if v.strip()]
        if not parts:
            raise CliError(f"--set {name}= has no values; e.g. --set {name}=0.1,0.2")
        space[name] = [_number(name, v) for v in parts]
    return space


def add_parsers(sub: Any, add_keys: Any, positional: Any, evolve_keys: dict, train_keys: dict):
    """The ``sweep`` (one sub-command per method, with that command's flags) and ``report``
    sub-parsers."""
    p = sub.add_parser(
        "sweep",
        help="a grid of hyperparameters x seeds in one compiled program, with a report",
        description="Train every combination of the --set values with --seeds seeds each, as "
        "one compiled program; the run folder gets metrics.jsonl (config and seed columns), "
        "checkpoints, the wandb runs, and report.csv/json/png (statistics over seeds).",
        epilog="Example: realax sweep ppo CartPole-v1 --set learning_rate=1e-4,3e-4,1e-3 "
        "--set discount=0.98,0.99 --seeds 8",
    )
    methods = p.add_subparsers(dest="sweep_of", metavar="METHOD", required=True)
    for of in SWEEP_OF:
        q = methods.add_parser(
            of,
            help="evolve a policy (realax evolve's flags)"
            if of == "evolve"
            else f"train {of} (realax train's flags)",
        )
        positional(q, "env", "environment name, e.g. CartPole-v1")
        q.add_argument(
            "--set",
            action="append",
            metavar="NAME=V1,V2",
            default=argparse.SUPPRESS,
            help="values of one setting (repeat for a grid); an unknown name lists the "
            "settings that can be swept",
        )
        q.add_argument("--seeds", default=argparse.SUPPRESS, metavar="N", help="seeds per "
                       "configuration (default: 4)")  # fmt: skip
        q.add_argument(
            "--metric",
            default=argparse.SUPPRESS,
            metavar="NAME",
            help="the metric of the report (default: the trainer's progress metric)",
        )
        q.add_argument(
            "--sweep-wandb",
            choices=SWEEP_WANDB,
            default=argparse.SUPPRESS,
            help="one wandb run per configuration in a group, or one run with a table "
            "(default: per_config)",
        )
        keys = evolve_keys if of == "evolve" else train_keys
        add_keys(q, keys, skip=("env", "algo", "dataset", "dataset_sha256"))

    p = sub.add_parser("report", help="redraw a sweep's report (report.csv, .json, .png)")
    p.add_argument("run", metavar="RUN_DIR", help="the sweep's run folder")
    p.add_argument("--metric", metavar="NAME", help="the metric (default: the sweep's)")


def resolve(given: dict[str, Any], merge: Any) -> SweepArgs:
    """``realax sweep``'s arguments; ``merge(command, values)`` resolves the base config."""
    from ._config import POSITIVE

    given = dict(given)
    of = given.pop("sweep_of")
    space = parse_set(given.pop("set", None))
    seeds = POSITIVE("seeds", given.pop("seeds", 4))
    metric = given.pop("metric", None)
    sweep_wandb = given.pop("sweep_wandb", "per_config")
    if of != "evolve":
        given["algo"] = of
    base = merge("evolve" if of == "evolve" else "train", given)
    if base.env is None:
        raise CliError(f"sweep {of} needs an environment, e.g. `realax sweep {of} CartPole-v1`")
    return SweepArgs("sweep", of, base, space, seeds, metric, sweep_wandb)


def resume_args(run: str, meta: dict[str, Any], given: dict[str, Any], typed: Any) -> SweepArgs:
    """``realax resume RUN_DIR`` of a sweep folder: the sweep as ``sweep.json`` recorded it
    (``--generations/--steps`` and ``--wandb`` as for other runs); ``typed(command, values)``
    checks the base configuration."""
    from ._config import POSITIVE

    base = dict(meta["base"])
    command = base.pop("command")
    config = typed(command, base)
    if given.get("total") is not None:
        config = typed(
            command, {**base, config.total_key: POSITIVE(config.total_key, given["total"])}
        )
    if given.get("wandb") is not None:
        config = config.replace(wandb=given["wandb"])
    space = {str(k): list(v) for k, v in meta["space"].items()}
    return SweepArgs(
        "sweep", meta["of"], config, space, int(meta["seeds"]), meta.get("metric"),
        meta.get("sweep_wandb", "per_config"), resume=run,
    )  # fmt: skip
