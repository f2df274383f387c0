"""Environments and agents of the RL trainers: resolution, checks, action conversion."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import realax.tasks as rt

__all__ = [
    "ActionBounds",
    "agent_factory",
    "agent_name",
    "example_action",
    "flat_obs_shape",
    "resolve_env",
]


def resolve_env(env: Any, env_kwargs: Mapping[str, Any] | None = None) -> rt.Env:
    """A realax-tasks Env (with autoreset) from a registry name or an env instance."""
    kwargs = dict(env_kwargs or {})
    if isinstance(env, str):
        env = rt.make(env, **kwargs)
    elif isinstance(env, rt.Env):
        if kwargs:
            env = env.replace(**kwargs)
    else:
        try:
            env = rt.wrap(env, **kwargs)
        except TypeError as e:
            raise TypeError(
                f"env must be a realax.tasks environment name (e.g. 'CartPole-v1'), a "
                f"realax.tasks.Env or a gymnax/brax/jumanji environment instance (got "
                f"{type(env).__name__}): {e}"
            ) from None
    if not env.autoreset:
        env = env.replace(autoreset=True)
    if env.discrete and not isinstance(env.action_dims, int):
        raise ValueError(
            f"environment {env.name!r} has multi-discrete actions (action_dims="
            f"{env.action_dims}); the RL trainers support one discrete action or a continuous "
            "action vector"
        )
    return env


def example_action(env: rt.Env, discrete: bool | None = None) -> jax.Array:
    """One action of ``env`` (or of the other kind with ``discrete=``), zeros."""
    if env.discrete if discrete is None else discrete:
        return jnp.zeros((), jnp.int32)
    dims = env.action_dims if not env.discrete else 1
    return jnp.zeros((int(dims),), jnp.float32)


def flat_obs_shape(env: rt.Env) -> tuple[int, ...]:
    shape = tuple(env.obs_shape)
    if len(shape) != 1:
        raise ValueError(
            f"environment {env.name!r} has observations of shape {shape}; the RL trainers' MLP "
            "agents need flat observations; pass env_kwargs={'obs_fn': lambda o: o.reshape(-1)}"
        )
    return shape


def agent_factory(agent: Any, agent_kwargs: Mapping[str, Any] | None) -> Callable[..., Any]:
    """``create(key=, observations=, actions=, **kw)`` from an agent class or a callable."""
    if agent_kwargs is not None and not isinstance(agent_kwargs, Mapping):
        raise TypeError(f"agent_kwargs must be a dict or None (got {type(agent_kwargs).__name__})")
    create = getattr(agent, "create", None) if inspect.isclass(agent) else agent
    if not callable(create):
        raise TypeError(
            "agent must be an agent class with a create(key=, observations=, actions=, ...) "
            "classmethod (e.g. realax.agents.PPO) or such a function (e.g. "
            f"functools.partial(PPO.create, learning_rate=3e-4)); got {type(agent).__name__}"
        )
    return create


def agent_name(agent: Any) -> str:
    """``"SAC"`` for ``SAC``, ``SAC.create`` or ``functools.partial(SAC.create, ...)``."""
    while isinstance(agent, functools.partial):
        agent = agent.func
    owner = getattr(agent, "__self__", None)  # a bound classmethod such as SAC.create
    if inspect.isclass(owner):
        return owner.__name__
    return getattr(agent, "__name__", type(agent).__name__)


class ActionBounds:
    """The finite action bounds of a continuous env (``-1`` / ``1`` where it has none)."""

    def __init__(self, env: rt.Env):
        low = np.asarray(env.action_low, np.float32).reshape(-1)
        high = np.asarray(env.action_high, np.float32).reshape(-1)
        self.low = np.where(np.isfinite(low), low, -1.0).astype(np.float32)
        self.high = np.where(np.isfinite(high), high, 1.0).astype(np.float32)

    def clip(self, actions: jax.Array) -> jax.Array:
        """Unbounded actions (PPO's Gaussian) clipped to the bounds."""
        return jnp.clip(actions, self.low, self.high)

    def rescale(self, actions: jax.Array) -> jax.Array:
        """Actions in ``[-1, 1]`` (SAC's tanh-squashed policy) mapped onto the bounds."""
        low, high = jnp.asarray(self.low), jnp.asarray(self.high)
        return low + (jnp.clip(actions, -1.0, 1.0) + 1.0) * 0.5 * (high - low)
