"""Default ``metrics_fn``s: what to log and what to checkpoint from a trainer step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

ES_KEYS = (
    "generation",
    "fitness_min",
    "fitness_mean",
    "fitness_max",
    "fitness_std",
    "best_fitness",
    "n_nonfinite",
)
GRAD_KEYS = ("step", "loss", "best_loss")


def _default(fn: str, keys: tuple[str, ...], state: Any, data: Any) -> tuple[dict, Any, Any]:
    """What both default metrics functions do: check, log the scalars, checkpoint the state."""
    if not hasattr(state, "step"):
        raise TypeError(
            f"{fn} expects a trainer state with a `step` field (a flax.struct.PyTreeNode such "
            f"as realax.train.EvoState/GradState), got {type(state).__name__}; write your own "
            "metrics_fn(state, data) -> (log_data, ckpt_data, step) for other states"
        )
    if not isinstance(data, Mapping):
        raise TypeError(
            f"{fn} expects `data` to be the trainer's metrics dict, got {type(data).__name__}"
        )
    return _scalars(data, keys), state, state.step


def _scalars(data: Mapping[str, Any], first: tuple[str, ...]) -> dict[str, jax.Array]:
    """The scalar entries of ``data``, contract keys first, then extras in insertion order."""
    out = {}
    for k in (*[k for k in first if k in data], *[k for k in data if k not in first]):
        v = data[k]
        if (
            v is None
            or isinstance(v, Mapping)
            or not hasattr(v, "shape")
            and not isinstance(v, int | float)
        ):
            continue  # per-step data (``step_data``: "metrics", "eval_data") is not a scalar
        shape = getattr(v, "shape", ())
        if shape == ():
            out[k] = jnp.asarray(v)
    return out


def default_es_metrics(state: Any, data: Mapping[str, Any]) -> tuple[dict, Any, jax.Array]:
    """Log the scalar ES metrics of a step and checkpoint the whole trainer state.

    Logs every scalar entry of the trainer's metrics dict (``generation``, ``fitness_min``,
    ``fitness_mean``, ``fitness_max``, ``fitness_std``, ``best_fitness``, ``n_nonfinite`` and
    any scalar extras); non-scalar entries are not logged. The checkpoint payload is the whole
    ``EvoState`` (evosax state, PRNG key, step, best parameters, task data), so a run can be
    resumed exactly. The step is ``state.step``.

    Args:
        state: trainer state after the step (``state.step`` counts it).
        data: metrics dict returned by the trainer's ``train_step``.

    Returns:
        ``(log_data, ckpt_data, step)``.

    Example:
        >>> import realax.log as rlog
        >>> logger = rlog.Logger(wandb_log=False, metrics_fn=rlog.default_es_metrics,
        ...                      ckpt_dir="runs/es", ckpt_freq=50)  # doctest: +SKIP
    """
    return _default("default_es_metrics", ES_KEYS, state, data)


def default_grad_metrics(state: Any, data: Mapping[str, Any]) -> tuple[dict, Any, jax.Array]:
    """Log the scalar gradient-training metrics of a step and checkpoint the whole state.

    Logs every scalar entry of the trainer's metrics dict (``step``, ``loss``, ``best_loss``
    and scalar extras) and checkpoints the whole ``GradState`` (parameters, optimiser state,
    PRNG key, step, best parameters, data). The step is ``state.step``. Arguments and result
    as for :func:`default_es_metrics`.

    Example:
        >>> import realax.log as rlog
        >>> logger = rlog.Logger(wandb_log=False, metrics_fn=rlog.default_grad_metrics,
        ...                      ckpt_dir="runs/grad", ckpt_freq=100)  # doctest: +SKIP
    """
    return _default("default_grad_metrics", GRAD_KEYS, state, data)
