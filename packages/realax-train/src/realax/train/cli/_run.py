"""Running a trainer to the end of its run: new runs, resumed runs, Ctrl-C.

The compiled run is ONE ``trainer.resume(state, logger=..., progress_bar=True)`` call: the
trainer shows its progress bar and enters the Logger's interrupt guard, which checkpoints the
next step on the first Ctrl-C (or SIGTERM) and stops the run with ``KeyboardInterrupt`` (or
``realax.log.Terminated``); this module turns that into the command's message and exit status.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._common import load_pytree, make_logger, plural
from ._config import CliError
from ._folders import POLICY_FILE, check_fresh, checkpoint_steps, run_folder, save_config

INTERRUPTED = 130


@dataclasses.dataclass(frozen=True)
class Kind:
    """What the steps of a command are called and which key sets their number."""

    command: str  # "evolve" or "train"
    noun: str  # "generation" or "train step"
    total_flag: str  # "--generations" or "--steps"


TRAIN = Kind("train", "train step", "--steps")


@dataclasses.dataclass
class Setup:
    """What both commands build from a configuration (``_evolve.Setup``, ``_rl.RLSetup``)."""

    config: Any  # EvolveConfig or TrainConfig
    trainer: Any
    key: Any  # the run's PRNG key

    def initial_state(self) -> Any:
        """The trainer's state before the first step (from the run's key)."""
        import jax

        return self.trainer.initialize(jax.random.fold_in(self.key, 1))

    def header(self) -> str:
        """The line printed when a new run starts."""
        raise NotImplementedError

    def saved(self, run_dir: Path) -> tuple[Any, str]:
        """``(policy, source)``: the run's policy.msgpack, else its newest checkpoint's; here
        the policy of an RL run: its agent, or with ``--normalize-obs`` the agent with its
        observation statistics (``trainer.policy``; ``_evolve.Setup`` overrides this).
        ``realax eval`` / ``render`` / ``collect``."""
        policy = getattr(self.trainer, "policy", lambda state: state.agent)
        return saved_policy(
            self, run_dir, TRAIN, like=lambda: policy(self.initial_state()), of_state=policy
        )


@dataclasses.dataclass(frozen=True)
class Session:
    """The end of one command's part of a run: the final state, where it started, how long."""

    state: Any
    start: int
    seconds: float
    #: the run's Logger, still open (its checkpoints complete) until ``_end`` finishes it
    logger: Any = None

    def describe(self, total: int, noun: str) -> str:
        """The length of the run and of this session.

        >>> Session(None, start=40, seconds=7.9).describe(120, "generation")
        '120 generations, 80 of them in this session, in 7.9 s'
        """
        if self.start == 0:
            return f"{plural(total, noun)} in {self.seconds:.1f} s"
        return (
            f"{plural(total, noun)}, {total - self.start} of them in this session, in "
            f"{self.seconds:.1f} s"
        )


def restore_latest(setup: Setup, run_dir: Path) -> Any:
    """The newest checkpoint of a run, or the initial state if there is none."""
    import realax.log as rlog

    like = setup.initial_state()
    if not checkpoint_steps(run_dir):
        return like
    return rlog.restore(run_dir, like=like)


def saved_policy(
    setup: Setup,
    run_dir: Path,
    kind: Kind,
    *,
    like: Callable[[], Any],
    of_state: Callable[[Any], Any],
    part: str = "",
) -> tuple[Any, str]:
    """What ``realax eval`` evaluates, and where it comes from: policy.msgpack read into the
    structure ``like()``, else ``of_state`` of the newest checkpoint (``part`` of it)."""
    path = run_dir / POLICY_FILE
    if path.is_file():
        return load_pytree(path, like()), POLICY_FILE
    if not checkpoint_steps(run_dir):
        raise CliError(f"{run_dir} holds neither {POLICY_FILE} nor a checkpoint to evaluate")
    state = restore_latest(setup, run_dir)
    source = f"checkpoint at {kind.noun} {int(state.step)}"
    return of_state(state), (f"{part} of the {source}" if part else source)


