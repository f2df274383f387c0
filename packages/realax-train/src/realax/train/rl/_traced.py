"""Traced hyperparameters of the RL trainers (``trainer.traced(names)``, issue 17)."""

from __future__ import annotations

from typing import Any

import jax
from realax.agents import with_hparams

from .._algorithm import Algorithm
from .._hparams import Traceable, initial_hparams, scalar_floats

__all__ = ["TracedRL"]


class TracedRL(Traceable):
    """`Traceable` for `RLTrainer`: the agent is created with ``hparams=traced_values`` and
    ``state.hparams`` is copied into it before the first and every step."""

    _abstract: Any
    algorithm: Algorithm

    # defined by RLTrainer
    def _abstract_agent(self, **extra: Any) -> Any:
        raise NotImplementedError  # pragma: no cover

    def _initialize(self, key: jax.Array, data: Any) -> Any:
        raise NotImplementedError  # pragma: no cover

    def _step(self, state: Any, data: Any, consts: Any, keys: Any) -> tuple[Any, dict]:
        raise NotImplementedError  # pragma: no cover

    def _agent_sweepable(self, config: Any) -> dict[str, float]:
        """The agent's traceable config numbers (``Agent.TRACEABLE``) that are set."""
        return scalar_floats(config, getattr(type(self._abstract), "TRACEABLE", ()))

    def _trace(self, values: dict[str, float]) -> None:
        self._abstract = self._abstract_agent()  # fails here if the agent refuses a name
        self.algorithm = Algorithm(self._init_traced, self._step_traced, None, "episode_return")

    def _init_traced(self, key: jax.Array, data: Any, hparams: dict | None = None) -> Any:
        if hparams is None:
            hparams = initial_hparams(list(self.traced_values), self.traced_values)
        state = self._initialize(key, data).replace(hparams=hparams)
        return state.replace(agent=with_hparams(state.agent, hparams))

    def _step_traced(self, state: Any, data: Any, consts: Any, keys: Any) -> tuple[Any, dict]:
        state = state.replace(agent=with_hparams(state.agent, state.hparams))
        return self._step(state, data, consts, keys)
