"""Implicit Q-learning: expectile value, twin Q, advantage-weighted Gaussian actor."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from . import _common as c
from ._batches import Transition, as_transition
from ._networks import ACTIVATIONS, ContinuousActor, Ensemble, StateActionCritic, ValueCritic
from ._protocols import OffPolicyAgent
from ._train_state import TrainState, nonpytree_field, target_update

__all__ = ["IQL", "IQLConfig", "expectile_loss"]

#: the advantage weights ``exp(temperature * adv)`` are clipped to this (as jaxrl_m)
MAX_ADV_WEIGHT = 100.0


def expectile_loss(diff: jax.Array, expectile: float) -> jax.Array:
    """Asymmetric squared loss ``|expectile - 1(diff < 0)| * diff^2`` (elementwise).

    Minimising its mean over ``diff = q - v`` makes ``v`` the ``expectile`` of ``q``
    (0.5: the mean; towards 1: the maximum).

    Example:
        >>> expectile_loss(jnp.array([2.0, -2.0]), 0.7).tolist()
        [2.799999952316284, 1.2000000476837158]
    """
    weight = jnp.where(diff > 0, expectile, 1.0 - expectile)
    return weight * diff**2


@dataclasses.dataclass(frozen=True)
class IQLConfig:
    """Hyper-parameters of `IQL` (jaxrl_m's defaults, those of Kostrikov et al. for locomotion).

    Attributes:
        actor_lr, value_lr, critic_lr: Adam learning rates.
        actor_decay_steps: if set, the actor's learning rate follows a cosine decay to 0 over
            this many updates (jaxrl_m's ``opt_decay_schedule="cosine"`` with ``max_steps``).
        discount: gamma.
        tau: Polyak rate of the target critics (every update).
        expectile: the expectile of Q that V fits (0.7 locomotion, 0.9 AntMaze).
        temperature: inverse temperature of the advantage weights ``exp(temperature * adv)``
            (3.0 locomotion, 10.0 AntMaze), clipped at 100.
        hidden_dims: hidden sizes of actor, critics and value network.
        encoder: image encoder before the networks: None (flat observations), ``"nature"``,
            ``"impala"`` or a flax module (see `realax.agents.with_encoder`).
        activation: hidden activation name.
        critic_layer_norm: LayerNorm in the critics and the value network.
        pmap_axis: default axis name to average gradients over.
    """

    actor_lr: float = 3e-4
    value_lr: float = 3e-4
    critic_lr: float = 3e-4
    actor_decay_steps: int | None = None
    discount: float = 0.99
    tau: float = 0.005
    expectile: float = 0.7
    temperature: float = 3.0
    hidden_dims: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    encoder: Any = None
    critic_layer_norm: bool = False
    pmap_axis: str | None = None

    def __post_init__(self) -> None:
        owner = "IQL"
        for name in ("actor_lr", "value_lr", "critic_lr"):
            c.check_positive(owner, name, getattr(self, name))
        if self.actor_decay_steps is not None:
            c.check_int(owner, "actor_decay_steps", self.actor_decay_steps)
        c.check_unit_interval(owner, "discount", self.discount)
        c.check_unit_interval(owner, "tau", self.tau)
        c.check_unit_interval(owner, "expectile", self.expectile)
        c.check_positive(owner, "temperature", self.temperature, allow_zero=True)
        c.check_network_config(owner, self)


class IQL(struct.PyTreeNode):
    """Implicit Q-learning (Kostrikov et al., 2021) for continuous actions in ``[-1, 1]``.

    Each update makes three simultaneous steps, all computed with the networks before the
    update (as jaxrl_m): the value ``V(s)`` fits the ``expectile`` of
    ``min_i Q'_i(s, a)`` (target critics) with `expectile_loss`; the twin critics fit
    ``r + discount * mask * V(s')``; the Gaussian actor maximises
    ``min(exp(temperature * (min_i Q'_i(s, a) - V(s))), 100) * log pi(a | s)`` on the batch
    actions. Then the target critics move by ``tau``. No action outside the data is queried.

    `update` takes a `Transition` or a mapping with the jaxrl_m keys ``observations``,
    ``actions``, ``rewards``, ``next_observations``, ``masks`` (or ``dones``), e.g. a
    minibatch of a `Dataset`. Gradients are averaged over ``pmap_axis``.

    Info keys (float32 scalars): ``critic_loss``, ``q`` (mean of the critics on the batch),
    ``value_loss``, ``v`` (mean value), ``actor_loss``, ``adv`` (mean advantage),
    ``adv_weight`` (mean clipped weight) and ``bc_log_probs`` (mean log-probability of the
    batch actions).

    Attributes:
        actor: `TrainState` of a `ContinuousActor` (Gaussian, state-independent std, no tanh:
            sampled actions are clipped to ``[-1, 1]``).
        critic: `TrainState` of two `StateActionCritic` (an `Ensemble`).
        target_critic: Polyak-averaged copy of ``critic``.
        value: `TrainState` of a `ValueCritic`.
        config: `IQLConfig` (static).

    Example:
        >>> obs, act = jnp.zeros((4, 3)), jnp.zeros((4, 2))
        >>> agent = IQL.create(key=0, observations=obs[0], actions=act[0], hidden_dims=(16,))
        >>> batch = {"observations": obs, "actions": act, "rewards": jnp.ones(4),
        ...          "masks": jnp.ones(4), "next_observations": obs}
        >>> agent, info = agent.update(batch)
        >>> agent.sample_actions(obs, seed=jax.random.key(1)).shape
        (4, 2)
    """

    actor: TrainState
    critic: TrainState
    target_critic: TrainState
    value: TrainState
    config: IQLConfig = nonpytree_field()

    @classmethod
    def create(cls, key: Any, observations: jax.Array, actions: jax.Array, **config: Any) -> IQL:
        """Initialise actor, twin critics (and their targets) and the value network.

        From a PRNG ``key`` (or an int seed), an example ``observations`` (float
        ``(obs_dim,)`` or ``(B, obs_dim)``) and example float ``actions`` (``(action_dim,)``
        or ``(B, action_dim)``); ``config``: fields of `IQLConfig`.

        Example:
            >>> agent = IQL.create(key=0, observations=jnp.zeros(3), actions=jnp.zeros(2))
            >>> agent.config.expectile, agent.config.temperature
            (0.7, 3.0)
        """
        cfg = c.build_config(IQLConfig, "IQL", config)
        key = c.as_key("IQL", key)
        action_dim = c.continuous_action_dim("IQL", actions)
        obs = c.observation_example("IQL", observations)
        act = c.action_example(obs, actions, action_dim, cfg)
        actor_key, critic_key, value_key = jax.random.split(key, 3)
        activation = ACTIVATIONS[cfg.activation]
        net: dict[str, Any] = {"hidden_dims": cfg.hidden_dims, "activation": activation}
        actor_def = ContinuousActor(**net, action_dim=action_dim, state_dependent_std=False)
        critic_def = Ensemble(StateActionCritic, 2)(**net, layer_norm=cfg.critic_layer_norm)
        value_def = ValueCritic(**net, layer_norm=cfg.critic_layer_norm)
        actor_def, critic_def, value_def = c.encoded(
            "IQL", cfg, obs, actor_def, critic_def, value_def
        )
        actor_lr: float | optax.Schedule = cfg.actor_lr
        if cfg.actor_decay_steps is not None:
            actor_lr = optax.cosine_decay_schedule(cfg.actor_lr, cfg.actor_decay_steps)
        critic = c.init_state(critic_def, critic_key, obs, act, tx=c.make_optimizer(cfg.critic_lr))
        return cls(
            actor=c.init_state(actor_def, actor_key, obs, tx=c.make_optimizer(actor_lr)),
            critic=critic,
            target_critic=TrainState.create(critic_def, critic.params),
            value=c.init_state(value_def, value_key, obs, tx=c.make_optimizer(cfg.value_lr)),
            config=cfg,
        )

    @functools.partial(jax.jit, static_argnames=("pmap_axis",))
    def update(
        self, batch: Transition | Mapping[str, jax.Array], *, pmap_axis: str | None = None
    ) -> tuple[IQL, dict[str, jax.Array]]:
        """One value, critic and actor step on ``batch`` (see the class docstring), then the
        target update. ``pmap_axis``: axis name of an enclosing pmap/shard_map to average
        gradients over (default ``config.pmap_axis``).

        Returns:
            ``(new_agent, info)`` with the info keys of the class docstring.
        """
        batch = as_transition("IQL.update", batch)
        cfg = self.config
        axis = c.axis_of(pmap_axis, cfg)
        obs = batch.obs
        actions = jnp.asarray(batch.actions, jnp.float32)
        rewards = jnp.asarray(batch.rewards, jnp.float32)
        target_q = jnp.min(self.target_critic(obs, actions), axis=0)

        def value_loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            v = self.value(obs, params=params)
            loss = jnp.mean(expectile_loss(target_q - v, cfg.expectile))
            return loss, {"value_loss": loss, "v": jnp.mean(v)}

        td_target = rewards + cfg.discount * batch.masks * self.value(batch.next_obs)

        def critic_loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            qs = self.critic(obs, actions, params=params)
            loss = jnp.mean((qs - td_target[None]) ** 2)
            return loss, {"critic_loss": loss, "q": jnp.mean(qs)}

        adv = target_q - self.value(obs)
        weight = jnp.minimum(jnp.exp(cfg.temperature * adv), MAX_ADV_WEIGHT)

        def actor_loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            log_probs = self.actor(obs, params=params).log_prob(actions)
            loss = -jnp.mean(weight * log_probs)
            info = {"actor_loss": loss, "adv": jnp.mean(adv), "adv_weight": jnp.mean(weight)}
            return loss, {**info, "bc_log_probs": jnp.mean(log_probs)}

        new_value, value_info = self.value.apply_loss_fn(
            loss_fn=value_loss_fn, pmap_axis=axis, has_aux=True
        )
        new_critic, critic_info = self.critic.apply_loss_fn(
            loss_fn=critic_loss_fn, pmap_axis=axis, has_aux=True
        )
        new_actor, actor_info = self.actor.apply_loss_fn(
            loss_fn=actor_loss_fn, pmap_axis=axis, has_aux=True
        )
        new = self.replace(
            actor=new_actor,
            critic=new_critic,
            target_critic=target_update(new_critic, self.target_critic, cfg.tau),
            value=new_value,
        )
        return new, c.mean_info({**critic_info, **value_info, **actor_info})

    @functools.partial(jax.jit, static_argnames=("deterministic", "argmax"))
    def sample_actions(
        self,
        observations: jax.Array,
        *,
        seed: jax.Array,
        deterministic: bool = False,
        argmax: bool = False,
        temperature: float | jax.Array = 1.0,
    ) -> jax.Array:
        """Gaussian actions (std scaled by ``temperature``) clipped to ``[-1, 1]``;
        ``deterministic=True`` (or ``argmax=True``): the clipped mean.

        Example:
            >>> agent = IQL.create(key=0, observations=jnp.zeros(3), actions=jnp.zeros(2))
            >>> a = agent.sample_actions(jnp.zeros(3), seed=jax.random.key(1))
            >>> a.shape, bool(jnp.all(jnp.abs(a) <= 1))
            ((2,), True)
        """
        deterministic = deterministic or argmax  # jaxrl_m's spelling
        dist = self.actor(observations, temperature=temperature)
        actions = dist.mode() if deterministic else dist.sample(seed=seed)
        return jnp.clip(actions, -1.0, 1.0)


if TYPE_CHECKING:  # IQL has what OffPolicyTrainer calls (it is meant for offline data)
    _: type[OffPolicyAgent] = IQL
