"""Soft actor-critic: tanh-Gaussian actor, twin critics with targets, learned temperature."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct
from jax import Array

from . import _common as c
from . import _hparams as hp
from ._batches import Transition, as_transition
from ._hparams import check_hparams
from ._networks import ACTIVATIONS, ContinuousActor, Ensemble, StateActionCritic
from ._protocols import OffPolicyAgent
from ._train_state import TrainState, nonpytree_field, target_update

__all__ = ["SAC", "SACConfig", "Temperature"]


class Temperature(nn.Module):
    """A learned scalar ``alpha = exp(log_alpha)``.

    Example:
        >>> t = Temperature(init_value=0.5)
        >>> params = t.init(jax.random.key(0))
        >>> round(float(t.apply(params)), 3)
        0.5
    """

    init_value: float = 1.0

    @nn.compact
    def __call__(self) -> jax.Array:
        log_alpha = self.param(
            "log_alpha", lambda _: jnp.full((), jnp.log(self.init_value), jnp.float32)
        )
        return jnp.exp(log_alpha)


def _sample_per_row(
    dist: Any, key: jax.Array, axis: str | tuple[str, ...] | None
) -> tuple[jax.Array, jax.Array]:
    """Sample ``(actions, log_probs)`` with one key per batch row: ``fold_in(key, row)``.

    ``row`` is the row's index in the whole batch: under a pmap/shard_map axis the local rows
    are offset by ``axis_index * local_rows``, so a batch split over devices draws exactly
    the noise one device would draw for the whole batch (and no two devices share noise).
    """
    batch_shape = dist.loc.shape[:-1]
    n = math.prod(batch_shape)
    offset = 0 if axis is None else jax.lax.axis_index(axis) * n
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(offset + jnp.arange(n))
    flat = jax.tree.map(lambda x: x.reshape((n, x.shape[-1])), dist)
    actions, log_probs = jax.vmap(lambda d, k: d.sample_and_log_prob(seed=k))(flat, keys)
    return actions.reshape(dist.loc.shape), log_probs.reshape(batch_shape)


@dataclasses.dataclass(frozen=True)
class SACConfig:
    """Hyper-parameters of `SAC`.

    Attributes:
        actor_lr, critic_lr, temperature_lr: Adam learning rates.
        discount: gamma.
        tau: Polyak rate of the target critics (every update).
        hidden_dims: hidden sizes of actor and critics.
        encoder: image encoder before the networks: None (flat observations), ``"nature"``,
            ``"impala"`` or a flax module (see `realax.agents.with_encoder`).
        activation: hidden activation name.
        critic_layer_norm: LayerNorm in the critics.
        init_temperature: initial alpha.
        target_entropy: entropy target of the temperature loss; None means ``-action_dim``.
        backup_entropy: include ``-alpha * log_prob`` of the next action in the TD target.
        pmap_axis: default axis name to average gradients over.
    """

    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    temperature_lr: float = 3e-4
    discount: float = 0.99
    tau: float = 0.005
    hidden_dims: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    encoder: Any = None
    critic_layer_norm: bool = False
    init_temperature: float = 1.0
    target_entropy: float | None = None
    backup_entropy: bool = True
    pmap_axis: str | None = None

    def __post_init__(self) -> None:
        owner = "SAC"
        for name in ("actor_lr", "critic_lr", "temperature_lr", "init_temperature"):
            c.check_positive(owner, name, getattr(self, name))
        c.check_unit_interval(owner, "discount", self.discount)
        c.check_unit_interval(owner, "tau", self.tau)
        c.check_network_config(owner, self)
        if self.target_entropy is not None and not isinstance(self.target_entropy, int | float):
            raise ValueError(
                f"SAC: target_entropy must be a number or None (got {self.target_entropy!r})"
            )


class SAC(struct.PyTreeNode):
    """Soft actor-critic for continuous actions in ``[-1, 1]`` (rescale to the env's bounds).

    `update` takes a `Transition` batch (``obs``, ``actions`` float ``(B, action_dim)`` in
    ``[-1, 1]``, ``rewards``, ``next_obs``, ``terminated``; a truncation is not a
    termination). A dict with the former keys ``observations``, ``actions``, ``rewards``,
    ``next_observations`` and ``masks`` (``1 - terminated``) or ``dones`` (terminations) is
    still accepted and converted. SAC is an `OffPolicyAgent`.

    Attributes:
        actor: `TrainState` of a tanh-squashed `ContinuousActor`.
        critic: `TrainState` of two `StateActionCritic` (an `Ensemble`).
        target_critic: Polyak-averaged copy of ``critic``.
        temperature: `TrainState` of `Temperature`.
        key: PRNG key for the actions sampled inside `update`.
        config: `SACConfig` (static); its ``target_entropy`` is resolved at creation.

    Example:
        >>> obs, act = jnp.zeros((4, 3)), jnp.zeros((4, 1))
        >>> agent = SAC.create(key=jax.random.key(0), observations=obs, actions=act,
        ...                    hidden_dims=(32, 32))
        >>> batch = Transition(obs=obs, actions=act, rewards=jnp.zeros(4), next_obs=obs,
        ...                    terminated=jnp.zeros(4, bool))
        >>> agent, info = agent.update(batch)
        >>> agent.sample_actions(obs, seed=jax.random.key(1)).shape
        (4, 1)
    """

    actor: TrainState
    critic: TrainState
    target_critic: TrainState
    temperature: TrainState
    key: jax.Array
    config: SACConfig = nonpytree_field()
    #: traced config numbers (``create(..., hparams=)``), float32 scalars; empty by default
    hparams: dict = struct.field(default_factory=dict)

    #: the config numbers ``create(..., hparams=)`` can trace (optimiser rates: not yet)
    TRACEABLE: ClassVar[tuple[str, ...]] = ("discount", "tau")

    @classmethod
    def create(
        cls,
        key: Array | int,
        observations: Array,
        actions: Array,
        *,
        hparams: Mapping[str, float] | None = None,
        **config: Any,
    ) -> SAC:
        """Initialise actor, twin critics (and their targets) and the temperature.

        From a PRNG ``key``, example ``observations`` (float ``(obs_dim,)`` or ``(B, obs_dim)``)
        and example float ``actions`` (``(action_dim,)`` or ``(B, action_dim)``); ``config``:
        fields of `SACConfig`.

        Example:
            >>> agent = SAC.create(key=jax.random.key(0), observations=jnp.zeros(3),
            ...                    actions=jnp.zeros(2))
            >>> agent.config.target_entropy
            -2.0
        """
        cfg = c.build_config(SACConfig, "SAC", config)
        traced = check_hparams("SAC", hparams, cls.TRACEABLE, cfg)
        rng = c.as_key("SAC", key)
        action_dim = c.continuous_action_dim("SAC", actions)
        obs = c.observation_example("SAC", observations)
        act = c.action_example(obs, actions, action_dim, cfg)
        if cfg.target_entropy is None:
            cfg = dataclasses.replace(cfg, target_entropy=-float(action_dim))
        actor_key, critic_key, temp_key, new_key = jax.random.split(rng, 4)
        activation = ACTIVATIONS[cfg.activation]
        actor_def = ContinuousActor(
            hidden_dims=cfg.hidden_dims,
            action_dim=action_dim,
            activation=activation,
            tanh_squash=True,
            final_kernel_scale=1.0,
        )
        critic_def = Ensemble(StateActionCritic, 2)(
            hidden_dims=cfg.hidden_dims, activation=activation, layer_norm=cfg.critic_layer_norm
        )
        actor_def, critic_def = c.encoded("SAC", cfg, obs, actor_def, critic_def)
        temp_def = Temperature(init_value=cfg.init_temperature)
        critic = c.init_state(critic_def, critic_key, obs, act, tx=c.make_optimizer(cfg.critic_lr))
        return cls(
            actor=c.init_state(actor_def, actor_key, obs, tx=c.make_optimizer(cfg.actor_lr)),
            critic=critic,
            target_critic=TrainState.create(critic_def, critic.params),
            temperature=c.init_state(temp_def, temp_key, tx=c.make_optimizer(cfg.temperature_lr)),
            key=new_key,
            config=cfg,
            hparams=traced,
        )

    @functools.partial(jax.jit, static_argnames=("pmap_axis",))
    def update(
        self, batch: Transition | Mapping[str, jax.Array], *, pmap_axis: str | None = None
    ) -> tuple[SAC, dict[str, jax.Array]]:
        """One critic, actor and temperature step on ``batch`` (a `Transition`, see the class
        docstring), then the target update. ``pmap_axis``: axis name of an enclosing
        pmap/shard_map to average gradients over (default ``config.pmap_axis``).

        Actions inside the update are sampled with one key per batch row (folded from the
        row's index in the whole batch), so splitting a batch over devices with `shard_batch`
        and ``pmap_axis`` gives the same step as one device on the whole batch.

        Returns:
            ``(new_agent, info)`` with float32 scalars ``critic_loss``, ``q``, ``actor_loss``,
            ``entropy`` (sample estimate), ``temperature`` and ``temperature_loss``.
        """
        batch = as_transition("SAC.update", batch)
        masks = batch.masks
        cfg = self.config
        axis = c.axis_of(pmap_axis, cfg)
        obs, next_obs = batch.obs, batch.next_obs
        actions = jnp.asarray(batch.actions, jnp.float32)
        rewards = jnp.asarray(batch.rewards, jnp.float32)
        key, next_key, actor_key = jax.random.split(self.key, 3)

        # Critic: soft TD target from the target critics, min over the twins.
        alpha = self.temperature()
        next_actions, next_log_probs = _sample_per_row(self.actor(next_obs), next_key, axis)
        next_q = jnp.min(self.target_critic(next_obs, next_actions), axis=0)
        if cfg.backup_entropy:
            next_q = next_q - alpha * next_log_probs
        target_q = jax.lax.stop_gradient(rewards + hp.value(self, "discount") * masks * next_q)

        def critic_loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            qs = self.critic(obs, actions, params=params)
            loss = jnp.mean((qs - target_q[None]) ** 2)
            return loss, {"critic_loss": loss, "q": jnp.mean(qs)}

        new_critic, critic_info = self.critic.apply_loss_fn(
            loss_fn=critic_loss_fn, pmap_axis=axis, has_aux=True
        )

        # Actor: maximise min-Q minus alpha * log-prob, using the updated critics.
        def actor_loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            dist = self.actor(obs, params=params)
            new_actions, log_probs = _sample_per_row(dist, actor_key, axis)
            q = jnp.min(new_critic(obs, new_actions), axis=0)
            loss = jnp.mean(alpha * log_probs - q)
            return loss, {"actor_loss": loss, "entropy": -jnp.mean(log_probs)}

        new_actor, actor_info = self.actor.apply_loss_fn(
            loss_fn=actor_loss_fn, pmap_axis=axis, has_aux=True
        )

        # Temperature: move the policy entropy towards target_entropy.
        entropy = jax.lax.stop_gradient(actor_info["entropy"])

        def temperature_loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            temp = self.temperature(params=params)
            loss = temp * (entropy - cfg.target_entropy)
            return loss, {"temperature": temp, "temperature_loss": loss}

        new_temperature, temp_info = self.temperature.apply_loss_fn(
            loss_fn=temperature_loss_fn, pmap_axis=axis, has_aux=True
        )
        new_target = target_update(new_critic, self.target_critic, hp.value(self, "tau"))
        info = c.mean_info({**critic_info, **actor_info, **temp_info})
        new = self.replace(actor=new_actor, critic=new_critic, target_critic=new_target)
        return new.replace(temperature=new_temperature, key=key), info

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
        """Actions in ``(-1, 1)``; ``deterministic=True`` (or jaxrl_m's ``argmax=True``) gives
        ``tanh(mean)``; ``temperature`` scales the std of the sampled Gaussian.

        Example:
            >>> agent = SAC.create(key=jax.random.key(0), observations=jnp.zeros(3),
            ...                    actions=jnp.zeros(2))
            >>> agent.sample_actions(jnp.zeros(3), seed=jax.random.key(1), deterministic=True).shape
            (2,)
        """
        deterministic = deterministic or argmax  # jaxrl_m's spelling
        dist = self.actor(observations, temperature=temperature)
        return dist.mode() if deterministic else dist.sample(seed=seed)


if TYPE_CHECKING:  # SAC is what OffPolicyTrainer needs
    _: type[OffPolicyAgent] = SAC
