"""The contracts between trainers, loops and the user's objects, as typing Protocols."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import jax

__all__ = [
    "BlockLogger",
    "DataTask",
    "InitsData",
    "Logger",
    "LossFn",
    "RunEndLogger",
    "SavesOnInterrupt",
    "Task",
    "UpdatesData",
]


class Task(Protocol):
    """An ES fitness function: ``task(params, key[, data]) -> (fitness, info)``.

    ``params`` is one member shaped like ``params_like``; ``fitness`` a scalar; ``info`` any
    pytree (given to ``update_data``). A task may take only ``(params, key)``.
    """

    def __call__(self, params: Any, key: jax.Array, data: Any = None, /) -> tuple[Any, Any]: ...


@runtime_checkable
class InitsData(Protocol):
    """A task whose first data comes from ``init_data(key)`` (traced, in ``initialize``)."""

    def init_data(self, key: jax.Array) -> Any: ...


@runtime_checkable
class UpdatesData(Protocol):
    """A task whose data is updated after every generation: ``update_data(data, infos)`` with
    the infos of the whole population ``(popsize, eval_reps, ...)`` (traced)."""

    def update_data(self, data: Any, info: Any) -> Any: ...


@runtime_checkable
class DataTask(InitsData, UpdatesData, Protocol):
    """A task that carries data across generations (e.g. running observation statistics);
    either method may also come alone."""

    def __call__(self, params: Any, key: jax.Array, data: Any = None, /) -> tuple[Any, Any]: ...


class LossFn(Protocol):
    """A differentiable loss: ``loss_fn(params, key[, batch]) -> (loss, aux)``, scalar loss."""

    def __call__(self, params: Any, key: jax.Array, batch: Any = None, /) -> tuple[Any, Any]: ...


@runtime_checkable
class Logger(Protocol):
    """What the loops call after every step, from inside the compiled program (traced)."""

    def log(self, state: Any, metrics: Mapping[str, Any]) -> None: ...


@runtime_checkable
class SavesOnInterrupt(Protocol):
    """Optional: a context manager the loops run inside (Ctrl-C / SIGTERM save first)."""

    def save_on_interrupt(self) -> contextlib.AbstractContextManager: ...


@runtime_checkable
class RunEndLogger(Protocol):
    """Optional: called on the host once after a compiled run returned, with its final state."""

    def on_run_end(self, state: Any) -> None: ...


@runtime_checkable
class BlockLogger(Protocol):
    """Optional: a logger that takes the rows of several steps in one host transfer.

    The loops then carry its block beside the state: ``block = open_block(state, metrics)``
    before the loop (``metrics`` abstract: the shapes of a step's metrics), ``block =
    log_to_block(block, state, metrics)`` after every step instead of ``log``, and
    ``close_block(block)`` after the loop (all traced).
    """

    def open_block(self, state: Any, metrics: Any) -> Any: ...

    def log_to_block(self, block: Any, state: Any, metrics: Mapping[str, Any]) -> Any: ...

    def close_block(self, block: Any) -> None: ...
