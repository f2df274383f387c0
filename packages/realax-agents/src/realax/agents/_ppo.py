"""Proximal policy optimisation (clipped objective) with an actor-critic and GAE."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from . import _common as c
from ._distributions import Categorical, DiagGaussian
from ._networks import ACTIVATIONS, ContinuousActor, DiscreteActor, ValueCritic
from ._train_state import TrainState, nonpytree_field

__all__ = ["PPO", "PPOConfig", "ActorCritic", "gae"]


def gae(
    *,
    rewards: jax.Array,
    values: jax.Array,
    dones: jax.Array,
    discount: float,
    gae_lambda: float,
    last_value: jax.Array | None = None,
    next_values: jax.Array | None = None,
    terminations: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation over a time-major rollout.

    With ``V'_t`` the value of the state reached after step ``t``:
    ``delta_t = r_t + discount * (1 - terminations_t) * V'_t - V_t`` and
    ``A_t = delta_t + discount * gae_lambda * (1 - dones_t) * A_{t+1}``.

    ``dones_t`` marks the end of an episode at step ``t`` for any reason (the recursion does
    not cross it); ``terminations_t`` marks a true terminal state (no bootstrap). At a
    time-limit truncation (done but not terminated) the value ``V'_t`` of the final state is
    bootstrapped, which needs ``next_values`` holding it. If ``terminations`` is None every
    done is treated as a termination.

    Args:
        rewards: ``(T, ...)`` rewards.
        values: ``(T, ...)`` values ``V(s_t)`` of the visited states.
        dones: ``(T, ...)`` episode ended at step ``t``.
        discount: gamma.
        gae_lambda: lambda.
        last_value: ``(...)`` value of the state after the last step; with it,
            ``V'_t = values[t + 1]`` and ``V'_{T-1} = last_value``.
        next_values: ``(T, ...)`` explicit ``V'_t`` (give this or ``last_value``).
        terminations: ``(T, ...)`` optional true terminations.

    Returns:
        ``(advantages, returns)`` with ``returns = advantages + values`` (the value targets).

    Example:
        >>> adv, ret = gae(rewards=jnp.ones(3), values=jnp.zeros(3), dones=jnp.zeros(3),
        ...                last_value=jnp.zeros(()), discount=1.0, gae_lambda=1.0)
        >>> ret.tolist()
        [3.0, 2.0, 1.0]
    """
    if (last_value is None) == (next_values is None):
        raise ValueError(
            "gae needs exactly one of last_value (value after the final step) or next_values "
            f"(V of every next state) (got last_value={'set' if last_value is not None else None},"
            f" next_values={'set' if next_values is not None else None})"
        )
    rewards = jnp.asarray(rewards, dtype=jnp.float32)
    values = jnp.asarray(values, dtype=jnp.float32)
    if rewards.shape != values.shape or jnp.shape(dones) != rewards.shape:
        raise ValueError(
            "gae: rewards, values and dones must have the same (T, ...) shape (got "
            f"rewards {rewards.shape}, values {values.shape}, dones {jnp.shape(dones)})"
        )
    if next_values is None:
        last_value = jnp.asarray(last_value, dtype=jnp.float32)
        if last_value.shape != values.shape[1:]:
            raise ValueError(
                f"gae: last_value must have shape values.shape[1:] = {values.shape[1:]} "
                f"(got {last_value.shape})"
            )
        next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    next_values = jnp.asarray(next_values, dtype=jnp.float32)
    if next_values.shape != values.shape:
        raise ValueError(
            f"gae: next_values must have the shape of values {values.shape} "
            f"(got {next_values.shape})"
        )
    not_done = 1.0 - jnp.asarray(dones, dtype=jnp.float32)
    not_term = (
        not_done if terminations is None else 1.0 - jnp.asarray(terminations, dtype=jnp.float32)
    )
    deltas = rewards + discount * not_term * next_values - values

    def step(carry: jax.Array, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, nd = x
        adv = delta + discount * gae_lambda * nd * carry
        return adv, adv

    _, advantages = jax.lax.scan(step, jnp.zeros_like(values[0]), (deltas, not_done), reverse=True)
    return advantages, advantages + values


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs: ``observations -> (distribution, value)``.

    Discrete when ``n_actions`` is set, else a diagonal Gaussian over ``action_dim`` with a
    learned state-independent log-std.

    Example:
        >>> ac = ActorCritic(hidden_dims=(8,), n_actions=2)
        >>> params = ac.init(jax.random.key(0), jnp.ones((3, 4)))
        >>> dist, value = ac.apply(params, jnp.ones((3, 4)))
        >>> value.shape
        (3,)
    """

    hidden_dims: Sequence[int]
    n_actions: int | None = None
    action_dim: int | None = None
    activation: Callable[[jax.Array], jax.Array] = nn.tanh
    init_log_std: float = 0.0

    def setup(self) -> None:
        if self.n_actions is not None:
            self.actor = DiscreteActor(
                hidden_dims=self.hidden_dims, n_actions=self.n_actions, activation=self.activation
            )
        else:
            self.actor = ContinuousActor(
                hidden_dims=self.hidden_dims,
                action_dim=self.action_dim,
                activation=self.activation,
                state_dependent_std=False,
                init_log_std=self.init_log_std,
            )
        self.critic = ValueCritic(hidden_dims=self.hidden_dims, activation=self.activation)

    def __call__(self, observations: jax.Array) -> tuple[Categorical | DiagGaussian, jax.Array]:
        return self.actor(observations), self.critic(observations)

    def value(self, observations: jax.Array) -> jax.Array:
        """State values only."""
        return self.critic(observations)

    def policy(self, observations: jax.Array) -> Categorical | DiagGaussian:
        """Action distribution only."""
        return self.actor(observations)


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Hyper-parameters of `PPO` (defaults follow common CartPole settings).

    Attributes:
        n_actions: number of discrete actions (required for integer actions; ignored
            otherwise).
        learning_rate: Adam learning rate.
        anneal_lr_steps: if set, the learning rate decays linearly to 0 over this many
            optimiser steps (``num_updates * update_epochs * num_minibatches``).
        adam_eps: Adam epsilon.
        max_grad_norm: global-norm gradient clipping, or None.
        discount: gamma of GAE.
        gae_lambda: lambda of GAE.
        clip_eps: ratio clipping of the surrogate (and of the value, see ``clip_value``).
        clip_value: clip the value update around the rollout values.
        vf_coef: weight of the value loss.
        ent_coef: weight of the entropy bonus.
        update_epochs: passes over the rollout per `update`.
        num_minibatches: minibatches per pass; the rollout size must divide by it.
        normalize_advantages: standardise advantages per minibatch.
        hidden_dims: hidden sizes of both actor and critic.
        activation: hidden activation name.
        init_log_std: initial log-std of continuous actions.
        pmap_axis: default axis name to average gradients over.
    """

    n_actions: int | None = None
    learning_rate: float = 2.5e-4
    anneal_lr_steps: int | None = None
    adam_eps: float = 1e-5
    max_grad_norm: float | None = 0.5
    discount: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    clip_value: bool = True
    vf_coef: float = 0.5
    ent_coef: float = 0.01
    update_epochs: int = 4
    num_minibatches: int = 4
    normalize_advantages: bool = True
    hidden_dims: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    init_log_std: float = 0.0
    pmap_axis: str | None = None

    def __post_init__(self) -> None:
        owner = "PPO"
        c.check_positive(owner, "learning_rate", self.learning_rate)
        if self.anneal_lr_steps is not None:
            c.check_int(owner, "anneal_lr_steps", self.anneal_lr_steps)
        c.check_positive(owner, "adam_eps", self.adam_eps)
        if self.max_grad_norm is not None:
            c.check_positive(owner, "max_grad_norm", self.max_grad_norm)
        c.check_unit_interval(owner, "discount", self.discount)
        c.check_unit_interval(owner, "gae_lambda", self.gae_lambda)
        c.check_positive(owner, "clip_eps", self.clip_eps)
        c.check_positive(owner, "vf_coef", self.vf_coef, allow_zero=True)
        c.check_positive(owner, "ent_coef", self.ent_coef, allow_zero=True)
        c.check_int(owner, "update_epochs", self.update_epochs)
        c.check_int(owner, "num_minibatches", self.num_minibatches)
        object.__setattr__(self, "hidden_dims", c.check_hidden_dims(owner, self.hidden_dims))
        c.check_activation(owner, self.activation)
        c.check_pmap_axis(owner, self.pmap_axis)


class PPO(struct.PyTreeNode):
    """PPO with the clipped surrogate, GAE, entropy bonus and (clipped) value loss.

    `update` takes a whole rollout and runs ``update_epochs`` passes of ``num_minibatches``
    shuffled minibatches inside one compiled call (`lax.scan`, no Python loop).

    Batch keys for `update` (a time-major rollout, leading axes ``(T, n_envs)`` or ``(T,)``):
        ``observations`` ``(T, N, obs_dim)``; ``actions`` int ``(T, N)`` or float
        ``(T, N, action_dim)``; ``log_probs`` ``(T, N)`` behaviour log-probabilities and
        ``values`` ``(T, N)`` values, both as returned by `act`; then either
        ``advantages`` and ``returns`` ``(T, N)`` (precomputed, e.g. with `gae`), or
        ``rewards`` ``(T, N)``, ``dones`` ``(T, N)`` and ``last_values`` ``(N,)`` (or
        ``next_values`` ``(T, N)``, optionally with ``terminations`` ``(T, N)`` for
        truncation bootstrapping; see `gae`), from which GAE is computed.

    Attributes:
        model: `TrainState` of the `ActorCritic`.
        key: PRNG key used for minibatch shuffling (advanced by every `update`).
        config: `PPOConfig` (static).

    Example:
        >>> obs = jnp.zeros((4,))
        >>> agent = PPO.create(key=jax.random.key(0), observations=obs,
        ...                    actions=jnp.zeros((), jnp.int32), n_actions=2)
        >>> actions, log_probs, values = agent.act(jnp.zeros((3, 4)), seed=jax.random.key(1))
        >>> actions.shape, log_probs.shape, values.shape
        ((3,), (3,), (3,))
    """

    model: TrainState
    key: jax.Array
    config: PPOConfig = nonpytree_field()

    @classmethod
    def create(
        cls, key: jax.Array, observations: jax.Array, actions: jax.Array, **config: Any
    ) -> PPO:
        """Initialise the actor-critic; integer example actions mean discrete actions.

        Args:
            key: PRNG key.
            observations: example observation(s), float ``(obs_dim,)`` or ``(B, obs_dim)``.
            actions: example action(s): integer (discrete, needs ``n_actions``) or float
                ``(action_dim,)`` (continuous, unbounded Gaussian; clip to the action
                bounds in the environment).
            **config: fields of `PPOConfig`.

        Example:
            >>> agent = PPO.create(key=jax.random.key(0), observations=jnp.zeros(3),
            ...                    actions=jnp.zeros(1), num_minibatches=2)
            >>> agent.discrete
            False
        """
        cfg = c.build_config(PPOConfig, "PPO", config)
        obs = c.observation_example("PPO", observations)
        if jnp.issubdtype(jnp.asarray(actions).dtype, jnp.integer):
            n_actions = c.discrete_n_actions("PPO", actions, cfg.n_actions)
            model_def = ActorCritic(
                hidden_dims=cfg.hidden_dims,
                n_actions=n_actions,
                activation=ACTIVATIONS[cfg.activation],
            )
        else:
            action_dim = c.continuous_action_dim("PPO", actions)
            model_def = ActorCritic(
                hidden_dims=cfg.hidden_dims,
                action_dim=action_dim,
                activation=ACTIVATIONS[cfg.activation],
                init_log_std=cfg.init_log_std,
            )
        init_key, key = jax.random.split(key)
        params = model_def.init(init_key, obs)["params"]
        lr: float | optax.Schedule = cfg.learning_rate
        if cfg.anneal_lr_steps is not None:
            lr = optax.linear_schedule(cfg.learning_rate, 0.0, cfg.anneal_lr_steps)
        tx = c.make_optimizer(lr, cfg.max_grad_norm, eps=cfg.adam_eps, flat=True)
        return cls(model=TrainState.create(model_def, params, tx=tx), key=key, config=cfg)

    @property
    def discrete(self) -> bool:
        """Whether actions are discrete."""
        return self.model.model_def.n_actions is not None

    @functools.partial(jax.jit, static_argnames=("deterministic",))
    def act(
        self, observations: jax.Array, *, seed: jax.Array, deterministic: bool = False
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Actions, their log-probabilities and the state values (what a rollout stores).

        Example:
            >>> agent = PPO.create(key=jax.random.key(0), observations=jnp.zeros(3),
            ...                    actions=jnp.zeros(2))
            >>> a, logp, v = agent.act(jnp.zeros(3), seed=jax.random.key(1))
            >>> a.shape, logp.shape, v.shape
            ((2,), (), ())
        """
        dist, value = self.model(observations)
        actions = dist.mode() if deterministic else dist.sample(seed=seed)
        return actions, dist.log_prob(actions), value

    @functools.partial(jax.jit, static_argnames=("deterministic",))
    def sample_actions(
        self, observations: jax.Array, *, seed: jax.Array, deterministic: bool = False
    ) -> jax.Array:
        """Sample actions (``deterministic=True``: the mode of the policy).

        Example:
            >>> agent = PPO.create(key=jax.random.key(0), observations=jnp.zeros(4),
            ...                    actions=jnp.zeros((), jnp.int32), n_actions=2)
            >>> agent.sample_actions(jnp.zeros((5, 4)), seed=jax.random.key(1)).shape
            (5,)
        """
        dist = self.model(observations, method="policy")
        return dist.mode() if deterministic else dist.sample(seed=seed)

    @jax.jit
    def value(self, observations: jax.Array) -> jax.Array:
        """State values ``V(s)`` (e.g. ``last_values`` for `update`)."""
        return self.model(observations, method="value")

    def _advantages(self, batch: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
        owner = "PPO.update"
        if "advantages" in batch or "returns" in batch:
            c.require_keys(owner, batch, ("advantages", "returns"))
            return (
                jnp.asarray(batch["advantages"], jnp.float32),
                jnp.asarray(batch["returns"], jnp.float32),
            )
        c.require_keys(owner, batch, ("rewards", "dones"))
        if "last_values" not in batch and "next_values" not in batch:
            raise KeyError(
                f"{owner}: batch needs 'advantages' and 'returns', or 'rewards', 'dones' and "
                f"one of 'last_values' / 'next_values' to compute GAE; it has {sorted(batch)}"
            )
        return gae(
            rewards=batch["rewards"],
            values=batch["values"],
            dones=batch["dones"],
            last_value=batch.get("last_values"),
            next_values=batch.get("next_values"),
            terminations=batch.get("terminations"),
            discount=self.config.discount,
            gae_lambda=self.config.gae_lambda,
        )

    @functools.partial(jax.jit, static_argnames=("pmap_axis",))
    def update(
        self, batch: dict[str, jax.Array], *, pmap_axis: str | None = None
    ) -> tuple[PPO, dict[str, jax.Array]]:
        """``update_epochs`` x ``num_minibatches`` clipped-PPO steps on one rollout.

        Args:
            batch: rollout dict, see the class docstring.
            pmap_axis: axis name of an enclosing pmap/shard_map to average gradients over
                (default ``config.pmap_axis``). Advantages are normalised with the
                minibatch statistics of all devices; each device shuffles its own shard
                (with the same key), so a device's minibatch ``i`` is part of the global
                minibatch ``i``. With ``num_minibatches=1`` the step equals one device on the
                whole rollout. Shard a rollout whose advantages are computed here along the
                environment axis (GAE runs along time), or pass ``advantages``/``returns``.

        Returns:
            ``(new_agent, info)``; info holds float32 means over all minibatch steps:
            ``loss``, ``actor_loss``, ``value_loss``, ``entropy``, ``approx_kl``,
            ``clip_fraction``, and ``advantages_mean`` / ``returns_mean`` of the rollout.
        """
        owner = "PPO.update"
        cfg = self.config
        c.require_keys(owner, batch, ("observations", "actions", "log_probs", "values"))
        axis = pmap_axis if pmap_axis is not None else cfg.pmap_axis
        advantages, returns = self._advantages(batch)
        batch_shape = jnp.shape(batch["log_probs"])
        n = math.prod(batch_shape)
        if advantages.shape != batch_shape:
            raise ValueError(
                f"{owner}: advantages/returns shape {advantages.shape} differs from log_probs "
                f"shape {batch_shape}"
            )
        if n % cfg.num_minibatches != 0:
            raise ValueError(
                f"{owner}: rollout size must be divisible by num_minibatches (got "
                f"{n} = prod{batch_shape}, num_minibatches={cfg.num_minibatches}); choose "
                "num_minibatches dividing the number of steps x envs"
            )
        nd = len(batch_shape)
        data = {
            "observations": jnp.asarray(batch["observations"]),
            "actions": jnp.asarray(batch["actions"]),
            "log_probs": jnp.asarray(batch["log_probs"], jnp.float32),
            "values": jnp.asarray(batch["values"], jnp.float32),
            "advantages": advantages,
            "returns": returns,
        }
        for k, v in data.items():
            if v.shape[:nd] != batch_shape:
                raise ValueError(
                    f"{owner}: batch[{k!r}] must have leading shape {batch_shape} like "
                    f"log_probs (got {v.shape})"
                )
        data = jax.tree.map(lambda x: x.reshape((n, *x.shape[nd:])), data)
        mb = n // cfg.num_minibatches

        def loss_fn(params: Any, mb_data: dict[str, jax.Array]) -> tuple[jax.Array, dict]:
            dist, value = self.model(mb_data["observations"], params=params)
            log_prob = dist.log_prob(mb_data["actions"])
            log_ratio = log_prob - mb_data["log_probs"]
            ratio = jnp.exp(log_ratio)
            adv = mb_data["advantages"]
            if cfg.normalize_advantages:
                # Statistics of the minibatch across all devices (equal shard sizes), so a
                # rollout split over devices is normalised like the whole rollout on one.
                mean = adv.mean() if axis is None else jax.lax.pmean(adv.mean(), axis)
                var = jnp.mean((adv - mean) ** 2)
                var = var if axis is None else jax.lax.pmean(var, axis)
                adv = (adv - mean) / (jnp.sqrt(var) + 1e-8)
            surrogate = jnp.minimum(
                ratio * adv, jnp.clip(ratio, 1.0 - cfg.clip_eps, 1.0 + cfg.clip_eps) * adv
            )
            actor_loss = -jnp.mean(surrogate)
            value_err = (value - mb_data["returns"]) ** 2
            if cfg.clip_value:
                clipped = mb_data["values"] + jnp.clip(
                    value - mb_data["values"], -cfg.clip_eps, cfg.clip_eps
                )
                value_err = jnp.maximum(value_err, (clipped - mb_data["returns"]) ** 2)
            value_loss = 0.5 * jnp.mean(value_err)
            entropy = jnp.mean(dist.entropy())
            loss = actor_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
            info = {
                "loss": loss,
                "actor_loss": actor_loss,
                "value_loss": value_loss,
                "entropy": entropy,
                "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
                "clip_fraction": jnp.mean(jnp.abs(ratio - 1.0) > cfg.clip_eps),
            }
            return loss, info

        def minibatch_step(model: TrainState, mb_data: dict) -> tuple[TrainState, dict]:
            return model.apply_loss_fn(
                loss_fn=lambda p: loss_fn(p, mb_data), pmap_axis=axis, has_aux=True
            )

        def epoch_step(model: TrainState, epoch_key: jax.Array) -> tuple[TrainState, dict]:
            perm = jax.random.permutation(epoch_key, n)
            shuffled = jax.tree.map(
                lambda x: x[perm].reshape((cfg.num_minibatches, mb, *x.shape[1:])), data
            )
            return jax.lax.scan(minibatch_step, model, shuffled)

        key, perm_key = jax.random.split(self.key)
        new_model, infos = jax.lax.scan(
            epoch_step, self.model, jax.random.split(perm_key, cfg.update_epochs)
        )
        info = c.mean_info(infos)
        info["advantages_mean"] = jnp.mean(advantages)
        info["returns_mean"] = jnp.mean(returns)
        if axis is not None:
            info = jax.lax.pmean(info, axis)
        return self.replace(model=new_model, key=key), info
