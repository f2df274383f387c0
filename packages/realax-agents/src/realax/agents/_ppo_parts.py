"""PPO's pieces shared by `PPO` and `RecurrentPPO`: advantages of a rollout, the clipped
objective of a minibatch, the optimiser and the epoch loop."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from . import _common as c
from . import _hparams as hp
from ._batches import Rollout
from ._gae import gae
from ._train_state import TrainState

__all__ = ["minibatch_data", "ppo_objective", "ppo_optimizer", "rollout_advantages", "run_epochs"]


def rollout_advantages(owner: str, rollout: Rollout, agent: Any) -> tuple[jax.Array, jax.Array]:
    """``(advantages, returns)`` of a rollout: the precomputed ones, or GAE from its rewards,
    dones and next / last values with the agent's (possibly traced) ``discount`` and
    ``gae_lambda`` (shared by `PPO` and `RecurrentPPO`)."""
    if rollout.advantages is not None or rollout.returns is not None:
        if rollout.advantages is None or rollout.returns is None:
            raise ValueError(
                f"{owner}: the rollout has only one of advantages / returns; give both "
                "(precomputed) or neither (GAE from rewards, dones and next_values)"
            )
        return (
            jnp.asarray(rollout.advantages, jnp.float32),
            jnp.asarray(rollout.returns, jnp.float32),
        )
    rewards, dones = rollout.rewards, rollout.dones
    if (
        rewards is None
        or dones is None
        or (rollout.last_values is None) == (rollout.next_values is None)
    ):
        raise ValueError(
            f"{owner}: the rollout needs advantages and returns, or rewards, dones and "
            "exactly one of next_values / last_values to compute GAE (got rewards="
            f"{rewards is not None}, dones={dones is not None}, next_values="
            f"{rollout.next_values is not None}, last_values={rollout.last_values is not None})"
        )
    return gae(
        rewards=rewards,
        values=rollout.values,
        dones=dones,
        last_value=rollout.last_values,
        next_values=rollout.next_values,
        terminations=rollout.terminated,
        discount=hp.value(agent, "discount"),
        gae_lambda=hp.value(agent, "gae_lambda"),
    )


def ppo_objective(
    agent: Any, axis: str | None, dist: Any, value: jax.Array, mb_data: dict[str, jax.Array]
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """PPO's loss of one minibatch: clipped surrogate, (clipped) value loss, entropy bonus.

    ``dist`` / ``value`` are the current network's outputs on ``mb_data["obs"]``;
    ``mb_data`` holds ``actions``, ``log_probs``, ``values``, ``advantages`` and ``returns``
    (any equal leading shape). ``clip_eps``, ``vf_coef`` and ``ent_coef`` are the agent's
    (possibly traced) values. Shared by `PPO` and `RecurrentPPO`. Returns ``(loss, info)``.
    """
    cfg = agent.config
    clip_eps, vf_coef, ent_coef = (hp.value(agent, k) for k in ("clip_eps", "vf_coef", "ent_coef"))
    log_prob = dist.log_prob(mb_data["actions"])
    log_ratio = log_prob - mb_data["log_probs"]
    ratio = jnp.exp(log_ratio)
    adv = mb_data["advantages"]
    if cfg.normalize_advantages:
        # Statistics of the minibatch across all devices (equal shard sizes), so a
        # rollout split over devices is normalised like the whole rollout on one.
        mean = adv.mean() if axis is None else jax.lax.pmean(adv.mean(), axis)
        var = jnp.mean((adv - mean) ** 2)
        var = var if axis is None else jax.lax.pmean(var, axis)
        adv = (adv - mean) / (jnp.sqrt(var) + 1e-8)
    surrogate = jnp.minimum(ratio * adv, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv)
    actor_loss = -jnp.mean(surrogate)
    value_err = (value - mb_data["returns"]) ** 2
    if cfg.clip_value:
        clipped = mb_data["values"] + jnp.clip(value - mb_data["values"], -clip_eps, clip_eps)
        value_err = jnp.maximum(value_err, (clipped - mb_data["returns"]) ** 2)
    value_loss = 0.5 * jnp.mean(value_err)
    entropy = jnp.mean(dist.entropy())
    loss = actor_loss + vf_coef * value_loss - ent_coef * entropy
    info = {
        "loss": loss,
        "actor_loss": actor_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
        "clip_fraction": jnp.mean(jnp.abs(ratio - 1.0) > clip_eps),
    }
    return loss, info


def ppo_optimizer(cfg: Any, inject: bool = False) -> Any:
    """Adam (``adam_eps``) with global-norm clipping, the learning rate annealed linearly to
    zero over ``anneal_lr_steps`` if set (shared by `PPO` and `RecurrentPPO`); ``inject``:
    the learning rate and clip norm as injected (traced) hyperparameters."""
    lr = c.learning_rate(cfg)
    return c.make_optimizer(lr, cfg.max_grad_norm, eps=cfg.adam_eps, flat=True, inject=inject)


def minibatch_data(
    rollout: Rollout, advantages: jax.Array, returns: jax.Array
) -> dict[str, jax.Array]:
    """What `ppo_objective` reads of a rollout: obs, actions, log_probs, values (float32),
    advantages and returns."""
    return {
        "obs": jnp.asarray(rollout.obs),
        "actions": jnp.asarray(rollout.actions),
        "log_probs": jnp.asarray(rollout.log_probs, jnp.float32),
        "values": jnp.asarray(rollout.values, jnp.float32),
        "advantages": advantages,
        "returns": returns,
    }


def run_epochs(
    agent: Any, epoch_step: Any, advantages: jax.Array, returns: jax.Array, axis: str | None
) -> tuple[jax.Array, TrainState, dict[str, jax.Array]]:
    """``update_epochs`` scans of ``epoch_step(model, key)`` from ``agent.model``; returns the
    agent's next key, the new model and the info means (averaged over ``axis``)."""
    key, perm_key = jax.random.split(agent.key)
    new_model, infos = jax.lax.scan(
        epoch_step, agent.model, jax.random.split(perm_key, agent.config.update_epochs)
    )
    info = c.mean_info(infos)
    info["advantages_mean"] = jnp.mean(advantages)
    info["returns_mean"] = jnp.mean(returns)
    if axis is not None:
        info = jax.lax.pmean(info, axis)
    return key, new_model, info
