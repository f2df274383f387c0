"""TD3 (twin critics, target policy smoothing, delayed actor), TD3+BC and DDPG."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from . import _common as c
from . import _hparams as hp
from ._batches import Transition, as_transition
from ._hparams import check_hparams
from ._networks import ACTIVATIONS, DeterministicActor, Ensemble, StateActionCritic
from ._protocols import OffPolicyAgent
from ._train_state import TrainState, nonpytree_field, target_update

__all__ = ["DDPG", "TD3", "DDPGConfig", "TD3Config"]


@dataclasses.dataclass(frozen=True)
class TD3Config:
    """Hyper-parameters of `TD3` (the defaults of Fujimoto et al., 2018).

    Attributes:
        actor_lr, critic_lr: Adam learning rates.
        discount: gamma.
        tau: Polyak rate of the target actor and critics (applied on actor steps).
        hidden_dims: hidden sizes of actor and critics.
        encoder: image encoder before the networks: None (flat observations), ``"nature"``,
            ``"impala"`` or a flax module (see `realax.agents.with_encoder`).
        activation: hidden activation name.
        critic_layer_norm: LayerNorm in the critics.
        num_critics: critics whose minimum is the TD target (2: TD3; 1: DDPG).
        policy_noise: std of the target policy smoothing noise (0: none).
        noise_clip: the smoothing noise is clipped to ``[-noise_clip, noise_clip]``.
        policy_delay: the actor and the targets are updated every this many critic steps.
        exploration_noise: std of the Gaussian noise of ``sample_actions(deterministic=False)``.
        bc_alpha: None (TD3); a number makes it TD3+BC (Fujimoto & Gu, 2021, who use 2.5):
            the actor loss becomes ``-lambda * Q(s, pi(s)) + (pi(s) - a)^2`` with
            ``lambda = bc_alpha / mean|Q(s, pi(s))|``.
        pmap_axis: default axis name to average gradients over.
    """

    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    discount: float = 0.99
    tau: float = 0.005
    hidden_dims: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    encoder: Any = None
    critic_layer_norm: bool = False
    num_critics: int = 2
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_delay: int = 2
    exploration_noise: float = 0.1
    bc_alpha: float | None = None
    pmap_axis: str | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__.removesuffix("Config")
        for name in ("actor_lr", "critic_lr"):
            c.check_positive(owner, name, getattr(self, name))
        for name in ("policy_noise", "noise_clip", "exploration_noise"):
            c.check_positive(owner, name, getattr(self, name), allow_zero=True)
        c.check_unit_interval(owner, "discount", self.discount)
        c.check_unit_interval(owner, "tau", self.tau)
        c.check_int(owner, "num_critics", self.num_critics)
        c.check_int(owner, "policy_delay", self.policy_delay)
        if self.bc_alpha is not None:
            c.check_positive(owner, "bc_alpha", self.bc_alpha, allow_zero=True)
        c.check_network_config(owner, self)


@dataclasses.dataclass(frozen=True)
class DDPGConfig(TD3Config):
    """Hyper-parameters of `DDPG`: a `TD3Config` with one critic, no target policy smoothing
    and no policy delay (every field of `TD3Config` can still be set)."""

    num_critics: int = 1
    policy_noise: float = 0.0
    policy_delay: int = 1


def _select(pred: jax.Array, new: Any, old: Any) -> Any:
    """``new`` where ``pred`` else ``old``, leaf by leaf (both computed; no ``lax.cond``)."""
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), new, old)


class TD3(struct.PyTreeNode):
    """Twin delayed DDPG for continuous actions in ``[-1, 1]``; TD3+BC with ``bc_alpha``.

    `update` takes a `Transition` batch (``obs``, float ``actions`` ``(B, action_dim)`` in
    ``[-1, 1]``, ``rewards``, ``next_obs``, ``terminated``) or a mapping with the jaxrl_m keys
    ``observations``, ``actions``, ``rewards``, ``next_observations`` and ``masks`` (or
    ``dones``), e.g. a minibatch of a `Dataset`. Each update makes one critic step towards
    ``r + discount * mask * min_i Q'_i(s', clip(pi'(s') + clip(noise), -1, 1))``; every
    ``policy_delay``-th update also makes one actor step (maximising ``Q_1(s, pi(s))``, plus
    behaviour cloning with ``bc_alpha``) and moves the target actor and critics by ``tau``.
    The smoothing noise is drawn with one key per batch row (folded from the row's index in
    the whole batch), so a batch split over devices with ``pmap_axis`` gives the step of
    one device. TD3 is an `OffPolicyAgent`: ``sample_actions`` explores with Gaussian noise.

    Info keys (float32 scalars): ``critic_loss``, ``q`` (mean of the critics on the batch),
    ``target_q`` (mean TD target), ``actor_loss`` and ``bc_mse`` (mean squared distance of
    ``pi(s)`` to the batch actions; both computed on every update, applied on actor steps),
    ``lambda`` (the TD3+BC weight of Q; 1.0 without ``bc_alpha``) and ``actor_updated``
    (1.0 on actor steps, else 0.0).

    Attributes:
        actor: `TrainState` of a `DeterministicActor`.
        critic: `TrainState` of ``num_critics`` `StateActionCritic` s (an `Ensemble`).
        target_actor, target_critic: Polyak-averaged copies.
        key: PRNG key of the smoothing noise.
        config: `TD3Config` (static).

    Example:
        >>> obs, act = jnp.zeros((4, 3)), jnp.zeros((4, 1))
        >>> agent = TD3.create(key=0, observations=obs[0], actions=act[0], hidden_dims=(32,))
        >>> batch = Transition(obs=obs, actions=act, rewards=jnp.zeros(4), next_obs=obs,
        ...                    terminated=jnp.zeros(4, bool))
        >>> agent, info = agent.update(batch)
        >>> float(info["actor_updated"]), agent.sample_actions(obs, seed=jax.random.key(1)).shape
        (0.0, (4, 1))
    """

    actor: TrainState
    critic: TrainState
    target_actor: TrainState
    target_critic: TrainState
    key: jax.Array
    config: TD3Config = nonpytree_field()
    #: traced config numbers (``create(..., hparams=)``), float32 scalars; empty by default
    hparams: dict = struct.field(default_factory=dict)

    #: the config numbers ``create(..., hparams=)`` can trace (optimiser rates: not yet)
    TRACEABLE: ClassVar[tuple[str, ...]] = ("discount", "tau")

    @classmethod
    def _config_cls(cls) -> type[TD3Config]:
        return TD3Config

    @classmethod
    def create(
        cls,
        key: Any,
        observations: jax.Array,
        actions: jax.Array,
        *,
        hparams: Mapping[str, float] | None = None,
        **config: Any,
    ) -> Any:
        """Initialise actor, critics and their targets (same parameters).

        From a PRNG ``key`` (or an int seed), an example ``observations`` (float
        ``(obs_dim,)`` or ``(B, obs_dim)``) and example float ``actions`` (``(action_dim,)``
        or ``(B, action_dim)``); ``config``: fields of the config class.

        Example:
            >>> agent = TD3.create(key=jax.random.key(0), observations=jnp.zeros(3),
            ...                    actions=jnp.zeros(2), bc_alpha=2.5)
            >>> agent.config.policy_delay, agent.config.bc_alpha
            (2, 2.5)
        """
        owner = cls.__name__
        cfg = c.build_config(cls._config_cls(), owner, config)
        traced = check_hparams(owner, hparams, cls.TRACEABLE, cfg)
        key = c.as_key(owner, key)
        action_dim = c.continuous_action_dim(owner, actions)
        obs = c.observation_example(owner, observations)
        act = c.action_example(obs, actions, action_dim, cfg)
        actor_key, critic_key, key = jax.random.split(key, 3)
        activation = ACTIVATIONS[cfg.activation]
        actor_def = DeterministicActor(
            hidden_dims=cfg.hidden_dims, action_dim=action_dim, activation=activation
        )
        critic_def = Ensemble(StateActionCritic, cfg.num_critics)(
            hidden_dims=cfg.hidden_dims, activation=activation, layer_norm=cfg.critic_layer_norm
        )
        actor_def, critic_def = c.encoded(owner, cfg, obs, actor_def, critic_def)
        actor = c.init_state(actor_def, actor_key, obs, tx=c.make_optimizer(cfg.actor_lr))
        critic = c.init_state(critic_def, critic_key, obs, act, tx=c.make_optimizer(cfg.critic_lr))
        return cls(
            actor=actor,
            critic=critic,
            target_actor=TrainState.create(actor_def, actor.params),
            target_critic=TrainState.create(critic_def, critic.params),
            key=key,
            config=cfg,
            hparams=traced,
        )

    def _critic_step(self, batch: Transition, key: jax.Array, axis: Any) -> tuple[Any, dict]:
        cfg = self.config
        actions = jnp.asarray(batch.actions, jnp.float32)
        next_actions = self.target_actor(batch.next_obs)
        if cfg.policy_noise > 0:
            noise = c.row_normal(key, next_actions.shape, axis) * cfg.policy_noise
            noise = jnp.clip(noise, -cfg.noise_clip, cfg.noise_clip)
            next_actions = jnp.clip(next_actions + noise, -1.0, 1.0)
        next_q = jnp.min(self.target_critic(batch.next_obs, next_actions), axis=0)
        rewards = jnp.asarray(batch.rewards, jnp.float32)
        target_q = jax.lax.stop_gradient(
            rewards + hp.value(self, "discount") * batch.masks * next_q
        )

        def loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            qs = self.critic(batch.obs, actions, params=params)
            loss = jnp.mean((qs - target_q[None]) ** 2)
            return loss, {"critic_loss": loss, "q": jnp.mean(qs), "target_q": jnp.mean(target_q)}

        return self.critic.apply_loss_fn(loss_fn=loss_fn, pmap_axis=axis, has_aux=True)

    def _actor_step(self, batch: Transition, critic: TrainState, axis: Any) -> tuple[Any, dict]:
        cfg = self.config
        actions = jnp.asarray(batch.actions, jnp.float32)

        def loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            pi = self.actor(batch.obs, params=params)
            q = critic(batch.obs, pi)[0]
            bc_mse = jnp.mean((pi - actions) ** 2)
            if cfg.bc_alpha is None:
                lam = jnp.ones((), jnp.float32)
                loss = -jnp.mean(q)
            else:  # the whole batch's mean |Q|, also when it is split over devices
                mean_abs_q = c.pmean_if(jnp.mean(jnp.abs(q)), axis)
                lam = jax.lax.stop_gradient(cfg.bc_alpha / jnp.maximum(mean_abs_q, 1e-6))
                loss = -lam * jnp.mean(q) + bc_mse
            return loss, {"actor_loss": loss, "bc_mse": bc_mse, "lambda": lam}

        return self.actor.apply_loss_fn(loss_fn=loss_fn, pmap_axis=axis, has_aux=True)

    @functools.partial(jax.jit, static_argnames=("pmap_axis",))
    def update(
        self, batch: Transition | Mapping[str, jax.Array], *, pmap_axis: str | None = None
    ) -> tuple[Any, dict[str, jax.Array]]:
        """One critic step, and on every ``policy_delay``-th call an actor step and the target
        updates (see the class docstring). ``pmap_axis``: axis name of an enclosing
        pmap/shard_map to average gradients over (default ``config.pmap_axis``).

        Returns:
            ``(new_agent, info)`` with the info keys of the class docstring.
        """
        batch = as_transition(f"{type(self).__name__}.update", batch)
        cfg = self.config
        axis = c.axis_of(pmap_axis, cfg)
        key, noise_key = jax.random.split(self.key)
        new_critic, critic_info = self._critic_step(batch, noise_key, axis)
        new_actor, actor_info = self._actor_step(batch, new_critic, axis)
        actor_turn = (new_critic.step % cfg.policy_delay) == 0
        tau = jnp.where(actor_turn, hp.value(self, "tau"), 0.0)
        new = self.replace(
            actor=_select(actor_turn, new_actor, self.actor),
            critic=new_critic,
            target_actor=target_update(new_actor, self.target_actor, tau),
            target_critic=target_update(new_critic, self.target_critic, tau),
            key=key,
        )
        info = {**critic_info, **actor_info, "actor_updated": actor_turn}
        return new, c.mean_info(info)

    @functools.partial(jax.jit, static_argnames=("deterministic", "argmax"))
    def sample_actions(
        self,
        observations: jax.Array,
        *,
        seed: jax.Array,
        deterministic: bool = False,
        argmax: bool = False,
        noise_scale: float | jax.Array | None = None,
    ) -> jax.Array:
        """``pi(s)`` plus Gaussian exploration noise (std ``noise_scale``, default
        ``config.exploration_noise``), clipped to ``[-1, 1]``; ``deterministic=True`` (or
        ``argmax=True``): ``pi(s)``.

        Example:
            >>> agent = TD3.create(key=0, observations=jnp.zeros(3), actions=jnp.zeros(2))
            >>> a = agent.sample_actions(jnp.zeros(3), seed=jax.random.key(1), noise_scale=5.0)
            >>> a.shape, bool(jnp.all(jnp.abs(a) <= 1))
            ((2,), True)
        """
        deterministic = deterministic or argmax  # jaxrl_m's spelling
        actions = self.actor(observations)
        if deterministic:
            return actions
        scale = self.config.exploration_noise if noise_scale is None else noise_scale
        noise = jax.random.normal(seed, actions.shape) * scale
        return jnp.clip(actions + noise, -1.0, 1.0)


class DDPG(TD3):
    """Deep deterministic policy gradient: a `TD3` with the defaults of `DDPGConfig` (one
    critic, no target policy smoothing, an actor step and target update on every update).

    Same contract, info keys and attributes as `TD3` (``critic`` holds one critic).

    Example:
        >>> agent = DDPG.create(key=0, observations=jnp.zeros(3), actions=jnp.zeros(1))
        >>> agent.config.num_critics, agent.config.policy_delay
        (1, 1)
    """

    config: DDPGConfig = nonpytree_field()

    @classmethod
    def _config_cls(cls) -> type[TD3Config]:
        return DDPGConfig


if TYPE_CHECKING:  # TD3 and DDPG are what OffPolicyTrainer needs
    _: type[OffPolicyAgent] = TD3
    __: type[OffPolicyAgent] = DDPG
