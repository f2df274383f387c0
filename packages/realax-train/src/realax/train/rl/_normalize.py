"""Observation normalisation and reward scaling for the RL trainers (opt-in).

The statistics live in the trainer state (`RLState.norm`, a :class:`NormState`), so they are
checkpointed with it; with both options off ``norm`` is ``None`` and the compiled step is the
one without normalisation. :class:`Normalizer` holds the static options and the traced pieces
the trainers call; :class:`NormalizedAgent` is the policy a trained run hands out (evaluation,
``collect``, ``realax eval``): the agent plus the observation statistics it was trained with.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax import lax
from jax.sharding import PartitionSpec as P
from realax.tasks import RunningStats

from .._mesh import AXIS
from .._validate import check_bool

__all__ = ["NormState", "NormalizedAgent", "Normalizer"]


class NormState(struct.PyTreeNode):
    """The running statistics of a run with normalisation.

    Attributes:
        obs: `realax.tasks.RunningStats` of the raw observations (None without
            ``normalize_obs``); the same on every device.
        ret: scalar `RunningStats` of the discounted returns (None without
            ``normalize_reward``); the same on every device.
        disc_return: each environment's discounted return of its current episode,
            ``(num_envs,)``, split over devices like the environments (None without
            ``normalize_reward``).
    """

    obs: Any = None
    ret: Any = None
    disc_return: Any = None


class NormalizedAgent(struct.PyTreeNode):
    """An agent that normalises its observations with fixed statistics before acting.

    What `OnPolicyTrainer.policy` / `OffPolicyTrainer.policy` return for a run with
    ``normalize_obs=True``: pass it wherever an agent goes (`realax.train.rl.evaluate`,
    `realax.train.rl.collect`, which stores the raw observations).

    Attributes:
        agent: the trained agent.
        obs_stats: the `realax.tasks.RunningStats` it was trained with.
        clip: normalised observations are clipped to ``[-clip, clip]``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.agents import PPO
        >>> from realax.tasks import RunningStats
        >>> agent = PPO.create(key=jax.random.key(0), observations=jnp.zeros(3),
        ...                    actions=jnp.zeros(1), hidden_dims=(4,))
        >>> stats = RunningStats.from_batch(jnp.arange(6.0).reshape(2, 3))
        >>> policy = NormalizedAgent(agent=agent, obs_stats=stats)
        >>> policy.sample_actions(jnp.zeros(3), seed=jax.random.key(1), deterministic=True).shape
        (1,)
    """

    agent: Any
    obs_stats: Any
    clip: float = struct.field(pytree_node=False, default=10.0)

    def normalize(self, obs: jax.Array) -> jax.Array:
        """``obs`` as the agent sees it."""
        return self.obs_stats.normalize(obs, clip=self.clip)

    def sample_actions(self, obs: jax.Array, *args: Any, **kwargs: Any) -> jax.Array:
        """The agent's ``sample_actions`` on the normalised ``obs``."""
        return self.agent.sample_actions(self.normalize(obs), *args, **kwargs)


