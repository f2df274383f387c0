"""Recurrent cells and the recurrent actor-critic of `RecurrentPPO`.

A step of `RecurrentActorCritic` maps ``(hidden, observations)`` to ``(new_hidden,
distribution, value)``; `unroll` runs it along a time-major sequence with the hidden state
reset to zeros after every step that ended an episode (``dones``), as the RL trainer does
while it collects the rollout, so an update re-computes exactly what acting computed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ._distributions import Categorical, DiagGaussian
from ._networks import MLP, ActorCritic

__all__ = ["CELLS", "RecurrentActorCritic", "reset_hidden", "unroll", "zero_hidden"]

#: Recurrent cell names accepted by `RecurrentPPO` (``cell=``).
CELLS: dict[str, type[nn.Module]] = {"gru": nn.GRUCell, "lstm": nn.OptimizedLSTMCell}

Hidden = Any  # an array (GRU) or a ``(c, h)`` tuple of arrays (LSTM)


def zero_hidden(cell: str, hidden_size: int, batch_shape: tuple[int, ...] = ()) -> Hidden:
    """The initial hidden state of ``cell``: zeros of shape ``(*batch_shape, hidden_size)``.

    Example:
        >>> zero_hidden("gru", 8, (3,)).shape
        (3, 8)
        >>> [h.shape for h in zero_hidden("lstm", 8, (3,))]
        [(3, 8), (3, 8)]
    """
    zeros = jnp.zeros((*batch_shape, hidden_size), jnp.float32)
    return (zeros, zeros) if cell == "lstm" else zeros


def reset_hidden(hidden: Hidden, dones: jax.Array) -> Hidden:
    """``hidden`` with the rows whose ``dones`` is true set to zeros (the start of an episode).

    Example:
        >>> h = reset_hidden(jnp.ones((2, 3)), jnp.array([True, False]))
        >>> h.sum(axis=-1).tolist()
        [0.0, 3.0]
    """

    def reset(h: jax.Array) -> jax.Array:
        return jnp.where(jnp.asarray(dones)[..., None], jnp.zeros_like(h), h)

    return jax.tree.map(reset, hidden)


class RecurrentActorCritic(nn.Module):
    """``(hidden, observations) -> (new_hidden, distribution, value)``, one step.

    Observations pass an embedding MLP (``embed_dims``, activated), a recurrent cell
    (``cell``: ``"gru"`` or ``"lstm"``, ``hidden_size`` features), then separate actor and
    critic heads (``head_dims``: an `ActorCritic` on the cell's output). Discrete when
    ``n_actions`` is set, else a diagonal Gaussian over ``action_dim`` with a learned
    state-independent log-std. Any leading batch shape works (also none).

    Example:
        >>> net = RecurrentActorCritic(hidden_size=8, embed_dims=(8,), head_dims=(8,),
        ...                            n_actions=2)
        >>> h = zero_hidden("gru", 8, (3,))
        >>> params = net.init(jax.random.key(0), h, jnp.ones((3, 4)))
        >>> h, dist, value = net.apply(params, h, jnp.ones((3, 4)))
        >>> h.shape, value.shape
        ((3, 8), (3,))
    """

    hidden_size: int
    embed_dims: Sequence[int] = (128,)
    head_dims: Sequence[int] = (128,)
    cell: str = "gru"
    n_actions: int | None = None
    action_dim: int | None = None
    activation: Callable[[jax.Array], jax.Array] = nn.relu
    init_log_std: float = 0.0

    def setup(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"RecurrentActorCritic: cell must be one of {sorted(CELLS)}")
        self.embed = MLP(self.embed_dims, activation=self.activation, activate_final=True)
        self.rnn = CELLS[self.cell](features=self.hidden_size)
        self.heads = ActorCritic(
            hidden_dims=self.head_dims,
            n_actions=self.n_actions,
            action_dim=self.action_dim,
            activation=self.activation,
            init_log_std=self.init_log_std,
        )

    def __call__(
        self, hidden: Hidden, observations: jax.Array
    ) -> tuple[Hidden, Categorical | DiagGaussian, jax.Array]:
        x = self.embed(observations) if len(self.embed_dims) else observations
        hidden, y = self.rnn(hidden, x)
        dist, value = self.heads(y)
        return hidden, dist, value


def unroll(
    apply: Callable[[Hidden, jax.Array], tuple[Hidden, Any, jax.Array]],
    hidden: Hidden,
    observations: jax.Array,
    dones: jax.Array,
) -> tuple[Hidden, Any, jax.Array]:
    """Run one step function along time-major ``observations`` ``(T, B, ...)``.

    ``hidden`` ``(B, H)`` is the state before step 0; after step ``t`` the rows with
    ``dones[t]`` restart from zeros. Returns the final hidden state and the stacked
    distributions and values (leading axes ``(T, B)``).

    Example:
        >>> net = RecurrentActorCritic(hidden_size=4, embed_dims=(), head_dims=(4,),
        ...                            n_actions=2)
        >>> h0 = zero_hidden("gru", 4, (3,))
        >>> params = net.init(jax.random.key(0), h0, jnp.ones((3, 2)))
        >>> apply = lambda h, o: net.apply(params, h, o)
        >>> h, dist, v = unroll(apply, h0, jnp.ones((5, 3, 2)), jnp.zeros((5, 3), bool))
        >>> dist.logits.shape, v.shape
        ((5, 3, 2), (5, 3))
    """

    def step(h: Hidden, inputs: tuple[jax.Array, jax.Array]) -> tuple[Hidden, tuple]:
        obs, done = inputs
        h, dist, value = apply(h, obs)
        return reset_hidden(h, done), (dist, value)

    hidden, (dist, values) = jax.lax.scan(step, hidden, (observations, dones))
    return hidden, dist, values
