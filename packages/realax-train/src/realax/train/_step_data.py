"""Per-step data (opt in): the original realax's ``data["metrics"]`` / ``data["eval_data"]``.

A trainer built with ``step_data=True`` (or a reducer) adds two entries to the metrics its
step returns, next to the scalar metrics:

* ``"metrics"``: a dict of per-step arrays (``{"fitness": (popsize,)}`` for ES,
  ``{"batch_loss": (n_batches,)}`` for gradients);
* ``"eval_data"``: the task's ``info`` (ES) or the loss's ``aux`` (gradients), or what the
  reducer makes of it inside the compiled step.

The scan stacks them over steps like every metric. On the way out, :func:`nest` copies the
scalar metrics and ``eval_data`` into ``"metrics"`` too (the same arrays, no copy), so
``data["fitness_max"]``, the original's ``data["metrics"]["fitness"]`` /
``data["metrics"]["loss"]`` / ``data["metrics"]["eval_data"]`` and ``data["eval_data"]`` all
work. ``fori`` runs return no metrics: the logger's
``log(state, metrics)`` receives the step's entries instead. Off (the default), the step's
metrics, and so the compiled program, are what they were.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["METRICS", "EVAL_DATA", "check_step_data", "keep_all", "nest"]

#: the per-step entries of a step's metrics (and of a run's returned metrics)
METRICS, EVAL_DATA = "metrics", "eval_data"


def keep_all(values: Any, data: Any) -> Any:
    """The default reducer of ``step_data=True``: keeps the whole ``info`` / ``aux``."""
    del values
    return data


def check_step_data(step_data: Any, owner: str, signature: str) -> Callable | None:
    """``step_data`` as a reducer ``fn(values, data) -> pytree`` (``True``: keep everything),
    or None when off (``False`` / ``None``)."""
    if step_data is None or step_data is False:
        return None
    if step_data is True:
        return keep_all
    if callable(step_data):
        return step_data
    raise TypeError(
        f"{owner}: step_data must be True, False or a reducer {signature} (got "
        f"{type(step_data).__name__}); e.g. step_data=True, or step_data=lambda fitness, info: "
        "info['episode_length'] to keep one array per step."
    )


def nest(metrics: Any) -> Any:
    """The returned metrics with the scalar entries also under ``"metrics"`` (a no-op when
    the run has no per-step data)."""
    if not isinstance(metrics, Mapping) or not isinstance(metrics.get(METRICS), Mapping):
        return metrics
    scalars = {k: v for k, v in metrics.items() if k not in (METRICS, EVAL_DATA)}
    # the original kept eval_data inside "metrics": both places hold the same arrays
    extra = {EVAL_DATA: metrics[EVAL_DATA]} if EVAL_DATA in metrics else {}
    return {**metrics, METRICS: {**scalars, **metrics[METRICS], **extra}}
