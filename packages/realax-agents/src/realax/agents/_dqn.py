"""Deep Q-learning with a target network (double DQN by default)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax import Array

from . import _common as c
from . import _hparams as hp
from ._batches import Transition, as_transition
from ._hparams import OPTIMIZER_HPARAMS, check_hparams, with_hparams
from ._networks import ACTIVATIONS, QCritic
from ._protocols import OffPolicyAgent
from ._train_state import TrainState, nonpytree_field, target_update

__all__ = ["DQN", "DQNConfig"]


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Hyper-parameters of `DQN`.

    The defaults solve CartPole-v1 in 50,000 environment steps with the trainer settings of
    ``realax train dqn`` (an update phase of 128 gradient steps on minibatches of 64 after
    every 256 environment steps; the target network follows by Polyak averaging). They use
    the squared TD error: with rewards of 1 per step and values up to ``1 / (1 - discount)``
    the TD errors are far above Huber's threshold of 1, where the Huber loss fits the median
    of the targets, not their mean -- the few low targets of terminal transitions then do
    not pull the values down and Q-values grow without bound. Use ``loss="huber"`` with
    rewards and values of order 1.

    Attributes:
        n_actions: number of discrete actions (required).
        learning_rate: Adam learning rate.
        anneal_lr_steps: if set, the learning rate decays linearly to 0 over this many
            gradient steps (e.g. ``train_steps * gradient_steps`` of an `OffPolicyTrainer`).
        discount: discount factor gamma.
        hidden_dims: hidden layer sizes of the Q-network.
        encoder: image encoder before the networks: None (flat observations), ``"nature"``,
            ``"impala"`` or a flax module (see `realax.agents.with_encoder`).
        activation: hidden activation name.
        layer_norm: LayerNorm in the Q-network.
        double_q: choose next actions with the online network and evaluate them with the
            target network (double DQN); otherwise max over the target network.
        tau: target update rate; ``1.0`` copies the online parameters (hard update). None
            (default): ``0.005`` (Polyak averaging) when ``target_update_period`` is 1, else
            ``1.0`` (a hard copy every ``target_update_period`` steps); see `target_tau`.
        target_update_period: apply the target update every this many gradient steps
            (``1`` with a small ``tau`` gives Polyak averaging).
        loss: ``"mse"`` (squared TD error) or ``"huber"`` (Huber loss of the TD error with
            threshold 1).
        max_grad_norm: global-norm gradient clipping, or None.
        pmap_axis: default axis name to average gradients over.
    """

    n_actions: int | None = None
    learning_rate: float = 2.3e-3
    anneal_lr_steps: int | None = None
    discount: float = 0.99
    hidden_dims: tuple[int, ...] = (64, 64)
    activation: str = "relu"
    encoder: Any = None
    layer_norm: bool = False
    double_q: bool = True
    tau: float | None = None
    target_update_period: int = 1
    loss: str = "mse"
    max_grad_norm: float | None = 10.0
    pmap_axis: str | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__.removesuffix("Config")  # DQN, or a subclass
        c.check_network_config(owner, self)  # also anneal_lr_steps
        c.check_unit_interval(owner, "discount", self.discount)
        if self.tau is not None:
            c.check_unit_interval(owner, "tau", self.tau)
        c.check_int(owner, "target_update_period", self.target_update_period)
        if self.loss not in ("huber", "mse"):
            raise ValueError(f"DQN: loss must be 'huber' or 'mse' (got loss={self.loss!r})")

    @property
    def target_tau(self) -> float:
        """The target update rate used: ``tau``, or its default for ``target_update_period``."""
        if self.tau is not None:
            return float(self.tau)
        return 0.005 if self.target_update_period == 1 else 1.0


