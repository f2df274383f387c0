"""realax.agents: `TrainState`, RL agents as flax PyTreeNodes, the `Transition` / `Rollout`
batches and `OnPolicyAgent` / `OffPolicyAgent` Protocols they meet, and multi-device helpers.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from realax.agents import DQN
    >>> agent = DQN.create(key=jax.random.key(0), observations=jnp.zeros(4),
    ...                    actions=jnp.zeros((), jnp.int32), n_actions=2)
    >>> agent.sample_actions(jnp.zeros(4), seed=jax.random.key(1), deterministic=True).shape
    ()
"""

from ._batches import Rollout as Rollout
from ._batches import Transition as Transition
from ._bc import ContinuousBC as ContinuousBC
from ._bc import ContinuousBCConfig as ContinuousBCConfig
from ._bc import DiscreteBC as DiscreteBC
from ._bc import DiscreteBCConfig as DiscreteBCConfig
from ._c51 import C51 as C51
from ._c51 import C51Config as C51Config
from ._cql import CQL as CQL
from ._cql import CQLConfig as CQLConfig
from ._dataset import Dataset as Dataset
from ._devices import replicate as replicate
from ._devices import shard_batch as shard_batch
from ._devices import unreplicate as unreplicate
from ._distributions import Categorical as Categorical
from ._distributions import DiagGaussian as DiagGaussian
from ._distributions import TanhDiagGaussian as TanhDiagGaussian
from ._dqn import DQN as DQN
from ._dqn import DQNConfig as DQNConfig
from ._encoders import ImpalaResNet as ImpalaResNet
from ._encoders import NatureCNN as NatureCNN
from ._gae import gae as gae
from ._hparams import with_hparams as with_hparams
from ._iql import IQL as IQL
from ._iql import IQLConfig as IQLConfig
from ._networks import MLP as MLP
from ._networks import ActorCritic as ActorCritic
from ._networks import ContinuousActor as ContinuousActor
from ._networks import DeterministicActor as DeterministicActor
from ._networks import DiscreteActor as DiscreteActor
from ._networks import Encoded as Encoded
from ._networks import Ensemble as Ensemble
from ._networks import QCritic as QCritic
from ._networks import StateActionCritic as StateActionCritic
from ._networks import ValueCritic as ValueCritic
from ._networks import with_encoder as with_encoder
from ._ppo import PPO as PPO
from ._ppo import PPOConfig as PPOConfig
from ._pqn import PQN as PQN
from ._pqn import PQNConfig as PQNConfig
from ._protocols import OffPolicyAgent as OffPolicyAgent
from ._protocols import OnPolicyAgent as OnPolicyAgent
from ._recurrent import RecurrentActorCritic as RecurrentActorCritic
from ._recurrent import reset_hidden as reset_hidden
from ._recurrent_ppo import RecurrentPPO as RecurrentPPO
from ._recurrent_ppo import RecurrentPPOConfig as RecurrentPPOConfig
from ._sac import SAC as SAC
from ._sac import SACConfig as SACConfig
from ._sac import Temperature as Temperature
from ._td3 import DDPG as DDPG
from ._td3 import TD3 as TD3
from ._td3 import DDPGConfig as DDPGConfig
from ._td3 import TD3Config as TD3Config
from ._train_state import TrainState as TrainState
from ._train_state import nonpytree_field as nonpytree_field
from ._train_state import target_update as target_update

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "OffPolicyAgent",
    "OnPolicyAgent",
    "PPO",
    "RecurrentPPO",
    "RecurrentPPOConfig",
    "RecurrentActorCritic",
    "reset_hidden",
    "PQN",
    "PQNConfig",
    "SAC",
    "DQN",
    "C51",
    "C51Config",
    "IQL",
    "IQLConfig",
    "CQL",
    "CQLConfig",
    "DDPG",
    "DDPGConfig",
    "TD3",
    "TD3Config",
    "DeterministicActor",
    "ActorCritic",
    "Categorical",
    "ContinuousActor",
    "ContinuousBC",
    "ContinuousBCConfig",
    "DQNConfig",
    "Dataset",
    "DiagGaussian",
    "DiscreteActor",
    "DiscreteBC",
    "DiscreteBCConfig",
    "Encoded",
    "Ensemble",
    "ImpalaResNet",
    "NatureCNN",
    "PPOConfig",
    "QCritic",
    "Rollout",
    "SACConfig",
    "StateActionCritic",
    "TanhDiagGaussian",
    "Temperature",
    "TrainState",
    "Transition",
    "ValueCritic",
    "gae",
    "nonpytree_field",
    "replicate",
    "shard_batch",
    "target_update",
    "unreplicate",
    "with_hparams",
    "with_encoder",
]
