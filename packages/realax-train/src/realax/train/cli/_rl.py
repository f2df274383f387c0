"""``realax train ppo|dqn|sac|pqn|c51`` and the RL part of ``resume`` / ``eval``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import numpy as np

from . import _run
from ._common import (
    describe_env,
    draw_curves,
    plural,
    returns_line,
    save_pytree,
    table,
    wandb_run_dirs,
)
from ._config import CliError, in_flag_words
from ._folders import POLICY_FILE, checkpoint_steps, write_summary
from ._run import Session, resume_from_disk, start
from ._schema import TrainConfig

KIND = _run.TRAIN
PPO_NUM_STEPS = 128
#: the action kinds each algorithm handles, and the algorithms for the other kind
ACTIONS = {"dqn": "discrete", "sac": "continuous", "pqn": "discrete", "c51": "discrete"}


@dataclasses.dataclass
class RLSetup(_run.Setup):
    config: TrainConfig

    def header(self) -> str:
        return (
            f"realax train: {self.config.algo} on {describe_env(self.trainer.env)}, "
            f"{self.trainer.train_steps} train steps"
        )


def check_actions(algo: str, env: Any) -> None:
    """DQN, PQN and C51 need discrete actions, SAC continuous ones: say so before building a
    trainer."""
    needed = ACTIONS.get(algo)
    have = "discrete" if env.discrete else "continuous"
    if needed is None or needed == have:
        return
    others = [a for a in ("dqn", "ppo", "sac") if a != algo and ACTIONS.get(a, have) == have]
    raise CliError(
        f"{algo.upper()} needs {needed} actions; {env.name} has {have} actions: use "
        + " or ".join(f"`realax train {a} {env.name}`" for a in others)
    )


def dqn_settings(steps: int) -> dict[str, Any]:
    """The trainer settings of ``realax train dqn`` (tests/test_rl_learning.py measures them):
    every 256 environment steps an update phase of 128 gradient steps on minibatches of 64,
    epsilon from 1.0 to 0.04 over the first 16% of the run. With one Huber update per step
    the Q-values of CartPole diverged (to ~1e7 at 50,000 steps; greedy return 9.4)."""
    import optax

    return {
        "train_freq": 256,
        "gradient_steps": 128,
        "batch_size": 64,
        "epsilon": optax.linear_schedule(1.0, 0.04, max(1, int(0.16 * steps))),
    }


def sac_settings() -> dict[str, Any]:
    """The trainer settings of ``realax train sac`` (tests/test_rl_learning.py measures them):
    every 50 environment steps an update phase of 50 gradient steps on minibatches of 256 (one
    update per environment step, as with ``train_freq=1``, but a train step, a metrics row and
    a host call per 50 environment steps instead of per step: the 30,000-step default wrote
    30,000 rows). Pendulum: greedy -146 / -149 on seeds 0 / 1 at 30,000 steps."""
    return {"train_freq": 50, "gradient_steps": 50, "batch_size": 256}


def masked_env(env: Any, obs_keep: str) -> Any:
    """``--obs-keep 0,2``: the environment observing only those entries."""
    import realax.tasks as rt

    try:
        keep = [int(part) for part in obs_keep.split(",")]
        return rt.mask_observation(env, keep=keep)
    except (TypeError, ValueError) as e:
        raise CliError(
            f"--obs-keep takes comma-separated observation indices, e.g. --obs-keep 0,2 "
            f"(got {obs_keep!r}): {e}"
        ) from None


def recurrent_kwargs(config: TrainConfig) -> dict[str, Any]:
    """``--recurrent CELL``: RecurrentPPO with a ``--width`` cell and heads, ``--depth - 1``
    embedding layers before the cell."""
    if config.algo != "ppo":
        raise CliError(
            f"--recurrent needs ppo (a recurrent actor-critic); got `realax train "
            f"{config.algo}`: use `realax train ppo ... --recurrent {config.recurrent}` or "
            "drop --recurrent"
        )
    width = config.width
    return {
        "cell": config.recurrent,
        "hidden_size": width,
        "hidden_dims": (width,) * (config.depth - 1),
        "head_dims": (width,),
    }


def build(config: TrainConfig, *, eval_episodes: int | None = None, devices=None) -> RLSetup:
    """The RL trainer of a ``train`` configuration (its defaults already filled in)."""
    from realax.agents import C51, DQN, PPO, PQN, SAC, RecurrentPPO
    from realax.train.rl import OffPolicyTrainer, OnPolicyTrainer, PQNTrainer

    from ._evolve import make_env

    algo = str(config.algo)
    env = make_env(str(config.env))  # unknown names, missing extras: one line
    check_actions(algo, env)
    env_arg: Any = config.env if not config.obs_keep else masked_env(env, config.obs_keep)
    agent_kwargs: dict[str, Any] = {"hidden_dims": (config.width,) * config.depth}
    if config.recurrent:
        agent_kwargs = recurrent_kwargs(config)
    if config.lr is not None:
        if algo == "sac":
            agent_kwargs.update(actor_lr=config.lr, critic_lr=config.lr)
        else:
            agent_kwargs["learning_rate"] = config.lr
    common: dict[str, Any] = {
        "total_env_steps": config.steps,
        "num_envs": config.num_envs,
        "agent_kwargs": agent_kwargs,
        "env_kwargs": {"max_steps": config.max_steps} if config.max_steps else None,
        "eval_episodes": eval_episodes or config.eval_episodes,
        "n_devices": devices or config.devices,
        "normalize_obs": bool(config.normalize_obs),
        "normalize_reward": bool(config.normalize_reward),
    }
    trainer: Any
    try:
        if algo == "ppo":
            trainer = OnPolicyTrainer(
                RecurrentPPO if config.recurrent else PPO,
                env_arg,
                num_steps=PPO_NUM_STEPS,
                anneal_lr=True,
                **common,
            )
        elif algo == "pqn":
            trainer = PQNTrainer(PQN, env_arg, anneal_lr=True, **common)
        else:
            q_learning = algo in ("dqn", "c51")
            trainer = OffPolicyTrainer(
                {"dqn": DQN, "c51": C51}.get(algo, SAC),
                env_arg,
                learning_starts=int(config.learning_starts or 0),
                buffer_size=int(config.buffer_size or 1),
                **(dqn_settings(int(config.steps or 0)) if q_learning else sac_settings()),
                **common,
            )
    except (ValueError, TypeError) as e:
        raise CliError(in_flag_words(str(e))) from None
    return RLSetup(config, trainer, jax.random.key(config.seed))


def finish(setup: RLSetup, run_dir: Path, session: Session) -> int:
    import realax.log as rlog

    config, trainer, state = setup.config, setup.trainer, session.state
    save_pytree(run_dir / POLICY_FILE, trainer.policy(state))
    rows = rlog.read_metrics(run_dir)
    returns = [r["episode_return"] for r in rows if _finite(r.get("episode_return"))]
    shown = [m for m in ("episode_return", "eval_return") if rows and m in rows[-1]]
    png = draw_curves(run_dir, shown, f"{trainer.env.name}: {str(config.algo).upper()}")
    wandb_dirs = wandb_run_dirs(run_dir)
    total = int(state.step)
    summary = {
        "command": "train",
        "algo": config.algo,
        "env": trainer.env.name,
        "suite": trainer.env.suite,
        "train_steps": total,
        "env_steps": int(state.env_steps),
        "requested": config.steps,
        "session_start": session.start,
        "eval_return_mean": float(state.eval_return),
        "eval_episodes": trainer.eval_episodes,
        "last_episode_return": returns[-1] if returns else None,
        "seconds": round(session.seconds, 2),
        "checkpoints": checkpoint_steps(run_dir),
        "wandb_run": str(wandb_dirs[-1]) if wandb_dirs else None,
    }
    write_summary(run_dir, summary)
    print(
        table(
            [
                ("environment", describe_env(trainer.env)),
                (
                    "algorithm",
                    f"{config.algo}, {plural(int(config.num_envs or 1), 'env')}, "
                    f"hidden {config.width}x{config.depth}"
                    + (f", {config.recurrent} cell" if config.recurrent else ""),
                ),
                (
                    "steps",
                    f"{session.describe(total, 'train step')}; {summary['env_steps']} env steps",
                ),
                (
                    "policy",
                    f"greedy mean return {summary['eval_return_mean']:.1f} over "
                    f"{trainer.eval_episodes} episodes",
                ),
                (
                    "run folder",
                    f"{run_dir} (config.toml, metrics.jsonl, checkpoints "
                    f"{summary['checkpoints']}, {POLICY_FILE}, summary.json)",
                ),
                ("wandb run", summary["wandb_run"] or "off"),
                ("curves", str(png) if png else "-"),
            ],
            title=f"realax train {config.algo}: done",
        )
    )
    return 0


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and bool(np.isfinite(v))


# --------------------------------------------------------------------------- commands


def _metrics_fn() -> Any:
    from realax.train.rl import default_rl_metrics

    return default_rl_metrics


def train(config: TrainConfig) -> int:
    """``realax train``: a new run."""
    method = str(config.algo)
    return start(config, method, build, kind=KIND, metrics_fn=_metrics_fn, finish=finish)


def resume(config: TrainConfig, run_dir: Path) -> int:
    """``realax resume`` of a train run."""
    return resume_from_disk(
        build(config), run_dir, kind=KIND, metrics_fn=_metrics_fn(), finish=finish
    )


def eval_policy(
    config: TrainConfig, run_dir: Path, episodes: int, seed: int, build: Any = build
) -> int:
    """``realax eval`` of a train run: the saved agent (else the latest checkpoint's);
    ``build`` makes the setup (the offline commands pass theirs)."""
    setup = build(config, eval_episodes=episodes, devices=1)
    agent, source = setup.saved(run_dir)
    from realax.train import rl

    trainer = setup.trainer
    per_episode, _ = rl.evaluate(
        agent,
        trainer.eval_env,
        jax.random.key(seed),
        episodes=episodes,
        max_steps=trainer.eval_max_steps,
        action_fn=trainer.env_action,
    )
    returns = np.asarray(per_episode)
    print(returns_line(setup.trainer.env.name, returns, episodes, f"greedy; {source}"))
    return 0
