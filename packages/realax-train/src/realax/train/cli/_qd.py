"""``realax qd`` and the QD part of ``resume`` / ``eval``: QDTrainer on the maze or an env."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _run
from ._common import describe_env, draw_curves, returns_line, save_pytree, table, wandb_run_dirs
from ._config import CliError, in_flag_words
from ._folders import POLICY_FILE, checkpoint_steps, write_summary
from ._qd_schema import QDConfig, parse_floats
from ._run import Kind, Session, resume_from_disk, saved_policy, start

KIND = Kind("qd", "iteration", "--iterations")
REPERTOIRE_FILE = "repertoire.png"
PLOT_METRICS = ("coverage", "qd_score", "max_fitness")
#: descriptor, observation entries and bounds of environments that need no flags
ENV_DESCRIPTORS: dict[str, tuple[str, tuple[int, ...], tuple[list, list], list[str]]] = {
    "CartPole-v1": ("mean_obs", (0, 2), ([-2.4, -0.21], [2.4, 0.21]), ["cart x", "pole angle"]),
    "MountainCarContinuous-v0": (
        "mean_obs",
        (0, 1),
        ([-1.2, -0.07], [0.6, 0.07]),
        ["position", "velocity"],
    ),  # fmt: skip
    "Pendulum-v1": ("mean_obs", (0, 1), ([-1.0, -1.0], [1.0, 1.0]), ["cos theta", "sin theta"]),
}
MAZE_QD_OFFSET = 1.5  # the maze's fitness (-distance to the goal) is > -sqrt(2)


@dataclasses.dataclass
class Setup(_run.Setup):
    """A QD run rebuilt identically from its configuration."""

    config: QDConfig
    task: Any
    params_like: Any
    env: Any = None  # None: the maze
    env_task: Any = None
    names: list[str] = dataclasses.field(default_factory=lambda: ["x", "y"])

    @property
    def task_name(self) -> str:
        return "maze" if self.env is None else self.env.name

    def header(self) -> str:
        what = "maze (2-D point robot)" if self.env is None else describe_env(self.env)
        t = self.trainer
        return (
            f"realax qd: {what}, {t.emitter_name}, batch {t.batch_size}, {t.num_centroids} "
            f"cells, {t.num_dims} parameters"
        )


def _env_descriptor(config: QDConfig, env: Any) -> tuple[str, tuple[int, ...], Any, list[str]]:
    known = ENV_DESCRIPTORS.get(env.name)
    if known is None and (config.obs_indices is None or config.bounds is None):
        raise CliError(
            f"qd on {env.name} needs its descriptor: --obs-indices I,J and --bounds LO:HI (e.g. "
            f"--obs-indices 0,1 --bounds -1,-1:1,1); {', '.join(ENV_DESCRIPTORS)} have defaults"
        )
    descriptor, indices, bounds, names = known or ("mean_obs", (), None, [])
    if config.descriptor is not None:
        descriptor = config.descriptor
    if config.obs_indices is not None:
        indices = tuple(int(i) for i in parse_floats("obs_indices", config.obs_indices))
        names = [f"obs {i}" for i in indices]
    if config.bounds is not None:
        lo, _, hi = config.bounds.partition(":")
        bounds = (parse_floats("bounds", lo), parse_floats("bounds", hi))
    return descriptor, indices, bounds, names


def _env_task(config: QDConfig, key: jax.Array) -> dict[str, Any]:
    import realax.tasks as rt

    from . import _evolve

    env = _evolve.make_env(str(config.env))
    policy = rt.MLPPolicy.from_env(env, width=config.width, depth=config.depth)
    env_task = rt.EnvTask(env, policy=policy, max_steps=config.max_steps or env.max_steps)
    descriptor, indices, bounds, names = _env_descriptor(config, env)
    task = rt.DescriptorTask(env_task, descriptor, bounds, obs_indices=indices)
    example = jnp.zeros(env.obs_shape, env.spec.obs_dtype)
    params, _ = rt.make_model_factory(policy, example, jax.random.fold_in(key, 0))
    return {"task": task, "params_like": params, "env": env, "env_task": env_task, "names": names}


def build(config: QDConfig) -> Setup:
    """Task and trainer of a ``qd`` configuration."""
    import realax.tasks as rt
    from realax.train import QDTrainer

    key = jax.random.key(config.seed)
    try:
        if config.env == "maze":
            maze = rt.MazeTask(n_steps=config.maze_steps)
            parts: dict[str, Any] = {"task": maze, "params_like": maze.params_like}
            offset = MAZE_QD_OFFSET
        else:
            parts, offset = _env_task(config, key), 0.0
        trainer = QDTrainer(
            config.iterations,
            parts["task"],
            parts["params_like"],
            emitter=config.emitter,
            batch_size=config.batch_size,
            grid_shape=None if config.cvt else config.grid,
            num_centroids=config.cvt,
            centroid_seed=config.seed,
            init_std=config.init_std,
            iso_sigma=config.iso_sigma,
            line_sigma=config.line_sigma,
            sigma_g=config.sigma_g,
            qd_offset=offset if config.qd_offset is None else config.qd_offset,
            n_devices=config.devices,
        )
    except (ValueError, TypeError) as e:
        raise CliError(in_flag_words(str(e))) from None
    return Setup(config, trainer, key, **parts)


def _best_return(setup: Setup, params: Any, episodes: int, key: jax.Array) -> np.ndarray:
    """The best elite's returns over ``episodes`` episodes (the maze: its one fitness)."""
    if setup.env_task is None:
        return np.asarray([float(setup.task(params, key)[0])])
    from ._evolve import evaluate

    return evaluate(setup.env_task, params, None, key, episodes)


