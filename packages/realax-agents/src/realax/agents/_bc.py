"""Behaviour cloning: maximum likelihood of expert actions, discrete or continuous."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax import Array

from . import _common as c
from ._batches import Rollout, Transition
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
        encoder: image encoder before the networks: None (flat observations), ``"nature"``,
            ``"impala"`` or a flax module (see `realax.agents.with_encoder`).
        activation: one of ``"relu"``, ``"tanh"``, ``"gelu"``, ``"elu"``, ``"swish"``.
        max_grad_norm: global-norm gradient clipping, or None.
        pmap_axis: default axis name to average gradients over (see ``update``).
    """

    n_actions: int | None = None
    learning_rate: float = 1e-3
    hidden_dims: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    encoder: Any = None
    max_grad_norm: float | None = None
    pmap_axis: str | None = None

    def __post_init__(self) -> None:
        c.check_network_config("DiscreteBC", self)


class _BehaviourCloning(struct.PyTreeNode):
    """What `DiscreteBC` and `ContinuousBC` share: the policy, its creation, the
    negative-log-likelihood step and sampling. Subclasses set `_actor_def`, `_actions` and
    `_info`."""

    actor: TrainState
    key: jax.Array
    config: Any = nonpytree_field()

    @classmethod
    def _from_actor(cls, key: jax.Array, obs: jax.Array, actor_def: Any, cfg: Any) -> Any:
        init_key, key = jax.random.split(key)
        (actor_def,) = c.encoded(cls.__name__, cfg, obs, actor_def)
        tx = c.make_optimizer(cfg.learning_rate, cfg.max_grad_norm)
        return cls(actor=c.init_state(actor_def, init_key, obs, tx=tx), key=key, config=cfg)

    def _actions(self, actions: jax.Array) -> jax.Array:
        raise NotImplementedError  # pragma: no cover

    def _info(self, dist: Any, actions: jax.Array) -> dict[str, jax.Array]:
        raise NotImplementedError  # pragma: no cover

    @functools.partial(jax.jit, static_argnames=("pmap_axis",))
    def update(
        self, batch: Any, *, pmap_axis: str | None = None
    ) -> tuple[Any, dict[str, jax.Array]]:
        """One gradient step on the mean negative log-likelihood of ``batch``'s actions.

        Args:
            batch: a dict with ``observations`` and ``actions``, or a `Transition` /
                `Rollout` (its ``obs`` and ``actions`` are used).
            pmap_axis: axis name of an enclosing pmap/shard_map to average gradients over
                (default ``config.pmap_axis``).

        Returns:
            ``(new_agent, info)`` with float32 scalars ``loss`` and the class's own (see its
            docstring).
        """
        obs, actions = _observations_and_actions(f"{type(self).__name__}.update", batch)
        axis = c.axis_of(pmap_axis, self.config)
        actions = self._actions(actions)

        def loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            dist = self.actor(obs, params=params)
            loss = -jnp.mean(dist.log_prob(actions))
            return loss, {"loss": loss, **self._info(dist, actions)}

        new_actor, info = self.actor.apply_loss_fn(loss_fn=loss_fn, pmap_axis=axis, has_aux=True)
        return self.replace(actor=new_actor), c.mean_info(info)

    @functools.partial(jax.jit, static_argnames=("deterministic", "argmax"))
    def sample_actions(
        self,
        observations: jax.Array,
        *,
        seed: jax.Array,
        temperature: float = 1.0,
        deterministic: bool = False,
        argmax: bool = False,
    ) -> jax.Array:
        """Sample actions (``deterministic=True`` or jaxrl_m's ``argmax=True``: the most likely
        action / the mean; ``temperature`` scales the logits / the std)."""
        deterministic = deterministic or argmax  # jaxrl_m's spelling
        dist = self.actor(observations, temperature=temperature)
        if deterministic:
            return dist.mode()
        return dist.sample(seed=seed)


def _observations_and_actions(owner: str, batch: Any) -> tuple[jax.Array, jax.Array]:
    if isinstance(batch, Transition | Rollout):
        return batch.obs, batch.actions
    c.require_keys(owner, batch, ("observations", "actions"))
    return batch["observations"], batch["actions"]


