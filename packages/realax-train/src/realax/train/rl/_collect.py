"""``collect``: run an agent or a policy on an environment and keep the transitions."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from realax.agents import Dataset, reset_hidden

from .._validate import as_typed_key, check_positive_int
from ._envs import ActionBounds, flat_obs_shape, resolve_env
from ._recurrent import policy_step

__all__ = ["collect"]


def _check_epsilon(epsilon: Any) -> float | None:
    if epsilon is None:
        return None
    if isinstance(epsilon, bool) or not isinstance(epsilon, numbers.Real):
        raise TypeError(f"epsilon must be a float in [0, 1] or None (got {epsilon!r})")
    if not 0.0 <= float(epsilon) <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1] (got epsilon={epsilon!r}); e.g. 0.1")
    return float(epsilon)


Act = Callable[[jax.Array, jax.Array, Any], tuple[jax.Array, Any]]


def _actors(agent_or_policy: Any, n_envs: int) -> tuple[Act, Act | None, Any]:
    """``(act, greedy, memory)``: ``act(obs_batch, key, memory) -> (actions, memory)`` of the
    agent's stochastic policy or the plain policy, the agent's greedy one (None for a
    policy), and the initial memory (a recurrent agent's hidden states, else None)."""
    if callable(getattr(agent_or_policy, "sample_actions", None)):
        memory, sample = policy_step(agent_or_policy, n_envs, deterministic=False)
        _, greedy = policy_step(agent_or_policy, n_envs, deterministic=True)
        return (
            lambda obs, key, mem: sample(mem, obs, key),
            lambda obs, key, mem: greedy(mem, obs, key),
            memory,
        )
    if not callable(agent_or_policy):
        raise TypeError(
            "collect needs a realax agent (with sample_actions(obs, seed=)) or a policy "
            f"function policy(obs, key) -> action (got {type(agent_or_policy).__name__})"
        )
    policy = agent_or_policy

    def act(obs: jax.Array, key: jax.Array, memory: Any) -> tuple[jax.Array, Any]:
        return jax.vmap(policy)(obs, jax.random.split(key, obs.shape[0])), memory

    return act, None, None


def collect(
    agent_or_policy: Any,
    env: Any,
    key: Any,
    num_steps: int,
    num_envs: int = 1,
    epsilon: float | None = None,
    *,
    env_kwargs: Mapping[str, Any] | None = None,
    action_fn: Callable[[jax.Array], jax.Array] | None = None,
) -> Dataset:
    """Run ``agent_or_policy`` for ``num_steps`` transitions and return them as a `Dataset`.

    ``num_envs`` environments step side by side (``vmap``) inside one compiled ``lax.scan``;
    a finished episode resets automatically. Without ``epsilon`` the agent samples from its
    stochastic policy; with ``epsilon`` it acts greedily (``deterministic=True``) and, with
    probability ``epsilon`` per step, takes a uniformly random action instead (continuous
    actions: uniform in ``[-1, 1]``). A recurrent agent (`realax.agents.RecurrentPPO`)
    carries its hidden state through each environment's episode, reset at the episode's end.

    The dataset holds jaxrl_m's keys: ``observations``, ``actions`` (the agent's actions:
    integers for discrete environments, in ``[-1, 1]`` for continuous ones), ``rewards``,
    ``masks`` (0.0 at a termination, 1.0 elsewhere, including time-limit truncations),
    ``dones`` (True at every episode end) and ``next_observations`` (the final observation of
    an episode at its last step, not the reset one). Rows are grouped by environment: the
    ``num_steps // num_envs`` steps of environment 0, then of environment 1, ...; the last
    row of each environment's block is marked ``dones=True`` (cut by the end of collection,
    ``masks=1``), so episode boundaries never run across two environments.

    Args:
        agent_or_policy: a realax agent (``sample_actions(obs, seed=, deterministic=)``:
            `PPO`, `SAC`, `DQN`, the BC agents, ...) or a function ``policy(obs, key) ->
            action`` of one observation (for example ``functools.partial(apply, params)``).
        env: a realax-tasks name, a ``realax.tasks.Env`` or a suite instance.
        key: PRNG key.
        num_steps: number of transitions, a multiple of ``num_envs``.
        num_envs: parallel environments.
        epsilon: None (the policy's own sampling) or the probability of a random action.
        env_kwargs: options of the environment (as in the trainers).
        action_fn: the stored actions -> the environment's actions. Default: discrete
            actions unchanged, continuous ones in ``[-1, 1]`` rescaled to the bounds (as
            `OffPolicyTrainer` and `OfflineTrainer` do).

    Returns:
        a `realax.agents.Dataset` of ``num_steps`` rows.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.train.rl import collect
        >>> policy = lambda obs, key: jnp.int32(obs[2] > 0)  # push towards the pole's lean
        >>> data = collect(policy, "CartPole-v1", jax.random.key(0), num_steps=400, num_envs=2)
        >>> data.size, data["observations"].shape, bool(data["dones"][199])
        (400, (400, 4), True)
    """
    env = resolve_env(env, env_kwargs)
    obs_shape = flat_obs_shape(env)
    n_envs = check_positive_int(num_envs, "num_envs", "e.g. num_envs=4")
    total = check_positive_int(num_steps, "num_steps", "e.g. num_steps=10_000")
    if total % n_envs:
        raise ValueError(
            f"num_steps must be a multiple of num_envs (got num_steps={total}, num_envs="
            f"{n_envs}); use num_steps={max(n_envs, total // n_envs * n_envs)}"
        )
    eps = _check_epsilon(epsilon)
    discrete = bool(env.discrete)
    act, greedy_or_none, memory0 = _actors(agent_or_policy, n_envs)
    greedy = greedy_or_none or act
    if action_fn is None:
        action_fn = (lambda a: a) if discrete else ActionBounds(env).rescale
    action_dims = int(env.action_dims)

    def random_actions(key: jax.Array) -> jax.Array:
        if discrete:
            return jax.random.randint(key, (n_envs,), 0, action_dims, jnp.int32)
        return jax.random.uniform(key, (n_envs, action_dims), minval=-1.0, maxval=1.0)

    def choose(obs: jax.Array, key: jax.Array, memory: Any) -> tuple[jax.Array, Any]:
        k_act, k_coin, k_rand = jax.random.split(key, 3)
        if eps is None:
            actions, memory = act(obs, k_act, memory)
        else:
            actions, memory = greedy(obs, k_act, memory)
            coin = jax.random.uniform(k_coin, (n_envs,)) < eps
            coin = coin.reshape((n_envs,) + (1,) * (jnp.ndim(actions) - 1))
            actions = jnp.where(coin, random_actions(k_rand), actions)
        if discrete:
            return jnp.asarray(actions).astype(jnp.int32).reshape(n_envs), memory
        return jnp.clip(jnp.asarray(actions, jnp.float32), -1.0, 1.0).reshape(n_envs, -1), memory

    def body(carry, key):
        env_state, obs, memory = carry
        k_act, k_env = jax.random.split(key)
        actions, memory = choose(obs, k_act, memory)
        keys = jax.random.split(k_env, n_envs)
        next_obs, env_state, reward, term, trunc, info = jax.vmap(env.step)(
            keys, env_state, action_fn(actions)
        )
        row = {
            "observations": obs,
            "actions": actions,
            "rewards": jnp.asarray(reward, jnp.float32),
            "masks": 1.0 - jnp.asarray(term, jnp.float32),
            "dones": jnp.logical_or(term, trunc),
            "next_observations": info["final_obs"].astype(jnp.float32).reshape(n_envs, -1),
        }
        memory = memory if memory is None else reset_hidden(memory, row["dones"])
        return (env_state, next_obs.astype(jnp.float32).reshape(n_envs, -1), memory), row

    @jax.jit
    def run(key: jax.Array) -> dict:
        k_reset, k_steps = jax.random.split(key)
        obs, env_state = jax.vmap(env.reset)(jax.random.split(k_reset, n_envs))
        obs = obs.astype(jnp.float32).reshape(n_envs, *obs_shape)
        carry = (env_state, obs, memory0)
        _, rows = lax.scan(body, carry, jax.random.split(k_steps, total // n_envs))
        rows["dones"] = rows["dones"].at[-1].set(True)  # collection ends every trajectory
        # (steps, envs, ...) -> (envs * steps, ...): each environment's steps contiguous
        return jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1).reshape(total, *x.shape[2:]), rows)

    return Dataset.create(**run(as_typed_key(key)))
