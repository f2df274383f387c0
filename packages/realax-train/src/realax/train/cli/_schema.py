"""The typed configurations of the commands: one frozen dataclass per command.

A training command's configuration (:class:`EvolveConfig`, :class:`TrainConfig`) is flat: its
fields are the long flags (``eval_reps`` is ``--eval-reps``), and each field's metadata holds
its check and help text, from which ``_parser`` makes the flags. ``config.toml`` is
:meth:`RunConfig.as_dict`. Standard library only.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from ._config import (
    BOOL,
    NONNEGATIVE,
    POSITIVE,
    POSITIVE_FLOAT,
    STRING,
    CliError,
    Key,
    choice,
)

WANDB_MODES = ("online", "offline", "off")
RL_ALGOS = ("ppo", "dqn", "sac", "pqn", "c51")
#: the algorithms of ``realax train ALGO --dataset PATH ENV`` (cli/_offline.py)
OFFLINE_ALGOS = ("bc", "cql", "iql", "td3bc")


def key(default: Any, check: Any, help: str, metavar: str | None = None) -> Any:
    """A configuration field: its default, value check, ``--help`` text and metavar."""
    meta = {"check": check, "help": help, "metavar": metavar}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """The settings every training command has."""

    command: ClassVar[str] = ""
    #: the key whose value is the length of the run
    total_key: ClassVar[str] = ""

    env: str | None = key(None, STRING, "environment name (see `realax envs`)", "ENV")
    seed: int = key(0, NONNEGATIVE, "random seed of the run", "S")
    wandb: str = key(
        "offline",
        choice(*WANDB_MODES),
        "Weights & Biases mode; offline runs stay in the run folder (upload them with "
        "`wandb sync`); WANDB_MODE, if set, replaces the default",
        "{online,offline,off}",
    )
    ckpt_freq: int | None = key(10, POSITIVE, "checkpoint every N steps (generations)", "N")
    out: str | None = key(None, STRING, "run folder (default: runs/<name>)", "DIR")
    name: str | None = key(
        None, STRING, "run name, the folder under runs/ (default: <env>-<method>-s<seed>)", "NAME"
    )
    project: str = key("realax", STRING, "wandb project", "NAME")
    max_steps: int | None = key(
        None, POSITIVE, "episode step limit (default: the environment's; brax: 1000)", "N"
    )
    eval_episodes: int = key(32, POSITIVE, "episodes of the final evaluation of the policy", "N")

    @property
    def total(self) -> int:
        """The length of the run (generations, or environment steps)."""
        return getattr(self, self.total_key)

    def as_dict(self) -> dict[str, Any]:
        """``{"command": ..., **fields}``: what ``config.toml`` and wandb record."""
        return {"command": self.command, **{k: getattr(self, k) for k in keys_of(type(self))}}

    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class EvolveConfig(RunConfig):
    """``realax evolve``."""

    command: ClassVar[str] = "evolve"
    total_key: ClassVar[str] = "generations"

    strategy: str = key("Open_ES", STRING, "evosax algorithm (see `realax strategies`)", "NAME")
    popsize: int = key(64, POSITIVE, "population size", "N")
    generations: int = key(50, POSITIVE, "number of generations", "N")
    policy: str = key("mlp", choice("mlp", "gru"), "policy network", "{mlp,gru}")
    width: int = key(32, POSITIVE, "hidden width (the GRU's hidden size)", "W")
    depth: int = key(
        2, NONNEGATIVE, "hidden layers of the MLP (GRU: an encoder layer if >= 2)", "D"
    )
    eval_reps: int = key(2, POSITIVE, "episodes per member and generation (fitness = mean)", "K")
    lr: float | None = key(
        None,
        POSITIVE_FLOAT,
        "learning rate (Adam) of strategies with an optimizer "
        "(default: 0.05 for Open_ES, else the strategy's own)",
        "LR",
    )
    sigma: float | None = key(
        None,
        POSITIVE_FLOAT,
        "constant noise std of strategies with a std schedule "
        "(default: 0.1 for Open_ES, else the strategy's own)",
        "STD",
    )
    obs_norm: bool = key(False, BOOL, "normalise observations with running statistics")
    render: bool = key(
        True, BOOL, "write rollout.gif of the final policy (and add it to the wandb run)"
    )
    devices: int = key(
        1,
        POSITIVE,
        "split the population over N devices (on CPU the command creates N host devices)",
        "N",
    )


@dataclasses.dataclass(frozen=True)
class TrainConfig(RunConfig):
    """``realax train ALGO ENV``; the per-algorithm defaults are filled in by
    :func:`with_algo_defaults` when the configuration is resolved."""

    command: ClassVar[str] = "train"
    total_key: ClassVar[str] = "steps"

    algo: str | None = key(
        None,
        choice(*RL_ALGOS, *OFFLINE_ALGOS),
        "RL algorithm; bc, cql, iql and td3bc train offline from --dataset",
        "{ppo,dqn,sac,pqn,c51,bc,cql,iql,td3bc}",
    )
    steps: int | None = key(
        None,
        POSITIVE,
        "environment steps in total (offline: gradient steps) (default: per algorithm)",
        "N",
    )
    dataset: str | None = key(
        None, STRING, "offline algorithms: the Dataset file (.npz of Dataset.save)", "PATH"
    )
    dataset_sha256: str | None = key(
        None, STRING, "checksum of --dataset, recorded at the start (resume verifies it)", "HEX"
    )
    num_envs: int | None = key(
        None, POSITIVE, "parallel environments (default: per algorithm)", "N"
    )
    lr: float | None = key(None, POSITIVE_FLOAT, "learning rate (default: per algorithm)", "LR")
    width: int = key(64, POSITIVE, "hidden width of the networks", "W")
    depth: int = key(2, POSITIVE, "hidden layers of the networks", "D")
    devices: int = key(1, POSITIVE, "split the environments over N devices", "N")
    recurrent: str | None = key(
        None,
        choice("gru", "lstm"),
        "ppo: a recurrent actor-critic with this cell (its size is --width)",
        "{gru,lstm}",
    )
    obs_keep: str | None = key(
        None,
        STRING,
        "observe only these entries of the observation, e.g. 0,2 (CartPole without velocities)",
        "I,J",
    )
    normalize_obs: bool = key(
        False, BOOL, "ppo, dqn, sac: normalise observations with running statistics"
    )
    normalize_reward: bool = key(
        False, BOOL, "ppo, dqn, sac: scale rewards by the discounted return's running std"
    )
    buffer_size: int | None = key(
        None,
        POSITIVE,
        "replay buffer size of dqn, c51 and sac (default: min(100000, --steps)); fixed for the run",
        "N",
    )
    learning_starts: int | None = key(
        None,
        NONNEGATIVE,
        "env steps before dqn, c51 and sac start learning (default: min(1000, --steps / 10))",
        "N",
    )
    ckpt_freq: int | None = key(
        None, POSITIVE, "checkpoint every N train steps (default: per algorithm)", "N"
    )
    render: bool = key(
        True, BOOL, "write rollout.gif of the final policy (and add it to the wandb run)"
    )


#: per-algorithm defaults of the ``train`` keys left unset (None); a PPO train step is
#: num_envs x 128 environment steps, a DQN train step 256 environment steps (then 128
#: updates), a SAC train step num_envs x 50 environment steps (then 50 updates)
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    # 500,000 steps (PureJaxRL's CartPole budget): greedy 497-500 on 8 of 8 seeds; at 204,800
    # 8 seeds ended at 413-498
    "ppo": {"steps": 500_000, "num_envs": 8, "ckpt_freq": 50},
    "dqn": {"steps": 50_000, "num_envs": 1, "ckpt_freq": 20},
    "sac": {"steps": 30_000, "num_envs": 1, "ckpt_freq": 100},
    # a PQN train step is 32 envs x 32 steps; C51 takes DQN's settings (tests/test_pqn.py)
    "pqn": {"steps": 200_000, "num_envs": 32, "ckpt_freq": 20},
    "c51": {"steps": 50_000, "num_envs": 1, "ckpt_freq": 20},
    # offline: gradient steps on minibatches of 256 (tests/test_offline_learning.py: 2,000-3,000
    # reach the data's return on CartPole and Pendulum)
    **{algo: {"steps": 5_000, "ckpt_freq": 500} for algo in OFFLINE_ALGOS},
}


def with_algo_defaults(config: TrainConfig) -> TrainConfig:
    """``config`` with the algorithm's defaults filled in, the settings that fix array shapes
    (buffer size) included, so that config.toml records them for resume.

    >>> c = with_algo_defaults(TrainConfig(algo="dqn", env="CartPole-v1", steps=20_000))
    >>> c.buffer_size, c.learning_starts, c.num_envs, c.ckpt_freq
    (20000, 1000, 1, 20)
    """
    algo = config.algo or "ppo"
    out = {k: v for k, v in ALGO_DEFAULTS[algo].items() if getattr(config, k) is None}
    steps = int(out.get("steps", config.steps) or 0)
    if algo in ("ppo", "pqn") or algo in OFFLINE_ALGOS:  # no replay buffer
        out.update(buffer_size=None, learning_starts=None)
    else:
        if config.buffer_size is None:
            out["buffer_size"] = min(100_000, steps)
        if config.learning_starts is None:
            out["learning_starts"] = min(1_000, steps // 10)
    return config.replace(**out)


# flags of the online trainers that an offline run (a fixed dataset, no environment steps
# while learning) would otherwise silently ignore
ONLINE_ONLY = ("normalize_obs", "normalize_reward", "recurrent", "obs_keep")


def check_offline_flags(config: TrainConfig) -> TrainConfig:
    """Refuse the online-only flags with an offline algorithm, naming the flag and the fix.

    >>> try:
    ...     check_offline_flags(TrainConfig(algo="cql", env="CartPole-v1", normalize_obs=True))
    ... except CliError as e:
    ...     print(str(e)[:77])
    --normalize-obs applies to the online algorithms (ppo, dqn, sac, pqn, c51), n
    """
    if config.algo not in OFFLINE_ALGOS:
        return config
    for name in ONLINE_ONLY:
        if getattr(config, name) not in (None, False):
            flag = "--" + name.replace("_", "-")
            hint = (
                f"drop {flag} (normalise the dataset's observations before saving it, if you "
                "need to)"
                if name == "normalize_obs"
                else f"drop {flag}"
            )
            raise CliError(
                f"{flag} applies to the online algorithms ({', '.join(RL_ALGOS)}), not to "
                f"`realax train {config.algo}`, which learns from a fixed --dataset: {hint}"
            )
    return config


def plot_method(config: RunConfig) -> str:
    """The method named in a run's plot title: the strategy, or the RL algorithm."""
    if isinstance(config, EvolveConfig):
        return config.strategy
    return str(getattr(config, "algo", "")).upper()


