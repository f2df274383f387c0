"""Recurrent PPO: PPO's objective on a GRU / LSTM actor-critic, minibatches of whole sequences."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax import Array

from . import _common as c
from ._batches import Rollout, as_rollout
from ._networks import ACTIVATIONS
from ._ppo import PPOConfig
from ._ppo_parts import (
    minibatch_data,
    ppo_objective,
    ppo_optimizer,
    rollout_advantages,
    run_epochs,
)
from ._recurrent import CELLS, Hidden, RecurrentActorCritic, unroll, zero_hidden
from ._train_state import TrainState, nonpytree_field

__all__ = ["RecurrentPPO", "RecurrentPPOConfig"]


@dataclasses.dataclass(frozen=True)
class RecurrentPPOConfig(PPOConfig):
    """Hyper-parameters of `RecurrentPPO`: those of `PPOConfig` plus the recurrent core.

    The defaults of the network follow PureJaxRL's PPO-RNN: a 128-unit ReLU embedding
    (``hidden_dims``), a 128-unit GRU, 128-unit ReLU actor and critic heads.

    Attributes:
        cell: ``"gru"`` (flax ``GRUCell``) or ``"lstm"`` (flax ``OptimizedLSTMCell``).
        hidden_size: features of the recurrent cell.
        head_dims: hidden sizes of the actor and of the critic head after the cell.
        hidden_dims: sizes of the embedding MLP before the cell (``()``: none).
    """

    hidden_dims: tuple[int, ...] = (128,)
    activation: str = "relu"
    cell: str = "gru"
    hidden_size: int = 128
    head_dims: tuple[int, ...] = (128,)

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = "RecurrentPPO"
        if self.cell not in CELLS:
            raise ValueError(
                f"{owner}: cell must be one of {sorted(CELLS)} (got cell={self.cell!r}); "
                "e.g. cell='gru'"
            )
        c.check_int(owner, "hidden_size", self.hidden_size)
        object.__setattr__(self, "head_dims", c.check_hidden_dims(owner, self.head_dims))


class RecurrentPPO(struct.PyTreeNode):
    """PPO with a recurrent actor-critic; the hidden state is an explicit argument.

    Acting is one step of the network: ``act(obs, hidden, seed=)`` returns the actions, their
    log-probabilities, the values and the next hidden state. The caller resets the hidden
    state of an environment whose episode ended (terminated or truncated) with
    `reset_hidden`, before its next step (``realax.train.rl.OnPolicyTrainer`` does).

    ``update(rollout, hidden=h0)`` takes a time-major `Rollout` with leading axes ``(T,
    n_envs)`` (with ``dones``, the step's episode ends) and the hidden state at the start of
    the rollout ``(n_envs, hidden_size)``. It re-runs each environment's sequence with
    `lax.scan`, resetting the hidden state where the rollout did, and applies PPO's loss
    (`ppo_objective`) to ``update_epochs`` passes of ``num_minibatches`` minibatches of whole
    environments (``n_envs`` must divide by ``num_minibatches``); advantages are PPO's
    (GAE with truncation bootstrapping, or precomputed). Info keys are PPO's.

    Attributes:
        model: `TrainState` of the `RecurrentActorCritic`.
        key: PRNG key of the minibatch shuffling (advanced by every `update`).
        config: `RecurrentPPOConfig` (static).

    Example:
        >>> agent = RecurrentPPO.create(key=0, observations=jnp.zeros(2),
        ...                             actions=jnp.zeros((), jnp.int32), n_actions=2,
        ...                             hidden_size=8)
        >>> h = agent.initial_hidden(3)
        >>> a, logp, v, h = agent.act(jnp.zeros((3, 2)), h, seed=jax.random.key(1))
        >>> a.shape, v.shape, h.shape
        ((3,), (3,), (3, 8))
    """

    model: TrainState
    key: jax.Array
    config: RecurrentPPOConfig = nonpytree_field()

    #: marks an agent whose acting methods take and return a hidden state
    recurrent = True

    @classmethod
    def create(
        cls, key: Array | int, observations: Array, actions: Array, **config: Any
    ) -> RecurrentPPO:
        """Initialise the recurrent actor-critic; integer example actions mean discrete.

        Arguments as `PPO.create`; ``config``: fields of `RecurrentPPOConfig` (``cell``,
        ``hidden_size``, ``head_dims`` and PPO's).

        Example:
            >>> agent = RecurrentPPO.create(key=0, observations=jnp.zeros(3),
            ...                             actions=jnp.zeros(1), cell="lstm", hidden_size=4)
            >>> agent.discrete, [x.shape for x in agent.initial_hidden()]
            (False, [(4,), (4,)])
        """
        owner = "RecurrentPPO"
        cfg = c.build_config(RecurrentPPOConfig, owner, config)
        rng = c.as_key(owner, key)
        obs = c.observation_example(owner, observations)
        if jnp.issubdtype(jnp.asarray(actions).dtype, jnp.integer):
            heads: dict[str, Any] = {
                "n_actions": c.discrete_n_actions(owner, actions, cfg.n_actions)
            }
        else:
            action_dim = c.continuous_action_dim(owner, actions)
            heads = {"action_dim": action_dim, "init_log_std": cfg.init_log_std}
        model_def = RecurrentActorCritic(
            hidden_size=cfg.hidden_size,
            embed_dims=cfg.hidden_dims,
            head_dims=cfg.head_dims,
            cell=cfg.cell,
            activation=ACTIVATIONS[cfg.activation],
            **heads,
        )
        init_key, new_key = jax.random.split(rng)
        tx = ppo_optimizer(cfg)
        hidden = zero_hidden(cfg.cell, cfg.hidden_size)
        model = c.init_state(model_def, init_key, hidden, obs, tx=tx)
        return cls(model=model, key=new_key, config=cfg)

    @property
    def discrete(self) -> bool:
        """Whether actions are discrete."""
        return self.model.model_def.n_actions is not None

    def initial_hidden(self, batch_shape: int | tuple[int, ...] = ()) -> Hidden:
        """Zeros hidden state for ``batch_shape`` environments (an int: ``(n,)``)."""
        shape = (batch_shape,) if isinstance(batch_shape, int) else tuple(batch_shape)
        return zero_hidden(self.config.cell, self.config.hidden_size, shape)

    @functools.partial(jax.jit, static_argnames=("deterministic",))
    def act(
        self, observations: jax.Array, hidden: Hidden, *, seed: jax.Array, deterministic=False
    ) -> tuple[jax.Array, jax.Array, jax.Array, Hidden]:
        """``(actions, log_probs, values, next_hidden)`` of one step."""
        hidden, dist, value = self.model(hidden, observations)
        actions = dist.mode() if deterministic else dist.sample(seed=seed)
        return actions, dist.log_prob(actions), value, hidden

    @functools.partial(jax.jit, static_argnames=("deterministic", "argmax"))
    def sample_actions(
        self,
        observations: jax.Array,
        hidden: Hidden,
        *,
        seed: jax.Array,
        deterministic: bool = False,
        argmax: bool = False,
    ) -> tuple[jax.Array, Hidden]:
        """``(actions, next_hidden)``; ``deterministic=True`` / ``argmax=True``: the mode.

        Example:
            >>> agent = RecurrentPPO.create(key=0, observations=jnp.zeros(2),
            ...                             actions=jnp.zeros((), jnp.int32), n_actions=3)
            >>> a, h = agent.sample_actions(jnp.zeros(2), agent.initial_hidden(),
            ...                             seed=jax.random.key(0), deterministic=True)
            >>> a.shape, h.shape
            ((), (128,))
        """
        hidden, dist, _ = self.model(hidden, observations)
        actions = dist.mode() if (deterministic or argmax) else dist.sample(seed=seed)
        return actions, hidden

    @jax.jit
    def value(self, observations: jax.Array, hidden: Hidden) -> jax.Array:
        """``V`` of ``observations`` seen with the hidden state ``hidden`` (before the step)."""
        return self.model(hidden, observations)[2]

    @functools.partial(jax.jit, static_argnames=("pmap_axis",))
    def update(
        self,
        batch: Rollout | Mapping[str, jax.Array],
        *,
        hidden: Hidden,
        pmap_axis: str | None = None,
    ) -> tuple[RecurrentPPO, dict[str, jax.Array]]:
        """``update_epochs`` x ``num_minibatches`` PPO steps on minibatches of environments.

        Args:
            batch: a `Rollout` with leading axes ``(T, n_envs)`` and ``dones``.
            hidden: the hidden state before the rollout's first step, ``(n_envs, ...)``.
            pmap_axis: as `PPO.update` (each device shuffles its own environments; with
                ``num_minibatches=1`` a split rollout equals one device on the whole).

        Returns:
            ``(new_agent, info)`` with PPO's info keys.
        """
        owner = "RecurrentPPO.update"
        cfg = self.config
        rollout = as_rollout(owner, batch)
        axis = c.axis_of(pmap_axis, cfg)
        shape = rollout.batch_shape
        if len(shape) != 2 or rollout.dones is None:
            raise ValueError(
                f"{owner}: needs a rollout with leading axes (T, n_envs) and dones (got "
                f"leading shape {shape}, dones={rollout.dones is not None}); the hidden state "
                "is reset where dones is true"
            )
        n_steps, n_envs = shape
        advantages, returns = rollout_advantages(owner, rollout, self)
        nm = cfg.num_minibatches
        if n_envs % nm:
            raise ValueError(
                f"{owner}: minibatches are whole environments: n_envs={n_envs} must be "
                f"divisible by num_minibatches={nm}; choose num_minibatches dividing n_envs"
            )
        for h in jax.tree.leaves(hidden):
            if h.shape != (n_envs, cfg.hidden_size):
                raise ValueError(
                    f"{owner}: hidden must have shape (n_envs, hidden_size) = "
                    f"{(n_envs, cfg.hidden_size)} (got {h.shape}); pass the hidden state "
                    "before the rollout's first step"
                )
        data = minibatch_data(rollout, advantages, returns)
        data["dones"] = jnp.asarray(rollout.dones, bool)
        mb = n_envs // nm

        def loss_fn(params: Any, mb_data: dict, h0: Hidden) -> tuple[jax.Array, dict]:
            apply = functools.partial(self.model, params=params)
            _, dist, value = unroll(apply, h0, mb_data["obs"], mb_data["dones"])
            return ppo_objective(self, axis, dist, value, mb_data)

        def minibatch_step(model: TrainState, xs: tuple) -> tuple[TrainState, dict]:
            mb_data, h0 = xs
            return model.apply_loss_fn(
                loss_fn=lambda p: loss_fn(p, mb_data, h0), pmap_axis=axis, has_aux=True
            )

        def split_time_major(x: jax.Array, perm: jax.Array) -> jax.Array:
            x = x[:, perm].reshape((n_steps, nm, mb, *x.shape[2:]))
            return jnp.swapaxes(x, 0, 1)  # (nm, T, mb, ...)

        def epoch_step(model: TrainState, epoch_key: jax.Array) -> tuple[TrainState, dict]:
            perm = jax.random.permutation(epoch_key, n_envs)
            shuffled = jax.tree.map(lambda x: split_time_major(x, perm), data)
            h0 = jax.tree.map(lambda x: x[perm].reshape((nm, mb, *x.shape[1:])), hidden)
            return jax.lax.scan(minibatch_step, model, (shuffled, h0))

        key, new_model, info = run_epochs(self, epoch_step, advantages, returns, axis)
        return self.replace(model=new_model, key=key), info
