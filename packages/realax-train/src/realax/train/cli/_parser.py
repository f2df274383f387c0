"""The argument parser of ``realax`` (its training flags come from ``_schema``).

Standard library only, so ``realax --help`` and argument errors answer before JAX loads.
"""

from __future__ import annotations

import argparse
from typing import Any

from . import _collect, _qd_schema, _render, _sweep_schema
from ._config import BOOL, Key, flag
from ._schema import WANDB_MODES, EvolveConfig, TrainConfig, keys_of

#: the keys of ``realax evolve`` and ``realax train``, in the order of ``--help``
EVOLVE_KEYS: dict[str, Key] = keys_of(EvolveConfig)
TRAIN_KEYS: dict[str, Key] = keys_of(TrainConfig)


def _add_keys(parser: argparse.ArgumentParser, keys: dict[str, Key], skip=()) -> None:
    for name, key in keys.items():
        if name in skip:
            continue
        default = "" if key.default is None else f" (default: {key.default})"
        if key.check is BOOL:
            parser.add_argument(
                flag(name),
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=key.help + default,
            )
        else:
            parser.add_argument(
                flag(name),
                default=argparse.SUPPRESS,
                metavar=key.metavar,
                help=key.help + default,
            )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML or YAML file whose keys mirror these flags; flags given override it",
    )


def _positional(parser: argparse.ArgumentParser, name: str, help: str) -> None:
    """An optional positional argument (ENV, ALGO): a key like the flags, absent if not given."""
    parser.add_argument(name, nargs="?", default=argparse.SUPPRESS, metavar=name.upper(), help=help)


def build_parser() -> argparse.ArgumentParser:
    """The ``realax`` argument parser (one sub-parser per command)."""
    parser = argparse.ArgumentParser(
        prog="realax",
        description="Evolve or train policies on gymnax, brax and jumanji environments, with "
        "checkpoints, metrics, Weights & Biases logging and learning curves in runs/<name>/.",
        epilog="Example: realax evolve CartPole-v1, then realax eval runs/CartPole-v1-Open_ES-s0",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "evolve",
        help="evolve a policy with an evolution strategy (evosax)",
        description="Evolve a policy on an environment with an evosax strategy; the run folder "
        "gets config.toml, metrics.jsonl, checkpoints, the wandb run, learning_curves.png "
        "and the final policy. Ctrl-C saves a checkpoint and stops; `realax resume` continues.",
    )
    _positional(p, "env", "environment name, e.g. CartPole-v1 (see `realax envs`)")
    _add_keys(p, EVOLVE_KEYS, skip=("env",))

    p = sub.add_parser(
        "train",
        help="train an RL agent (ppo, dqn, sac, pqn, c51; offline from --dataset: bc, cql, "
        "iql, td3bc)",
        description="Train a PPO, DQN, SAC, PQN or C51 agent on an environment, or a BC, CQL, "
        "IQL or TD3+BC agent offline from a dataset file (--dataset PATH); same run folder as "
        "evolve. metrics.jsonl gets one row per train step (logging interval): ppo every "
        "num_envs x 128 env steps, dqn and c51 every num_envs x 256 (then 128 updates), sac "
        "every num_envs x 50 (then 50 updates), pqn every num_envs x 32.",
    )
    _positional(p, "algo", "ppo, dqn, sac, pqn, c51, bc, cql, iql or td3bc")
    _positional(p, "env", "environment name, e.g. CartPole-v1")
    _add_keys(p, TRAIN_KEYS, skip=("algo", "env"))

    p = _run_command(
        sub,
        "resume",
        "continue a stopped run from its latest checkpoint",
        run_help="the run folder, e.g. runs/CartPole-v1-Open_ES-s0",
    )
    p.add_argument(
        "--generations",
        "--steps",
        "--iterations",
        dest="total",
        metavar="N",
        help="new total length of the run (default: the configured one)",
    )
    p.add_argument(
        "--wandb", choices=WANDB_MODES, help="wandb mode of the resumed part (default: the run's)"
    )

    p = _run_command(sub, "eval", "run a run's final policy and print its mean return")
    p.add_argument(
        "--episodes",
        metavar="N",
        help="episodes (default: the run's --eval-episodes, 32 unless set)",
    )
    p.add_argument("--seed", metavar="S", default="1", help="seed of the episodes (default: 1)")
    _render.add_eval_flag(p)

    p = _run_command(sub, "plot", "redraw a run's learning curves")
    p.add_argument(
        "--metrics", metavar="A,B", help="comma-separated metrics to draw (default: all)"
    )
    p.add_argument(
        "--out", metavar="PNG", help="output file (default: RUN_DIR/learning_curves.png)"
    )

    p = sub.add_parser("envs", help="list environments with their dimensions and suite")
    p.add_argument(
        "--suite",
        metavar="SUITE",
        default=None,
        help="only this suite (gymnax, brax, jumanji, craftax, xminigrid, navix, ...; "
        "default: every suite, the ones not installed with the extra that installs them)",
    )

    sub.add_parser("strategies", help="list evolution strategies (evosax names and aliases)")
    _qd_schema.add_parser(sub, _add_keys, _positional)
    _collect.add_parser(sub)
    _sweep_schema.add_parsers(sub, _add_keys, _positional, EVOLVE_KEYS, TRAIN_KEYS)
    _render.add_parser(sub)
    return parser


def _run_command(
    sub: Any, name: str, help: str, run_help: str | None = None
) -> argparse.ArgumentParser:
    """The sub-parser of a command on an existing run folder (its first argument, RUN_DIR)."""
    p = sub.add_parser(name, help=help)
    p.add_argument("run", metavar="RUN_DIR", help=run_help)
    return p


def split_args(ns: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """``(command, given)``: the command and the options actually given on the command line."""
    given = {k: v for k, v in vars(ns).items() if k != "command"}
    return ns.command, given
