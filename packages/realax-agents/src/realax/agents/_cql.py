"""Discrete conservative Q-learning: DQN's TD loss plus ``cql_alpha * (logsumexp Q - Q(a))``."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.numpy as jnp
import optax

from . import _common as c
from ._batches import Transition, as_transition
from ._dqn import DQN, q_networks
from ._protocols import OffPolicyAgent
from ._train_state import nonpytree_field, target_update

__all__ = ["CQL", "CQLConfig"]


@dataclasses.dataclass(frozen=True)
class CQLConfig:
    """Hyper-parameters of `CQL` (jaxrl_m-like defaults for offline data).

    Attributes:
        n_actions: number of discrete actions (required).
        learning_rate: Adam learning rate.
        discount: gamma.
        hidden_dims: hidden sizes of the Q-network.
        encoder: image encoder before the networks: None (flat observations), ``"nature"``,
            ``"impala"`` or a flax module (see `realax.agents.with_encoder`).
        activation: hidden activation name.
        layer_norm: LayerNorm in the Q-network.
        cql_alpha: weight of the conservative regulariser (0: plain DQN loss).
        double_q: pick next actions with the online network (double DQN); False (default):
            max over the target network.
        tau: Polyak rate of the target network (every update).
        loss: ``"mse"`` or ``"huber"`` TD loss.
        max_grad_norm: global-norm gradient clipping, or None.
        pmap_axis: default axis name to average gradients over.
    """

    n_actions: int | None = None
    learning_rate: float = 3e-4
    discount: float = 0.99
    hidden_dims: tuple[int, ...] = (256, 256)
    activation: str = "relu"
    encoder: Any = None
    layer_norm: bool = False
    cql_alpha: float = 1.0
    double_q: bool = False
    tau: float = 0.005
    loss: str = "mse"
    max_grad_norm: float | None = None
    pmap_axis: str | None = None

    def __post_init__(self) -> None:
        owner = "CQL"
        c.check_network_config(owner, self)
        c.check_unit_interval(owner, "discount", self.discount)
        c.check_unit_interval(owner, "tau", self.tau)
        c.check_positive(owner, "cql_alpha", self.cql_alpha, allow_zero=True)
        if self.loss not in ("huber", "mse"):
            raise ValueError(f"CQL: loss must be 'huber' or 'mse' (got loss={self.loss!r})")


class CQL(DQN):
    """Conservative Q-learning for discrete actions (Kumar et al., 2020, CQL(H)).

    The `DQN` TD loss on the batch plus ``cql_alpha * mean(logsumexp_a Q(s, a) - Q(s, a_data))``,
    which pushes down the values of actions the data does not take and up those it does;
    targets from a Polyak-averaged target network. A `DQN` subclass: ``sample_actions``
    (epsilon-greedy, ``deterministic=True`` greedy) and ``q_values`` are DQN's.

    `update` takes a `Transition` (int ``actions`` ``(B,)``) or a mapping with the jaxrl_m keys
    ``observations``, ``actions``, ``rewards``, ``next_observations``, ``masks`` (or
    ``dones``), e.g. a minibatch of a `Dataset`.

    Info keys (float32 scalars): ``loss`` (total), ``td_loss``, ``cql_loss`` (the
    regulariser before weighting), ``q`` (mean Q of the batch actions), ``target`` (mean TD
    target) and ``td_abs`` (mean absolute TD error).

    Example:
        >>> obs = jnp.zeros((8, 4))
        >>> agent = CQL.create(key=0, observations=obs[0], actions=jnp.zeros((), jnp.int32),
        ...                    n_actions=3, hidden_dims=(16,))
        >>> batch = {"observations": obs, "actions": jnp.zeros(8, jnp.int32),
        ...          "rewards": jnp.ones(8), "masks": jnp.ones(8), "next_observations": obs}
        >>> agent, info = agent.update(batch)
        >>> sorted(info)
        ['cql_loss', 'loss', 'q', 'target', 'td_abs', 'td_loss']
    """

    config: CQLConfig = nonpytree_field()  # type: ignore[assignment]
    #: CQL traces no hyperparameters (``create`` takes no ``hparams``)
    TRACEABLE: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def create(cls, key: Any, observations: jax.Array, actions: jax.Array, **config: Any) -> CQL:
        """Online and target Q-networks (identical parameters) from a PRNG ``key`` (or an int
        seed), example ``observations`` (float ``(obs_dim,)`` or ``(B, obs_dim)``) and example
        integer ``actions`` (only the dtype is used); ``config``: fields of `CQLConfig`
        (``n_actions`` is required).

        Example:
            >>> CQL.create(key=0, observations=jnp.zeros(4), actions=jnp.zeros((), jnp.int32),
            ...            n_actions=2).config.cql_alpha
            1.0
        """
        cfg = c.build_config(CQLConfig, "CQL", config)
        fields = q_networks("CQL", cfg, key, observations, actions, cfg.learning_rate)
        return cls(**fields, config=cfg)

    @functools.partial(jax.jit, static_argnames=("pmap_axis",))
    def update(
        self, batch: Transition | Mapping[str, jax.Array], *, pmap_axis: str | None = None
    ) -> tuple[CQL, dict[str, jax.Array]]:
        """One gradient step on the TD loss plus the CQL regulariser, then the Polyak target
        update. ``pmap_axis``: axis name of an enclosing pmap/shard_map to average gradients
        over (default ``config.pmap_axis``).

        Returns:
            ``(new_agent, info)`` with the info keys of the class docstring.
        """
        batch = as_transition("CQL.update", batch)
        cfg = self.config
        axis = c.axis_of(pmap_axis, cfg)
        actions = jnp.asarray(batch.actions).astype(jnp.int32)
        rewards = jnp.asarray(batch.rewards, jnp.float32)
        next_q_target = self.target_q(batch.next_obs)
        if cfg.double_q:
            next_actions = jnp.argmax(self.q(batch.next_obs), axis=-1)
            next_value = jnp.take_along_axis(next_q_target, next_actions[..., None], -1)[..., 0]
        else:
            next_value = jnp.max(next_q_target, axis=-1)
        target = jax.lax.stop_gradient(rewards + cfg.discount * batch.masks * next_value)

        def loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            q_all = self.q(batch.obs, params=params)
            q_taken = jnp.take_along_axis(q_all, actions[..., None], axis=-1)[..., 0]
            td = q_taken - target
            td_loss = jnp.mean(optax.huber_loss(td) if cfg.loss == "huber" else td**2)
            cql_loss = jnp.mean(jax.nn.logsumexp(q_all, axis=-1) - q_taken)
            loss = td_loss + cfg.cql_alpha * cql_loss
            info = {"loss": loss, "td_loss": td_loss, "cql_loss": cql_loss, "q": jnp.mean(q_taken)}
            return loss, {**info, "target": jnp.mean(target), "td_abs": jnp.mean(jnp.abs(td))}

        new_q, info = self.q.apply_loss_fn(loss_fn=loss_fn, pmap_axis=axis, has_aux=True)
        new_target = target_update(new_q, self.target_q, cfg.tau)
        return self.replace(q=new_q, target_q=new_target), c.mean_info(info)


if TYPE_CHECKING:  # CQL also trains online with OffPolicyTrainer
    _: type[OffPolicyAgent] = CQL
