"""RecurrentPPO and its network: the sequence re-run of the update equals step-by-step acting
(with the resets at episode ends), minibatches are whole environments, errors name the fix."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realax.agents import RecurrentPPO, Rollout, reset_hidden
from realax.agents._recurrent import unroll

T, E, OBS = 6, 4, 3


def _agent(**kw):
    kw = {"n_actions": 2, "hidden_size": 8, "hidden_dims": (8,), "head_dims": (8,), **kw}
    actions = jnp.zeros((), jnp.int32)
    return RecurrentPPO.create(key=0, observations=jnp.zeros(OBS), actions=actions, **kw)


def _rollout(agent, dones):
    """Act step by step as the trainer does: hidden reset after a step with done."""
    obs = jax.random.normal(jax.random.key(1), (T, E, OBS))
    h = agent.initial_hidden(E)
    h0, steps = h, []
    for t in range(T):
        a, logp, v, h = agent.act(obs[t], h, seed=jax.random.key(10 + t))
        steps.append((a, logp, v))
        h = reset_hidden(h, dones[t])
    a, logp, v = (jnp.stack(x) for x in zip(*steps, strict=True))
    rollout = Rollout(
        obs=obs, actions=a, log_probs=logp, values=v, rewards=jnp.ones((T, E)),
        dones=dones, terminated=dones, next_values=jnp.zeros((T, E)),
    )  # fmt: skip
    return rollout, h0


DONES = jnp.zeros((T, E), bool).at[2, 1].set(True).at[4, 3].set(True)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_unroll_equals_step_by_step_acting_with_resets(cell):
    agent = _agent(cell=cell)
    rollout, h0 = _rollout(agent, DONES)
    _, dist, values = unroll(agent.model, h0, rollout.obs, DONES)
    np.testing.assert_allclose(dist.log_prob(rollout.actions), rollout.log_probs, atol=1e-6)
    np.testing.assert_allclose(values, rollout.values, atol=1e-6)


def test_a_reset_starts_a_fresh_sequence():
    agent = _agent()
    obs = jax.random.normal(jax.random.key(2), (T, E, OBS))
    dones = jnp.zeros((T, E), bool).at[2].set(True)  # every env restarts after step 2
    _, _, v = unroll(agent.model, agent.initial_hidden(E), obs, dones)
    _, _, fresh = unroll(agent.model, agent.initial_hidden(E), obs[3:], dones[3:])
    np.testing.assert_allclose(v[3:], fresh, atol=1e-6)
    _, _, carried = unroll(agent.model, agent.initial_hidden(E), obs, jnp.zeros((T, E), bool))
    assert not np.allclose(carried[3:], fresh, atol=1e-4)  # without it, memory shows


def test_update_learns_on_whole_sequences():
    # (continuous actions: the heads are PPO's ActorCritic; the doctest of create builds one)
    agent = _agent(num_minibatches=2)
    rollout, h0 = _rollout(agent, DONES)
    new, info = agent.update(rollout, hidden=h0)
    assert set(info) >= {"loss", "actor_loss", "value_loss", "entropy", "approx_kl"}
    assert all(np.isfinite(float(v)) for v in info.values())
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), agent.model.params,
                         new.model.params)  # fmt: skip
    assert max(jax.tree.leaves(moved)) > 0
    assert int(new.model.step) == agent.config.update_epochs * 2


def test_first_minibatch_step_sees_the_rollout_policy():
    # one epoch, one minibatch: the ratio is 1 at the first (only) step, so approx_kl = 0 and
    # no ratio is clipped: the update re-ran exactly the acted sequences (resets included)
    agent = _agent(num_minibatches=1, update_epochs=1)
    rollout, h0 = _rollout(agent, DONES)
    _, info = agent.update(rollout, hidden=h0)
    assert abs(float(info["approx_kl"])) < 1e-6 and float(info["clip_fraction"]) == 0.0


def test_errors_name_the_fix():
    with pytest.raises(ValueError, match="cell must be one of"):
        _agent(cell="rnn")
    agent = _agent(num_minibatches=3)
    rollout, h0 = _rollout(agent, DONES)
    with pytest.raises(ValueError, match="divisible by num_minibatches=3"):
        agent.update(rollout, hidden=h0)
    agent = _agent()
    with pytest.raises(ValueError, match=r"hidden must have shape \(n_envs, hidden_size\)"):
        agent.update(rollout, hidden=agent.initial_hidden(2))
    with pytest.raises(ValueError, match=r"\(T, n_envs\) and dones"):
        agent.update(rollout.replace(dones=None), hidden=h0)
