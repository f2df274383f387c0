"""Recurrent agents in the RL trainers: the rollout that carries hidden states, and the
policy step of evaluation that carries them through an episode.

An agent is recurrent when it has a true ``recurrent`` attribute (`realax.agents.RecurrentPPO`);
then ``act(obs, hidden, seed=)`` returns ``(actions, log_probs, values, hidden)``,
``sample_actions(obs, hidden, seed=, deterministic=)`` returns ``(actions, hidden)``,
``value(obs, hidden)`` the values, ``initial_hidden(n)`` the zeros state of ``n``
environments and ``update(rollout, hidden=h0, pmap_axis=)`` learns from a rollout whose
first step saw the hidden state ``h0``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from realax.agents import Rollout, reset_hidden

__all__ = ["RECURRENT_CARRY", "is_recurrent", "policy_step", "recurrent_rollout"]

#: the RLState fields a recurrent rollout carries: ``_common.ENV_CARRY`` and the hidden states
#: (spelled out: ``_common`` imports ``_evaluate``, which imports this module)
RECURRENT_CARRY = ("env_state", "obs", "episode_return", "episode_length", "hidden")

PolicyStep = Callable[[Any, jax.Array, jax.Array], tuple[jax.Array, Any]]


def is_recurrent(agent: Any) -> bool:
    """Whether ``agent`` (or an abstract one from ``jax.eval_shape``) carries a hidden state."""
    return bool(getattr(agent, "recurrent", False))


def policy_step(agent: Any, n: int, *, deterministic: bool) -> tuple[Any, PolicyStep]:
    """``(memory, step)`` with ``step(memory, obs, key) -> (actions, memory)`` for a batch of
    ``n`` observations: the hidden states of a recurrent agent (zeros at first), else None."""
    if is_recurrent(agent):

        def step_recurrent(memory: Any, obs: jax.Array, key: jax.Array) -> tuple:
            return agent.sample_actions(obs, memory, seed=key, deterministic=deterministic)

        return agent.initial_hidden(n), step_recurrent

    def step(memory: Any, obs: jax.Array, key: jax.Array) -> tuple:
        return agent.sample_actions(obs, seed=key, deterministic=deterministic), memory

    return None, step


def recurrent_rollout(
    trainer: Any, state: Any, key: jax.Array, axis: str | None = None
) -> tuple[tuple, Any, tuple]:
    """The recurrent form of ``OnPolicyTrainer._rollout``: ``num_steps`` steps of every local
    environment, the hidden state carried and reset to zeros after a step that ended the
    episode (terminated or truncated).

    Returns the carry of `RECURRENT_CARRY`, the `Rollout` and the finished-episode sums.
    ``next_values`` is ``V`` of each step's final observation seen with the hidden state
    after the step (before its reset), so a truncation bootstraps as in the feed-forward case.
    """
    agent, env = state.agent, trainer.env

    def env_step(carry: tuple, k: jax.Array) -> tuple[tuple, tuple]:
        env_state, obs, ep_ret, ep_len, hidden = carry
        keys = trainer._local_keys(k, trainer.num_envs, axis, parts=2)
        actions, log_probs, values, hidden = jax.vmap(lambda o, h, k: agent.act(o, h, seed=k))(
            obs, hidden, keys[:, 0]
        )
        next_obs, env_state, reward, term, trunc, info = trainer._env_step(
            env, keys[:, 1], env_state, trainer.env_action(actions)
        )
        done = jnp.logical_or(term, trunc)
        ep_ret, ep_len, finished = trainer._track_episodes(ep_ret, ep_len, reward, done)
        policy = {"obs": obs, "actions": actions, "log_probs": log_probs, "values": values}
        step = Rollout(**policy, rewards=reward, dones=done, terminated=term)
        final = (info["final_obs"].astype(jnp.float32), hidden)
        carry = (
            env_state,
            next_obs.astype(jnp.float32),
            ep_ret,
            ep_len,
            reset_hidden(hidden, done),
        )
        return carry, (step, final, finished)

    carry, (rollout, (final_obs, hiddens), finished) = lax.scan(
        env_step,
        tuple(getattr(state, f) for f in RECURRENT_CARRY),
        jax.random.split(key, trainer.num_steps),
    )
    next_values = jax.vmap(jax.vmap(agent.value))(final_obs, hiddens)
    return carry, rollout.replace(next_values=next_values), finished