def keys_of(cls: type[RunConfig]) -> dict[str, Key]:
    """The configuration keys of a command: ``env``, the command's own keys, then the shared
    ones (the order of ``--help`` and of ``config.toml``)."""
    fields = dataclasses.fields(cls)
    own = vars(cls).get("__annotations__", {})
    place = {name: i for i, name in enumerate(own)}  # the command's own keys as declared
    ordered = sorted(fields, key=lambda f: (f.name != "env", place.get(f.name, len(place))))
    return {
        f.name: Key(f.default, f.metadata["check"], f.metadata["help"], f.metadata["metavar"])
        for f in ordered
    }


@dataclasses.dataclass(frozen=True)
class RunArgs:
    """``realax resume RUN_DIR`` / ``realax eval RUN_DIR``: the run and its saved config."""

    command: str
    run: str
    saved: Any  # EvolveConfig, TrainConfig or _qd_schema.QDConfig
    episodes: int = 0  # eval
    seed: int = 1  # eval
    render: bool = False  # eval --render

    @property
    def devices(self) -> int:
        return self.saved.devices


@dataclasses.dataclass(frozen=True)
class ListArgs:
    """``realax plot`` / ``envs`` / ``strategies``: their few options."""

    command: str
    run: str | None = None
    metrics: str | None = None
    out: str | None = None
    suite: str | None = None
    devices: int = 1
