"""Greedy evaluation episodes of an agent, vmapped over fresh environments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import realax.tasks as rt
from jax import lax

from .._validate import as_typed_key, check_positive_int
from ._envs import ActionBounds
from ._recurrent import policy_step

__all__ = ["evaluate"]


def local_keys(key: jax.Array, n_global: int, axis: str | None, n_devices: int, parts: int = 1):
    """Keys of this device's share of ``n_global`` items, ``(n_local, parts)``.

    Item ``i`` gets the same key whatever the number of devices, so a run split over devices
    steps the same environments with the same randomness as a one-device run.
    """
    keys = jax.random.split(key, (n_global, parts))
    if axis is None:
        return keys
    n = n_global // n_devices
    return lax.dynamic_slice_in_dim(keys, lax.axis_index(axis) * n, n)


def play_episodes(
    agent: Any,
    env: rt.Env,
    key: jax.Array,
    *,
    n_episodes: int,
    max_steps: Any,
    action_fn: Callable[[jax.Array], jax.Array],
    axis: str | None = None,
    n_devices: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """Return and length of each of this device's greedy episodes (the traced core).

    A ``while_loop`` that stops when every episode ended or after ``max_steps`` steps (a traced
    value: zero runs no step, which stays cheap under ``vmap`` over seeds, where a
    ``lax.cond`` would evaluate both branches).
    """
    n = n_episodes // n_devices
    k_reset, k_loop = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset)(local_keys(k_reset, n_episodes, axis, n_devices)[:, 0])
    memory, act = policy_step(agent, n, deterministic=True)  # a recurrent agent's hidden states

    def cond(carry):
        i, _, _, _, _, alive, _, _ = carry
        return jnp.logical_and(i < max_steps, jnp.any(alive))

    def body(carry):
        i, env_state, obs, ret, length, alive, k, memory = carry
        k, k_step = jax.random.split(k)
        keys = local_keys(k_step, n_episodes, axis, n_devices)[:, 0]
        actions, memory = act(memory, obs.astype(jnp.float32), k)
        obs, env_state, reward, term, trunc, _ = jax.vmap(env.step)(
            keys, env_state, action_fn(actions)
        )
        ret = ret + jnp.where(alive, reward, 0.0)
        length = length + alive.astype(jnp.int32)
        alive = jnp.logical_and(alive, ~jnp.logical_or(term, trunc))
        return i + 1, env_state, obs, ret, length, alive, k, memory

    carry = (
        jnp.zeros((), jnp.int32),
        env_state,
        obs,
        jnp.zeros((n,), jnp.float32),
        jnp.zeros((n,), jnp.int32),
        jnp.ones((n,), bool),
        k_loop,
        memory,
    )
    _, _, _, ret, length, _, _, _ = lax.while_loop(cond, body, carry)
    return ret, length


def greedy_means(
    agent: Any,
    env: rt.Env,
    key: jax.Array,
    active: jax.Array,
    *,
    n_episodes: int,
    max_steps: int,
    action_fn: Callable[[jax.Array], jax.Array],
    axis: str | None = None,
    n_devices: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """Mean return and length of ``n_episodes`` greedy episodes, played only if ``active``
    (a traced bool: inactive plays zero steps); averaged over devices under ``axis``."""
    ret, length = play_episodes(
        agent,
        env,
        key,
        n_episodes=n_episodes,
        max_steps=jnp.where(active, max_steps, 0),
        action_fn=action_fn,
        axis=axis,
        n_devices=n_devices,
    )
    mean_ret, mean_len = jnp.mean(ret), jnp.mean(length.astype(jnp.float32))
    if axis is not None:
        mean_ret, mean_len = lax.pmean((mean_ret, mean_len), axis)
    return mean_ret, mean_len


def evaluate(
    agent: Any,
    env: Any,
    key: jax.Array,
    *,
    episodes: int,
    max_steps: int | None = None,
    action_fn: Callable[[jax.Array], jax.Array] | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Play ``episodes`` greedy (deterministic) episodes of ``agent`` on fresh copies of ``env``.

    The episodes run side by side (``vmap``) until every one ended or ``max_steps`` steps
    passed. The RL trainers' own periodic evaluation is this function.

    Args:
        agent: an agent with ``sample_actions(obs, seed=, deterministic=True)``.
        env: a ``realax.tasks.Env`` or a registered name (``"CartPole-v1"``).
        key: PRNG key (episode ``i`` gets the same randomness whatever ``episodes`` is split
            over).
        episodes: number of episodes.
        max_steps: step limit of an episode (default: the env's ``max_steps``).
        action_fn: agent actions -> env actions. Default: discrete actions unchanged,
            continuous ones clipped to the env's bounds (PPO); for agents acting in
            ``[-1, 1]`` (SAC) pass the trainer's ``trainer.env_action``.

    Returns:
        ``(returns, lengths)``: float32 and int32 arrays of shape ``(episodes,)``.

    Example:
        >>> import jax
        >>> from realax.agents import PPO
        >>> from realax.train.rl import OnPolicyTrainer, evaluate
        >>> trainer = OnPolicyTrainer(PPO, "CartPole-v1", num_envs=2, num_steps=8, train_steps=1)
        >>> agent = trainer.initialize(jax.random.key(0)).agent
        >>> returns, lengths = evaluate(agent, "CartPole-v1", jax.random.key(1), episodes=3)
        >>> returns.shape, lengths.dtype
        ((3,), dtype('int32'))
    """
    env = rt.make(env) if isinstance(env, str) else env
    if not isinstance(env, rt.Env):
        raise TypeError(
            f"env must be a realax.tasks.Env or a registered name (got {type(env).__name__}); "
            "e.g. env='CartPole-v1'"
        )
    env = env.replace(autoreset=False)
    n = check_positive_int(episodes, "episodes", "e.g. episodes=16")
    limit = int(env.max_steps) if max_steps is None else max_steps
    limit = check_positive_int(limit, "max_steps")
    if action_fn is None:
        action_fn = (lambda a: a) if env.discrete else ActionBounds(env).clip
    # the environment is closed over (it need not be hashable): one compilation per call
    run = jax.jit(
        lambda a, k: play_episodes(a, env, k, n_episodes=n, max_steps=limit, action_fn=action_fn)
    )
    return run(agent, as_typed_key(key))
