"""What the RL trainers hand to ``agent.update``: `Transition` and `Rollout` PyTreeNodes.

Both are `flax.struct.PyTreeNode` s of arrays, so they pass through ``jit``, ``vmap``,
``lax.scan`` and ``shard_map`` and can be stored (a replay buffer holds a `Transition`
whose leaves have a leading capacity axis). Fields that an agent can do without default
to None (no leaf).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

__all__ = ["Rollout", "Transition", "as_transition"]


class Transition(struct.PyTreeNode):
    """A batch of transitions ``(s, a, r, s')`` for off-policy agents (`DQN`, `SAC`).

    Leaves share the leading batch shape ``(B,)`` (any leading shape works: the agents
    average over all of it).

    Attributes:
        obs: float ``(B, obs_dim)`` observations ``s``.
        actions: int ``(B,)`` (discrete) or float ``(B, action_dim)`` (continuous, in
            ``[-1, 1]`` for `SAC`) actions ``a`` taken in ``s``.
        rewards: float ``(B,)`` rewards ``r``.
        next_obs: float ``(B, obs_dim)`` observations ``s'`` reached; after the last step of
            an episode, its final observation (not the reset one).
        terminated: bool or float ``(B,)``: true where ``s'`` is a terminal state (no value
            bootstrapped from it). A time-limit truncation is *not* a termination: there the
            value of ``s'`` is bootstrapped.

    Example:
        >>> t = Transition(obs=jnp.zeros((2, 3)), actions=jnp.zeros(2, jnp.int32),
        ...                rewards=jnp.ones(2), next_obs=jnp.zeros((2, 3)),
        ...                terminated=jnp.array([False, True]))
        >>> t.masks.tolist()
        [1.0, 0.0]
    """

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_obs: jax.Array
    terminated: jax.Array

    @property
    def masks(self) -> jax.Array:
        """float32 ``1 - terminated``: 1.0 where the next state's value is bootstrapped."""
        return 1.0 - jnp.asarray(self.terminated, jnp.float32)


class Rollout(struct.PyTreeNode):
    """A time-major on-policy rollout for `PPO`: leading axes ``(T, N)`` (steps, envs) or
    ``(T,)``.

    Either give ``advantages`` and ``returns`` (precomputed, e.g. with `gae`), or the GAE
    inputs: ``rewards``, ``dones`` and one of ``next_values`` / ``last_values`` (optionally
    ``terminated``), from which the update computes them.

    Attributes:
        obs: float ``(T, N, obs_dim)`` observations.
        actions: int ``(T, N)`` or float ``(T, N, action_dim)`` actions sampled by the
            behaviour policy (unclipped, as `PPO.act` returned them).
        log_probs: float ``(T, N)`` behaviour log-probabilities of ``actions``.
        values: float ``(T, N)`` values ``V(s_t)`` at collection time.
        rewards: float ``(T, N)`` rewards, or None.
        dones: bool ``(T, N)``: the episode ended at step ``t`` for any reason (termination
            or time limit); GAE does not cross it. Or None.
        terminated: bool ``(T, N)``: a true terminal state was reached at step ``t`` (no
            bootstrap); None treats every done as a termination.
        next_values: float ``(T, N)`` value of the state reached after step ``t`` (of the
            final observation when the episode ended there), or None.
        last_values: float ``(N,)`` value of the state after the last step (then
            ``next_values[t] = values[t + 1]``), or None.
        advantages: float ``(T, N)`` precomputed advantages, or None.
        returns: float ``(T, N)`` precomputed value targets, or None.

    Example:
        >>> r = Rollout(obs=jnp.zeros((4, 2, 3)), actions=jnp.zeros((4, 2), jnp.int32),
        ...             log_probs=jnp.zeros((4, 2)), values=jnp.zeros((4, 2)),
        ...             rewards=jnp.ones((4, 2)), dones=jnp.zeros((4, 2), bool),
        ...             last_values=jnp.zeros(2))
        >>> r.batch_shape
        (4, 2)
    """

    obs: jax.Array
    actions: jax.Array
    log_probs: jax.Array
    values: jax.Array
    rewards: jax.Array | None = None
    dones: jax.Array | None = None
    terminated: jax.Array | None = None
    next_values: jax.Array | None = None
    last_values: jax.Array | None = None
    advantages: jax.Array | None = None
    returns: jax.Array | None = None

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """The leading ``(T, N)`` (or ``(T,)``) shape, read from ``log_probs``."""
        return tuple(jnp.shape(self.log_probs))


#: keys of the former dict batches -> `Transition` fields
_TRANSITION_KEYS = {
    "observations": "obs",
    "actions": "actions",
    "rewards": "rewards",
    "next_observations": "next_obs",
}
#: keys of the former dict rollouts -> `Rollout` fields
_ROLLOUT_KEYS = {
    "observations": "obs",
    "terminations": "terminated",
    **{
        k: k
        for k in (
            "actions",
            "log_probs",
            "values",
            "rewards",
            "dones",
            "next_values",
            "last_values",
            "advantages",
            "returns",
        )
    },
}


def _require(owner: str, kind: str, value: Any, cls: type) -> None:
    if not isinstance(value, cls | Mapping):
        raise TypeError(
            f"{owner}: batch must be a realax.agents.{cls.__name__} (or a dict of arrays with "
            f"the {kind} keys) (got {type(value).__name__})"
        )


def as_transition(owner: str, batch: Any) -> Transition:
    """``batch`` as a `Transition`; a dict with the keys ``observations``, ``actions``,
    ``rewards``, ``next_observations`` and ``masks`` (or ``dones``) is converted."""
    _require(owner, "transition", batch, Transition)
    if isinstance(batch, Transition):
        return batch
    missing = [k for k in _TRANSITION_KEYS if k not in batch]
    if missing:
        raise KeyError(
            f"{owner}: batch is missing key(s) {missing}; it has {sorted(batch)} and needs "
            f"{list(_TRANSITION_KEYS)}; or pass a realax.agents.Transition"
        )
    if "masks" in batch:
        terminated = 1.0 - jnp.asarray(batch["masks"], jnp.float32)
    elif "dones" in batch:
        terminated = batch["dones"]
    else:
        raise KeyError(
            f"{owner}: batch needs 'masks' (1.0 where the next state should be bootstrapped, "
            f"0.0 at termination) or 'dones' (True at termination); it has {sorted(batch)}"
        )
    fields = {f: batch[k] for k, f in _TRANSITION_KEYS.items()}
    return Transition(**fields, terminated=terminated)


def as_rollout(owner: str, batch: Any) -> Rollout:
    """``batch`` as a `Rollout`; a dict with the former keys (``observations``,
    ``terminations``, the other field names) is converted."""
    _require(owner, "rollout", batch, Rollout)
    if isinstance(batch, Rollout):
        return batch
    unknown = sorted(k for k in batch if k not in _ROLLOUT_KEYS)
    missing = [k for k in ("observations", "actions", "log_probs", "values") if k not in batch]
    if missing or unknown:
        raise KeyError(
            f"{owner}: batch is missing key(s) {missing} (unknown: {unknown}); it has "
            f"{sorted(batch)}; or pass a realax.agents.Rollout"
        )
    return Rollout(**{_ROLLOUT_KEYS[k]: v for k, v in batch.items()})
