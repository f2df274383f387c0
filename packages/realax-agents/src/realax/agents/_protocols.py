"""What an RL trainer needs from an agent: the `OnPolicyAgent` and `OffPolicyAgent` Protocols.

``realax.train.rl.OnPolicyTrainer`` drives an `OnPolicyAgent` (`PPO`) and
``OffPolicyTrainer`` an `OffPolicyAgent` (`DQN`, `SAC`, `TD3`, `DDPG`, `CQL`); the offline
agents (`IQL`, `CQL`, TD3+BC) meet `OffPolicyAgent` too, so an offline trainer needs nothing
more (their ``update`` also takes a mapping with jaxrl_m's keys, e.g. a `Dataset` minibatch).
An agent is an immutable pytree (a `flax.struct.PyTreeNode`): every method returns values or
a new agent, so the trainers call them inside one compiled loop. Any class with these methods
works; it need not inherit from anything. Both Protocols are ``runtime_checkable``
(``isinstance`` checks that the methods exist, not their signatures).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax

from ._batches import Rollout, Transition

__all__ = ["OffPolicyAgent", "OnPolicyAgent"]

Info = dict[str, jax.Array]


class _Agent(Protocol):
    """What both kinds of agents have: creation and acting."""

    @classmethod
    def create(
        cls, key: jax.Array, observations: jax.Array, actions: jax.Array, **config: Any
    ) -> Any:
        """A fresh agent for example observations / actions (integer: discrete, with
        ``n_actions`` in ``config``); keyword-only in the trainers' calls. The realax agents
        also take an int seed as ``key``."""
        ...

    def sample_actions(
        self, observations: jax.Array, *, seed: jax.Array, deterministic: bool = False
    ) -> jax.Array:
        """Actions of the (exploring) policy; ``deterministic=True``: greedy, for evaluation
        (the realax agents also take jaxrl_m's ``argmax=True``)."""
        ...


@runtime_checkable
class OnPolicyAgent(_Agent, Protocol):
    """An agent trained on its own fresh rollouts (`PPO`).

    Per train step the trainer calls `act` on every environment step, `value` on the final
    observations (so time-limit truncations bootstrap), builds a `Rollout` and calls
    `update` once; its evaluation plays ``sample_actions(..., deterministic=True)``.
    """

    def act(
        self, observations: jax.Array, *, seed: jax.Array, deterministic: bool = False
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(actions, log_probs, values)`` of ``observations`` (what a `Rollout` stores)."""
        ...

    def value(self, observations: jax.Array) -> jax.Array:
        """State values ``V(s)``."""
        ...

    def update(self, batch: Rollout, *, pmap_axis: str | None = None) -> tuple[Any, Info]:
        """``(new_agent, info)`` after learning from one rollout; ``info`` holds scalars.
        ``pmap_axis``: the device axis to average gradients over (``None``: one device)."""
        ...


@runtime_checkable
class OffPolicyAgent(_Agent, Protocol):
    """An agent trained from a replay buffer of `Transition` s (`DQN`, `SAC`, `TD3`, ...).

    Per train step the trainer acts with `sample_actions` (discrete agents also get
    ``epsilon=``, the exploration rate of the step, as a keyword), stores `Transition` s and
    calls `update` on sampled minibatches; its evaluation plays
    ``sample_actions(..., deterministic=True)``.
    """

    def update(self, batch: Transition, *, pmap_axis: str | None = None) -> tuple[Any, Info]:
        """``(new_agent, info)`` after one learning step on a minibatch; ``info`` holds
        scalars. ``pmap_axis``: the device axis to average gradients over."""
        ...
