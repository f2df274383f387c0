"""Summing the fitness of several tasks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ._protocols import Task

Array = jax.Array


class MultiTaskAggregator:
    """Sums the fitness of several tasks evaluated on the same parameters.

    Each task gets its own key (split from the one given). ``info["task_fitness"]`` maps
    each task's name to its fitness and ``info["task_info"]`` to its info. Task data is a
    tuple with one entry per task (``init_data``/``update_data`` delegate to the tasks
    that define them).

    Args:
        tasks: the tasks (any :class:`Task`: ``task(params, key, data) -> (fitness, info)``).
        names: names used in ``info`` (default: ``task.env.name`` or ``task_<i>``).
        weights: optional weights of the sum (default: all 1).

    >>> agg = MultiTaskAggregator([lambda p, k, d=None: (p.sum(), {}),
    ...                            lambda p, k, d=None: (2 * p.sum(), {})], names=["a", "b"])
    >>> float(agg(jnp.ones(3), jax.random.key(0))[0])
    9.0
    """

    def __init__(
        self,
        tasks: Sequence[Task],
        names: Sequence[str] | None = None,
        weights: Sequence[float] | None = None,
    ):
        tasks = list(tasks)
        if not tasks or not all(callable(t) for t in tasks):
            raise ValueError(
                "MultiTaskAggregator: tasks must be a non-empty sequence of callables "
                f"task(params, key, data) -> (fitness, info) (got {tasks!r})"
            )
        if names is None:
            names = []
            for i, t in enumerate(tasks):
                env = getattr(t, "env", None)
                names.append(getattr(env, "name", None) or f"task_{i}")
        names = list(names)
        if len(names) != len(tasks):
            raise ValueError(f"MultiTaskAggregator: got {len(names)} names for {len(tasks)} tasks")
        seen: dict[str, int] = {}
        unique = []
        for n in names:
            seen[n] = seen.get(n, 0) + 1
            unique.append(n if seen[n] == 1 else f"{n}_{seen[n] - 1}")
        if weights is not None and len(weights) != len(tasks):
            raise ValueError(
                f"MultiTaskAggregator: got {len(weights)} weights for {len(tasks)} tasks"
            )
        self.tasks = tasks
        self.names = unique
        self.weights = None if weights is None else tuple(float(w) for w in weights)

    def init_data(self, key: Array) -> tuple[Any, ...]:
        """A tuple of each task's ``init_data(key_i)`` (``None`` for tasks without it)."""
        keys = jax.random.split(key, len(self.tasks))
        return tuple(
            t.init_data(k) if hasattr(t, "init_data") else None
            for t, k in zip(self.tasks, keys, strict=True)
        )

    def update_data(self, data: tuple[Any, ...], info: dict[str, Any]) -> tuple[Any, ...]:
        """Each task's ``update_data`` with its own (batched) info."""
        if data is None:
            data = (None,) * len(self.tasks)
        return tuple(
            t.update_data(d, info["task_info"][n]) if hasattr(t, "update_data") else d
            for t, d, n in zip(self.tasks, data, self.names, strict=True)
        )

    def __call__(self, params: Any, key: Array, data: Any = None) -> tuple[Array, dict]:
        if data is None:
            data = (None,) * len(self.tasks)
        if not isinstance(data, tuple | list) or len(data) != len(self.tasks):
            raise ValueError(
                "MultiTaskAggregator: data must be a tuple with one entry per task "
                f"({len(self.tasks)}), e.g. aggregator.init_data(key)"
            )
        keys = jax.random.split(key, len(self.tasks))
        total = jnp.zeros((), jnp.float32)
        fits: dict[str, Array] = {}
        infos: dict[str, Any] = {}
        for i, (task, k, d, n) in enumerate(zip(self.tasks, keys, data, self.names, strict=True)):
            f, inf = task(params, k, d)
            w = 1.0 if self.weights is None else self.weights[i]
            total = total + w * jnp.asarray(f, jnp.float32)
            fits[n] = jnp.asarray(f, jnp.float32)
            infos[n] = inf
        return total, {"task_fitness": fits, "task_info": infos}
