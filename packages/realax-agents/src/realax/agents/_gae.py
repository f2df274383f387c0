"""Generalised advantage estimation (GAE) over time-major rollouts."""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["gae"]


def gae(
    *,
    rewards: jax.Array,
    values: jax.Array,
    dones: jax.Array,
    discount: float,
    gae_lambda: float,
    last_value: jax.Array | None = None,
    next_values: jax.Array | None = None,
    terminations: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation over a time-major rollout.

    With ``V'_t`` the value of the state reached after step ``t``:
    ``delta_t = r_t + discount * (1 - terminations_t) * V'_t - V_t`` and
    ``A_t = delta_t + discount * gae_lambda * (1 - dones_t) * A_{t+1}``.

    ``dones_t`` marks the end of an episode at step ``t`` for any reason (the recursion does
    not cross it); ``terminations_t`` marks a true terminal state (no bootstrap). At a
    time-limit truncation (done but not terminated) the value ``V'_t`` of the final state is
    bootstrapped, which needs ``next_values`` holding it. If ``terminations`` is None every
    done is treated as a termination.

    Args:
        rewards: ``(T, ...)`` rewards.
        values: ``(T, ...)`` values ``V(s_t)`` of the visited states.
        dones: ``(T, ...)`` episode ended at step ``t``.
        discount: gamma.
        gae_lambda: lambda.
        last_value: ``(...)`` value of the state after the last step; with it,
            ``V'_t = values[t + 1]`` and ``V'_{T-1} = last_value``.
        next_values: ``(T, ...)`` explicit ``V'_t`` (give this or ``last_value``).
        terminations: ``(T, ...)`` optional true terminations.

    Returns:
        ``(advantages, returns)`` with ``returns = advantages + values`` (the value targets).

    Example:
        >>> adv, ret = gae(rewards=jnp.ones(3), values=jnp.zeros(3), dones=jnp.zeros(3),
        ...                last_value=jnp.zeros(()), discount=1.0, gae_lambda=1.0)
        >>> ret.tolist()
        [3.0, 2.0, 1.0]
    """
    if (last_value is None) == (next_values is None):
        raise ValueError(
            "gae needs exactly one of last_value (value after the final step) or next_values "
            f"(V of every next state) (got last_value={'set' if last_value is not None else None},"
            f" next_values={'set' if next_values is not None else None})"
        )
    rewards = jnp.asarray(rewards, dtype=jnp.float32)
    values = jnp.asarray(values, dtype=jnp.float32)
    if rewards.shape != values.shape or jnp.shape(dones) != rewards.shape:
        raise ValueError(
            "gae: rewards, values and dones must have the same (T, ...) shape (got "
            f"rewards {rewards.shape}, values {values.shape}, dones {jnp.shape(dones)})"
        )
    if next_values is None:
        last_value = jnp.asarray(last_value, dtype=jnp.float32)
        if last_value.shape != values.shape[1:]:
            raise ValueError(
                f"gae: last_value must have shape values.shape[1:] = {values.shape[1:]} "
                f"(got {last_value.shape})"
            )
        next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    next_values = jnp.asarray(next_values, dtype=jnp.float32)
    if next_values.shape != values.shape:
        raise ValueError(
            f"gae: next_values must have the shape of values {values.shape} "
            f"(got {next_values.shape})"
        )
    not_done = 1.0 - jnp.asarray(dones, dtype=jnp.float32)
    not_term = (
        not_done if terminations is None else 1.0 - jnp.asarray(terminations, dtype=jnp.float32)
    )
    deltas = rewards + discount * not_term * next_values - values

    def step(carry: jax.Array, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, nd = x
        adv = delta + discount * gae_lambda * nd * carry
        return adv, adv

    _, advantages = jax.lax.scan(step, jnp.zeros_like(values[0]), (deltas, not_done), reverse=True)
    return advantages, advantages + values
