"""``SweepResult``: what :func:`realax.train.sweep` returns, a plain data class."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

__all__ = ["SweepResult"]


def _last_finite(curves: np.ndarray) -> np.ndarray:
    """The last finite value along the step axis (NaN where a curve has none)."""
    finite = np.isfinite(curves)
    idx = curves.shape[-1] - 1 - np.argmax(finite[..., ::-1], axis=-1)
    last = np.take_along_axis(curves, idx[..., None], axis=-1)[..., 0]
    return np.where(finite.any(axis=-1), last, np.nan)


def _best(curves: np.ndarray, maximize: bool) -> np.ndarray:
    finite = np.isfinite(curves).any(axis=-1)
    filled = np.where(np.isfinite(curves), curves, -np.inf if maximize else np.inf)
    best = filled.max(axis=-1) if maximize else filled.min(axis=-1)
    return np.where(finite, best, np.nan)


@dataclasses.dataclass
class SweepResult:
    """The configurations of a sweep, their curves and final states.

    Attributes:
        configs: one dict per configuration (traced and shape-changing values).
        seeds: seeds per configuration.
        metric: the progress metric (``trainer.algorithm.progress_metric``).
        maximize: whether a higher progress metric is better.
        curves: ``{name: (n_configs, n_seeds, n_steps)}`` for every scalar metric.
        states: the final states, one member-stacked state per shape group (member
            ``i * seeds + j`` is the group's ``i``-th configuration, seed ``j``).
        groups: the configuration indices of each shape group (aligned with ``states``).
    """

    configs: list[dict]
    seeds: int
    metric: str
    maximize: bool
    curves: dict[str, np.ndarray]
    states: list[Any]
    groups: list[list[int]]

    @classmethod
    def build(cls, plan: Any, states: list, metrics: list[dict]) -> SweepResult:
        n_configs, seeds = len(plan.configs), plan.seeds
        names = [k for k, v in metrics[0].items() if np.ndim(v) == 2]
        curves: dict[str, np.ndarray] = {}
        for name in names:
            n_steps = np.shape(metrics[0][name])[1]
            out = np.full((n_configs, seeds, n_steps), np.nan, np.float64)
            for indices, m in zip(plan.groups.values(), metrics, strict=True):
                values = np.asarray(m[name], np.float64).reshape(len(indices), seeds, n_steps)
                out[indices] = values
            curves[name] = out
        trainer = plan.trainers[0]
        shaper = getattr(trainer, "fitness_shaper", None)
        maximize = bool(shaper.maximize) if shaper is not None else True
        return cls(
            configs=[dict(c) for c in plan.configs],
            seeds=seeds,
            metric=trainer.algorithm.progress_metric,
            maximize=maximize,
            curves=curves,
            states=states,
            groups=[list(g) for g in plan.groups.values()],
        )

    def final(self, name: str | None = None) -> np.ndarray:
        """``(n_configs, n_seeds)``: the last finite value of metric ``name`` (default: the
        progress metric)."""
        return _last_finite(self.curves[name or self.metric])

    def best(self, name: str | None = None) -> np.ndarray:
        """``(n_configs, n_seeds)``: the best value of ``name`` over the run, in the progress
        metric's direction (the highest, or the lowest when ``maximize`` is False)."""
        return _best(self.curves[name or self.metric], self.maximize)

    def ranking(self) -> list[int]:
        """Configuration indices, best first, by the mean over seeds of the final progress
        metric (configurations without a finite value last)."""
        score = np.nanmean(np.where(np.isfinite(self.final()), self.final(), np.nan), axis=1)
        score = np.where(np.isfinite(score), score, -np.inf if self.maximize else np.inf)
        order = np.argsort(-score if self.maximize else score, kind="stable")
        return [int(i) for i in order]

    @property
    def best_config(self) -> dict:
        """The configuration ranked first by :meth:`ranking`."""
        return dict(self.configs[self.ranking()[0]])

    def state_of(self, config: int, seed: int) -> Any:
        """The final state of configuration ``config`` and seed ``seed`` (one member)."""
        for group, state in zip(self.groups, self.states, strict=True):
            if config in group:
                member = group.index(config) * self.seeds + seed
                return jax.tree.map(lambda x, m=member: x[m], state)
        raise IndexError(f"no configuration {config} (there are {len(self.configs)})")

    def table(self) -> list[dict]:
        """One row per configuration and seed: ``config`` (index), its values, ``seed``,
        ``final_<metric>`` and ``best_<metric>`` of every scalar metric."""
        finals = {name: self.final(name) for name in self.curves}
        bests = {name: self.best(name) for name in self.curves}
        rows = []
        for c, config in enumerate(self.configs):
            for s in range(self.seeds):
                row: dict[str, Any] = {"config": c, **config, "seed": s}
                for name in self.curves:
                    row[f"final_{name}"] = float(finals[name][c, s])
                    row[f"best_{name}"] = float(bests[name][c, s])
                rows.append(row)
        return rows

    def to_csv(self, path: str | Path) -> Path:
        """Write :meth:`table` as CSV; returns the path."""
        path, rows = Path(path), self.table()
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows({k: _plain(v) for k, v in row.items()} for row in rows)
        return path

    def to_json(self, path: str | Path) -> Path:
        """Write the configurations, the ranking and :meth:`table` as JSON; returns the path."""
        path = Path(path)
        doc = {
            "metric": self.metric,
            "maximize": self.maximize,
            "seeds": self.seeds,
            "configs": [{k: _plain(v) for k, v in c.items()} for c in self.configs],
            "ranking": self.ranking(),
            "table": [{k: _plain(v) for k, v in r.items()} for r in self.table()],
        }
        path.write_text(json.dumps(doc, indent=1, allow_nan=True))
        return path


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    return value
