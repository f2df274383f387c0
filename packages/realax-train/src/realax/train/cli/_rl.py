"""``realax train ppo|dqn|sac`` and the RL part of ``resume`` / ``eval``."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._common import (
    INTERRUPTED,
    POLICY_FILE,
    Progress,
    StopRequest,
    check_fresh,
    checkpoint_steps,
    draw_curves,
    finished,
    load_pytree,
    make_logger,
    read_summary,
    run_chunks,
    run_folder,
    save_config,
    save_pytree,
    table,
    wandb_run_dirs,
    write_summary,
)
from ._config import CliError

#: per-algorithm defaults of the keys left unset (None) in the configuration
ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    # a train step is num_envs x 128 environment steps
    "ppo": {"steps": 204_800, "num_envs": 8, "ckpt_freq": 20},
    # a train step is num_envs environment steps (and one update once learning started)
    "dqn": {"steps": 50_000, "num_envs": 1, "ckpt_freq": 5_000},
    "sac": {"steps": 30_000, "num_envs": 1, "ckpt_freq": 5_000},
}
PPO_NUM_STEPS = 128


@dataclasses.dataclass
class RLSetup:
    config: dict[str, Any]
    trainer: Any
    key: jax.Array

    def initial_state(self) -> Any:
        return self.trainer.initialize(jax.random.fold_in(self.key, 1))


def with_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """The configuration with the algorithm's defaults filled in."""
    out = dict(config)
    for k, v in ALGO_DEFAULTS[config["algo"]].items():
        if out.get(k) is None:
            out[k] = v
    return out


