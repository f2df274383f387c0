"""realax.train: compiled ES (evosax 0.3), gradient (optax) and QD (qdax) training loops.

The names are imported on first use: ``import realax.train`` (and the ``realax`` command
line's argument parsing) loads neither JAX nor evosax.

>>> import jax, jax.numpy as jnp
>>> from realax.train import evolve
>>> f = lambda x, key=None, data=None: (jnp.sum(x**2), {})
>>> params, state, metrics = evolve(jnp.ones(2), f, jax.random.key(0), popsize=16,
...                                 strategy="CMA_ES", steps=30)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._algorithm import Algorithm as Algorithm
    from ._base import BaseTrainer as BaseTrainer
    from ._es import EvosaxTrainer as EvosaxTrainer
    from ._es import EvoState as EvoState
    from ._es import evolve as evolve
    from ._grad import GradState as GradState
    from ._grad import OptaxTrainer as OptaxTrainer
    from ._grad import available_optimizers as available_optimizers
    from ._grad import optimize as optimize
    from ._hparams import set_hparams as set_hparams
    from ._protocols import DataTask as DataTask
    from ._protocols import Logger as Logger
    from ._protocols import LossFn as LossFn
    from ._protocols import Task as Task
    from ._qd import QDState as QDState
    from ._qd import QDTask as QDTask
    from ._qd import QDTrainer as QDTrainer
    from ._shaping import FitnessShaper as FitnessShaper
    from ._strategies import STRATEGY_ALIASES as STRATEGY_ALIASES
    from ._strategies import available_strategies as available_strategies
    from ._strategies import resolve_strategy as resolve_strategy
    from ._sweep import sweep as sweep
    from ._sweep import sweep_init as sweep_init
    from ._sweep_result import SweepResult as SweepResult

#: public name -> the module that defines it
_WHERE = {
    "Algorithm": "_algorithm",
    "BaseTrainer": "_base",
    "DataTask": "_protocols",
    "EvoState": "_es",
    "EvosaxTrainer": "_es",
    "FitnessShaper": "_shaping",
    "GradState": "_grad",
    "Logger": "_protocols",
    "LossFn": "_protocols",
    "OptaxTrainer": "_grad",
    "QDState": "_qd",
    "QDTask": "_qd",
    "QDTrainer": "_qd",
    "STRATEGY_ALIASES": "_strategies",
    "Task": "_protocols",
    "available_optimizers": "_grad",
    "available_strategies": "_strategies",
    "evolve": "_es",
    "optimize": "_grad",
    "set_hparams": "_hparams",
    "sweep": "_sweep",
    "sweep_init": "_sweep",
    "SweepResult": "_sweep_result",
    "resolve_strategy": "_strategies",
}

__all__ = sorted(_WHERE)

# RL trainers live in realax.train.rl (extra "rl": realax-agents, realax-tasks); they are
# re-exported lazily too, so `import realax.train` works without that extra.
_RL_NAMES = ("OnPolicyTrainer", "OffPolicyTrainer", "ReplayBuffer", "RLState")


#: the original realax's names kept as deprecated aliases (see the root README's table)
_DEPRECATED = {"Evosaxtrainer": "EvosaxTrainer"}


def __getattr__(name: str) -> Any:
    if name in _DEPRECATED:
        import warnings

        new = _DEPRECATED[name]
        warnings.warn(
            f"realax.train.{name} is the original README's spelling; use realax.train.{new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return __getattr__(new)
    if name in _RL_NAMES:
        from . import rl

        return getattr(rl, name)
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'realax.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
