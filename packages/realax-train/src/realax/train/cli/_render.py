"""Videos of a run's policy: ``realax render RUN``, ``--render`` of evolve / train / eval.

The renderer is checked before training (:func:`preflight`), the video is made after the
run's ``finish`` has saved the policy (:func:`at_end`): the saved policy (policy.msgpack, else
the newest checkpoint's), one episode, written by ``realax.tasks.render_rollout`` and, when
the run logs to wandb, added to its wandb run as a ``wandb.Video``. Standard library at import
(the parser imports this module).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from ._config import NONNEGATIVE, POSITIVE, CliError

ROLLOUT_FILE = "rollout.gif"


@dataclasses.dataclass(frozen=True)
class RenderArgs:
    """``realax render RUN_DIR``: the run, its saved configuration and the video's options."""

    command: str
    run: str
    saved: Any  # EvolveConfig or TrainConfig
    out: str | None = None
    seed: int = 0
    max_steps: int | None = None
    fps: int = 30

    @property
    def devices(self) -> int:
        return 1


def add_parser(sub: Any) -> None:
    """The ``render`` sub-command."""
    p = sub.add_parser(
        "render",
        help="write a video (GIF or MP4) of a run's policy",
        description="Roll out a run's saved policy (policy.msgpack, else the newest "
        "checkpoint's) for one episode and write it as a GIF (pillow) or MP4 (ffmpeg on PATH).",
    )
    p.add_argument("run", metavar="RUN_DIR", help="the run folder")
    p.add_argument("--out", metavar="PATH", help=f"video file (default: RUN_DIR/{ROLLOUT_FILE})")
    p.add_argument("--seed", metavar="S", default="0", help="seed of the episode (default: 0)")
    p.add_argument("--max-steps", metavar="N", help="step limit (default: the run's)")
    p.add_argument("--fps", metavar="F", default="30", help="frames per second (default: 30)")
    p.set_defaults(render_parser=True)


def add_eval_flag(parser: argparse.ArgumentParser) -> None:
    """``realax eval --render``: also write RUN_DIR/rollout.gif."""
    parser.add_argument(
        "--render", action="store_true", help=f"also write RUN_DIR/{ROLLOUT_FILE} of the policy"
    )


def resolve(given: dict[str, Any], saved: Any) -> RenderArgs:
    """The checked options of ``realax render``."""
    steps = given.get("max_steps")
    return RenderArgs(
        "render",
        given["run"],
        saved,
        out=given.get("out"),
        seed=NONNEGATIVE("seed", given.get("seed", "0")),
        max_steps=None if steps is None else POSITIVE("max-steps", steps),
        fps=POSITIVE("fps", given.get("fps", "30")),
    )


# --------------------------------------------------------------------------- hooks
def env_of(setup: Any) -> Any:
    """The run's environment (``None``: an offline run trained without one)."""
    env = getattr(setup, "env", None)
    return env if env is not None else getattr(setup.trainer, "env", None)


def preflight(
    setup: Any,
    path: str | Path = ROLLOUT_FILE,
    hint: str = ". Or pass --no-render to skip the video",
) -> None:
    """Before training: the environment can be rendered here, or a one-line error saying
    what to install or set (then ``hint``: that ``--no-render`` skips the video)."""
    import realax.tasks as rt

    if env_of(setup) is None:
        raise CliError("this run has no environment to render (it trained from a dataset only)")
    try:
        rt.check_render(env_of(setup), path)
    except (ImportError, RuntimeError, ValueError) as e:
        text = " ".join(str(e).split())
        raise CliError(text + hint, status=1) from None


def at_end(setup: Any, run_dir: Path, logger: Any = None) -> Path | None:
    """After a run's ``finish``: its rollout video, added to the still open wandb run of
    ``logger`` (a realax.log Logger) when it has one."""
    if env_of(setup) is None:
        return None
    t0 = time.perf_counter()
    path = write(setup, run_dir, run_dir / ROLLOUT_FILE)
    seconds = time.perf_counter() - t0
    logged = False
    if logger is not None and logger.run is not None:
        import realax.log as rlog

        try:
            logged = rlog.log_video(logger.run, path, key="rollout")
        except Exception as e:  # the video file stays; wandb trouble does not fail the run
            print(f"realax: could not add {path.name} to the wandb run: {e}", file=sys.stderr)
    where = "; in the wandb run as 'rollout'" if logged else ""
    print(f"realax: {path} ({seconds:.1f} s){where}", flush=True)
    return path


def write(
    setup: Any,
    run_dir: Path,
    path: Path,
    *,
    seed: int = 0,
    max_steps: int | None = None,
    fps: int = 30,
) -> Path:
    """One episode of the run's saved policy written to ``path``."""
    import jax

    key = jax.random.key(seed)
    if hasattr(setup, "task"):  # an evolve run: the task renders its own policy
        saved, _ = setup.saved(run_dir)
        task = setup.task
        steps = max_steps or task.max_steps
        return task.render(
            saved["params"], key, path, max_steps=steps, fps=fps, data=saved.get("data")
        )
    return _write_agent(setup, run_dir, path, key, max_steps, fps)


def _write_agent(setup: Any, run_dir: Path, path: Path, key: Any, max_steps, fps: int) -> Path:
    """A train run: the agent's greedy actions, as ``realax eval`` plays them."""
    import jax.numpy as jnp
    import realax.tasks as rt

    agent, _ = setup.saved(run_dir)
    trainer = setup.trainer

    def act(agent: Any, obs: Any, state: Any, key: Any) -> tuple[Any, Any]:
        batch = obs.astype(jnp.float32)[None]
        actions = agent.sample_actions(batch, seed=key, deterministic=True)
        return trainer.env_action(actions)[0], state

    steps = max_steps or getattr(trainer, "eval_max_steps", None)
    return rt.render_rollout(trainer.eval_env, act, agent, key, path, max_steps=steps, fps=fps)
