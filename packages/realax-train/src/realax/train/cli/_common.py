"""Pieces shared by the training commands: run folders, logger, progress bar, Ctrl-C, tables."""

from __future__ import annotations

import inspect
import json
import re
import signal
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from ._config import CliError, write_toml
from ._resolve import CONFIG_FILE

POLICY_FILE = "policy.msgpack"
SUMMARY_FILE = "summary.json"
PLOT_FILE = "learning_curves.png"
INTERRUPTED = 130


# --------------------------------------------------------------------------- run folders


def default_name(env: str, method: str, seed: int) -> str:
    """``<env>-<method>-s<seed>`` with characters unsafe in paths replaced."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{env}-{method}-s{seed}")


def run_folder(config: Mapping[str, Any], method: str) -> Path:
    """The run folder of a new run: ``--out``, else ``runs/<--name or default name>``."""
    if config.get("out"):
        return Path(config["out"]).expanduser()
    name = config.get("name") or default_name(config["env"], method, config["seed"])
    return Path("runs") / name


def checkpoint_steps(run_dir: Path) -> list[int]:
    """Steps of the complete checkpoints in a run folder (orbax's numbered folders)."""
    if not run_dir.is_dir():
        return []
    return sorted(int(p.name) for p in run_dir.iterdir() if p.is_dir() and p.name.isdigit())


def holds_run(run_dir: Path) -> bool:
    """True if ``run_dir`` holds (part of) a realax run."""
    if not run_dir.is_dir():
        return False
    files = (CONFIG_FILE, "metrics.jsonl", SUMMARY_FILE, POLICY_FILE, "config.json")
    return any((run_dir / f).exists() for f in files) or bool(checkpoint_steps(run_dir))


def check_fresh(run_dir: Path) -> None:
    """Refuse to start a run in a folder that already holds one (never overwrite silently)."""
    if holds_run(run_dir):
        shown = str(run_dir) if run_dir.is_absolute() else run_dir.as_posix()
        raise CliError(
            f"{shown} already holds a run; continue it with `realax resume {shown}`, or start "
            "a new run elsewhere with --out DIR or --name NAME (or delete the folder)"
        )


def save_config(run_dir: Path, config: Mapping[str, Any]) -> None:
    """Write the resolved configuration as ``config.toml`` (usable again as ``--config``)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    header = (
        "realax run configuration, written by the realax command line.\n"
        f"Continue the run: realax resume {run_dir.as_posix()}\n"
        "Start a new run like it: realax COMMAND --config config.toml --out OTHER_DIR"
    )
    write_toml(run_dir / CONFIG_FILE, config, header=header)


def finished(run_dir: Path) -> bool:
    return (run_dir / SUMMARY_FILE).is_file() and (run_dir / POLICY_FILE).is_file()


# --------------------------------------------------------------------------- logging


def make_logger(run_dir: Path, config: Mapping[str, Any], metrics_fn: Any, *, resumed: bool):
    """A realax.log Logger writing metrics, checkpoints and the wandb run into ``run_dir``."""
    import realax.log as rlog

    metrics = run_dir / "metrics.jsonl"
    if resumed and metrics.is_file() and metrics.stat().st_size:
        with metrics.open("rb+") as f:  # a killed run may have left half a line: end it
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                f.write(b"\n")
    mode = config["wandb"]
    options: dict[str, Any] = {}
    accepted = inspect.signature(rlog.Logger).parameters
    if "resume" in accepted:  # the folder is ours: a fresh run was checked by check_fresh
        options["resume"] = True
    if "checkpoint_on_interrupt" in accepted:  # Ctrl-C is handled here (StopRequest)
        options["checkpoint_on_interrupt"] = False
    logger = rlog.Logger(
        wandb_log=mode != "off",
        metrics_fn=metrics_fn,
        ckpt_dir=run_dir,
        ckpt_freq=config["ckpt_freq"],
        mode=None if mode == "off" else mode,
        **options,
    )
    name = run_dir.resolve().name
    kwargs: dict[str, Any] = {}
    if mode != "off":
        kwargs = {
            "name": name + ("-resumed" if resumed else ""),
            "dir": str(run_dir.resolve()),
            "group": name,
            "tags": ["realax-cli", config["command"]],
        }
    logger.init(project=config["project"], config=dict(config), **kwargs)
    return logger


def wandb_run_dirs(run_dir: Path) -> list[Path]:
    """The wandb run folders inside a run folder (``wandb/offline-run-*``, ``wandb/run-*``)."""
    root = run_dir / "wandb"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and "run-" in p.name)


# --------------------------------------------------------------------------- progress


class Progress:
    """A tqdm bar over the whole run, fed from inside the compiled loop.

    Wraps the run's logger: the trainer calls ``log(state, metrics)`` after every step; this
    forwards to the realax.log Logger and sends the step and the shown metrics to the bar with
    ``jax.debug.callback``.
    """

    def __init__(
        self, inner: Any, total: int, start: int, desc: str, shown: Sequence[str], unit: str
    ):
        self.inner = inner
        self.shown = tuple(shown)
        self._lock = threading.Lock()
        self.bar = tqdm(
            total=total,
            initial=start,
            desc=desc,
            unit=unit,
            dynamic_ncols=True,
            file=sys.stderr,
            mininterval=0.2,
        )

    def log(self, state: Any, metrics: Mapping[str, Any]) -> None:
        if self.inner is not None:
            self.inner.log(state, metrics)
        values = [metrics[k] for k in self.shown if k in metrics]
        names = [k for k in self.shown if k in metrics]
        jax.debug.callback(lambda step, *v: self._update(step, names, v), state.step, *values)

    def _update(self, step: Any, names: list[str], values: Sequence[Any]) -> None:
        with self._lock:
            step = int(np.max(np.asarray(step)))
            text = " ".join(
                f"{n}={float(np.mean(np.asarray(v))):.4g}"
                for n, v in zip(names, values, strict=True)
            )
            self.bar.set_postfix_str(text, refresh=False)
            if step > self.bar.n:
                self.bar.update(step - self.bar.n)

    def close(self) -> None:
        jax.effects_barrier()
        self.bar.close()


# --------------------------------------------------------------------------- Ctrl-C


class StopRequest:
    """Turns the first SIGINT/SIGTERM into a request to stop at the next checkpoint.

    A second Ctrl-C raises ``KeyboardInterrupt`` as usual (the latest checkpoint on disk stays
    valid: orbax writes each one atomically).
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        del frame
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\nrealax: stopping at the next checkpoint (Ctrl-C again to abort without it)...",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------- the loop


def run_chunks(trainer: Any, state: Any, total: int, freq: int, stop: StopRequest) -> Any:
    """Train from ``state`` to step ``total`` in compiled chunks ending on multiples of ``freq``.

    Every chunk end is checkpointed by the logger (``step % ckpt_freq == 0``); after a stop
    request the loop returns at the next chunk end. The trainer keeps its configured
    ``train_steps`` (RL trainers evaluate on their last step), and states are stripped of weak
    types, so every chunk of the same length shares one compiled program and a resumed run
    computes exactly what an uninterrupted one does.
    """
    step = int(state.step)
    while step < total:
        n = min((step // freq + 1) * freq, total) - step
        state, _ = trainer._run("scan", strong_types(state), None, n)
        step = int(state.step)
        if stop.requested and step < total:
            break
    return state


def strong_types(tree: Any) -> Any:
    """``tree`` without weak types (states from ``initialize``, from the compiled loop and from
    a checkpoint then share one compiled program)."""
    import jax.numpy as jnp

    def strong(x: Any) -> Any:
        if getattr(x, "weak_type", False) and not jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jnp.asarray(x, x.dtype)
        return x

    return jax.tree.map(strong, tree)


# --------------------------------------------------------------------------- output


def table(rows: Sequence[tuple[str, str]], title: str = "") -> str:
    """A two-column text table."""
    width = max(len(k) for k, _ in rows)
    lines = [title] if title else []
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def write_summary(run_dir: Path, summary: Mapping[str, Any]) -> None:
    (run_dir / SUMMARY_FILE).write_text(json.dumps(dict(summary), indent=2, default=float) + "\n")


def read_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / SUMMARY_FILE).read_text())


def draw_curves(run_dir: Path, metrics: Sequence[str] | None = None) -> Path | None:
    """learning_curves.png from metrics.jsonl (None, with a note, if nothing can be drawn)."""
    import realax.log as rlog

    try:
        return rlog.plot(
            run_dir, metrics=list(metrics) if metrics else None, out=run_dir / PLOT_FILE
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"realax: no learning curves drawn: {e}", file=sys.stderr)
        return None


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.numpy.issubdtype(x.dtype, jax.dtypes.prng_key)


def save_pytree(path: Path, tree: Any) -> None:
    """Serialise a pytree of arrays with flax (msgpack); typed PRNG keys as their key data."""
    from flax import serialization

    plain = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)
    path.write_bytes(serialization.to_bytes(jax.device_get(plain)))


def load_pytree(path: Path, like: Any) -> Any:
    """Read a pytree written by :func:`save_pytree` into the structure of ``like``."""
    from flax import serialization

    plain_like = jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, like)
    loaded = serialization.from_bytes(plain_like, path.read_bytes())
    return jax.tree.map(
        lambda ref, x: (
            jax.random.wrap_key_data(x, impl=jax.random.key_impl(ref))
            if _is_key(ref)
            else jax.numpy.asarray(x)
        ),
        like,
        loaded,
    )
