"""Pieces shared by the training commands: logger, descriptions, tables, policy files."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ._folders import METRICS_FILE, PLOT_FILE
from ._schema import RunConfig


def make_logger(run_dir: Path, config: RunConfig, metrics_fn: Any, *, resumed: bool):
    """A realax.log Logger writing metrics, checkpoints and the wandb run into ``run_dir``.

    The folder is the run's own (a fresh run was checked by ``check_fresh``), so the Logger
    always continues what is there (``resume=True``); its interrupt guard, entered by the
    trainer around the compiled run, checkpoints the next step on Ctrl-C or SIGTERM.
    """
    import realax.log as rlog

    metrics = run_dir / METRICS_FILE
    if resumed and metrics.is_file() and metrics.stat().st_size:
        with metrics.open("rb+") as f:  # a killed run may have left half a line: end it
            f.seek(-1, 2)
            if f.read(1) != b"\n":
                f.write(b"\n")
    mode = config.wandb
    logger = rlog.Logger(
        wandb_log=mode != "off",
        metrics_fn=metrics_fn,
        ckpt_dir=run_dir,
        ckpt_freq=config.ckpt_freq or 1,  # always set once resolved
        mode=None if mode == "off" else mode,
        resume=True,
    )
    name = run_dir.resolve().name
    kwargs: dict[str, Any] = {}
    if mode != "off":
        kwargs = {
            "name": name + ("-resumed" if resumed else ""),
            "dir": str(run_dir.resolve()),
            "group": name,
            "tags": ["realax-cli", config.command],
        }
    logger.init(project=config.project, config=config.as_dict(), **kwargs)
    return logger


def wandb_run_dirs(run_dir: Path) -> list[Path]:
    """The wandb run folders inside a run folder (``wandb/offline-run-*``, ``wandb/run-*``)."""
    root = run_dir / "wandb"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and "run-" in p.name)


def plural(n: int, noun: str) -> str:
    """A count and its noun, singular for one.

    >>> plural(1, "continuous action"), plural(2, "discrete action")
    ('1 continuous action', '2 discrete actions')
    """
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def describe_env(env: Any) -> str:
    """``CartPole-v1 (gymnax; obs 4, 2 discrete actions)``."""
    kind = "discrete" if env.discrete else "continuous"
    dims = env.action_dims
    actions = plural(dims, f"{kind} action") if isinstance(dims, int) else f"{kind} actions {dims}"
    return f"{env.name} ({env.suite}; obs {env.spec.obs_dims}, {actions})"


def returns_line(env_name: str, returns: Any, episodes: int, source: str) -> str:
    """The one output format of ``realax eval`` (evolution and RL runs alike)."""
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    line = f"{env_name}: mean return {r.mean():.2f}"
    if r.size > 1:
        line += f" +- {r.std():.2f}"
    line += f" over {plural(episodes, 'episode')}"
    if r.size > 1:
        line += f" (min {r.min():.1f}, max {r.max():.1f}; {source})"
    else:
        line += f" ({source})"
    return line


def table(rows: Sequence[tuple[str, str]], title: str = "") -> str:
    """A two-column text table."""
    width = max(len(k) for k, _ in rows)
    lines = [title] if title else []
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    return "\n".join(lines)


def draw_curves(run_dir: Path, metrics: Sequence[str] | None, title: str) -> Path | None:
    """learning_curves.png from metrics.jsonl (None, with a note, if nothing can be drawn)."""
    try:
        import realax.log as rlog

        return rlog.plot(
            run_dir,
            metrics=list(metrics) if metrics else None,
            out=run_dir / PLOT_FILE,
            title=title,
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
