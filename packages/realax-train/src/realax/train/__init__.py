"""realax.train: compiled ES (evosax 0.3) and gradient (optax) training loops.

>>> import jax, jax.numpy as jnp
>>> from realax.train import evolve
>>> f = lambda x, key=None, data=None: (jnp.sum(x**2), {})
>>> params, state, metrics = evolve(jnp.ones(2), f, jax.random.key(0), popsize=16,
...                                 strategy="CMA_ES", steps=30)
"""

from ._algorithm import Algorithm as Algorithm
from ._base import BaseTrainer as BaseTrainer
from ._es import EvosaxTrainer as EvosaxTrainer
from ._es import EvoState as EvoState
from ._es import evolve as evolve
from ._grad import GradState as GradState
from ._grad import OptaxTrainer as OptaxTrainer
from ._grad import available_optimizers as available_optimizers
from ._grad import optimize as optimize
from ._protocols import DataTask as DataTask
from ._protocols import Logger as Logger
from ._protocols import LossFn as LossFn
from ._protocols import Task as Task
from ._shaping import FitnessShaper as FitnessShaper
from ._strategies import STRATEGY_ALIASES as STRATEGY_ALIASES
from ._strategies import available_strategies as available_strategies
from ._strategies import resolve_strategy as resolve_strategy

__all__ = [
    "Algorithm",
    "BaseTrainer",
    "DataTask",
    "EvoState",
    "EvosaxTrainer",
    "FitnessShaper",
    "GradState",
    "Logger",
    "LossFn",
    "OptaxTrainer",
    "STRATEGY_ALIASES",
    "Task",
    "available_optimizers",
    "available_strategies",
    "evolve",
    "optimize",
    "resolve_strategy",
]

# RL trainers live in realax.train.rl (extra "rl": realax-agents, realax-tasks); they are
# re-exported lazily so `import realax.train` works without that extra.
_RL_NAMES = ("OnPolicyTrainer", "OffPolicyTrainer", "ReplayBuffer", "RLState")


def __getattr__(name: str):
    if name in _RL_NAMES:
        from . import rl

        return getattr(rl, name)
    raise AttributeError(f"module 'realax.train' has no attribute {name!r}")