def drive(
    setup: Setup, run_dir: Path, state: Any, *, kind: Kind, metrics_fn: Any, resumed: bool
) -> Session | None:
    """Run from ``state`` to the trainer's last step; None if a signal stopped the run."""
    trainer = setup.trainer
    total, start = trainer.train_steps, int(state.step)
    if start > total:
        raise CliError(
            f"the checkpoint in {run_dir} is at {kind.noun} {start}, beyond this run's {total}; "
            f"pass {kind.total_flag} with a larger value"
        )
    t0 = time.perf_counter()
    logger = None
    if start < total:
        logger = make_logger(run_dir, setup.config, metrics_fn, resumed=resumed)
        try:
            # one compiled call; the loops strip weak types, call logger.on_run_end (the final
            # step is checkpointed) and run under the Logger's interrupt guard
            state, _ = trainer.resume(state, logger=logger, progress_bar=True)
        except KeyboardInterrupt:
            _stopped(logger, run_dir, kind, total)
            return None
        except SystemExit:  # realax.log.Terminated (SIGTERM): same message, status 143
            _stopped(logger, run_dir, kind, total)
            raise
        logger.wait()  # metrics and checkpoints on disk; the wandb run stays open for a video
    return Session(state, start, time.perf_counter() - t0, logger)


def _exit_at_once(signum: int, frame: Any) -> None:
    """After a stop, another Ctrl-C/SIGTERM ends the process at once (no traceback from
    whatever Python or JAX is doing on the way out; the checkpoints on disk stay complete)."""
    del frame
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(128 + signum)


def _stopped(logger: Any, run_dir: Path, kind: Kind, total: int) -> None:
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _exit_at_once)
    try:
        logger.finish()
    except (RuntimeError, OSError) as e:  # the checkpoints on disk stay complete
        print(f"realax: while stopping: {e}", file=sys.stderr)
    steps = checkpoint_steps(run_dir)
    shown = run_dir.as_posix()
    saved = (
        f"{kind.noun} {steps[-1]}/{total} is saved in {shown}"
        if steps
        else "no checkpoint was saved yet"
    )
    print(
        f"realax: interrupted; {saved}.\nContinue with: realax resume {shown}",
        file=sys.stderr,
        flush=True,
    )


Finish = Callable[[Any, Path, Session], int]


def _end(setup: Setup, run_dir: Path, session: Session | None, finish: Finish) -> int:
    if session is None:
        return INTERRUPTED
    try:
        status = finish(setup, run_dir, session)
        if status == 0 and getattr(setup.config, "render", False):  # rollout.gif, wandb.Video
            from . import _render

            _render.at_end(setup, run_dir, session.logger)
    finally:
        if session.logger is not None:
            session.logger.finish()
    return status


def _check_render(setup: Setup) -> None:
    """``--render`` (the default): a renderer that cannot work here fails now, not at the end."""
    if getattr(setup.config, "render", False):
        from . import _render

        if _render.env_of(setup) is not None:  # offline runs without an environment: no video
            _render.preflight(setup)


def start(
    config: Any,
    method: str,
    build: Callable[[Any], Setup],
    *,
    kind: Kind,
    metrics_fn: Callable[[], Any],
    finish: Finish,
) -> int:
    """A new run: its folder (never one holding a run), its setup, its header line,
    config.toml, the run from the initial state, then ``finish``. ``method`` names the
    default folder; ``metrics_fn()`` gives the Logger's metrics function."""
    run_dir = run_folder(config, method)
    check_fresh(run_dir)
    setup = build(config.replace(out=run_dir.as_posix()))
    _check_render(setup)
    print(setup.header(), flush=True)
    save_config(run_dir, setup.config)
    state = setup.initial_state()
    session = drive(setup, run_dir, state, kind=kind, metrics_fn=metrics_fn(), resumed=False)
    return _end(setup, run_dir, session, finish)


def resume_from_disk(
    setup: Setup, run_dir: Path, *, kind: Kind, metrics_fn: Any, finish: Finish
) -> int:
    """``realax resume``: restore the newest checkpoint, run to the end, finish."""
    _check_render(setup)
    state = restore_latest(setup, run_dir)
    step, total = int(state.step), setup.trainer.train_steps
    print(f"realax resume: {run_dir} from {kind.noun} {step}/{total}", file=sys.stderr, flush=True)
    save_config(run_dir, setup.config)
    session = drive(setup, run_dir, state, kind=kind, metrics_fn=metrics_fn, resumed=True)
    return _end(setup, run_dir, session, finish)
