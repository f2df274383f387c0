"""``realax train bc|cql|iql|td3bc --dataset PATH ENV``: offline training, resume and eval.

The dataset is not part of the checkpoints (the `OfflineTrainer` holds it): config.toml
records its absolute path and the sha256 of the file, and ``realax resume`` / ``realax eval``
load it from there again, refusing a file that changed since the run started.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import jax

from . import _rl, _run
from ._common import describe_env, draw_curves, save_pytree, table, wandb_run_dirs
from ._config import CliError, in_flag_words
from ._folders import POLICY_FILE, checkpoint_steps, write_summary
from ._run import Session, resume_from_disk, start
from ._schema import TrainConfig

#: the agents of each command and the kind of actions they take (None: either)
AGENTS = {"bc": None, "cql": "discrete", "iql": "continuous", "td3bc": "continuous"}
#: TD3+BC's weight of the Q term (Fujimoto & Gu, 2021)
TD3_BC_ALPHA = 2.5
#: learning rates measured in tests/test_offline_learning.py where the agent's default is slow
DEFAULT_LR = {"td3bc": 1e-3, "iql": 1e-3}
BATCH_SIZE = 256


@dataclasses.dataclass
class OfflineSetup(_run.Setup):
    config: TrainConfig

    def header(self) -> str:
        t = self.trainer
        return (
            f"realax train {self.config.algo}: offline on {self.config.dataset} "
            f"({t.dataset.size} transitions), evaluated on {describe_env(t.env)}, "
            f"{t.train_steps} gradient steps"
        )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_dataset(config: TrainConfig) -> tuple[Any, TrainConfig]:
    """The run's dataset, and ``config`` with its absolute path and checksum recorded."""
    from realax.agents import Dataset

    if not config.dataset:
        raise CliError(
            f"{config.algo} trains offline from a dataset: pass --dataset PATH (a file of "
            "Dataset.save, e.g. from realax.train.rl.collect(agent, env, key, 20_000))"
        )
    path = Path(config.dataset).expanduser().resolve()
    if not path.is_file():
        raise CliError(f"--dataset {config.dataset!r}: no such file")
    digest = file_sha256(path)
    if config.dataset_sha256 and config.dataset_sha256 != digest:
        raise CliError(
            f"the dataset {path} changed since this run started (sha256 {digest[:12]}..., "
            f"config.toml records {config.dataset_sha256[:12]}...); restore the original file, "
            "or start a new run on the new data"
        )
    try:
        dataset = Dataset.load(path)
    except ValueError as e:
        raise CliError(f"--dataset {str(path)!r}: {e}") from None
    return dataset, config.replace(dataset=path.as_posix(), dataset_sha256=digest)


def _agent(algo: str, discrete: bool, env_name: str) -> tuple[Any, dict[str, Any]]:
    import realax.agents as ra

    needed = AGENTS[algo]
    have = "discrete" if discrete else "continuous"
    if needed is not None and needed != have:
        fits = [a for a, kind in AGENTS.items() if kind in (None, have)]
        raise CliError(
            f"{algo} needs {needed} actions; {env_name} has {have} actions: use "
            + " or ".join(f"`realax train {a} --dataset ...`" for a in fits)
        )
    name = {"bc": "DiscreteBC" if discrete else "ContinuousBC", "cql": "CQL", "iql": "IQL"}
    agent = getattr(ra, name.get(algo, "TD3"), None)
    if agent is None:
        raise CliError(f"{algo}: realax.agents has no {name[algo]} in this installation")
    fixed: dict[str, dict[str, Any]] = {
        "td3bc": {"bc_alpha": TD3_BC_ALPHA},
        "iql": {"critic_layer_norm": True},
    }
    return agent, dict(fixed.get(algo, {}))


def _with_lr(agent: Any, kwargs: dict[str, Any], lr: float) -> dict[str, Any]:
    """``lr`` for every learning rate of the agent's config (``learning_rate``, ``*_lr``)."""
    import realax.agents as ra

    config = getattr(ra, f"{agent.__name__}Config", None)
    names = [f.name for f in dataclasses.fields(config)] if config else ["learning_rate"]
    rates = [n for n in names if n == "learning_rate" or n.endswith("_lr")]
    return {**kwargs, **dict.fromkeys(rates or ["learning_rate"], lr)}