class DiscreteBC(_BehaviourCloning):
    """Behaviour cloning of discrete actions with a categorical policy.

    The loss is the mean negative log-likelihood of the batch's actions.

    Batch for `update`: a dict with ``observations`` float ``(B, obs_dim)`` and ``actions``
    int ``(B,)``, or a `Transition` / `Rollout` (its ``obs`` and ``actions``).

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

    config: DiscreteBCConfig = nonpytree_field()

    @classmethod
    def create(
        cls, key: Array | int, observations: Array, actions: Array, **config: Any
    ) -> DiscreteBC:
        """Initialise the policy from a PRNG ``key``, example ``observations`` (float
        ``(obs_dim,)`` or ``(B, obs_dim)``) and example integer ``actions`` (only the dtype is
        used); ``config`` holds fields of `DiscreteBCConfig` (``n_actions`` is required).

        Example:
            >>> agent = DiscreteBC.create(key=jax.random.key(0), observations=jnp.zeros(4),
            ...                           actions=jnp.zeros((), jnp.int32), n_actions=2)
            >>> agent.config.n_actions
            2
        """
        cfg = c.build_config(DiscreteBCConfig, "DiscreteBC", config)
        key = c.as_key("DiscreteBC", key)
        n_actions = c.discrete_n_actions("DiscreteBC", actions, cfg.n_actions)
        obs = c.observation_example("DiscreteBC", observations)
        actor_def = DiscreteActor(
            hidden_dims=cfg.hidden_dims,
            n_actions=n_actions,
            activation=ACTIVATIONS[cfg.activation],
        )
        return cls._from_actor(key, obs, actor_def, cfg)

    def _actions(self, actions: jax.Array) -> jax.Array:
        return jnp.asarray(actions).astype(jnp.int32)

    def _info(self, dist: Any, actions: jax.Array) -> dict[str, jax.Array]:
        return {"accuracy": jnp.mean(dist.mode() == actions), "entropy": jnp.mean(dist.entropy())}


@dataclasses.dataclass(frozen=True)
class ContinuousBCConfig:
    """Hyper-parameters of `ContinuousBC`.

    Attributes:
        learning_rate: Adam learning rate.
        hidden_dims: hidden layer sizes of the policy MLP.
        encoder: image encoder before the networks: None (flat observations), ``"nature"``,
            ``"impala"`` or a flax module (see `realax.agents.with_encoder`).
        activation: hidden activation name.
        tanh_squash: model actions as ``tanh`` of a Gaussian (expert actions must lie in
            ``(-1, 1)``); otherwise an unbounded diagonal Gaussian.
        max_grad_norm: global-norm gradient clipping, or None.
        pmap_axis: default axis name to average gradients over.
    """

    learning_rate: float = 1e-3
    hidden_dims: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    encoder: Any = None
    tanh_squash: bool = False
    max_grad_norm: float | None = None
    pmap_axis: str | None = None

    def __post_init__(self) -> None:
        c.check_network_config("ContinuousBC", self)


class ContinuousBC(_BehaviourCloning):
    """Behaviour cloning of continuous actions with a (tanh-)Gaussian policy.

    The loss is the mean negative log-likelihood of the batch's actions under a Gaussian with
    state-dependent mean and standard deviation; `sample_actions` with ``deterministic=True``
    returns the mean (the regression estimate of the expert action).

    Batch for `update`: a dict with ``observations`` float ``(B, obs_dim)`` and ``actions``
    float ``(B, action_dim)``, or a `Transition` / `Rollout` (its ``obs`` and ``actions``).

    Example:
        >>> obs, act = jnp.zeros((1, 3)), jnp.zeros((1, 2))
        >>> agent = ContinuousBC.create(key=jax.random.key(0), observations=obs, actions=act,
        ...                             hidden_dims=(32,))
        >>> agent, info = agent.update({"observations": obs, "actions": act})
        >>> agent.sample_actions(obs, seed=jax.random.key(1)).shape
        (1, 2)
    """

    config: ContinuousBCConfig = nonpytree_field()

    @classmethod
    def create(
        cls, key: Array | int, observations: Array, actions: Array, **config: Any
    ) -> ContinuousBC:
        """Initialise the policy from a PRNG ``key``, example ``observations`` (float
        ``(obs_dim,)`` or ``(B, obs_dim)``) and example float ``actions`` (``(action_dim,)``
        or ``(B, action_dim)``); ``config`` holds fields of `ContinuousBCConfig`.

        Example:
            >>> agent = ContinuousBC.create(key=jax.random.key(0), observations=jnp.zeros(3),
            ...                             actions=jnp.zeros(1))
            >>> agent.config.tanh_squash
            False
        """
        cfg = c.build_config(ContinuousBCConfig, "ContinuousBC", config)
        key = c.as_key("ContinuousBC", key)
        action_dim = c.continuous_action_dim("ContinuousBC", actions)
        obs = c.observation_example("ContinuousBC", observations)
        actor_def = ContinuousActor(
            hidden_dims=cfg.hidden_dims,
            action_dim=action_dim,
            activation=ACTIVATIONS[cfg.activation],
            tanh_squash=cfg.tanh_squash,
        )
        return cls._from_actor(key, obs, actor_def, cfg)

    def _actions(self, actions: jax.Array) -> jax.Array:
        return jnp.asarray(actions, dtype=jnp.float32)

    def _info(self, dist: Any, actions: jax.Array) -> dict[str, jax.Array]:
        return {
            "mse": jnp.mean(jnp.sum((dist.mode() - actions) ** 2, axis=-1)),
            "log_std": jnp.mean(jnp.log(dist.scale)),
        }
