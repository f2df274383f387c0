"""The ``realax`` command line: evolve or train a policy on any registered environment.

Commands (``realax COMMAND --help`` for every option)::

    realax evolve ENV [--strategy NAME] [--popsize N] [--generations N] [--policy mlp|gru]
                      [--width W --depth D] [--eval-reps K] [--devices N] [--seed S]
                      [--wandb online|offline|off] [--ckpt-freq N] [--out DIR] [--config FILE]
    realax train ppo|dqn|sac|pqn|c51 ENV [...]
    realax qd [maze|ENV] [--emitter map_elites|cma_me] [--iterations N] [--batch-size N] [...]
    realax resume runs/<name>          # continue a stopped run from its latest checkpoint
    realax eval runs/<name> [--episodes N]
    realax plot runs/<name>
    realax sweep ppo|dqn|sac|evolve ENV --set NAME=V1,V2 [--set ...] [--seeds N] [...]
    realax report runs/<sweep>         # redraw a sweep's report.csv/json/png
    realax envs [--suite gymnax|brax|jumanji|craftax|xminigrid|navix|...]
    realax strategies

A run leaves in ``runs/<name>/``: ``config.toml`` (the resolved configuration, usable as
``--config``), ``metrics.jsonl``, checkpoints (the numbered folders), the wandb run
(``wandb/``), ``learning_curves.png``, and at the end ``policy.msgpack`` and ``summary.json``.
Bad input exits with status 2 and a one-line error; Ctrl-C (or SIGTERM) saves a checkpoint and
exits with status 130.

The command needs the ``cli`` extra: ``pip install "realax-train[cli]"``.

Example:
    >>> from realax.train.cli import main
    >>> main(["strategies"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from . import _quiet
from ._config import CliError
from ._parser import build_parser, split_args

__all__ = ["main"]

_ANNOUNCED = "_REALAX_CLI_ANNOUNCED"


def _ensure_devices(n: int, argv: Sequence[str] | None) -> None:
    """Make ``n`` devices available: on CPU, ask XLA for ``n`` host devices.

    XLA reads the request when JAX creates its backend; importing evosax already does that,
    so if the backend has too few CPU devices the command re-executes itself with
    ``XLA_FLAGS=--xla_force_host_platform_device_count=n`` (only when run as a command).
    """
    if n <= 1:
        return
    import jax

    if jax.device_count() >= n or jax.default_backend() != "cpu":
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if argv is not None or "xla_force_host_platform_device_count" in flags:
        return  # the trainer explains how to get more devices
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={n}".strip()
    env[_ANNOUNCED] = "1"  # the first line was printed before the re-execution
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "realax.train.cli", *sys.argv[1:]], env)


def _announce(config: Any) -> None:
    """The first line of a run, printed before JAX loads (which takes seconds)."""
    if os.environ.get(_ANNOUNCED):
        return
    from ._folders import run_folder
    from ._schema import EvolveConfig, RunArgs, TrainConfig

    if isinstance(config, EvolveConfig):
        what = f"{config.strategy}, popsize {config.popsize}, {config.generations} generations"
        line = f"realax evolve: {config.env}, {what} -> {run_folder(config, config.strategy)}"
    elif isinstance(config, TrainConfig):
        what = f"{config.algo}, {config.steps} {'gradient' if config.dataset else 'env'} steps"
        line = f"realax train: {config.env}, {what} -> {run_folder(config, str(config.algo))}"
    elif getattr(config, "command", None) == "qd":
        what = f"{config.emitter}, {config.iterations} iterations"
        line = f"realax qd: {config.env}, {what} -> {run_folder(config, config.emitter)}"
    elif getattr(config, "command", None) == "sweep":
        what = f"{config.of}, grid of {', '.join(config.space)}, {config.seeds} seeds each"
        line = f"realax sweep: {config.base.env}, {what}"
    elif isinstance(config, RunArgs) and config.command == "resume":
        line = f"realax resume: {config.run} ({config.saved.command} {config.saved.env})"
    else:
        return
    print(f"{line}; loading JAX...", flush=True)


def _fail(e: CliError) -> int:
    print(f"realax: error: {e}", file=sys.stderr)
    return e.status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``realax`` command line.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 for bad input (unknown environment, strategy or
        config key, a run folder that already holds a run, ...), 130 when interrupted (a
        checkpoint was saved; ``realax resume`` continues).

    Example:
        >>> main(["evolve", "CartPole-v1", "--generations", "5"])  # doctest: +SKIP
    """
    parser = build_parser()
    args, extras = parser.parse_known_args(None if argv is None else list(argv))
    command, given = split_args(args)
    try:
        from ._resolve import resolve, resume_extras

        if extras and command == "resume":
            raise resume_extras(given["run"], extras)
        if extras:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        config = resolve(command, given)
        _announce(config)
        _quiet.install()
        _ensure_devices(config.devices, argv)
    except CliError as e:
        return _fail(e)
    try:
        from . import _commands
    except ImportError as e:  # pragma: no cover - only without the cli extra
        print(
            f"realax: error: {e}. The command line needs its extra: "
            'pip install "realax-train[cli]"',
            file=sys.stderr,
        )
        return 1
    try:
        return _commands.run(config)
    except CliError as e:
        return _fail(e)
    except BrokenPipeError:  # e.g. `realax envs | head`
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        print(
            "\nrealax: aborted; checkpoints already on disk are complete (`realax resume RUN_DIR`"
            " continues from the latest one)",
            file=sys.stderr,
        )
        return 130


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the exit flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
