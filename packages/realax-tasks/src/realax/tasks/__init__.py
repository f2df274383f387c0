"""realax.tasks: gymnax, brax and jumanji environments as fitness functions of policy
parameters, flax policies and an environment registry.

>>> import jax, realax.tasks as rt
>>> task = rt.GymnaxTask("CartPole-v1", policy=rt.MLPPolicy(action_dims=2, discrete=True))
"""

from ._aggregator import MultiTaskAggregator as MultiTaskAggregator
from ._brax import BRAX_BACKENDS as BRAX_BACKENDS
from ._brax import BraxEnv as BraxEnv
from ._catalog import ENV_SPACES as ENV_SPACES
from ._catalog import env_info as env_info
from ._catalog import get_env_dimensions as get_env_dimensions
from ._catalog import known_env_info as known_env_info
from ._craftax import CraftaxEnv as CraftaxEnv
from ._env import Env as Env
from ._env import EnvSpec as EnvSpec
from ._env import EnvState as EnvState
from ._gymnax import GymnaxEnv as GymnaxEnv
from ._jumanji import JUMANJI_OBS_FNS as JUMANJI_OBS_FNS
from ._jumanji import JumanjiEnv as JumanjiEnv
from ._jumanji import flatten_observation as flatten_observation
from ._masked import mask_observation as mask_observation
from ._meta import MetaEvoTask as MetaEvoTask
from ._meta import generation_weights as generation_weights
from ._navix import NavixEnv as NavixEnv
from ._obs_norm import RunningStats as RunningStats
from ._obs_norm import merge_stats as merge_stats
from ._playground import PLAYGROUND_IMPLS as PLAYGROUND_IMPLS
from ._playground import PlaygroundEnv as PlaygroundEnv
from ._playground_task import PlaygroundTask as PlaygroundTask
from ._policy import BasePolicy as BasePolicy
from ._policy import GRUPolicy as GRUPolicy
from ._policy import MLPPolicy as MLPPolicy
from ._policy import check_policy as check_policy
from ._policy import make_model_factory as make_model_factory
from ._protocols import DataTask as DataTask
from ._protocols import Task as Task
from ._qd_tasks import DEFAULT_MAZE_WALLS as DEFAULT_MAZE_WALLS
from ._qd_tasks import DescriptorTask as DescriptorTask
from ._qd_tasks import MazeTask as MazeTask
from ._registry import make as make
from ._registry import registered_names as registered_names
from ._registry import wrap as wrap
from ._render import check_render as check_render
from ._render import render_rollout as render_rollout
from ._render import write_video as write_video
from ._suite_tasks import BraxTask as BraxTask
from ._suite_tasks import GymnaxTask as GymnaxTask
from ._suite_tasks import JumanjiTask as JumanjiTask
from ._suites import EnvInfo as EnvInfo
from ._suites import import_suite as import_suite
from ._suites import slow_to_describe as slow_to_describe
from ._suites import suite_extra as suite_extra
from ._suites import suites as suites
from ._task import EnvTask as EnvTask
from ._xminigrid import XMinigridEnv as XMinigridEnv

__all__ = [
    "BRAX_BACKENDS",
    "DEFAULT_MAZE_WALLS",
    "ENV_SPACES",
    "JUMANJI_OBS_FNS",
    "BasePolicy",
    "BraxEnv",
    "BraxTask",
    "CraftaxEnv",
    "DataTask",
    "DescriptorTask",
    "Env",
    "EnvInfo",
    "EnvSpec",
    "EnvState",
    "EnvTask",
    "GRUPolicy",
    "GymnaxEnv",
    "GymnaxTask",
    "JumanjiEnv",
    "JumanjiTask",
    "MLPPolicy",
    "MetaEvoTask",
    "MazeTask",
    "MultiTaskAggregator",
    "NavixEnv",
    "PLAYGROUND_IMPLS",
    "PlaygroundEnv",
    "PlaygroundTask",
    "RunningStats",
    "Task",
    "XMinigridEnv",
    "check_policy",
    "check_render",
    "env_info",
    "known_env_info",
    "flatten_observation",
    "generation_weights",
    "get_env_dimensions",
    "import_suite",
    "make",
    "make_model_factory",
    "mask_observation",
    "merge_stats",
    "registered_names",
    "render_rollout",
    "slow_to_describe",
    "suite_extra",
    "suites",
    "wrap",
    "write_video",
]
