"""Partial observability: an environment that shows only some entries of its observation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp

from ._env import Env

__all__ = ["mask_observation"]


def mask_observation(env: Env, keep: Sequence[int]) -> Env:
    """``env`` observing only the entries ``keep`` of its (flattened) observation.

    The dynamics, rewards and episode ends are unchanged; ``reset`` / ``step`` (and
    ``info["final_obs"]``) return ``obs.reshape(-1)[keep]``. CartPole with ``keep=[0, 2]``
    (cart position, pole angle; the velocities hidden) is the classic partially observable
    task: a feed-forward policy cannot tell the direction of motion, a recurrent one can.
    The name stays the wrapped environment's.

    Args:
        env: a ``realax.tasks.Env`` (e.g. ``make("CartPole-v1")``).
        keep: distinct indices into the flattened observation, in the order to show them.

    Returns:
        A new `Env` (``env`` itself is unchanged).

    Example:
        >>> import jax, realax.tasks as rt
        >>> env = rt.mask_observation(rt.make("CartPole-v1"), keep=[0, 2])
        >>> obs, state = env.reset(jax.random.key(0))
        >>> env.obs_shape, obs.shape
        ((2,), (2,))
    """
    if not isinstance(env, Env):
        raise TypeError(
            f"mask_observation: env must be a realax.tasks.Env (got {type(env).__name__}); "
            "e.g. mask_observation(realax.tasks.make('CartPole-v1'), keep=[0, 2])"
        )
    size = env.obs_dims
    indices = _check_keep(keep, size)
    inner = env.obs_fn
    index = jnp.asarray(indices, jnp.int32)

    def observe(raw: Any) -> Any:
        obs = raw if inner is None else inner(raw)
        return jnp.reshape(obs, (-1,))[index]

    return env.replace(obs_fn=observe)


def _check_keep(keep: Any, size: int) -> tuple[int, ...]:
    if isinstance(keep, str | bytes) or not isinstance(keep, Sequence):
        raise TypeError(
            f"mask_observation: keep must be a sequence of ints (got {keep!r}); e.g. keep=[0, 2]"
        )
    indices = tuple(keep)
    bad = [k for k in indices if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < size]
    if not indices or bad or len(set(indices)) != len(indices):
        raise ValueError(
            f"mask_observation: keep must be distinct indices in [0, {size}) of the flattened "
            f"observation (got keep={list(indices)}); e.g. keep=[0, 2]"
        )
    return indices
