"""The written contracts of realax.tasks: what a task is (the environment contract is the
:class:`~realax.tasks.Env` base class, whose methods are documented there).

- :class:`Task`: ``task(params, key, data=None) -> (fitness, info)``, a pure, jittable,
  vmappable function of one parameter set; the fitness is a float32 scalar, higher is better.
- :class:`DataTask`: a :class:`Task` that also carries state between evaluations in
  ``data``: ``init_data(key)`` makes it, ``update_data(data, infos)`` folds the (batched)
  infos of a population's rollouts into it. ``realax.train.EvosaxTrainer`` calls both when
  the task has them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax

Array = jax.Array


@runtime_checkable
class Task(Protocol):
    """``task(params, key, data=None) -> (fitness, info)``.

    >>> import jax.numpy as jnp
    >>> isinstance(lambda params, key, data=None: (jnp.sum(params), {}), Task)
    True
    """

    def __call__(self, params: Any, key: Array, data: Any = None) -> tuple[Array, Any]: ...


@runtime_checkable
class DataTask(Task, Protocol):
    """A :class:`Task` with task data: ``init_data(key)`` and ``update_data(data, info)``."""

    def init_data(self, key: Array) -> Any: ...

    def update_data(self, data: Any, info: Any) -> Any: ...
