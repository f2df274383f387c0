"""OffPolicyTrainer: DQN / SAC-style agents with a replay buffer, in one compiled loop."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import lax
from realax.agents import Transition

from .._validate import check_divisible, check_nonneg_int, check_positive_int
from ._buffer import ReplayBuffer, dataset_transitions
from ._common import ENV_CARRY, RLState, RLTrainer, carry_of, steps_from_total, with_carry
from ._envs import example_action
from ._offline_checks import as_dataset, check_against_env, check_finite

__all__ = ["OffPolicyTrainer"]


_CARRY = (*ENV_CARRY, "buffer", "env_steps")  # the collection scan's carry


class OffPolicyTrainer(RLTrainer):
    """Train an off-policy agent (`realax.agents.DQN`, `realax.agents.SAC`) from a replay buffer.

    One train step takes ``train_freq`` steps in each of ``num_envs`` environments, adds the
    transitions to a `ReplayBuffer` held in the state (JAX arrays, so it is part of every
    checkpoint), then, once ``learning_starts`` transitions were collected, makes
    ``gradient_steps`` updates on uniformly sampled minibatches of ``batch_size``. A
    time-limit truncation stores the final observation (``info["final_obs"]``) as the next
    observation with ``terminated=False`` (bootstrapped); a termination stores
    ``terminated=True``. The buffer holds `realax.agents.Transition` rows and the agent's
    ``update`` gets sampled `Transition` minibatches.

    Exploration: for discrete actions the agent acts epsilon-greedily
    (``agent.sample_actions(obs, seed=, epsilon=)``) with ``epsilon`` a float or a schedule of
    the number of environment steps (default: linear from 1.0 to 0.05 over the first half of
    the run). For continuous actions the agent samples from its stochastic policy and, before
    ``learning_starts``, actions are uniform; the agent's actions in ``[-1, 1]`` are rescaled
    to the environment's bounds.

    Every ``eval_freq`` train steps (and after the last one) the greedy / deterministic
    policy plays ``eval_episodes`` fresh episodes inside the compiled loop.

    Metrics per train step: ``episode_return``, ``episode_length`` (means over the episodes
    that finished during the step, NaN if none), ``episodes``, ``eval_return`` (latest),
    ``eval_length`` (NaN on steps without evaluation), ``env_steps``, ``epsilon``
    (discrete), ``updates`` and the agent's update info averaged over the step's updates
    (DQN: ``loss``, ``q``, ...; SAC: ``critic_loss``, ``actor_loss``, ``temperature``, ...;
    NaN before learning starts).

    With ``n_devices > 1`` the environments, the replay buffer rows and each minibatch are
    split over devices and gradients averaged through the agent's ``pmap_axis``; under
    ``jax.distributed``, ``n_devices=jax.device_count()`` uses every device of every process.

    Args:
        agent: an agent class with ``create(key=, observations=, actions=, **config)``
            (``realax.agents.DQN``, ``realax.agents.SAC``) or such a function. For discrete
            environments ``n_actions`` is filled in.
        env: a realax-tasks name, a ``realax.tasks.Env`` or a gymnax/brax/jumanji instance.
        buffer_size: replay capacity in transitions.
        batch_size: minibatch size of each update.
        learning_starts: environment steps collected before the first update.
        train_freq: environment steps (per environment) between update phases.
        gradient_steps: updates per phase.
        train_steps: number of train steps; or give ``total_env_steps``.
        total_env_steps: total environment steps; ``train_steps = total_env_steps //
            (num_envs * train_freq)``.
        num_envs: parallel environments.
        epsilon: exploration rate for discrete actions: float or ``schedule(env_steps)``.
            The default schedule depends on the run length, so to resume a run with a
            different ``train_steps`` pass an explicit schedule.
        prefill: a `realax.agents.Dataset` whose rows start the replay buffer
            (offline-to-online fine-tuning; see `ReplayBuffer.from_dataset`). Its actions are
            the agent's (integers, or continuous in ``[-1, 1]``); ``learning_starts`` still
            counts online environment steps (``learning_starts=0`` updates from the start).
            One device only for now.
        normalize_obs, normalize_reward, obs_clip, reward_clip: as in `OnPolicyTrainer`; the
            replay buffer keeps raw observations and rewards, normalised with the current
            statistics when a minibatch is sampled (prefill rows are not counted in them).
        agent_kwargs, env_kwargs, eval_freq, eval_episodes, eval_max_steps, logger,
        progress_bar, n_devices: as in `OnPolicyTrainer`.

    Example:
        >>> import jax
        >>> from realax.agents import DQN
        >>> from realax.train.rl import OffPolicyTrainer
        >>> trainer = OffPolicyTrainer(DQN, "CartPole-v1", buffer_size=1000, batch_size=32,
        ...                            learning_starts=64, train_freq=8, train_steps=20,
        ...                            num_envs=2, agent_kwargs={"hidden_dims": (16,)})
        >>> state, metrics = trainer.init_and_train(jax.random.key(0))
        >>> int(state.buffer.size), int(metrics["updates"][-1])
        (320, 1)
    """

    def __init__(
        self, agent: Any, env: Any,
        buffer_size: int = 100_000,
        batch_size: int = 128,
        learning_starts: int = 1_000,
        train_freq: int = 1,
        gradient_steps: int = 1,
        train_steps: int | None = None,
        *,
        total_env_steps: int | None = None,
        num_envs: int = 1,
        epsilon: float | Callable[[jax.Array], jax.Array] | None = None,
        prefill: Any = None,
        # the options every RL trainer shares (see RLTrainer._setup_*)
        normalize_obs: bool = False, normalize_reward: bool = False,
        obs_clip: float = 10.0, reward_clip: float = 10.0,
        agent_kwargs: Mapping[str, Any] | None = None, env_kwargs: Mapping[str, Any] | None = None,
        eval_freq: int | None = None, eval_episodes: int = 16, eval_max_steps: int | None = None,
        logger: Any = None, progress_bar: bool = False, n_devices: int = 1,
    ):  # fmt: skip
        self._args = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        num_envs = check_positive_int(num_envs, "num_envs", "e.g. num_envs=1")
        self.train_freq = check_positive_int(train_freq, "train_freq", "e.g. train_freq=1")
        train_steps = steps_from_total(
            total_env_steps,
            train_steps,
            num_envs * self.train_freq,
            f"num_envs={num_envs} x train_freq={train_freq}",
        )
        self._setup_env(train_steps, env, env_kwargs, num_envs, n_devices)
        self._setup_eval(eval_freq, eval_episodes, eval_max_steps)
        self._setup_agent(agent, agent_kwargs, logger, progress_bar)
        self.buffer_size = check_positive_int(buffer_size, "buffer_size", "e.g. 100_000")
        self.batch_size = check_positive_int(batch_size, "batch_size", "e.g. batch_size=128")
        self.learning_starts = check_nonneg_int(learning_starts, "learning_starts")
        self.gradient_steps = check_nonneg_int(gradient_steps, "gradient_steps")
        check_divisible(self.buffer_size, "buffer_size", self.n_devices)
        check_divisible(self.batch_size, "batch_size", self.n_devices)
        if self.buffer_size < self.num_envs:
            raise ValueError(
                f"buffer_size must hold at least one step of every environment (got "
                f"buffer_size={self.buffer_size}, num_envs={self.num_envs}); use "
                f"buffer_size>={self.num_envs}"
            )
        self.total_env_steps = self.train_steps * self.num_envs * self.train_freq
        self.epsilon = self._check_epsilon(epsilon)
        self.prefill = self._check_prefill(prefill)
        abstract = self._abstract_agent()
        for method in ("sample_actions", "update"):
            if not callable(getattr(abstract, method, None)):
                raise TypeError(
                    f"OffPolicyTrainer needs an agent with sample_actions and update methods "
                    f"(like realax.agents.DQN or SAC); {type(abstract).__name__} has no {method}"
                )
        self.agent_config = getattr(abstract, "config", None)
        self._abstract = abstract

        gamma = getattr(self.agent_config, "discount", 0.99)
        self._setup_norm(normalize_obs, normalize_reward, obs_clip, reward_clip, gamma)

    def sweepable(self) -> dict[str, float]:
        """The agent's traceable config numbers (DQN: ``learning_rate``, ``discount``,
        ``max_grad_norm``, ``tau`` when set), with their values."""
        return self._agent_sweepable(self.agent_config)

    def shape_settings(self) -> dict[str, Any]:
        """Settings that change array shapes (one compiled program per value)."""
        out = {"num_envs": self.num_envs, "buffer_size": self.buffer_size,
               "batch_size": self.batch_size, "n_devices": self.n_devices}  # fmt: skip
        hidden = getattr(self.agent_config, "hidden_dims", None)
        if hidden is not None:
            out["hidden_dims"] = hidden
        return out

    def _check_epsilon(self, epsilon: Any) -> Callable[[jax.Array], jax.Array] | None:
        if not self.discrete:
            if epsilon is not None:
                raise ValueError(
                    f"epsilon applies to discrete actions only; {self.env.name!r} has continuous "
                    "actions (exploration comes from the agent's stochastic policy); drop epsilon"
                )
            return None
        if epsilon is None:
            return optax.linear_schedule(1.0, 0.05, max(1, self.total_env_steps // 2))
        if callable(epsilon):
            return epsilon
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, numbers.Real)
            or not 0.0 <= float(epsilon) <= 1.0
        ):
            raise ValueError(
                f"epsilon must be a float in [0, 1] or a schedule env_steps -> epsilon (got "
                f"epsilon={epsilon!r}); e.g. optax.linear_schedule(1.0, 0.05, 10_000)"
            )
        value = float(epsilon)
        return lambda count: jnp.asarray(value, jnp.float32)

    def _check_prefill(self, prefill: Any) -> Any:
        if prefill is None:
            return None
        if self.n_devices > 1:  # each device's replay rows would need their own share
            raise ValueError(
                f"prefill works on one device for now (got n_devices={self.n_devices}); use "
                "n_devices=1, or pass the dataset to OfflineTrainer"
            )
        dataset = as_dataset(prefill)
        check_against_env(dataset, self.env, self.obs_shape)
        check_finite(dataset)
        if dataset.size > self.buffer_size:
            raise ValueError(
                f"prefill has {dataset.size} transitions but buffer_size={self.buffer_size}; "
                f"use buffer_size>={dataset.size}"
            )
        return dataset

    def env_action(self, actions: jax.Array) -> jax.Array:
        """The agent's actions as the environment takes them: continuous ones, in ``[-1, 1]``,
        rescaled to the bounds."""
        return actions if self._bounds is None else self._bounds.rescale(actions)

    def _transition_example(self) -> Transition:
        obs = jnp.zeros(self.obs_shape, jnp.float32)
        return Transition(
            obs=obs,
            actions=example_action(self.env),
            rewards=jnp.zeros((), jnp.float32),
            next_obs=obs,
            terminated=jnp.zeros((), bool),
        )

    def _initialize(self, key: jax.Array, data: Any) -> RLState:
        del data
        k_agent, k_state = jax.random.split(key)
        buffer = ReplayBuffer.create(self._transition_example(), capacity=self.buffer_size)
        if self.prefill is not None:  # offline-to-online: the dataset's rows come first
            buffer = buffer.add(dataset_transitions(self.prefill))
        return self._base_state(k_state, self._make_agent(k_agent), buffer)

    def _local_step(self, state: RLState, axis: str | None) -> tuple[RLState, dict]:
        key = jax.random.fold_in(state.key, state.step)
        k_collect, k_update, k_eval = jax.random.split(key, 3)
        if axis is not None:  # each device samples its own minibatches
            k_update = jax.random.fold_in(k_update, lax.axis_index(axis))
        env, norm = self.env, self._norm
        agent = state.agent
        env_steps_per_iter = self.num_envs  # global, across devices

        def env_step(carry, k):
            env_state, obs, ep_ret, ep_len, buffer, env_steps = carry
            keys = self._local_keys(k, self.num_envs, axis, parts=3)
            extra = {}
            seen = norm.obs(state.norm, obs)
            if self.discrete:
                eps = jnp.asarray(self.epsilon(env_steps), jnp.float32)
                actions = jax.vmap(lambda o, k: agent.sample_actions(o, seed=k, epsilon=eps))(
                    seen, keys[:, 0]
                )
                extra["epsilon"] = eps
            else:
                policy = jax.vmap(lambda o, k: agent.sample_actions(o, seed=k))(seen, keys[:, 0])
                uniform = jax.vmap(
                    lambda k: jax.random.uniform(k, policy.shape[1:], minval=-1.0, maxval=1.0)
                )(keys[:, 2])
                actions = jnp.where(env_steps < self.learning_starts, uniform, policy)
            next_obs, env_state, reward, term, trunc, info = self._env_step(
                env, keys[:, 1], env_state, self.env_action(actions)
            )
            done = jnp.logical_or(term, trunc)
            ep_ret, ep_len, finished = self._track_episodes(ep_ret, ep_len, reward, done)
            buffer = buffer.add(
                Transition(
                    obs=obs,
                    actions=actions,
                    rewards=reward,
                    next_obs=info["final_obs"].astype(jnp.float32),
                    terminated=term,
                )
            )
            carry = (
                env_state,
                next_obs.astype(jnp.float32),
                ep_ret,
                ep_len,
                buffer,
                env_steps + env_steps_per_iter,
            )
            seen_by_norm = (obs if norm.normalize_obs else None, reward, done)
            return carry, (finished, extra, seen_by_norm if norm.active else None)

        carry, (finished, extra, raw) = lax.scan(
            env_step, carry_of(state, _CARRY), jax.random.split(k_collect, self.train_freq)
        )
        *_, buffer, env_steps = carry
        new_norm = None if raw is None else norm.update(state.norm, raw[0], raw[1], raw[2], axis)
        sample = norm.sampler(buffer, new_norm)

        local_batch = self.batch_size // self.n_devices
        info_shape = jax.eval_shape(
            lambda a, b: a.update(b)[1], agent, sample(k_update, local_batch)
        )
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, jnp.float32), info_shape)
        ready = env_steps >= self.learning_starts
        n_updates = jnp.where(ready, self.gradient_steps, 0).astype(jnp.int32)

        def update(i, carry):
            agent, total = carry
            batch = sample(jax.random.fold_in(k_update, i), local_batch)
            agent, info = agent.update(batch, pmap_axis=axis)
            total = jax.tree.map(lambda t, v: t + jnp.asarray(v, jnp.float32), total, info)
            return agent, total

        agent, total = lax.fori_loop(0, n_updates, update, (agent, zeros))
        info = jax.tree.map(lambda t: jnp.where(n_updates > 0, t / n_updates, jnp.nan), total)
        if axis is not None:
            info = lax.pmean(info, axis)

        new = with_carry(state, carry, _CARRY, agent=agent, norm=new_norm)
        own = {
            "updates": n_updates,
            **({"epsilon": extra["epsilon"][-1]} if "epsilon" in extra else {}),
            **info,
        }
        return self._finish_step(state, new, k_eval, axis, finished, own)
