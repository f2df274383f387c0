"""The argument parser of ``realax`` and the configuration keys of each command.

Standard library only, so ``realax --help`` and argument errors answer before JAX loads.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._config import (
    BOOL,
    NONNEGATIVE,
    POSITIVE,
    POSITIVE_FLOAT,
    STRING,
    Key,
    choice,
    flag,
)

WANDB_MODES = ("online", "offline", "off")

#: keys shared by every training command (``evolve`` and ``train``)
_COMMON: dict[str, Key] = {
    "env": Key(None, STRING, "environment name (see `realax envs`)", "ENV"),
    "seed": Key(0, NONNEGATIVE, "random seed of the run", "S"),
    "wandb": Key(
        "offline",
        choice(*WANDB_MODES),
        "Weights & Biases mode; offline runs stay in the run folder (upload them with "
        "`wandb sync`); WANDB_MODE, if set, replaces the default",
        "{online,offline,off}",
    ),
    "ckpt_freq": Key(10, POSITIVE, "checkpoint every N steps (generations)", "N"),
    "out": Key(None, STRING, "run folder (default: runs/<name>)", "DIR"),
    "name": Key(
        None, STRING, "run name, the folder under runs/ (default: <env>-<method>-s<seed>)", "NAME"
    ),
    "project": Key("realax", STRING, "wandb project", "NAME"),
    "max_steps": Key(
        None, POSITIVE, "episode step limit (default: the environment's; brax: 1000)", "N"
    ),
    "eval_episodes": Key(32, POSITIVE, "episodes of the final evaluation of the policy", "N"),
}

#: ``realax evolve`` keys, in the order of ``--help`` and of the saved config.toml
EVOLVE_KEYS: dict[str, Key] = {
    "env": _COMMON["env"],
    "strategy": Key("Open_ES", STRING, "evosax algorithm (see `realax strategies`)", "NAME"),
    "popsize": Key(64, POSITIVE, "population size", "N"),
    "generations": Key(50, POSITIVE, "number of generations", "N"),
    "policy": Key("mlp", choice("mlp", "gru"), "policy network", "{mlp,gru}"),
    "width": Key(32, POSITIVE, "hidden width (the GRU's hidden size)", "W"),
    "depth": Key(2, NONNEGATIVE, "hidden layers of the MLP (GRU: an encoder layer if >= 2)", "D"),
    "eval_reps": Key(2, POSITIVE, "episodes per member and generation (fitness = mean)", "K"),
    "lr": Key(
        None,
        POSITIVE_FLOAT,
        "learning rate (Adam) of strategies with an optimizer "
        "(default: 0.05 for Open_ES, else the strategy's own)",
        "LR",
    ),
    "sigma": Key(
        None,
        POSITIVE_FLOAT,
        "constant noise std of strategies with a std schedule "
        "(default: 0.1 for Open_ES, else the strategy's own)",
        "STD",
    ),
    "obs_norm": Key(False, BOOL, "normalise observations with running statistics", None),
    "devices": Key(
        1,
        POSITIVE,
        "split the population over N devices (on CPU the command creates N host devices)",
        "N",
    ),
    **{k: v for k, v in _COMMON.items() if k != "env"},
}

RL_ALGOS = ("ppo", "dqn", "sac")

#: ``realax train`` keys
TRAIN_KEYS: dict[str, Key] = {
    "algo": Key(None, choice(*RL_ALGOS), "RL algorithm", "{ppo,dqn,sac}"),
    "env": _COMMON["env"],
    "steps": Key(None, POSITIVE, "environment steps in total (default: per algorithm)", "N"),
    "num_envs": Key(None, POSITIVE, "parallel environments (default: per algorithm)", "N"),
    "lr": Key(None, POSITIVE_FLOAT, "learning rate (default: per algorithm)", "LR"),
    "width": Key(64, POSITIVE, "hidden width of the networks", "W"),
    "depth": Key(2, POSITIVE, "hidden layers of the networks", "D"),
    "devices": Key(1, POSITIVE, "split the environments over N devices", "N"),
    **{k: v for k, v in _COMMON.items() if k != "env"},
    "ckpt_freq": Key(
        None, POSITIVE, "checkpoint every N train steps (default: per algorithm)", "N"
    ),
    "buffer_size": Key(
        None,
        POSITIVE,
        "replay buffer size of dqn and sac (default: min(100000, --steps)); fixed for the run",
        "N",
    ),
    "learning_starts": Key(
        None,
        NONNEGATIVE,
        "env steps before dqn and sac start learning (default: min(1000, --steps / 10))",
        "N",
    ),
}

#: per-algorithm defaults of the ``train`` keys left unset (None); a PPO train step is
#: num_envs x 128 environment steps, a DQN/SAC train step num_envs environment steps
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    "ppo": {"steps": 204_800, "num_envs": 8, "ckpt_freq": 20},
    "dqn": {"steps": 50_000, "num_envs": 1, "ckpt_freq": 5_000},
    "sac": {"steps": 30_000, "num_envs": 1, "ckpt_freq": 5_000},
}


def with_algo_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """A ``train`` configuration with the algorithm's defaults filled in, the settings that
    fix array shapes (buffer size) included, so that config.toml records them for resume."""
    out = dict(config)
    for k, v in ALGO_DEFAULTS[out["algo"]].items():
        if out.get(k) is None:
            out[k] = v
    if out["algo"] == "ppo":
        out["buffer_size"] = out["learning_starts"] = None
    else:
        if out.get("buffer_size") is None:
            out["buffer_size"] = min(100_000, out["steps"])
        if out.get("learning_starts") is None:
            out["learning_starts"] = min(1_000, out["steps"] // 10)
    return out


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
        "gets config.toml, metrics.jsonl, orbax checkpoints, the wandb run, learning_curves.png "
        "and the final policy. Ctrl-C saves a checkpoint and stops; `realax resume` continues.",
    )
    p.add_argument(
        "env",
        nargs="?",
        default=argparse.SUPPRESS,
        metavar="ENV",
        help="environment name, e.g. CartPole-v1 (see `realax envs`)",
    )
    _add_keys(p, EVOLVE_KEYS, skip=("env",))

    p = sub.add_parser(
        "train",
        help="train an RL agent (ppo, dqn or sac)",
        description="Train a PPO, DQN or SAC agent on an environment; same run folder as evolve.",
    )
    p.add_argument(
        "algo", nargs="?", default=argparse.SUPPRESS, metavar="ALGO", help="ppo, dqn or sac"
    )
    p.add_argument(
        "env",
        nargs="?",
        default=argparse.SUPPRESS,
        metavar="ENV",
        help="environment name, e.g. CartPole-v1",
    )
    _add_keys(p, TRAIN_KEYS, skip=("algo", "env"))

    p = sub.add_parser("resume", help="continue a stopped run from its latest checkpoint")
    p.add_argument(
        "run",
        metavar="RUN_DIR",
        help="the run folder, e.g. runs/CartPole-v1-Open_ES-s0",
    )
    p.add_argument(
        "--generations",
        "--steps",
        dest="total",
        metavar="N",
        default=None,
        help="new total length of the run (default: the configured one)",
    )
    p.add_argument(
        "--wandb",
        choices=WANDB_MODES,
        default=None,
        help="wandb mode of the resumed part (default: the run's)",
    )

    p = sub.add_parser("eval", help="run a run's final policy and print its mean return")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument(
        "--episodes",
        metavar="N",
        default=None,
        help="episodes (default: the run's --eval-episodes, 32 unless set)",
    )
    p.add_argument("--seed", metavar="S", default="1", help="seed of the episodes (default: 1)")

    p = sub.add_parser("plot", help="redraw a run's learning curves")
    p.add_argument("run", metavar="RUN_DIR")
    p.add_argument(
        "--metrics",
        metavar="A,B",
        default=None,
        help="comma-separated metrics to draw (default: all)",
    )
    p.add_argument(
        "--out",
        metavar="PNG",
        default=None,
        help="output file (default: RUN_DIR/learning_curves.png)",
    )

    p = sub.add_parser("envs", help="list environments with their dimensions and suite")
    p.add_argument("--suite", choices=("gymnax", "brax", "jumanji"), default=None)

    sub.add_parser("strategies", help="list evolution strategies (evosax names and aliases)")
    return parser


def split_args(ns: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """``(command, given)``: the command and the options actually given on the command line."""
    given = {k: v for k, v in vars(ns).items() if k != "command"}
    return ns.command, given
