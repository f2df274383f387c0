"""``realax collect RUN_DIR --steps N --out PATH``: a dataset from a train run's agent.

The arguments are resolved with the standard library only (:func:`add_parser`,
:func:`resolve`); :func:`collect` loads JAX, the run's agent (``policy.msgpack``, else its
newest checkpoint) and writes the `realax.agents.Dataset` file with ``Dataset.save``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from ._config import NONNEGATIVE, POSITIVE, CliError

__all__ = ["CollectArgs", "add_parser", "collect", "resolve"]


@dataclasses.dataclass(frozen=True)
class CollectArgs:
    """``realax collect``: the run, how many transitions, where to write them."""

    command: str
    run: str
    saved: Any  # the run's TrainConfig
    steps: int
    out: str
    num_envs: int = 1
    epsilon: float | None = None
    seed: int = 0
    devices: int = 1


def add_parser(sub: Any) -> None:
    """The ``collect`` sub-parser."""
    p = sub.add_parser(
        "collect",
        help="collect a dataset (.npz) with a train run's agent, for offline training",
        description="Run the agent of a `realax train` run on its environment and save the "
        "transitions as a realax.agents.Dataset file (jaxrl_m's keys; `realax train bc|cql|"
        "iql|td3bc --dataset PATH` trains on it).",
    )
    p.add_argument("run", metavar="RUN_DIR", help="a train run folder (runs/CartPole-v1-ppo-s0)")
    p.add_argument("--steps", metavar="N", required=True, help="transitions in all")
    p.add_argument("--out", metavar="PATH", required=True, help="the dataset file (.npz)")
    p.add_argument("--num-envs", metavar="N", default="1", help="parallel environments (default 1)")
    p.add_argument(
        "--epsilon",
        metavar="E",
        default=None,
        help="act greedily with a random action with probability E (default: the agent's "
        "own sampling)",
    )
    p.add_argument("--seed", metavar="S", default="0", help="seed (default 0)")


def resolve(given: dict[str, Any], saved: Any) -> CollectArgs:
    """The checked arguments; ``saved`` is the run's configuration (``_resolve.run_config``)."""
    from ._schema import TrainConfig

    if not isinstance(saved, TrainConfig):
        raise CliError(f"{given['run']} is an evolve run; realax collect takes a train run")
    epsilon = given.get("epsilon")
    if epsilon is not None:
        try:
            epsilon = float(epsilon)
        except ValueError:
            raise CliError(f"--epsilon must be a number in [0, 1] (got {epsilon!r})") from None
        if not 0.0 <= epsilon <= 1.0:
            raise CliError(f"--epsilon must be in [0, 1] (got {epsilon})")
    steps, num_envs = POSITIVE("steps", given["steps"]), POSITIVE("num_envs", given["num_envs"])
    if steps % num_envs:
        raise CliError(f"--steps must be a multiple of --num-envs (got {steps}, {num_envs})")
    return CollectArgs(
        "collect", given["run"], saved, steps, str(given["out"]), num_envs, epsilon,
        NONNEGATIVE("seed", given["seed"]),
    )  # fmt: skip


def collect(args: CollectArgs) -> int:
    import jax
    import numpy as np
    from realax.train import rl

    from . import _offline, _rl
    from ._schema import OFFLINE_ALGOS

    run_dir = Path(args.run).expanduser()
    module: Any = _offline if args.saved.algo in OFFLINE_ALGOS else _rl
    setup = module.build(args.saved, devices=1)
    agent, source = setup.saved(run_dir)
    trainer = setup.trainer
    data = rl.collect(agent, trainer.env, jax.random.key(args.seed), num_steps=args.steps,
                      num_envs=args.num_envs, epsilon=args.epsilon,
                      action_fn=trainer.env_action)  # fmt: skip
    out = Path(args.out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    path = data.save(out)
    returns = data.episode_returns()
    print(
        f"realax collect: {data.size} transitions of {trainer.env.name} ({source}, epsilon "
        f"{args.epsilon}) -> {path}; {len(returns)} episodes, mean return "
        f"{float(np.mean(returns)):.1f} (the last of each environment is cut short)",
        file=sys.stdout,
    )
    return 0
