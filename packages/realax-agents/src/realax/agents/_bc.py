"""Behaviour cloning: maximum likelihood of expert actions, discrete or continuous."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from . import _common as c
from ._networks import ACTIVATIONS, ContinuousActor, DiscreteActor
from ._train_state import TrainState, nonpytree_field

__all__ = ["ContinuousBC", "ContinuousBCConfig", "DiscreteBC", "DiscreteBCConfig"]


@dataclasses.dataclass(frozen=True)
class DiscreteBCConfig:
    """Hyper-parameters of `DiscreteBC`.

    Attributes:
        n_actions: number of discrete actions (required).
        learning_rate: Adam learning rate.
        hidden_dims: hidden layer sizes of the policy MLP.
        activation: one of ``"relu"``, ``"tanh"``, ``"gelu"``, ``"elu"``, ``"swish"``.
        max_grad_norm: global-norm gradient clipping, or None.
        pmap_axis: default axis name to average gradients over (see ``update``).
    """

    n_actions: int | None = None
    learning_rate: float = 1e-3
    hidden_dims: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    max_grad_norm: float | None = None
    pmap_axis: str | None = None

    def __post_init__(self) -> None:
        owner = "DiscreteBC"
        c.check_positive(owner, "learning_rate", self.learning_rate)
        object.__setattr__(self, "hidden_dims", c.check_hidden_dims(owner, self.hidden_dims))
        c.check_activation(owner, self.activation)
        if self.max_grad_norm is not None:
            c.check_positive(owner, "max_grad_norm", self.max_grad_norm)
        c.check_pmap_axis(owner, self.pmap_axis)


class DiscreteBC(struct.PyTreeNode):
    """Behaviour cloning of discrete actions with a categorical policy.

    The loss is the mean negative log-likelihood of the batch's actions.

    Batch keys for `update`:
        ``observations``: float ``(B, obs_dim)``; ``actions``: int ``(B,)``.

    Attributes:
        actor: `TrainState` of a `DiscreteActor`.
        key: PRNG key (unused by the update; kept for API symmetry with other agents).
        config: `DiscreteBCConfig` (static).

    Example:
        >>> obs, act = jnp.zeros((1, 4)), jnp.zeros((1,), jnp.int32)
        >>> agent = DiscreteBC.create(key=jax.random.key(0), observations=obs, actions=act,
        ...                           n_actions=2, hidden_dims=(32,))
        >>> agent, info = agent.update({"observations": obs, "actions": act})
        >>> agent.sample_actions(obs, seed=jax.random.key(1)).shape
        (1,)
    """

    actor: TrainState
    key: jax.Array
    config: DiscreteBCConfig = nonpytree_field()

    @classmethod
    def create(
        cls, key: jax.Array, observations: jax.Array, actions: jax.Array, **config: Any
    ) -> DiscreteBC:
        """Initialise the policy from example observations/actions.

        Args:
            key: PRNG key.
            observations: example observation(s), float ``(obs_dim,)`` or ``(B, obs_dim)``.
            actions: example integer action(s) (only the dtype is used).
            **config: fields of `DiscreteBCConfig` (``n_actions`` is required).

        Example:
            >>> agent = DiscreteBC.create(key=jax.random.key(0), observations=jnp.zeros(4),
            ...                           actions=jnp.zeros((), jnp.int32), n_actions=2)
            >>> agent.config.n_actions
            2
        """
        cfg = c.build_config(DiscreteBCConfig, "DiscreteBC", config)
        n_actions = c.discrete_n_actions("DiscreteBC", actions, cfg.n_actions)
        obs = c.observation_example("DiscreteBC", observations)
        init_key, key = jax.random.split(key)
        model_def = DiscreteActor(
            hidden_dims=cfg.hidden_dims,
            n_actions=n_actions,
            activation=ACTIVATIONS[cfg.activation],
        )
        params = model_def.init(init_key, obs)["params"]
        tx = c.make_optimizer(cfg.learning_rate, cfg.max_grad_norm)
        return cls(actor=TrainState.create(model_def, params, tx=tx), key=key, config=cfg)

    @functools.partial(jax.jit, static_argnames=("pmap_axis",))
    def update(
        self, batch: dict[str, jax.Array], *, pmap_axis: str | None = None
    ) -> tuple[DiscreteBC, dict[str, jax.Array]]:
        """One gradient step on ``batch`` (keys ``observations``, ``actions``).

        Args:
            batch: dict of arrays, see the class docstring.
            pmap_axis: axis name of an enclosing pmap/shard_map to average gradients over
                (default ``config.pmap_axis``).

        Returns:
            ``(new_agent, info)`` with float32 scalars ``loss``, ``accuracy``, ``entropy``.
        """
        c.require_keys("DiscreteBC.update", batch, ("observations", "actions"))
        axis = pmap_axis if pmap_axis is not None else self.config.pmap_axis
        actions = jnp.asarray(batch["actions"]).astype(jnp.int32)

        def loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            dist = self.actor(batch["observations"], params=params)
            loss = -jnp.mean(dist.log_prob(actions))
            info = {
                "loss": loss,
                "accuracy": jnp.mean(dist.mode() == actions),
                "entropy": jnp.mean(dist.entropy()),
            }
            return loss, info

        new_actor, info = self.actor.apply_loss_fn(loss_fn=loss_fn, pmap_axis=axis, has_aux=True)
        return self.replace(actor=new_actor), c.mean_info(info)

    @functools.partial(jax.jit, static_argnames=("deterministic",))
    def sample_actions(
        self,
        observations: jax.Array,
        *,
        seed: jax.Array,
        temperature: float = 1.0,
        deterministic: bool = False,
    ) -> jax.Array:
        """Sample int32 actions (``deterministic=True``: the most likely action).

        Example:
            >>> agent = DiscreteBC.create(key=jax.random.key(0), observations=jnp.zeros(4),
            ...                           actions=jnp.zeros((), jnp.int32), n_actions=2)
            >>> agent.sample_actions(jnp.zeros(4), seed=jax.random.key(1), deterministic=True).dtype
            dtype('int32')
        """
        dist = self.actor(observations, temperature=temperature)
        if deterministic:
            return dist.mode()
        return dist.sample(seed=seed)


@dataclasses.dataclass(frozen=True)
class ContinuousBCConfig:
    """Hyper-parameters of `ContinuousBC`.

    Attributes:
        learning_rate: Adam learning rate.
        hidden_dims: hidden layer sizes of the policy MLP.
        activation: hidden activation name.
        tanh_squash: model actions as ``tanh`` of a Gaussian (expert actions must lie in
            ``(-1, 1)``); otherwise an unbounded diagonal Gaussian.
        max_grad_norm: global-norm gradient clipping, or None.
        pmap_axis: default axis name to average gradients over.
    """

    learning_rate: float = 1e-3
    hidden_dims: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    tanh_squash: bool = False
    max_grad_norm: float | None = None
    pmap_axis: str | None = None

    def __post_init__(self) -> None:
        owner = "ContinuousBC"
        c.check_positive(owner, "learning_rate", self.learning_rate)
        object.__setattr__(self, "hidden_dims", c.check_hidden_dims(owner, self.hidden_dims))
        c.check_activation(owner, self.activation)
        if self.max_grad_norm is not None:
            c.check_positive(owner, "max_grad_norm", self.max_grad_norm)
        c.check_pmap_axis(owner, self.pmap_axis)


class ContinuousBC(struct.PyTreeNode):
    """Behaviour cloning of continuous actions with a (tanh-)Gaussian policy.

    The loss is the mean negative log-likelihood of the batch's actions under a Gaussian with
    state-dependent mean and standard deviation; `sample_actions` with ``deterministic=True``
    returns the mean (the regression estimate of the expert action).

    Batch keys for `update`:
        ``observations``: float ``(B, obs_dim)``; ``actions``: float ``(B, action_dim)``.

    Example:
        >>> obs, act = jnp.zeros((1, 3)), jnp.zeros((1, 2))
        >>> agent = ContinuousBC.create(key=jax.random.key(0), observations=obs, actions=act,
        ...                             hidden_dims=(32,))
        >>> agent, info = agent.update({"observations": obs, "actions": act})
        >>> agent.sample_actions(obs, seed=jax.random.key(1)).shape
        (1, 2)
    """

    actor: TrainState
    key: jax.Array
    config: ContinuousBCConfig = nonpytree_field()

    @classmethod
    def create(
        cls, key: jax.Array, observations: jax.Array, actions: jax.Array, **config: Any
    ) -> ContinuousBC:
        """Initialise the policy from example observations/actions.

        Args:
            key: PRNG key.
            observations: example observation(s), float ``(obs_dim,)`` or ``(B, obs_dim)``.
            actions: example action(s), float ``(action_dim,)`` or ``(B, action_dim)``.
            **config: fields of `ContinuousBCConfig`.

        Example:
            >>> agent = ContinuousBC.create(key=jax.random.key(0), observations=jnp.zeros(3),
            ...                             actions=jnp.zeros(1))
            >>> agent.config.tanh_squash
            False
        """
        cfg = c.build_config(ContinuousBCConfig, "ContinuousBC", config)
        action_dim = c.continuous_action_dim("ContinuousBC", actions)
        obs = c.observation_example("ContinuousBC", observations)
        init_key, key = jax.random.split(key)
        model_def = ContinuousActor(
            hidden_dims=cfg.hidden_dims,
            action_dim=action_dim,
            activation=ACTIVATIONS[cfg.activation],
            tanh_squash=cfg.tanh_squash,
        )
        params = model_def.init(init_key, obs)["params"]
        tx = c.make_optimizer(cfg.learning_rate, cfg.max_grad_norm)
        return cls(actor=TrainState.create(model_def, params, tx=tx), key=key, config=cfg)

    @functools.partial(jax.jit, static_argnames=("pmap_axis",))
    def update(
        self, batch: dict[str, jax.Array], *, pmap_axis: str | None = None
    ) -> tuple[ContinuousBC, dict[str, jax.Array]]:
        """One gradient step on ``batch`` (keys ``observations``, ``actions``).

        Returns:
            ``(new_agent, info)`` with float32 scalars ``loss`` (negative log-likelihood),
            ``mse`` (of the deterministic action) and ``log_std``.
        """
        c.require_keys("ContinuousBC.update", batch, ("observations", "actions"))
        axis = pmap_axis if pmap_axis is not None else self.config.pmap_axis
        actions = jnp.asarray(batch["actions"], dtype=jnp.float32)

        def loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            dist = self.actor(batch["observations"], params=params)
            loss = -jnp.mean(dist.log_prob(actions))
            info = {
                "loss": loss,
                "mse": jnp.mean(jnp.sum((dist.mode() - actions) ** 2, axis=-1)),
                "log_std": jnp.mean(jnp.log(dist.scale)),
            }
            return loss, info

        new_actor, info = self.actor.apply_loss_fn(loss_fn=loss_fn, pmap_axis=axis, has_aux=True)
        return self.replace(actor=new_actor), c.mean_info(info)

    @functools.partial(jax.jit, static_argnames=("deterministic",))
    def sample_actions(
        self,
        observations: jax.Array,
        *,
        seed: jax.Array,
        temperature: float = 1.0,
        deterministic: bool = False,
    ) -> jax.Array:
        """Sample float actions (``deterministic=True``: the mean / ``tanh(mean)``).

        Example:
            >>> agent = ContinuousBC.create(key=jax.random.key(0), observations=jnp.zeros(3),
            ...                             actions=jnp.zeros(2))
            >>> agent.sample_actions(jnp.zeros(3), seed=jax.random.key(1)).shape
            (2,)
        """
        dist = self.actor(observations, temperature=temperature)
        if deterministic:
            return dist.mode()
        return dist.sample(seed=seed)