class DQN(struct.PyTreeNode):
    """Double DQN with a target network updated softly or periodically.

    `update` takes a `Transition` batch (``obs``, int ``actions`` ``(B,)``, ``rewards``,
    ``next_obs``, ``terminated``; a time-limit truncation is not a termination, so the value
    of ``next_obs`` is bootstrapped there). A dict with the former keys ``observations``,
    ``actions``, ``rewards``, ``next_observations`` and ``masks`` (``1 - terminated``) or
    ``dones`` (terminations) is still accepted and converted. DQN is an `OffPolicyAgent`.

    Attributes:
        q: `TrainState` of the online `QCritic`.
        target_q: `TrainState` of the target network (no optimiser).
        key: PRNG key.
        config: `DQNConfig` (static).

    Example:
        >>> obs = jnp.zeros((8, 4))
        >>> agent = DQN.create(key=jax.random.key(0), observations=obs,
        ...                    actions=jnp.zeros((8,), jnp.int32), n_actions=2)
        >>> batch = Transition(obs=obs, actions=jnp.zeros(8, jnp.int32), rewards=jnp.ones(8),
        ...                    next_obs=obs, terminated=jnp.zeros(8, bool))
        >>> agent, info = agent.update(batch)
        >>> agent.sample_actions(obs, seed=jax.random.key(1), epsilon=0.1).shape
        (8,)
    """

    q: TrainState
    target_q: TrainState
    key: jax.Array
    config: DQNConfig = nonpytree_field()

    #: traced config numbers (``create(..., hparams=)``), float32 scalars; empty by default
    hparams: dict = struct.field(default_factory=dict)

    #: the config numbers ``create(..., hparams=)`` can trace (``tau`` when it is set)
    TRACEABLE: ClassVar[tuple[str, ...]] = ("learning_rate", "max_grad_norm", "discount", "tau")

    @classmethod
    def create(
        cls,
        key: Array | int,
        observations: Array,
        actions: Array,
        *,
        hparams: Mapping[str, float] | None = None,
        **config: Any,
    ) -> DQN:
        """Initialise online and target Q-networks (identical parameters) from a PRNG ``key``,
        example ``observations`` (float ``(obs_dim,)`` or ``(B, obs_dim)``) and example integer
        ``actions`` (only the dtype is used); ``config``: fields of `DQNConfig` (``n_actions``
        is required).

        Example:
            >>> agent = DQN.create(key=jax.random.key(0), observations=jnp.zeros(4),
            ...                    actions=jnp.zeros((), jnp.int32), n_actions=2, tau=0.005,
            ...                    target_update_period=1)
            >>> agent.config.double_q
            True
        """
        cfg = c.build_config(DQNConfig, "DQN", config)
        traced = check_hparams("DQN", hparams, cls.TRACEABLE, cfg)
        inject = any(name in traced for name in OPTIMIZER_HPARAMS)
        fields = q_networks(
            "DQN", cfg, key, observations, actions, c.learning_rate(cfg), inject=inject
        )
        return with_hparams(cls(**fields, config=cfg, hparams=traced), traced)

    @functools.partial(jax.jit, static_argnames=("pmap_axis",))
    def update(
        self, batch: Transition | Mapping[str, jax.Array], *, pmap_axis: str | None = None
    ) -> tuple[DQN, dict[str, jax.Array]]:
        """One TD step on ``batch`` (a `Transition`, see the class docstring), then the (soft
        or periodic) target update. ``pmap_axis``: axis name of an enclosing pmap/shard_map to
        average gradients over (default ``config.pmap_axis``).

        Returns:
            ``(new_agent, info)`` with float32 scalars ``loss``, ``q`` (mean Q of taken
            actions), ``target`` (mean TD target) and ``td_abs`` (mean absolute TD error).
        """
        batch = as_transition("DQN.update", batch)
        masks = batch.masks
        cfg = self.config
        axis = c.axis_of(pmap_axis, cfg)
        actions = jnp.asarray(batch.actions).astype(jnp.int32)
        rewards = jnp.asarray(batch.rewards, dtype=jnp.float32)

        next_q_target = self.target_q(batch.next_obs)
        if cfg.double_q:
            next_actions = jnp.argmax(self.q(batch.next_obs), axis=-1)
        else:
            next_actions = jnp.argmax(next_q_target, axis=-1)
        next_value = jnp.take_along_axis(next_q_target, next_actions[..., None], axis=-1)[..., 0]
        discount = hp.value(self, "discount")
        target = jax.lax.stop_gradient(rewards + discount * masks * next_value)

        def loss_fn(params: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
            q_all = self.q(batch.obs, params=params)
            q_taken = jnp.take_along_axis(q_all, actions[..., None], axis=-1)[..., 0]
            td = q_taken - target
            per_example = optax.huber_loss(td) if cfg.loss == "huber" else td**2
            loss = jnp.mean(per_example)
            info = {
                "loss": loss,
                "q": jnp.mean(q_taken),
                "target": jnp.mean(target),
                "td_abs": jnp.mean(jnp.abs(td)),
            }
            return loss, info

        return self._step(loss_fn, axis)

    def _step(self, loss_fn: Any, axis: Any) -> tuple[Any, dict[str, jax.Array]]:
        """One gradient step of ``loss_fn(params) -> (loss, info)``, then the target update."""
        new_q, info = self.q.apply_loss_fn(loss_fn=loss_fn, pmap_axis=axis, has_aux=True)
        do_update = (new_q.step % self.config.target_update_period) == 0
        tau = jnp.where(do_update, self.hparams.get("tau", self.config.target_tau), 0.0)
        new_target = target_update(new_q, self.target_q, tau)
        return self.replace(q=new_q, target_q=new_target), c.mean_info(info)

    @functools.partial(jax.jit, static_argnames=("deterministic", "argmax"))
    def sample_actions(
        self,
        observations: jax.Array,
        *,
        seed: jax.Array,
        epsilon: float | jax.Array = 0.0,
        deterministic: bool = False,
        argmax: bool = False,
    ) -> jax.Array:
        """Epsilon-greedy int32 actions (``epsilon`` may be a traced schedule value).

        ``deterministic=True`` (or ``argmax=True``, or ``epsilon=0``) gives the greedy action.

        Example:
            >>> agent = DQN.create(key=jax.random.key(0), observations=jnp.zeros(4),
            ...                    actions=jnp.zeros((), jnp.int32), n_actions=3)
            >>> a = agent.sample_actions(jnp.zeros(4), seed=jax.random.key(1), epsilon=1.0)
            >>> int(a) in (0, 1, 2)
            True
        """
        deterministic = deterministic or argmax  # jaxrl_m's spelling
        return epsilon_greedy(self._q_values(observations), seed, epsilon, deterministic)

    @jax.jit
    def q_values(self, observations: jax.Array) -> jax.Array:
        """Online action values ``Q(s, .)``, shape ``(..., n_actions)``."""
        return self._q_values(observations)

    def _q_values(self, observations: jax.Array) -> jax.Array:
        return self.q(observations)


if TYPE_CHECKING:  # DQN is what OffPolicyTrainer needs
    _: type[OffPolicyAgent] = DQN


def epsilon_greedy(
    q_values: jax.Array, seed: jax.Array, epsilon: float | jax.Array, deterministic: bool
) -> jax.Array:
    """Int32 actions: the argmax of ``q_values`` (``(..., n_actions)``), replaced by a uniform
    random action with probability ``epsilon`` unless ``deterministic``."""
    greedy = jnp.argmax(q_values, axis=-1).astype(jnp.int32)
    if deterministic:
        return greedy
    explore_key, action_key = jax.random.split(seed)
    random_actions = jax.random.randint(
        action_key, greedy.shape, 0, q_values.shape[-1], dtype=jnp.int32
    )
    explore = jax.random.uniform(explore_key, greedy.shape) < epsilon
    return jnp.where(explore, random_actions, greedy)


def q_state(
    owner: str,
    cfg: Any,
    key: Array | int,
    observations: Array,
    actions: Array,
    lr: Any,
    outputs_per_action: int = 1,
    *,
    inject: bool = False,
) -> tuple[TrainState, jax.Array]:
    """``(TrainState of a QCritic, next key)`` from a Q-learning config (``hidden_dims``,
    ``n_actions``, ``activation``, ``layer_norm``, ``max_grad_norm``, ``encoder``) with
    ``n_actions * outputs_per_action`` outputs and learning rate (or schedule) ``lr``
    (``inject``: learning rate and clip norm as injected, traced hyperparameters)."""
    rng = c.as_key(owner, key)
    n_actions = c.discrete_n_actions(owner, actions, cfg.n_actions)
    obs = c.observation_example(owner, observations)
    init_key, new_key = jax.random.split(rng)
    model_def = QCritic(
        hidden_dims=cfg.hidden_dims,
        n_actions=n_actions * outputs_per_action,
        activation=ACTIVATIONS[cfg.activation],
        layer_norm=cfg.layer_norm,
    )
    (model_def,) = c.encoded(owner, cfg, obs, model_def)
    q = c.init_state(
        model_def, init_key, obs, tx=c.make_optimizer(lr, cfg.max_grad_norm, inject=inject)
    )
    return q, new_key


def q_networks(
    owner: str,
    cfg: Any,
    key: Array | int,
    observations: Array,
    actions: Array,
    lr: Any,
    outputs_per_action: int = 1,
    *,
    inject: bool = False,
) -> dict[str, Any]:
    """The fields ``q``, ``target_q`` (same parameters) and ``key`` of a Q-learning agent
    (`DQN`, `CQL`, `C51`); see `q_state`."""
    q, new_key = q_state(
        owner, cfg, key, observations, actions, lr, outputs_per_action, inject=inject
    )
    return {"q": q, "target_q": TrainState.create(q.model_def, q.params), "key": new_key}
