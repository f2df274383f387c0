"""PQNTrainer: parallel Q-learning (`realax.agents.PQN`) on vectorised environments, without a
replay buffer: the on-policy rollout loop with epsilon-greedy acting."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from ._common import RLState
from ._off_policy import OffPolicyTrainer
from ._on_policy import OnPolicyTrainer

__all__ = ["PQNTrainer"]

#: fraction of the run over which the default epsilon decays from 1.0 to 0.05
EPSILON_DECAY = 0.2


class PQNTrainer(OnPolicyTrainer):
    """Train `realax.agents.PQN` (or any agent whose ``act`` takes ``epsilon=``) on a
    discrete-action realax-tasks environment.

    The loop is `OnPolicyTrainer`'s: one train step collects ``num_steps`` steps of
    ``num_envs`` environments, with ``agent.act(obs, seed=, epsilon=)`` acting
    epsilon-greedily, and calls ``agent.update`` once on the `realax.agents.Rollout`
    (``next_values`` = ``max_a Q`` of the state reached, the final observation at a time
    limit, so truncations bootstrap). There is no replay buffer: the state is as small as
    PPO's, and checkpoints, resume, evaluation and ``n_devices`` work as in
    `OnPolicyTrainer`. Metrics are `OnPolicyTrainer`'s plus ``epsilon`` (of the step's
    rollout) and the agent's ``loss``, ``q``, ``td_abs``, ``returns_mean``.

    Args:
        agent: ``realax.agents.PQN`` or a ``create`` function of such an agent.
        env: a realax-tasks name (``"CartPole-v1"``, ``"Breakout-MinAtar"``, ...), a
            ``realax.tasks.Env`` or a gymnax instance; discrete actions.
        num_envs: parallel environments (split over devices).
        num_steps: rollout length per train step.
        train_steps: number of train steps; or give ``total_env_steps``.
        total_env_steps: total environment steps (``num_envs * num_steps`` per train step).
        epsilon: exploration rate: a float in ``[0, 1]`` or a schedule of the number of
            environment steps collected before the rollout (default: linear from 1.0 to
            0.05 over the first 20% of the run).
        anneal_lr, agent_kwargs, env_kwargs, eval_freq, eval_episodes, eval_max_steps,
        logger, progress_bar, n_devices: as in `OnPolicyTrainer`.

    Example:
        >>> import jax
        >>> from realax.agents import PQN
        >>> from realax.train.rl import PQNTrainer
        >>> trainer = PQNTrainer(PQN, "CartPole-v1", num_envs=4, num_steps=8, train_steps=2,
        ...                      agent_kwargs={"hidden_dims": (8,)})
        >>> state, metrics = trainer.init_and_train(jax.random.key(0))
        >>> float(metrics["epsilon"][0]), int(state.env_steps)
        (1.0, 64)
    """

    def __init__(
        self, agent: Any, env: Any,
        num_envs: int = 32,
        num_steps: int = 32,
        train_steps: int | None = None,
        *,
        total_env_steps: int | None = None,
        epsilon: float | Callable[[jax.Array], jax.Array] | None = None,
        anneal_lr: bool = False,
        agent_kwargs: Mapping[str, Any] | None = None, env_kwargs: Mapping[str, Any] | None = None,
        eval_freq: int | None = None, eval_episodes: int = 16, eval_max_steps: int | None = None,
        logger: Any = None, progress_bar: bool = False, n_devices: int = 1,
    ):  # fmt: skip
        super().__init__(
            agent, env, num_envs, num_steps, train_steps,
            total_env_steps=total_env_steps, anneal_lr=anneal_lr, agent_kwargs=agent_kwargs,
            env_kwargs=env_kwargs, eval_freq=eval_freq, eval_episodes=eval_episodes,
            eval_max_steps=eval_max_steps, logger=logger, progress_bar=progress_bar,
            n_devices=n_devices,
        )  # fmt: skip
        if not self.discrete:
            raise ValueError(
                f"PQNTrainer needs discrete actions; {self.env.name!r} has continuous actions: "
                "use OnPolicyTrainer with PPO or OffPolicyTrainer with SAC"
            )
        self.total_env_steps = self.train_steps * self.num_envs * self.num_steps
        if epsilon is None:
            decay = max(1, int(EPSILON_DECAY * self.total_env_steps))
            epsilon = optax.linear_schedule(1.0, 0.05, decay)
        # the same rule as the off-policy trainer's: a float in [0, 1] or a schedule
        self.epsilon = OffPolicyTrainer._check_epsilon(self, epsilon)  # type: ignore[arg-type]

    def _epsilon(self, state: RLState) -> jax.Array:
        return jnp.asarray(self.epsilon(state.env_steps), jnp.float32)  # type: ignore[misc]

    def _policy(self, state: RLState) -> Any:
        agent, eps = state.agent, self._epsilon(state)
        return lambda o, k: agent.act(o, seed=k, epsilon=eps)

    def _local_step(self, state: RLState, axis: str | None) -> tuple[RLState, dict]:
        new, metrics = super()._local_step(state, axis)
        return new, {**metrics, "epsilon": self._epsilon(state)}