def build(config: TrainConfig, *, eval_episodes: int | None = None, devices=None) -> OfflineSetup:
    """The `OfflineTrainer` of an offline ``train`` configuration."""
    from realax.train.rl import OfflineTrainer

    from ._evolve import make_env

    algo = str(config.algo)
    env = make_env(str(config.env))  # unknown names, missing extras: one line
    dataset, config = load_dataset(config)
    agent, kwargs = _agent(algo, bool(env.discrete), env.name)
    kwargs["hidden_dims"] = (config.width,) * config.depth
    lr = config.lr if config.lr is not None else DEFAULT_LR.get(algo)
    if lr is not None:
        kwargs = _with_lr(agent, kwargs, lr)
    try:
        trainer = OfflineTrainer(
            agent,
            dataset,
            config.env,
            train_steps=int(config.steps or 1),
            batch_size=min(BATCH_SIZE, dataset.size),
            eval_episodes=eval_episodes or config.eval_episodes,
            env_kwargs={"max_steps": config.max_steps} if config.max_steps else None,
            agent_kwargs=kwargs,
            n_devices=devices or config.devices,
        )
    except (ValueError, TypeError, KeyError) as e:
        text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        raise CliError(f"--dataset {config.dataset}: {in_flag_words(str(text))}") from None
    return OfflineSetup(config, trainer, jax.random.key(config.seed))


def finish(setup: OfflineSetup, run_dir: Path, session: Session) -> int:
    config, trainer, state = setup.config, setup.trainer, session.state
    save_pytree(run_dir / POLICY_FILE, state.agent)
    png = draw_curves(run_dir, ["eval_return"], f"{trainer.env.name}: {str(config.algo).upper()}")
    wandb_dirs = wandb_run_dirs(run_dir)
    summary = {
        "command": "train",
        "algo": config.algo,
        "env": trainer.env.name,
        "suite": trainer.env.suite,
        "train_steps": int(state.step),
        "dataset": config.dataset,
        "dataset_size": trainer.dataset.size,
        "requested": config.steps,
        "session_start": session.start,
        "eval_return_mean": float(state.eval_return),
        "eval_episodes": trainer.eval_episodes,
        "seconds": round(session.seconds, 2),
        "checkpoints": checkpoint_steps(run_dir),
        "wandb_run": str(wandb_dirs[-1]) if wandb_dirs else None,
    }
    write_summary(run_dir, summary)
    rows = [
        ("environment", describe_env(trainer.env)),
        ("dataset", f"{config.dataset} ({trainer.dataset.size} transitions)"),
        ("steps", session.describe(int(state.step), "gradient step")),
        (
            "policy",
            f"greedy mean return {summary['eval_return_mean']:.1f} over "
            f"{trainer.eval_episodes} episodes",
        ),
        ("run folder", f"{run_dir} (config.toml, metrics.jsonl, checkpoints, {POLICY_FILE})"),
        ("wandb run", summary["wandb_run"] or "off"),
        ("curves", str(png) if png else "-"),
    ]
    print(table(rows, title=f"realax train {config.algo}: done"))
    return 0


def train(config: TrainConfig) -> int:
    """``realax train bc|cql|iql|td3bc``: a new offline run."""
    method = str(config.algo)
    return start(config, method, build, kind=_rl.KIND, metrics_fn=_rl._metrics_fn, finish=finish)


def resume(config: TrainConfig, run_dir: Path) -> int:
    """``realax resume`` of an offline run (the dataset from config.toml, checksum verified)."""
    return resume_from_disk(
        build(config), run_dir, kind=_rl.KIND, metrics_fn=_rl._metrics_fn(), finish=finish
    )


def eval_policy(config: TrainConfig, run_dir: Path, episodes: int, seed: int) -> int:
    """``realax eval`` of an offline run: as for the online ones."""
    return _rl.eval_policy(config, run_dir, episodes, seed, build=build)
