"""Proximal policy optimisation (clipped objective) with an actor-critic and GAE."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.numpy as jnp
from flax import struct
from jax import Array

from . import _common as c
from ._batches import Rollout, as_rollout
from ._hparams import OPTIMIZER_HPARAMS, check_hparams, with_hparams
from ._networks import ACTIVATIONS, ActorCritic, head_of
from ._ppo_parts import minibatch_data, ppo_objective, ppo_optimizer, rollout_advantages, run_epochs
from ._protocols import OnPolicyAgent
from ._train_state import TrainState, nonpytree_field

__all__ = ["PPO", "PPOConfig"]


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
        encoder: image encoder before the networks: None (flat observations), ``"nature"``,
            ``"impala"`` or a flax module (see `realax.agents.with_encoder`).
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
    encoder: Any = None
    init_log_std: float = 0.0
    pmap_axis: str | None = None

    def __post_init__(self) -> None:
        owner = "PPO"
        c.check_network_config(owner, self)  # also anneal_lr_steps
        c.check_positive(owner, "adam_eps", self.adam_eps)
        c.check_unit_interval(owner, "discount", self.discount)
        c.check_unit_interval(owner, "gae_lambda", self.gae_lambda)
        c.check_positive(owner, "clip_eps", self.clip_eps)
        c.check_positive(owner, "vf_coef", self.vf_coef, allow_zero=True)
        c.check_positive(owner, "ent_coef", self.ent_coef, allow_zero=True)
        c.check_int(owner, "update_epochs", self.update_epochs)
        c.check_int(owner, "num_minibatches", self.num_minibatches)


class PPO(struct.PyTreeNode):
    """PPO with the clipped surrogate, GAE, entropy bonus and (clipped) value loss.

    `update` takes a whole rollout and runs ``update_epochs`` passes of ``num_minibatches``
    shuffled minibatches inside one compiled call (`lax.scan`, no Python loop).

    `update` takes a time-major `Rollout` (leading axes ``(T, n_envs)`` or ``(T,)``):
    ``obs``, ``actions``, ``log_probs`` and ``values`` as `act` returned them, and either
    precomputed ``advantages`` / ``returns`` or the GAE inputs ``rewards``, ``dones`` and
    ``next_values`` (or ``last_values``), optionally ``terminated`` for truncation
    bootstrapping (see `gae`). A dict with the former keys (``observations``,
    ``terminations``, the other field names) is still accepted and converted. PPO is an
    `OnPolicyAgent`.

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
    #: traced config numbers (``create(..., hparams=)``), float32 scalars; empty by default
    hparams: dict = struct.field(default_factory=dict)

    #: the config numbers ``create(..., hparams=)`` can trace
    TRACEABLE: ClassVar[tuple[str, ...]] = (
        "learning_rate", "max_grad_norm", "discount", "gae_lambda", "clip_eps", "vf_coef",
        "ent_coef",
    )  # fmt: skip

    @classmethod
    def create(
        cls,
        key: Array | int,
        observations: Array,
        actions: Array,
        *,
        hparams: Mapping[str, float] | None = None,
        **config: Any,
    ) -> PPO:
        """Initialise the actor-critic; integer example actions mean discrete actions.

        ``key`` is a PRNG key, ``observations`` example observation(s), float ``(obs_dim,)``
        or ``(B, obs_dim)``; ``actions`` example action(s): integer (discrete, needs
        ``n_actions``) or float ``(action_dim,)`` (continuous, unbounded Gaussian; clip to the
        action bounds in the environment); ``config``: fields of `PPOConfig`.

        Example:
            >>> agent = PPO.create(key=jax.random.key(0), observations=jnp.zeros(3),
            ...                    actions=jnp.zeros(1), num_minibatches=2)
            >>> agent.discrete
            False
        """
        cfg = c.build_config(PPOConfig, "PPO", config)
        traced = check_hparams("PPO", hparams, cls.TRACEABLE, cfg)
        rng = c.as_key("PPO", key)
        obs = c.observation_example("PPO", observations)
        if jnp.issubdtype(jnp.asarray(actions).dtype, jnp.integer):
            n_actions = c.discrete_n_actions("PPO", actions, cfg.n_actions)
            heads: dict[str, Any] = {"n_actions": n_actions}
        else:
            action_dim = c.continuous_action_dim("PPO", actions)
            heads = {"action_dim": action_dim, "init_log_std": cfg.init_log_std}
        model_def = ActorCritic(
            hidden_dims=cfg.hidden_dims, activation=ACTIVATIONS[cfg.activation], **heads
        )
        (model_def,) = c.encoded("PPO", cfg, obs, model_def)
        init_key, new_key = jax.random.split(rng)
        inject = any(name in traced for name in OPTIMIZER_HPARAMS)
        if inject and cfg.anneal_lr_steps is not None and "learning_rate" in traced:
            raise ValueError(
                "PPO.create: learning_rate cannot be traced with anneal_lr_steps (a schedule); "
                "drop one of them"
            )
        tx = ppo_optimizer(cfg, inject=inject)
        model = c.init_state(model_def, init_key, obs, tx=tx)
        agent = cls(model=model, key=new_key, config=cfg, hparams=traced)
        return with_hparams(agent, traced)

    @property
    def discrete(self) -> bool:
        """Whether actions are discrete."""
        return head_of(self.model.model_def).n_actions is not None

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

    @functools.partial(jax.jit, static_argnames=("deterministic", "argmax"))
    def sample_actions(
        self,
        observations: jax.Array,
        *,
        seed: jax.Array,
        deterministic: bool = False,
        argmax: bool = False,
    ) -> jax.Array:
        """Sample actions (``deterministic=True`` or ``argmax=True``: the mode of the policy).

        Example:
            >>> agent = PPO.create(key=jax.random.key(0), observations=jnp.zeros(4),
            ...                    actions=jnp.zeros((), jnp.int32), n_actions=2)
            >>> agent.sample_actions(jnp.zeros((5, 4)), seed=jax.random.key(1)).shape
            (5,)
        """
        deterministic = deterministic or argmax  # jaxrl_m's spelling
        dist = self.model(observations, method="policy")
        return dist.mode() if deterministic else dist.sample(seed=seed)

    @jax.jit
    def value(self, observations: jax.Array) -> jax.Array:
        """State values ``V(s)`` (e.g. ``last_values`` for `update`)."""
        return self.model(observations, method="value")

    @functools.partial(jax.jit, static_argnames=("pmap_axis",))
    def update(
        self, batch: Rollout | Mapping[str, jax.Array], *, pmap_axis: str | None = None
    ) -> tuple[PPO, dict[str, jax.Array]]:
        """``update_epochs`` x ``num_minibatches`` clipped-PPO steps on one rollout.

        Args:
            batch: a `Rollout` (see the class docstring).
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
        rollout = as_rollout(owner, batch)
        axis = c.axis_of(pmap_axis, cfg)
        advantages, returns = rollout_advantages(owner, rollout, self)
        batch_shape = rollout.batch_shape
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
        data = minibatch_data(rollout, advantages, returns)
        for k, v in data.items():
            if v.shape[:nd] != batch_shape:
                raise ValueError(
                    f"{owner}: the rollout's {k} must have leading shape {batch_shape} like "
                    f"log_probs (got {v.shape})"
                )
        data = jax.tree.map(lambda x: x.reshape((n, *x.shape[nd:])), data)
        mb = n // cfg.num_minibatches

        def loss_fn(params: Any, mb_data: dict[str, jax.Array]) -> tuple[jax.Array, dict]:
            dist, value = self.model(mb_data["obs"], params=params)
            return ppo_objective(self, axis, dist, value, mb_data)

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

        key, new_model, info = run_epochs(self, epoch_step, advantages, returns, axis)
        return self.replace(model=new_model, key=key), info


if TYPE_CHECKING:  # PPO is what OnPolicyTrainer needs
    _: type[OnPolicyAgent] = PPO
