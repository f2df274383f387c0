"""Temporary stand-ins for library contracts that other branches are delivering.

Every function here calls the public library API when it is there and falls back otherwise;
each names the contract it stands in for. Once those branches are merged, the callers can use
the library directly and this module goes away.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any


def resolve_strategy(name: str) -> tuple[str, type]:
    """Contract: ``realax.train.resolve_strategy(name)`` is public."""
    import realax.train as rtrain

    public = getattr(rtrain, "resolve_strategy", None)
    if public is not None:
        return public(name)
    from realax.train._strategies import resolve_strategy as private

    return private(name)


def _strip_weak_types(tree: Any) -> Any:
    import jax
    import jax.numpy as jnp

    def strong(x: Any) -> Any:
        if getattr(x, "weak_type", False) and not jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jnp.asarray(x, x.dtype)
        return x

    return jax.tree.map(strong, tree)


def resume(trainer: Any, state: Any, *, logger: Any, progress_bar: bool) -> Any:
    """Contract: ``trainer.resume(state, logger=..., progress_bar=...)`` runs the remaining steps
    in one compiled call with ``logger`` and ``progress_bar`` as run arguments, and the loops
    strip weak types at entry (states from ``initialize`` and from a checkpoint give the same
    bits). Returns the final state."""
    if "logger" in inspect.signature(trainer.resume).parameters:
        state, _ = trainer.resume(state, logger=logger, progress_bar=progress_bar)
        return state
    trainer.logger = logger
    trainer.progress_bar = progress_bar
    state, _ = trainer.resume(_strip_weak_types(state))
    return state


def on_run_end(logger: Any, state: Any) -> None:
    """Contract: the trainer loops call ``logger.on_run_end(state)`` after a run, which
    checkpoints the final step if it is not saved yet (calling it twice saves once)."""
    hook = getattr(logger, "on_run_end", None)
    if hook is not None:
        hook(state)
        return
    import realax.log as rlog

    step = int(state.step)
    if step not in rlog.all_steps(logger.ckpt_dir):
        logger.checkpoint_now(state)


def plot(run_dir: Path, *, metrics: list[str] | None, out: Path | None, title: str | None) -> Path:
    """Contract: ``realax.log.plot(run_dir, metrics=None, out=None, title=None)``."""
    import realax.log as rlog

    if "title" in inspect.signature(rlog.plot).parameters:
        return rlog.plot(run_dir, metrics=metrics, out=out, title=title)  # type: ignore[call-arg]
    return rlog.plot(run_dir, metrics=metrics, out=out)


def rl_evaluate(trainer: Any, agent: Any, key: Any, episodes: int) -> tuple[Any, Any]:
    """Contract: ``realax.train.rl.evaluate(agent, env, key, *, episodes, max_steps=None) ->
    (returns, lengths)``, per-episode arrays of greedy episodes. The fallback has only the
    trainer's means (one value each)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from realax.train import rl

    public = getattr(rl, "evaluate", None)
    if public is not None:
        returns, lengths = public(
            agent, trainer.env, key, episodes=episodes, max_steps=trainer.env.max_steps
        )
        return np.asarray(returns), np.asarray(lengths)
    if trainer.eval_episodes != episodes:
        raise ValueError(f"this realax evaluates {trainer.eval_episodes} episodes, not {episodes}")
    fn = jax.jit(lambda a, k: trainer._evaluate(a, k, jnp.asarray(True), None))
    mean_return, mean_length = fn(agent, key)
    return np.asarray([float(mean_return)]), np.asarray([float(mean_length)])
