"""PQN: parallel Q-learning from vectorised environments, without a replay buffer or a
target network (Gallici et al., 2024, "Simplifying Deep Temporal Difference Learning")."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax import Array

from . import _common as c
from . import _hparams as hp
from ._batches import Rollout, as_rollout
from ._dqn import epsilon_greedy, q_state
from ._hparams import OPTIMIZER_HPARAMS, check_hparams, with_hparams
from ._protocols import OnPolicyAgent
from ._train_state import TrainState, nonpytree_field

__all__ = ["PQN", "PQNConfig", "q_lambda_returns"]


@dataclasses.dataclass(frozen=True)
class PQNConfig:
    """Hyper-parameters of `PQN`.

    The defaults solve CartPole-v1 (greedy return 500, seed 0, tests/test_pqn.py) in 200,000
    environment steps with ``realax.train.rl.PQNTrainer``'s defaults (32 environments x 32
    steps per update, epsilon from 1.0 to 0.05 over the first 20% of the run) and
    ``anneal_lr=True``.

    Attributes:
        n_actions: number of discrete actions (required).
        learning_rate: Adam learning rate.
        anneal_lr_steps: if set, the learning rate decays linearly to 0 over this many
            gradient steps.
        discount: discount factor gamma.
        q_lambda: lambda of the Q(lambda) returns (0: one-step targets, 1: Monte-Carlo).
        update_epochs: passes over each rollout per `update`.
        num_minibatches: minibatches per pass; the rollout size must divide by it.
        hidden_dims: hidden layer sizes of the Q-network.
        encoder: image encoder before the networks: None (flat observations), ``"nature"``,
            ``"impala"`` or a flax module (see `realax.agents.with_encoder`).
        activation: hidden activation name.
        layer_norm: LayerNorm before every hidden activation (what keeps PQN stable without
            a target network).
        loss: ``"mse"`` or ``"huber"`` (threshold 1) of the error to the lambda-returns.
        max_grad_norm: global-norm gradient clipping, or None.
        pmap_axis: default axis name to average gradients over.
    """

    n_actions: int | None = None
    learning_rate: float = 1e-3
    anneal_lr_steps: int | None = None
    discount: float = 0.99
    q_lambda: float = 0.9
    update_epochs: int = 2
    num_minibatches: int = 4
    hidden_dims: tuple[int, ...] = (128, 128)
    activation: str = "relu"
    encoder: Any = None
    layer_norm: bool = True
    loss: str = "mse"
    max_grad_norm: float | None = 10.0
    pmap_axis: str | None = None

    def __post_init__(self) -> None:
        owner = "PQN"
        c.check_network_config(owner, self)
        c.check_unit_interval(owner, "discount", self.discount)
        c.check_unit_interval(owner, "q_lambda", self.q_lambda)
        c.check_int(owner, "update_epochs", self.update_epochs)
        c.check_int(owner, "num_minibatches", self.num_minibatches)
        if self.loss not in ("huber", "mse"):
            raise ValueError(f"PQN: loss must be 'huber' or 'mse' (got loss={self.loss!r})")


def q_lambda_returns(
    rewards: jax.Array,
    next_values: jax.Array,
    dones: jax.Array,
    terminated: jax.Array,
    discount: float | jax.Array,
    q_lambda: float | jax.Array,
) -> jax.Array:
    """Time-major Q(lambda) returns ``G_t = r_t + discount * (1 - terminated_t) * B_t`` with
    ``B_t = (1 - lambda) * next_values_t + lambda * G_{t+1}`` inside an episode and
    ``B_t = next_values_t`` where it ended (``dones``) or at the rollout's last step.

    ``next_values_t`` is ``max_a Q(s_{t+1}, a)`` of the state reached after step ``t`` (the
    final observation of an episode that ended there, so a time limit bootstraps).

    Example:
        >>> g = q_lambda_returns(jnp.ones(3), jnp.full(3, 10.0), jnp.zeros(3, bool),
        ...                      jnp.zeros(3, bool), discount=0.5, q_lambda=0.0)
        >>> g.tolist()
        [6.0, 6.0, 6.0]
    """

    # float32 before ``1 - lambda``: a Python float would give another float32 weight than
    # the same lambda traced (sweeps, PBT), and the two runs would differ in the last bit
    q_lambda = jnp.asarray(q_lambda, jnp.float32)

    def step(g_next: jax.Array, x: tuple) -> tuple[jax.Array, jax.Array]:
        r, q_next, done, term = x
        boot = jnp.where(done, q_next, (1.0 - q_lambda) * q_next + q_lambda * g_next)
        g = r + discount * (1.0 - term.astype(jnp.float32)) * boot
        return g, g

    xs = (rewards.astype(jnp.float32), next_values.astype(jnp.float32), dones, terminated)
    _, returns = jax.lax.scan(step, next_values[-1].astype(jnp.float32), xs, reverse=True)
    return returns


class PQN(struct.PyTreeNode):
    """Parallel Q-learning: epsilon-greedy acting in many environments, Q(lambda) returns of
    each fresh rollout, a few epochs of minibatch regression on them, and no replay buffer
    or target network (the LayerNorm Q-network keeps the targets stable).

    PQN meets the `OnPolicyAgent` protocol (``realax.train.rl.PQNTrainer`` drives it):
    `act` returns ``(actions, zeros, max_a Q)``, `value` is ``max_a Q`` and `update` takes a
    `Rollout` with ``rewards``, ``dones``, ``terminated`` and ``next_values`` (or
    ``last_values``), or precomputed ``returns``.

    Attributes:
        q: `TrainState` of the `QCritic` (or the `Encoded` one).
        key: PRNG key used for minibatch shuffling.
        config: `PQNConfig` (static).

    Example:
        >>> agent = PQN.create(key=0, observations=jnp.zeros(4),
        ...                    actions=jnp.zeros((), jnp.int32), n_actions=2)
        >>> obs = jnp.zeros((8, 2, 4))
        >>> actions, _, values = agent.act(obs, seed=jax.random.key(1), epsilon=0.5)
        >>> rollout = Rollout(obs=obs, actions=actions, log_probs=jnp.zeros((8, 2)),
        ...                   values=values, rewards=jnp.ones((8, 2)),
        ...                   dones=jnp.zeros((8, 2), bool), next_values=values)
        >>> agent, info = agent.update(rollout)
        >>> int(agent.q.step)
        8
    """

    q: TrainState
    key: jax.Array
    config: PQNConfig = nonpytree_field()

    #: traced config numbers (``create(..., hparams=)``), float32 scalars; empty by default
    hparams: dict = struct.field(default_factory=dict)

    #: the config numbers ``create(..., hparams=)`` can trace
    TRACEABLE: ClassVar[tuple[str, ...]] = (
        "learning_rate",
        "max_grad_norm",
        "discount",
        "q_lambda",
    )

    @classmethod
    def create(
        cls,
        key: Array | int,
        observations: Array,
        actions: Array,
        *,
        hparams: Mapping[str, float] | None = None,
        **config: Any,
    ) -> PQN:
        """Initialise the Q-network from a PRNG ``key`` (or an int seed), example
        ``observations`` (``(obs_dim,)``, or ``(H, W, C)`` with an ``encoder``) and example
        integer ``actions``; ``config``: fields of `PQNConfig` (``n_actions`` is required).
        ``hparams``: `TRACEABLE` config numbers carried as traced float32 scalars (sweeps,
        PBT); ``learning_rate`` cannot be traced together with ``anneal_lr_steps``.

        Example:
            >>> agent = PQN.create(key=0, observations=jnp.zeros((10, 10, 4)),
            ...                    actions=jnp.zeros((), jnp.int32), n_actions=3,
            ...                    encoder="nature")
            >>> agent.q_values(jnp.zeros((5, 10, 10, 4))).shape
            (5, 3)
        """
        cfg = c.build_config(PQNConfig, "PQN", config)
        traced = check_hparams("PQN", hparams, cls.TRACEABLE, cfg)
        inject = any(name in traced for name in OPTIMIZER_HPARAMS)
        if "learning_rate" in traced and getattr(cfg, "anneal_lr_steps", None) is not None:
            raise ValueError(
                "PQN.create: learning_rate cannot be traced with anneal_lr_steps (a schedule); "
                "drop one of them"
            )
        lr = c.learning_rate(cfg)
        q, new_key = q_state("PQN", cfg, key, observations, actions, lr, inject=inject)
        return with_hparams(cls(q=q, key=new_key, config=cfg, hparams=traced), traced)

    @functools.partial(jax.jit, static_argnames=("deterministic",))
    def act(
        self,
        observations: jax.Array,
        *,
        seed: jax.Array,
        epsilon: float | jax.Array = 0.0,
        deterministic: bool = False,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Epsilon-greedy actions, zero log-probabilities and ``max_a Q`` (a rollout's
        ``values``)."""
        q_values = self.q(observations)
        actions = epsilon_greedy(q_values, seed, epsilon, deterministic)
        return actions, jnp.zeros(actions.shape, jnp.float32), jnp.max(q_values, axis=-1)

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
        """Epsilon-greedy int32 actions; ``deterministic`` / ``argmax``: greedy."""
        return epsilon_greedy(self.q(observations), seed, epsilon, deterministic or argmax)

    @jax.jit
    def value(self, observations: jax.Array) -> jax.Array:
        """``max_a Q(s, a)`` (a rollout's ``next_values``)."""
        return jnp.max(self.q(observations), axis=-1)

    @jax.jit
    def q_values(self, observations: jax.Array) -> jax.Array:
        """Action values ``Q(s, .)``, shape ``(..., n_actions)``."""
        return self.q(observations)

    def _returns(self, rollout: Rollout) -> jax.Array:
        if rollout.returns is not None:
            return jnp.asarray(rollout.returns, jnp.float32)
        if rollout.rewards is None or rollout.dones is None:
            raise ValueError(
                "PQN.update: the rollout needs returns, or rewards, dones and next_values (or "
                f"last_values) (got rewards={rollout.rewards is not None}, dones="
                f"{rollout.dones is not None})"
            )
        next_values = rollout.next_values
        if next_values is None:
            if rollout.last_values is None:
                raise ValueError("PQN.update: the rollout needs next_values or last_values")
            next_values = jnp.concatenate([rollout.values[1:], rollout.last_values[None]])
        terminated = rollout.dones if rollout.terminated is None else rollout.terminated
        discount, q_lambda = hp.value(self, "discount"), hp.value(self, "q_lambda")
        return q_lambda_returns(
            rollout.rewards, next_values, rollout.dones, terminated, discount, q_lambda
        )

    @functools.partial(jax.jit, static_argnames=("pmap_axis",))
    def update(
        self, batch: Rollout | Mapping[str, jax.Array], *, pmap_axis: str | None = None
    ) -> tuple[PQN, dict[str, jax.Array]]:
        """``update_epochs`` x ``num_minibatches`` regression steps of ``Q(s_t, a_t)`` on the
        rollout's Q(lambda) returns (computed once, before the first step).

        ``pmap_axis``: axis name of an enclosing pmap/shard_map to average gradients over
        (default ``config.pmap_axis``); each device shuffles its own shard with the same key.

        Returns:
            ``(new_agent, info)`` with float32 means ``loss``, ``q`` (Q of the taken
            actions), ``td_abs`` and ``returns_mean``.
        """
        owner = "PQN.update"
        cfg = self.config
        rollout = as_rollout(owner, batch)
        axis = c.axis_of(pmap_axis, cfg)
        returns = self._returns(rollout)
        batch_shape = returns.shape
        n, nd = math.prod(batch_shape), len(batch_shape)
        if n % cfg.num_minibatches:
            raise ValueError(
                f"{owner}: rollout size must be divisible by num_minibatches (got {n} = "
                f"prod{batch_shape}, num_minibatches={cfg.num_minibatches})"
            )
        data = {"obs": rollout.obs, "actions": rollout.actions, "returns": returns}
        data = jax.tree.map(lambda x: jnp.asarray(x).reshape((n, *x.shape[nd:])), data)
        mb = n // cfg.num_minibatches

        def loss_fn(params: Any, d: dict) -> tuple[jax.Array, dict]:
            q_all = self.q(d["obs"], params=params)
            actions = d["actions"].astype(jnp.int32)
            q_taken = jnp.take_along_axis(q_all, actions[..., None], axis=-1)[..., 0]
            td = q_taken - d["returns"]
            loss = jnp.mean(optax.huber_loss(td) if cfg.loss == "huber" else 0.5 * td**2)
            return loss, {"loss": loss, "q": jnp.mean(q_taken), "td_abs": jnp.mean(jnp.abs(td))}

        def minibatch_step(q: TrainState, d: dict) -> tuple[TrainState, dict]:
            return q.apply_loss_fn(loss_fn=lambda p: loss_fn(p, d), pmap_axis=axis, has_aux=True)

        def epoch_step(q: TrainState, epoch_key: jax.Array) -> tuple[TrainState, dict]:
            perm = jax.random.permutation(epoch_key, n)
            shuffled = jax.tree.map(
                lambda x: x[perm].reshape((cfg.num_minibatches, mb, *x.shape[1:])), data
            )
            return jax.lax.scan(minibatch_step, q, shuffled)

        key, perm_key = jax.random.split(self.key)
        new_q, infos = jax.lax.scan(
            epoch_step, self.q, jax.random.split(perm_key, cfg.update_epochs)
        )
        info = c.mean_info(infos)
        info["returns_mean"] = jnp.mean(returns)
        if axis is not None:
            info = jax.lax.pmean(info, axis)
        return self.replace(q=new_q, key=key), info


if TYPE_CHECKING:  # PQN is what PQNTrainer (an OnPolicyTrainer) needs
    _: type[OnPolicyAgent] = PQN
