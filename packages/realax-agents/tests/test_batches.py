"""`Transition` / `Rollout` batches and the `OnPolicyAgent` / `OffPolicyAgent` Protocols."""

import chex
import jax
import jax.numpy as jnp
import pytest
from realax.agents import (
    DQN,
    PPO,
    SAC,
    ContinuousBC,
    DiscreteBC,
    OffPolicyAgent,
    OnPolicyAgent,
    Rollout,
    Transition,
    gae,
)

KEY = jax.random.key(0)
SMALL = {"hidden_dims": (16,)}


def _transition(discrete: bool, n: int = 32) -> Transition:
    obs = jax.random.normal(jax.random.key(1), (n, 4))
    if discrete:
        actions = jax.random.randint(jax.random.key(2), (n,), 0, 3)
    else:
        actions = jnp.tanh(jax.random.normal(jax.random.key(2), (n, 2)))
    return Transition(
        obs=obs,
        actions=actions,
        rewards=jax.random.normal(jax.random.key(3), (n,)),
        next_obs=jax.random.normal(jax.random.key(4), (n, 4)),
        terminated=jnp.arange(n) % 5 == 0,
    )


def _as_dict(t: Transition, use_dones: bool) -> dict:
    out = {
        "observations": t.obs,
        "actions": t.actions,
        "rewards": t.rewards,
        "next_observations": t.next_obs,
    }
    if use_dones:
        out["dones"] = t.terminated
    else:
        out["masks"] = 1.0 - t.terminated.astype(jnp.float32)
    return out


def test_transition_masks_and_pytree():
    t = _transition(True)
    chex.assert_trees_all_equal(t.masks, 1.0 - t.terminated.astype(jnp.float32))
    assert len(jax.tree.leaves(t)) == 5
    sliced = jax.tree.map(lambda x: x[:3], t)
    assert isinstance(sliced, Transition) and sliced.obs.shape == (3, 4)


@pytest.mark.slow
@pytest.mark.parametrize("use_dones", [False, True])
def test_dqn_and_sac_transition_updates_equal_the_dict_updates(use_dones):
    for cls, discrete, extra in ((DQN, True, {"n_actions": 3}), (SAC, False, {})):
        t = _transition(discrete)
        agent = cls.create(key=KEY, observations=t.obs, actions=t.actions, **SMALL, **extra)
        a1, i1 = agent.update(t)
        a2, i2 = agent.update(_as_dict(t, use_dones))
        chex.assert_trees_all_equal((a1, i1), (a2, i2))


def _rollout(agent: PPO, t: int = 8, n: int = 4) -> Rollout:
    obs = jax.random.normal(jax.random.key(5), (t, n, 4))
    actions, log_probs, values = agent.act(obs, seed=jax.random.key(6))
    dones = jax.random.bernoulli(jax.random.key(7), 0.2, (t, n))
    return Rollout(
        obs=obs,
        actions=actions,
        log_probs=log_probs,
        values=values,
        rewards=jnp.ones((t, n)),
        dones=dones,
        terminated=dones & (jnp.arange(n) % 2 == 0),
        next_values=jnp.roll(values, -1, axis=0),
    )


@pytest.mark.slow
def test_ppo_rollout_update_equals_the_dict_update_and_precomputed_advantages():
    agent = PPO.create(
        key=KEY, observations=jnp.zeros(4), actions=jnp.zeros((), jnp.int32), n_actions=2, **SMALL
    )
    r = _rollout(agent)
    a1, i1 = agent.update(r)
    as_dict = {
        "observations": r.obs,
        "actions": r.actions,
        "log_probs": r.log_probs,
        "values": r.values,
        "rewards": r.rewards,
        "dones": r.dones,
        "terminations": r.terminated,
        "next_values": r.next_values,
    }
    a2, i2 = agent.update(as_dict)
    chex.assert_trees_all_equal((a1, i1), (a2, i2))
    adv, ret = gae(
        rewards=r.rewards,
        values=r.values,
        dones=r.dones,
        next_values=r.next_values,
        terminations=r.terminated,
        discount=agent.config.discount,
        gae_lambda=agent.config.gae_lambda,
    )
    pre = Rollout(obs=r.obs, actions=r.actions, log_probs=r.log_probs, values=r.values)
    a3, i3 = agent.update(pre.replace(advantages=adv, returns=ret))  # GAE outside the jit
    chex.assert_trees_all_close((a1.model, i1), (a3.model, i3), rtol=1e-5, atol=1e-6)


def test_ppo_rollout_errors_name_what_is_missing():
    agent = PPO.create(
        key=KEY, observations=jnp.zeros(4), actions=jnp.zeros((), jnp.int32), n_actions=2, **SMALL
    )
    r = _rollout(agent)
    with pytest.raises(ValueError, match="only one of advantages / returns"):
        agent.update(r.replace(advantages=r.values))
    with pytest.raises(ValueError, match="exactly one of next_values / last_values"):
        agent.update(r.replace(last_values=r.values[0]))
    with pytest.raises(ValueError, match="dones=False"):
        agent.update(r.replace(dones=None))
    with pytest.raises(TypeError, match=r"realax.agents.Rollout .*got list"):
        agent.update([r.obs])


def test_bc_agents_take_transitions_like_dicts():
    for cls, discrete, extra in ((DiscreteBC, True, {"n_actions": 3}), (ContinuousBC, False, {})):
        t = _transition(discrete)
        agent = cls.create(key=KEY, observations=t.obs, actions=t.actions, **SMALL, **extra)
        a1, i1 = agent.update(t)
        a2, i2 = agent.update({"observations": t.obs, "actions": t.actions})
        chex.assert_trees_all_equal((a1, i1), (a2, i2))


def test_agents_meet_the_trainer_protocols():
    obs = jnp.zeros(4)
    dqn = DQN.create(key=KEY, observations=obs, actions=jnp.zeros((), jnp.int32), n_actions=2)
    sac = SAC.create(key=KEY, observations=obs, actions=jnp.zeros(2), **SMALL)
    ppo = PPO.create(key=KEY, observations=obs, actions=jnp.zeros(2), **SMALL)
    assert isinstance(dqn, OffPolicyAgent) and isinstance(sac, OffPolicyAgent)
    assert isinstance(ppo, OnPolicyAgent)
    assert not isinstance(dqn, OnPolicyAgent)  # no act / value