def _checked_clip(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number (got {name}={value!r}); e.g. 10.0")
    return float(value)


def _merge_pair(a: RunningStats, b: RunningStats) -> RunningStats:
    """Chan's merge of two statistics (or of two stacks, pair by pair), elementwise only."""
    count = a.count + b.count
    feat = (1,) * (a.mean.ndim - a.count.ndim)
    n = jnp.maximum(count, 1.0).reshape(count.shape + feat)
    na, nb = a.count.reshape(n.shape), b.count.reshape(n.shape)
    delta = b.mean - a.mean
    # the barrier rounds the products before the sums (no fused multiply-add in one program
    # and not in another)
    step, spread = lax.optimization_barrier((delta * (nb / n), jnp.square(delta) * (na * nb / n)))
    mean = a.mean + step
    m2 = (a.m2 + b.m2) + spread
    return RunningStats(count=count, mean=mean, m2=m2)


def _tree_merge(stats: RunningStats) -> RunningStats:
    """Merge a stack of statistics (leading axis) pairwise in a fixed tree.

    Elementwise operations only: a reduction's summation order depends on how XLA fuses it
    with its neighbours, which differs between one device and several; a fixed tree of
    elementwise merges gives the same bits in every program. Zero-count padding is exact.
    """
    size = stats.count.shape[0]
    width = 1 << max(0, size - 1).bit_length()
    stats = jax.tree.map(lambda x: jnp.pad(x, [(0, width - size)] + [(0, 0)] * (x.ndim - 1)), stats)
    while width > 1:
        width //= 2
        stats = _merge_pair(*(jax.tree.map(lambda x, i=i: x[i::2], stats) for i in (0, 1)))
    return jax.tree.map(lambda x: x[0], stats)


def _exact_stats(xs: jax.Array, axis: str | None) -> RunningStats:
    """Statistics of a ``(time, local envs, ...)`` batch, the same bits on any device split.

    Each environment's steps are merged over time on its own device, the per-environment
    pieces are gathered in global environment order (device order) and merged again, both in
    a fixed tree of elementwise merges, so several devices compute exactly what one does.
    """
    xs = jnp.asarray(xs, jnp.float32)
    ones = jnp.ones(xs.shape[:2], jnp.float32)
    per_env = _tree_merge(RunningStats(count=ones, mean=xs, m2=jnp.zeros_like(xs)))
    if axis is not None:
        per_env = jax.tree.map(lambda x: lax.all_gather(x, axis, tiled=True), per_env)
    return _tree_merge(per_env)


def discounted_returns(start: jax.Array, rewards: jax.Array, dones: jax.Array, gamma: float):
    """Per-environment discounted returns along a ``(time, envs)`` rollout.

    ``G_t = gamma * G_{t-1} + r_t`` from ``start``, reset to zero after an episode's last step.
    Returns ``(G of every step, the accumulator after the rollout)``.
    """

    def step(g, x):
        r, d = x
        g = gamma * g + r
        return jnp.where(d, 0.0, g), g

    end, returns = lax.scan(step, start, (rewards.astype(jnp.float32), dones))
    return returns, end


@dataclasses.dataclass(frozen=True)
class Normalizer:
    """The normalisation options of a trainer and the traced pieces its step calls.

    Args:
        normalize_obs: keep running observation statistics; the agent sees
            ``clip((obs - mean) / sqrt(var + 1e-8), -obs_clip, obs_clip)``.
        normalize_reward: divide rewards by the running standard deviation of the
            discounted return (``gamma`` = the agent's discount), clipped to
            ``[-reward_clip, reward_clip]``.
        obs_clip, reward_clip: the clip values.
        gamma: the discount of the return accumulator.
    """

    normalize_obs: bool = False
    normalize_reward: bool = False
    obs_clip: float = 10.0
    reward_clip: float = 10.0
    gamma: float = 0.99
    eps: float = 1e-8

    @classmethod
    def checked(cls, normalize_obs: Any, normalize_reward: Any, obs_clip, reward_clip, gamma):
        """The options, each checked (errors name the argument)."""
        return cls(
            check_bool(normalize_obs, "normalize_obs"),
            check_bool(normalize_reward, "normalize_reward"),
            _checked_clip(obs_clip, "obs_clip"),
            _checked_clip(reward_clip, "reward_clip"),
            float(gamma),
        )

    @property
    def active(self) -> bool:
        return self.normalize_obs or self.normalize_reward

    def init(self, obs_shape: tuple[int, ...], num_envs: int) -> NormState | None:
        """Empty statistics (None when both options are off)."""
        if not self.active:
            return None
        obs = RunningStats.create(shape=obs_shape) if self.normalize_obs else None
        ret, acc = None, None
        if self.normalize_reward:
            ret = RunningStats.create(shape=())
            acc = jnp.zeros((num_envs,), jnp.float32)
        return NormState(obs=obs, ret=ret, disc_return=acc)

    @staticmethod
    def specs(norm: NormState | None) -> Any:
        """Partition specs of ``norm``: statistics replicated, return accumulators split."""
        if norm is None:
            return None
        return jax.tree.map(lambda _: P(), norm).replace(
            disc_return=None if norm.disc_return is None else P(AXIS)
        )

    def obs(self, norm: NormState | None, obs: jax.Array) -> jax.Array:
        """``obs`` as the agent sees it (unchanged without ``normalize_obs``)."""
        if norm is None or norm.obs is None:
            return obs
        return norm.obs.normalize(obs, clip=self.obs_clip, eps=self.eps)

    def rewards(self, norm: NormState | None, rewards: jax.Array) -> jax.Array:
        """``rewards`` as the agent learns from them (unchanged without ``normalize_reward``)."""
        if norm is None or norm.ret is None:
            return rewards
        scaled = rewards / jnp.sqrt(norm.ret.var + self.eps)
        scaled = jnp.clip(scaled, -self.reward_clip, self.reward_clip)
        return jnp.where(norm.ret.count > 1, scaled, rewards).astype(rewards.dtype)

    def update(
        self,
        norm: NormState | None,
        obs: jax.Array,
        rewards: jax.Array,
        dones: jax.Array,
        axis: str | None,
    ) -> NormState | None:
        """The statistics after a rollout of raw ``obs`` ``(time, local envs, ...)``,
        ``rewards`` and ``dones`` ``(time, local envs)``, combined exactly across ``axis``."""
        if norm is None:
            return None
        if norm.obs is not None:
            norm = norm.replace(obs=_merge_pair(norm.obs, _exact_stats(obs, axis)))
        if norm.ret is not None:
            returns, end = discounted_returns(norm.disc_return, rewards, dones, self.gamma)
            norm = norm.replace(
                ret=_merge_pair(norm.ret, _exact_stats(returns, axis)), disc_return=end
            )
        return norm

    def policy(self, agent: Any, norm: NormState | None) -> Any:
        """What acts in the environment: ``agent``, wrapped with the statistics if any."""
        if norm is None or norm.obs is None:
            return agent
        return NormalizedAgent(agent=agent, obs_stats=norm.obs, clip=self.obs_clip)

    def sampler(self, buffer: Any, norm: NormState | None) -> Any:
        """``sample(key, n)`` of ``buffer``: minibatches of raw `Transition` rows normalised
        with ``norm`` (observations, next observations and rewards)."""
        if norm is None:
            return buffer.sample

        def sample(key: jax.Array, n: int) -> Any:
            batch = buffer.sample(key, n)
            return batch.replace(
                obs=self.obs(norm, batch.obs),
                next_obs=self.obs(norm, batch.next_obs),
                rewards=self.rewards(norm, batch.rewards),
            )

        return sample
