"""The metrics of an ES generation: which ones (``metrics=``), computed in the step or, for a
scan without a logger, after the loop from the stored raw fitness (the same values)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

__all__ = [
    "DEFER_LIMIT",
    "FITNESS_METRICS",
    "METRIC_NAMES",
    "MINIMAL_METRICS",
    "check_metrics",
    "finish_metrics",
    "generation_metrics",
]

#: the fitness statistics of a generation (of its finite members; ``n_nonfinite`` counts the rest)
FITNESS_METRICS = ("fitness_min", "fitness_mean", "fitness_max", "fitness_std", "n_nonfinite")
#: every metric of a generation
METRIC_NAMES = ("generation", *FITNESS_METRICS, "best_fitness")
#: ``metrics="minimal"``: what the progress bar and ``return_best`` need, nothing more
MINIMAL_METRICS = ("generation", "best_fitness")
#: the most raw fitness values (generations x popsize) a scan without a logger stores to
#: compute the statistics after the loop (64 MiB of float32); longer runs compute them in the step
DEFER_LIMIT = 1 << 24
#: a deferred step's raw fitness ``(popsize,)``, turned into statistics after the loop
_RAW = "__raw_fitness"


def check_metrics(metrics: Any) -> tuple[str, ...]:
    """``metrics=`` of ``EvosaxTrainer`` as a tuple of names (in ``METRIC_NAMES`` order).

    >>> check_metrics("minimal"), len(check_metrics("all"))
    (('generation', 'best_fitness'), 7)
    """
    if metrics == "all":
        return METRIC_NAMES
    if metrics == "minimal":
        return MINIMAL_METRICS
    names = (metrics,) if isinstance(metrics, str) else metrics
    try:
        names = tuple(names)
    except TypeError:
        names = (metrics,)
    bad = [n for n in names if n not in METRIC_NAMES]
    if bad or not names:
        raise ValueError(
            f"metrics must be 'all', 'minimal' or a non-empty sequence of names among "
            f"{METRIC_NAMES} (got metrics={metrics!r}); e.g. metrics=('best_fitness', "
            "'fitness_mean')."
        )
    return tuple(n for n in METRIC_NAMES if n in names)


def _fitness_stats(raw: jax.Array, finite: jax.Array) -> dict:
    """Min, mean, max and std of the finite fitness values (NaN if none), and the count of
    non-finite ones: the values of ``jnp.nanmin`` ... ``jnp.nanstd`` on the fitness with
    non-finite entries set to NaN, bit for bit, from one mask and one count.
    """
    count = jnp.sum(finite, dtype=jnp.int32)
    some = count > 0
    norm = count.astype(jnp.float32)
    mean = jnp.sum(jnp.where(finite, raw, 0.0)) / norm
    centered = jnp.where(finite, raw - mean, 0.0)
    var = jnp.sum(jnp.square(centered)) / jnp.where(some, norm, 1.0)
    nan = jnp.float32(jnp.nan)
    return {
        "fitness_min": jnp.where(some, jnp.min(jnp.where(finite, raw, jnp.inf)), nan),
        "fitness_mean": mean,
        "fitness_max": jnp.where(some, jnp.max(jnp.where(finite, raw, -jnp.inf)), nan),
        "fitness_std": jnp.sqrt(jnp.where(some, var, nan)),
        "n_nonfinite": raw.shape[0] - count,
    }


@jax.jit
def _stacked_stats(raw: jax.Array) -> dict:
    """:func:`_fitness_stats` of every row of ``raw`` ``(steps, popsize)``, in one program."""
    return jax.vmap(lambda r: _fitness_stats(r, jnp.isfinite(r)))(raw)


def generation_metrics(
    names: tuple[str, ...], defer: bool, step: jax.Array, raw: jax.Array, best: jax.Array
) -> dict:
    """The metrics ``names`` of one generation; ``defer``: the raw fitness instead of the
    statistics (when some are requested), for :func:`finish_metrics` after the loop."""
    if defer:
        stats = {_RAW: raw} if any(n in FITNESS_METRICS for n in names) else {}
    else:
        stats = _fitness_stats(raw, jnp.isfinite(raw))
    out = {"generation": step, **stats, "best_fitness": best}
    return {k: v for k, v in out.items() if k in names or k == _RAW}


def finish_metrics(names: tuple[str, ...], metrics: dict) -> dict:
    """A deferred scan's metrics: the statistics of every generation computed at once from the
    stacked raw fitness ``(steps, popsize)``, bit for bit those of the step."""
    if _RAW not in metrics:
        return metrics
    merged = {**metrics, **_stacked_stats(metrics[_RAW])}
    return {k: merged[k] for k in sorted(names)}  # the order of a jitted dict
