"""jumanji environments behind the :class:`~realax.tasks.Env` interface."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp

from . import _frames
from ._env import (
    Env,
    EnvSpec,
    ObsFn,
    box_bounds,
    check_episode_length,
    check_no_env_kwargs,
)
from ._quiet import quiet
from ._suites import EnvInfo, SuiteAdapter, check_name, import_suite, register_suite


def flatten_observation(obs: Any) -> jax.Array:
    """Concatenates every leaf of a structured observation into one float32 vector.

    Leaves are taken in the observation's field order (jumanji observations are
    NamedTuples), each cast to float32 and raveled.

    >>> flatten_observation({"a": jnp.ones((2, 2)), "b": jnp.array(3)}).shape
    (5,)
    """
    leaves = jax.tree.leaves(obs)
    return jnp.concatenate([jnp.ravel(jnp.asarray(x, jnp.float32)) for x in leaves])


def game2048_obs(obs: Any) -> jax.Array:
    """Game2048: board exponents scaled to [0, 1] (2**16 tile = 1) and the action mask."""
    board = jnp.ravel(obs.board).astype(jnp.float32) / 16.0
    return jnp.concatenate([board, obs.action_mask.astype(jnp.float32)])


def snake_obs(obs: Any) -> jax.Array:
    """Snake: the one-hot feature grid (rows x cols x 5) and the action mask.

    The raw ``step_count`` is left out: it is unbounded and carries no information about
    what to do next.
    """
    return jnp.concatenate([jnp.ravel(obs.grid), obs.action_mask.astype(jnp.float32)])


def maze_obs(obs: Any) -> jax.Array:
    """Maze: walls, agent and target one-hot grids (rows x cols each) and the action mask."""
    walls = obs.walls.astype(jnp.float32)
    rows, cols = walls.shape
    agent = jnp.zeros((rows, cols)).at[obs.agent_position.row, obs.agent_position.col].set(1.0)
    target = jnp.zeros((rows, cols)).at[obs.target_position.row, obs.target_position.col].set(1.0)
    return jnp.concatenate(
        [walls.ravel(), agent.ravel(), target.ravel(), obs.action_mask.astype(jnp.float32)]
    )


#: Observation flattenings chosen per jumanji environment class; others use
#: :func:`flatten_observation`.
JUMANJI_OBS_FNS: dict[str, ObsFn] = {
    "Game2048": game2048_obs,
    "Snake": snake_obs,
    "Maze": maze_obs,
}


class JumanjiEnv(Env):
    """A jumanji environment (by id or instance) as an :class:`Env`.

    Structured observations are flattened to one float32 vector: by a flattening chosen
    for the environment (``JUMANJI_OBS_FNS``: Game2048, Snake, Maze) or by
    :func:`flatten_observation`, unless ``obs_fn`` is given. ``terminated`` is a last
    timestep with zero discount, ``truncated`` a last timestep with non-zero discount or the
    step counter reaching ``max_steps``: the environment's own ``time_limit`` when it has
    one, else ``episode_length``.

    Multi-agent environments that reward each agent (``Connector-v3``,
    ``LevelBasedForaging-v0``, ``SearchAndRescue-v0``) step with the team's reward, the sum
    over agents, so a task's fitness is the team return; the per-agent rewards and
    discounts are in ``info["agent_rewards"]`` and ``info["agent_discounts"]``, and the
    episode counts as terminated when every agent's discount is zero.

    Args:
        env: a jumanji id (``jumanji.registered_environments()``) or an ``Environment``.
        episode_length: the episode limit for environments without a ``time_limit``.
        autoreset: reset automatically when an episode ends (see :class:`Env`).
        obs_fn: map from the raw observation to one array.
        **env_kwargs: passed to ``jumanji.make``.

    >>> env = JumanjiEnv("Snake-v1", num_rows=6, num_cols=6)
    >>> env.obs_shape, env.action_dims, env.discrete
    ((184,), 4, True)
    """

    suite = "jumanji"

    def __init__(
        self,
        env: Any,
        *,
        episode_length: int = 1000,
        autoreset: bool = True,
        obs_fn: ObsFn | None = None,
        **env_kwargs: Any,
    ):
        jumanji = import_suite("jumanji")
        check_episode_length(episode_length)
        if isinstance(env, str):
            check_name("jumanji", env)
            name = env
            try:
                with quiet():
                    env = jumanji.make(env, **env_kwargs)
            except OSError as error:  # e.g. Sokoban-v0 downloads its levels on creation
                raise RuntimeError(
                    f"creating jumanji environment {name!r} needs data it could not fetch "
                    f"({type(error).__name__}: {error}); run it once with network access so "
                    "the data is cached"
                ) from error
        else:
            check_no_env_kwargs("jumanji", env_kwargs)
            name = type(env.unwrapped).__name__
        if obs_fn is None:
            obs_fn = JUMANJI_OBS_FNS.get(type(env.unwrapped).__name__, flatten_observation)
        super().__init__(name=name, autoreset=autoreset, obs_fn=obs_fn)
        self.env = env
        self.episode_length = episode_length

    def _build_spec(self) -> EnvSpec:
        limit = getattr(self.env.unwrapped, "time_limit", None)
        return self._make_spec(
            **self._actions(),
            max_steps=int(limit) if limit is not None else self.episode_length,
        )

    def _actions(self) -> dict[str, Any]:
        """``action_dims``, ``action_shape``, ``discrete`` and ``bounds`` of the action spec."""
        specs = import_suite("jumanji").specs
        spec = self.env.action_spec
        shape = tuple(int(d) for d in spec.shape)
        bounds = None
        if isinstance(spec, specs.DiscreteArray):
            action_dims: Any = int(spec.num_values)
            discrete = True
        elif isinstance(spec, specs.MultiDiscreteArray):
            action_dims = tuple(int(n) for n in jnp.ravel(jnp.asarray(spec.num_values)).tolist())
            discrete = True
        elif isinstance(spec, specs.BoundedArray) and jnp.issubdtype(spec.dtype, jnp.integer):
            n = jnp.broadcast_to(jnp.asarray(spec.maximum) - jnp.asarray(spec.minimum) + 1, shape)
            action_dims = tuple(int(v) for v in jnp.ravel(n).tolist())
            discrete = True
        elif isinstance(spec, specs.Array) and jnp.issubdtype(spec.dtype, jnp.floating):
            action_dims = math.prod(shape)
            discrete = False
            if isinstance(spec, specs.BoundedArray):
                bounds = box_bounds(spec.minimum, spec.maximum, shape)
            else:
                bounds = box_bounds(-math.inf, math.inf, shape)
        else:
            raise TypeError(
                f"jumanji environment {self._name!r} has an unsupported action spec {spec!r}"
            )
        return {
            "action_dims": action_dims,
            "action_shape": shape,
            "discrete": discrete,
            "bounds": bounds,
        }

    def _prepare_action(self, action: Any) -> jax.Array:
        spec = self.spec
        action = jnp.asarray(action)
        self._check_action(action)
        action = action.reshape(spec.action_shape)
        native = self.env.action_spec
        if spec.discrete and not hasattr(native, "num_values"):  # integer BoundedArray
            action = action + jnp.asarray(native.minimum)
        return action.astype(native.dtype)

    def _reset(self, key):
        state, timestep = self.env.reset(key)
        return timestep.observation, state

    def _step(self, key, inner, action):
        del key  # jumanji environments carry their own key in the state
        state, timestep = self.env.step(inner, action)
        info: dict[str, Any] = {"extras": timestep.extras} if timestep.extras else {}
        reward, discount = timestep.reward, timestep.discount
        if jnp.ndim(reward) > 0:  # multi-agent: one reward and discount per agent
            info["agent_rewards"], info["agent_discounts"] = reward, discount
            reward = jnp.sum(reward)  # the team's reward
        last = timestep.last()
        zero_discount = jnp.all(discount == 0)  # no agent left to bootstrap from
        terminated = jnp.logical_and(last, zero_discount)
        truncated = jnp.logical_and(last, jnp.logical_not(zero_discount))
        return timestep.observation, state, reward, terminated, truncated, info


# Environments whose default constructor downloads data. jumanji's registry does not say
# so, and trying would retry the download hub for minutes on an offline machine, so the
# listings (registered_names, env_info, get_env_dimensions) report them without building.
_DOWNLOADS = {"Sokoban-v0": "the Boxoban levels from the Hugging Face hub"}


def _download(name: str) -> str | None:
    if name not in _DOWNLOADS:
        return None
    return (
        f"Downloads {_DOWNLOADS[name]} when created, which a listing could not fetch "
        f"without the network; run realax.tasks.make({name!r}) once while online."
    )


def _describe(name: str) -> EnvInfo:
    """Sizes from the environment's specs: the observation spec's example value through the
    flattening, instead of tracing ``reset`` (two thirds of the cost of a spec)."""
    env = JumanjiEnv(name, autoreset=False)
    with jax.ensure_compile_time_eval():
        actions = env._actions()
        example = env.env.observation_spec.generate_value()
        obs = jax.eval_shape(env._observe, example)
    if not isinstance(obs, jax.ShapeDtypeStruct):  # let the spec raise its own error
        return EnvInfo.from_spec(env.spec)
    shape = tuple(int(d) for d in obs.shape)
    return EnvInfo(name, "jumanji", shape, actions["action_dims"], actions["discrete"])


def _names(jumanji: ModuleType) -> list[str]:
    return sorted(jumanji.registered_environments())


register_suite(
    SuiteAdapter(
        name="jumanji",
        names=_names,
        make=JumanjiEnv,
        describe=_describe,
        download=_download,
        render=_frames.jumanji_frames,
        check_render=_frames.check_jumanji,
    )
)