def finish(setup: Setup, run_dir: Path, session: Session) -> int:
    """Best elite as the policy, repertoire heat map, curves, summary and the summary table."""
    import realax.log as rlog

    config, state, trainer = setup.config, session.state, setup.trainer
    best = state.best_params
    save_pytree(run_dir / POLICY_FILE, {"params": best})
    returns = _best_return(setup, best, config.eval_episodes, jax.random.fold_in(setup.key, 2))
    title = f"{setup.task_name}: {trainer.emitter_name}"
    repertoire = rlog.plot_repertoire(
        state.repertoire,
        run_dir / REPERTOIRE_FILE,
        descriptor_bounds=trainer.descriptor_bounds,
        descriptor_names=setup.names,
        title=f"{title}, iteration {int(state.step)}",
        segments=None if setup.env is not None else setup.task.walls[:-4].tolist(),  # no border
    )
    png = draw_curves(run_dir, PLOT_METRICS, title)
    metrics = jax.device_get(trainer.repertoire_metrics(state))
    wandb_dirs = wandb_run_dirs(run_dir)
    summary = {
        "command": "qd",
        "env": setup.task_name,
        "emitter": trainer.emitter_name,
        "train_steps": int(state.step),
        "requested": config.iterations,
        "session_start": session.start,
        "batch_size": trainer.batch_size,
        "num_cells": trainer.num_centroids,
        "num_params": trainer.num_dims,
        **{k: float(metrics[k]) for k in ("coverage", "qd_score", "max_fitness")},
        "eval_episodes": int(returns.size),
        "eval_return_mean": float(returns.mean()),
        "seconds": round(session.seconds, 2),
        "checkpoints": checkpoint_steps(run_dir),
        "wandb_run": str(wandb_dirs[-1]) if wandb_dirs else None,
    }
    write_summary(run_dir, summary)
    what = "its fitness (-distance to the goal)" if setup.env is None else "mean return"
    rows = [
        ("task", setup.header().removeprefix("realax qd: ")),
        ("iterations", session.describe(int(state.step), "iteration")),
        ("coverage", f"{summary['coverage']:.1f} % of {trainer.num_centroids} cells"),
        ("qd score", f"{summary['qd_score']:.4g} (offset {trainer.qd_offset:g})"),
        ("best elite", f"{what} {summary['eval_return_mean']:.4g}, saved as {POLICY_FILE}"),
        ("run folder", f"{run_dir} (config.toml, metrics.jsonl, checkpoints, summary.json)"),
        ("repertoire", str(repertoire)),
        ("curves", str(png) if png else "-"),
        ("wandb run", summary["wandb_run"] or "off"),
    ]
    print(table(rows, title="realax qd: done"))
    return 0


def _metrics_fn() -> Any:
    import realax.log as rlog

    return rlog.default_es_metrics  # every scalar metric; the whole state checkpointed


def qd(config: QDConfig) -> int:
    """``realax qd``: a new run."""
    return start(config, config.emitter, build, kind=KIND, metrics_fn=_metrics_fn, finish=finish)


def resume(config: QDConfig, run_dir: Path) -> int:
    """``realax resume`` of a qd run."""
    return resume_from_disk(
        build(config), run_dir, kind=KIND, metrics_fn=_metrics_fn(), finish=finish
    )


def eval_policy(config: QDConfig, run_dir: Path, episodes: int, seed: int) -> int:
    """``realax eval`` of a qd run: the best elite (policy.msgpack, else the checkpoint's)."""
    setup = build(config.replace(devices=1))
    saved, source = saved_policy(
        setup,
        run_dir,
        KIND,
        like=lambda: {"params": setup.params_like},
        of_state=lambda s: {"params": s.best_params},
        part="best elite",
    )
    returns = _best_return(setup, saved["params"], episodes, jax.random.key(seed))
    if setup.env is None:
        print(f"maze: best elite fitness {float(returns[0]):.4f} (-distance to the goal; {source})")
    else:
        print(returns_line(setup.env.name, returns, episodes, source))
    return 0
