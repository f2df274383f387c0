"""OnPolicyTrainer: PPO-style agents on vectorised environments, in one compiled loop."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from realax.agents import Rollout

from .._validate import check_bool, check_positive_int
from ._common import ENV_CARRY, RLState, RLTrainer, carry_of, steps_from_total, with_carry
from ._recurrent import RECURRENT_CARRY, is_recurrent, recurrent_rollout

__all__ = ["OnPolicyTrainer"]


class OnPolicyTrainer(RLTrainer):
    """Train an on-policy agent (`realax.agents.PPO`) on a realax-tasks environment.

    One train step collects a rollout of ``num_steps`` steps from ``num_envs`` environments
    (stepped with ``vmap`` inside the compiled loop, reset automatically at episode ends) and
    calls ``agent.update`` on it once (PPO: ``update_epochs`` x ``num_minibatches`` gradient
    steps). Advantages use GAE; a time-limit truncation bootstraps from the value of the final
    observation (``info["final_obs"]``), a termination does not.

    Continuous actions are sampled unbounded and clipped to the environment's bounds when
    stepping (the rollout keeps the sampled action for the log-probabilities).

    A recurrent agent (``realax.agents.RecurrentPPO``, ``agent.recurrent`` true) keeps one
    hidden state per environment in ``RLState.hidden``, reset to zeros after every terminated
    or truncated step; its ``update`` gets the hidden states of the rollout's start, and the
    environments per device must divide by its ``num_minibatches`` (whole sequences).

    Every ``eval_freq`` train steps (and after the last one) the deterministic policy plays
    ``eval_episodes`` fresh episodes inside the compiled loop; ``eval_return`` reports the
    latest mean return.

    Metrics per train step: ``episode_return`` / ``episode_length`` (means over the episodes
    that finished during the step, NaN if none), ``episodes`` (their number), ``eval_return``,
    ``eval_length`` (NaN on steps without evaluation), ``env_steps`` (total so far) and the
    agent's update info (``loss``, ``actor_loss``, ``value_loss``, ``entropy``, ``approx_kl``,
    ...). Use :meth:`run` for the host-side environment steps per second.

    With ``n_devices > 1`` the environments (and evaluation episodes) are split over devices
    (``jax.shard_map``) and the agent's gradients are averaged across them through its
    ``pmap_axis``; each device shuffles its own part of the rollout into ``num_minibatches``.
    Under ``jax.distributed``, ``n_devices=jax.device_count()`` uses every device of every
    process; agent and metrics are the same on every process, the environment arrays of the
    returned state stay split over the processes.

    On a CPU host with few cores, XLA's concurrency-optimised scheduler can keep a second
    worker thread spinning through a whole run (doubling its CPU time, with no speed-up);
    ``XLA_FLAGS=--xla_cpu_enable_concurrency_optimized_scheduler=false``, set before jax
    starts, avoided most of it for PPO on CartPole (results unchanged: it only reorders
    independent operations; other programs can react the other way, so measure).

    Args:
        agent: an agent class with ``create(key=, observations=, actions=, **config)``
            (e.g. ``realax.agents.PPO``) or such a function (``functools.partial(PPO.create,
            ...)``). For discrete environments ``n_actions`` is filled in.
        env: a realax-tasks name (``"CartPole-v1"``, ``"inverted_pendulum"``, ...), a
            ``realax.tasks.Env`` or a gymnax / brax / jumanji environment instance.
        num_envs: parallel environments (split over devices).
        num_steps: rollout length per train step.
        train_steps: number of train steps (rollouts + updates); or give ``total_env_steps``.
        total_env_steps: total environment steps; ``train_steps = total_env_steps //
            (num_envs * num_steps)``.
        anneal_lr: decay the agent's learning rate linearly to zero over the run (sets
            PPO's ``anneal_lr_steps`` to ``train_steps * update_epochs * num_minibatches``).
        normalize_obs: normalise the agent's observations with running statistics of the
            rollouts (carried in ``state.norm``, combined exactly across devices, used at
            evaluation; `policy` hands out the agent with them).
        normalize_reward: scale the rewards the agent learns from by the running standard
            deviation of each environment's discounted return (the agent's ``discount``).
        obs_clip: normalised observations are clipped to ``[-obs_clip, obs_clip]``.
        reward_clip: scaled rewards are clipped to ``[-reward_clip, reward_clip]``.
        agent_kwargs: config of the agent (``learning_rate``, ``update_epochs``, ...).
        env_kwargs: options of ``realax.tasks.make`` (``backend``, ``episode_length``, ...).
        eval_freq: evaluate every this many train steps (default: 10 evaluations per run).
        eval_episodes: number of evaluation episodes (0 disables evaluation).
        eval_max_steps: step limit of an evaluation episode (default: the env's max_steps).
        logger: object with ``log(state, metrics)``, e.g. a ``realax.log.Logger`` with
            ``metrics_fn=realax.train.rl.default_rl_metrics``.
        progress_bar: show a live tqdm bar (episode return).
        n_devices: split the environments over this many devices.

    Example:
        >>> import jax
        >>> from realax.agents import PPO
        >>> from realax.train.rl import OnPolicyTrainer
        >>> trainer = OnPolicyTrainer(PPO, "CartPole-v1", num_envs=4, num_steps=16,
        ...                           train_steps=2, agent_kwargs={"hidden_dims": (8,)})
        >>> state, metrics = trainer.init_and_train(jax.random.key(0))
        >>> metrics["eval_return"].shape, int(state.env_steps)
        ((2,), 128)
    """

    def __init__(
        self, agent: Any, env: Any,
        num_envs: int = 4,
        num_steps: int = 128,
        train_steps: int | None = None,
        *,
        total_env_steps: int | None = None,
        anneal_lr: bool = False,
        # the options every RL trainer shares (see RLTrainer._setup_*)
        normalize_obs: bool = False, normalize_reward: bool = False,
        obs_clip: float = 10.0, reward_clip: float = 10.0,
        agent_kwargs: Mapping[str, Any] | None = None, env_kwargs: Mapping[str, Any] | None = None,
        eval_freq: int | None = None, eval_episodes: int = 16, eval_max_steps: int | None = None,
        logger: Any = None, progress_bar: bool = False, n_devices: int = 1,
    ):  # fmt: skip
        self._args = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        num_envs = check_positive_int(num_envs, "num_envs", "e.g. num_envs=4")
        self.num_steps = check_positive_int(num_steps, "num_steps", "e.g. num_steps=128")
        per_step = num_envs * self.num_steps
        train_steps = steps_from_total(
            total_env_steps, train_steps, per_step, f"num_envs={num_envs} x num_steps={num_steps}"
        )
        self._setup_env(train_steps, env, env_kwargs, num_envs, n_devices)
        self._setup_eval(eval_freq, eval_episodes, eval_max_steps)
        self._setup_agent(agent, agent_kwargs, logger, progress_bar)
        self.anneal_lr = check_bool(anneal_lr, "anneal_lr")
        abstract = self._abstract_agent()
        for method in ("act", "value", "update", "sample_actions"):
            if not callable(getattr(abstract, method, None)):
                raise TypeError(
                    f"OnPolicyTrainer needs an on-policy agent with act, value, update and "
                    f"sample_actions methods (like realax.agents.PPO); {type(abstract).__name__} "
                    f"has no {method}. For DQN or SAC use OffPolicyTrainer."
                )
        self._extra: dict[str, Any] = {}
        config = getattr(abstract, "config", None)
        minibatches = getattr(config, "num_minibatches", 1)
        self.recurrent = is_recurrent(abstract)
        local = self.num_envs // self.n_devices * (1 if self.recurrent else self.num_steps)
        if self.recurrent and local % minibatches:
            raise ValueError(
                f"a recurrent agent's minibatches are whole environments: the "
                f"{local} envs on each device must be divisible by the agent's "
                f"num_minibatches={minibatches}; change num_envs or num_minibatches"
            )
        if local % minibatches:
            raise ValueError(
                f"the rollout on each device ({self.num_steps} steps x "
                f"{self.num_envs // self.n_devices} envs = {local}) must be divisible by the "
                f"agent's num_minibatches={minibatches}; change num_envs, num_steps or "
                "num_minibatches"
            )
        if self.anneal_lr:
            if not hasattr(config, "anneal_lr_steps"):
                raise TypeError(
                    f"anneal_lr=True needs an agent config with anneal_lr_steps (like PPO's); "
                    f"{type(abstract).__name__} has none"
                )
            epochs = getattr(config, "update_epochs", 1)
            self._extra["anneal_lr_steps"] = self.train_steps * epochs * minibatches
        self.agent_config = config
        self._abstract = abstract

        gamma = getattr(config, "discount", 0.99)
        self._setup_norm(normalize_obs, normalize_reward, obs_clip, reward_clip, gamma)
        if self.recurrent and self._norm.active:
            raise ValueError(
                "OnPolicyTrainer: normalize_obs / normalize_reward are not supported with a "
                f"recurrent agent ({type(self._abstract).__name__}) yet; drop them"
            )

    def sweepable(self) -> dict[str, float]:
        """The agent's traceable config numbers (PPO: ``learning_rate``, ``discount``,
        ``gae_lambda``, ``clip_eps``, ``vf_coef``, ``ent_coef``, ``max_grad_norm``; not
        ``learning_rate`` with ``anneal_lr``), with their values."""
        out = self._agent_sweepable(self.agent_config)
        if self.anneal_lr:
            out.pop("learning_rate", None)
        return out

    def shape_settings(self) -> dict[str, Any]:
        """Settings that change array shapes (one compiled program per value)."""
        cfg = self.agent_config
        out = {"num_envs": self.num_envs, "num_steps": self.num_steps, "n_devices": self.n_devices}
        for name in ("hidden_dims", "num_minibatches", "update_epochs"):
            if hasattr(cfg, name):
                out[name] = getattr(cfg, name)
        return out

    def env_action(self, actions: jax.Array) -> jax.Array:
        """The agent's actions as the environment takes them: continuous ones clipped to the
        bounds (the rollout keeps the sampled action for the log-probabilities)."""
        return actions if self._bounds is None else self._bounds.clip(actions)

    def _initialize(self, key: jax.Array, data: Any) -> RLState:
        del data
        k_agent, k_state = jax.random.split(key)
        state = self._base_state(k_state, self._make_agent(k_agent, **self._extra))
        if self.recurrent:  # zeros hidden states, one per environment
            state = state.replace(hidden=state.agent.initial_hidden(self.num_envs))
        return state

    def _policy(self, state: RLState) -> Any:
        """The per-environment ``(obs, key) -> agent.act(...)`` of a rollout from ``state``."""
        agent = state.agent
        return lambda o, k: agent.act(o, seed=k)

    def _rollout(
        self, state: RLState, key: jax.Array, axis: str | None = None
    ) -> tuple[tuple, Any, tuple, Any]:
        """Collect ``num_steps`` steps of every (local) environment with the current policy.

        Returns the carry ``(env_state, obs, episode_return, episode_length)``, the
        `realax.agents.Rollout` of ``agent.update`` (time-major, with ``next_values`` from the
        final observations so truncations bootstrap), the finished-episode sums per step and
        the normalisation statistics updated with the rollout (the agent acted on and learns
        from observations normalised with the statistics before it; rewards are scaled with
        the updated ones).
        """
        agent, norm = state.agent, self._norm
        env = self.env
        act = self._policy(state)

        def env_step(carry, k):
            env_state, obs, ep_ret, ep_len = carry
            keys = self._local_keys(k, self.num_envs, axis, parts=2)
            seen = norm.obs(state.norm, obs)
            actions, log_probs, values = jax.vmap(act)(seen, keys[:, 0])
            next_obs, env_state, reward, term, trunc, info = self._env_step(
                env, keys[:, 1], env_state, self.env_action(actions)
            )
            done = jnp.logical_or(term, trunc)
            ep_ret, ep_len, finished = self._track_episodes(ep_ret, ep_len, reward, done)
            policy = {"obs": seen, "actions": actions, "log_probs": log_probs, "values": values}
            step = Rollout(**policy, rewards=reward, dones=done, terminated=term)
            carry = (env_state, next_obs.astype(jnp.float32), ep_ret, ep_len)
            raw = obs if norm.normalize_obs else None
            return carry, (step, info["final_obs"].astype(jnp.float32), finished, raw)

        carry, (rollout, final_obs, finished, raw) = lax.scan(
            env_step, carry_of(state), jax.random.split(key, self.num_steps)
        )
        # V of the state reached after each step: the final observation of an episode that
        # ended there (bootstrapped at truncation; GAE drops it at termination).
        next_values = agent.value(norm.obs(state.norm, final_obs))
        new_norm = norm.update(state.norm, raw, rollout.rewards, rollout.dones, axis)
        rollout = rollout.replace(
            next_values=next_values, rewards=norm.rewards(new_norm, rollout.rewards)
        )
        return carry, rollout, finished, new_norm

    def _local_step(self, state: RLState, axis: str | None) -> tuple[RLState, dict]:
        key = jax.random.fold_in(state.key, state.step)
        k_roll, k_eval = jax.random.split(key)
        if self.recurrent:  # the hidden states are carried and given to the update
            carry, rollout, finished = recurrent_rollout(self, state, k_roll, axis)
            norm = state.norm  # None: normalisation is refused with recurrent agents
            agent, info = state.agent.update(rollout, hidden=state.hidden, pmap_axis=axis)
        else:
            carry, rollout, finished, norm = self._rollout(state, k_roll, axis)
            agent, info = state.agent.update(rollout, pmap_axis=axis)
        if axis is not None:
            info = lax.pmean(info, axis)

        env_steps = state.env_steps + self.num_steps * self.num_envs
        fields = RECURRENT_CARRY if self.recurrent else ENV_CARRY
        new = with_carry(state, carry, fields, agent=agent, env_steps=env_steps, norm=norm)
        own = {k: jnp.asarray(v, jnp.float32) for k, v in info.items()}
        return self._finish_step(state, new, k_eval, axis, finished, own)
