# ruff: noqa: E402  (the extra is checked before the submodules are imported)
"""realax.train.rl: RL trainers driving realax-agents on realax-tasks environments.

Needs the ``rl`` extra: ``pip install "realax-train[rl]"``.

>>> import jax
>>> from realax.agents import PPO
>>> from realax.train.rl import OnPolicyTrainer
>>> trainer = OnPolicyTrainer(PPO, "CartPole-v1", num_envs=4, num_steps=8, train_steps=1)
>>> state, metrics = trainer.init_and_train(jax.random.key(0))
"""

_HINT = 'realax.train.rl needs realax-agents and realax-tasks; pip install "realax-train[rl]"'

try:
    import realax.agents  # noqa: F401
    import realax.tasks  # noqa: F401
except ModuleNotFoundError as _error:  # pragma: no cover - exercised in a subprocess test
    if _error.name in ("realax.agents", "realax.tasks", "gymnax"):
        raise ImportError(f"{_HINT} (missing module {_error.name!r})") from _error
    raise

from ._buffer import ReplayBuffer as ReplayBuffer
from ._collect import collect as collect
from ._common import RLState as RLState
from ._common import default_rl_metrics as default_rl_metrics
from ._evaluate import evaluate as evaluate
from ._normalize import NormalizedAgent as NormalizedAgent
from ._normalize import NormState as NormState
from ._off_policy import OffPolicyTrainer as OffPolicyTrainer
from ._offline import OfflineState as OfflineState
from ._offline import OfflineTrainer as OfflineTrainer
from ._on_policy import OnPolicyTrainer as OnPolicyTrainer
from ._pqn import PQNTrainer as PQNTrainer

__all__ = [
    "NormState",
    "NormalizedAgent",
    "OffPolicyTrainer",
    "OfflineState",
    "OfflineTrainer",
    "OnPolicyTrainer",
    "PQNTrainer",
    "RLState",
    "ReplayBuffer",
    "collect",
    "default_rl_metrics",
    "evaluate",
]