def build(config: dict[str, Any], *, eval_episodes: int | None = None, devices=None) -> RLSetup:
    """The RL trainer of a ``train`` configuration (defaults filled in)."""
    from realax.agents import DQN, PPO, SAC
    from realax.train.rl import OffPolicyTrainer, OnPolicyTrainer

    from ._evolve import make_env

    config = with_defaults(config)
    algo = config["algo"]
    make_env(config["env"])  # unknown names and missing extras: one-line errors
    hidden = (config["width"],) * config["depth"]
    agent_kwargs: dict[str, Any] = {"hidden_dims": hidden}
    if config["lr"] is not None:
        if algo == "sac":
            agent_kwargs.update(actor_lr=config["lr"], critic_lr=config["lr"])
        else:
            agent_kwargs["learning_rate"] = config["lr"]
    env_kwargs = {"max_steps": config["max_steps"]} if config["max_steps"] else None
    common = {
        "total_env_steps": config["steps"],
        "num_envs": config["num_envs"],
        "agent_kwargs": agent_kwargs,
        "env_kwargs": env_kwargs,
        "eval_episodes": eval_episodes or config["eval_episodes"],
        "n_devices": devices or config["devices"],
    }
    try:
        if algo == "ppo":
            trainer = OnPolicyTrainer(
                PPO, config["env"], num_steps=PPO_NUM_STEPS, anneal_lr=True, **common
            )
        else:
            learning_starts = min(1_000, config["steps"] // 10)
            trainer = OffPolicyTrainer(
                DQN if algo == "dqn" else SAC,
                config["env"],
                learning_starts=learning_starts,
                batch_size=128 if algo == "dqn" else 256,
                buffer_size=min(100_000, config["steps"]),
                **common,
            )
    except (ValueError, TypeError) as e:
        raise CliError(" ".join(str(e).split())) from None
    return RLSetup(config, trainer, jax.random.key(config["seed"]))


def _describe(trainer: Any) -> str:
    env = trainer.env
    kind = "discrete" if env.discrete else "continuous"
    return f"{env.name} ({env.suite}; obs {env.spec.obs_dims}, {env.action_dims} {kind} actions)"


def run(setup: RLSetup, run_dir: Path, state: Any, *, resumed: bool) -> int:
    """Train from ``state`` to the trainer's ``train_steps``, checkpointing as it goes."""
    from realax.train.rl import default_rl_metrics

    config, trainer = setup.config, setup.trainer
    total, start = trainer.train_steps, int(state.step)
    if start > total:
        raise CliError(
            f"the checkpoint in {run_dir} is at train step {start}, beyond this run's {total} "
            "train steps; pass a larger --steps"
        )
    print(
        f"realax train: {config['algo']} on {_describe(trainer)}, {total} train steps "
        f"({config['steps']} env steps) -> {run_dir}",
        file=sys.stderr,
        flush=True,
    )
    logger = make_logger(run_dir, config, default_rl_metrics, resumed=resumed)
    progress = Progress(
        logger,
        total,
        start,
        f"{config['algo']} {trainer.env.name}",
        ("episode_return", "eval_return"),
        "step",
    )
    trainer.logger = progress
    t0 = time.perf_counter()
    with StopRequest() as stop:
        try:
            state = run_chunks(trainer, state, total, config["ckpt_freq"], stop)
            step = int(state.step)
        finally:
            progress.close()
            logger.finish()
        seconds = time.perf_counter() - t0
        if step < total:
            print(
                f"realax: interrupted at train step {step}/{total}; checkpoint saved in "
                f"{run_dir.as_posix()}.\nContinue with: realax resume {run_dir.as_posix()}",
                file=sys.stderr,
            )
            return INTERRUPTED
        return finish(setup, run_dir, state, seconds)


def finish(setup: RLSetup, run_dir: Path, state: Any, seconds: float) -> int:
    import realax.log as rlog

    config, trainer = setup.config, setup.trainer
    save_pytree(run_dir / POLICY_FILE, state.agent)
    rows = rlog.read_metrics(run_dir)
    returns = [r["episode_return"] for r in rows if _finite(r.get("episode_return"))]
    png = draw_curves(
        run_dir, [m for m in ("episode_return", "eval_return") if rows and m in rows[-1]]
    )
    wandb_dirs = wandb_run_dirs(run_dir)
    summary = {
        "command": "train",
        "algo": config["algo"],
        "env": trainer.env.name,
        "suite": trainer.env.suite,
        "train_steps": int(state.step),
        "env_steps": int(state.env_steps),
        "eval_return_mean": float(state.eval_return),
        "eval_episodes": trainer.eval_episodes,
        "last_episode_return": returns[-1] if returns else None,
        "seconds": round(seconds, 2),
        "checkpoints": checkpoint_steps(run_dir),
        "wandb_run": str(wandb_dirs[-1]) if wandb_dirs else None,
    }
    write_summary(run_dir, summary)
    print(
        table(
            [
                ("environment", _describe(trainer)),
                (
                    "algorithm",
                    f"{config['algo']}, {config['num_envs']} envs, hidden {config['width']}x"
                    f"{config['depth']}",
                ),
                (
                    "steps",
                    f"{summary['train_steps']} train steps, {summary['env_steps']} env steps in "
                    f"{seconds:.1f} s",
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
            title=f"realax train {config['algo']}: done",
        )
    )
    return 0


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and np.isfinite(v)


# --------------------------------------------------------------------------- commands


def train(config: dict[str, Any]) -> int:
    """``realax train``: a new run."""
    config = with_defaults(config)
    run_dir = run_folder(config, config["algo"])
    check_fresh(run_dir)
    setup = build(config)
    setup.config = config = {**config, "out": run_dir.as_posix()}
    save_config(run_dir, config)
    return run(setup, run_dir, setup.initial_state(), resumed=False)


def restore_latest(setup: RLSetup, run_dir: Path) -> Any:
    import realax.log as rlog

    like = setup.initial_state()
    if not checkpoint_steps(run_dir):
        return like
    return rlog.restore(run_dir, like=like)


def resume(config: dict[str, Any], run_dir: Path) -> int:
    """``realax resume`` of a train run."""
    setup = build(config)
    state = restore_latest(setup, run_dir)
    step, total = int(state.step), setup.trainer.train_steps
    if step >= total and finished(run_dir):
        summary = read_summary(run_dir)
        print(
            f"{run_dir} is finished ({step} train steps; greedy mean return "
            f"{summary.get('eval_return_mean', float('nan')):.1f}). Evaluate it with "
            f"`realax eval {run_dir.as_posix()}`."
        )
        return 0
    print(f"realax resume: {run_dir} from train step {step}/{total}", file=sys.stderr)
    save_config(run_dir, config)
    return run(setup, run_dir, state, resumed=True)


def eval_policy(config: dict[str, Any], run_dir: Path, episodes: int, seed: int) -> int:
    """``realax eval`` of a train run: the saved agent (else the latest checkpoint's)."""
    setup = build(config, eval_episodes=episodes, devices=1)
    trainer = setup.trainer
    path = run_dir / POLICY_FILE
    if path.is_file():
        agent = load_pytree(path, setup.initial_state().agent)
        source = POLICY_FILE
    elif checkpoint_steps(run_dir):
        state = restore_latest(setup, run_dir)
        agent, source = state.agent, f"checkpoint at train step {int(state.step)}"
    else:
        raise CliError(f"{run_dir} holds neither {POLICY_FILE} nor a checkpoint to evaluate")
    evaluate = jax.jit(lambda a, k: trainer._evaluate(a, k, jnp.asarray(True), None))
    mean_return, mean_length = evaluate(agent, jax.random.key(seed))
    print(
        f"{trainer.env.name}: mean return {float(mean_return):.2f} over {episodes} greedy "
        f"episodes (mean length {float(mean_length):.1f}; {source})"
    )
    return 0
