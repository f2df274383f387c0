"""Agents on fixed batches: losses fall, shapes/dtypes hold, no retraces, config errors."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realax.agents import DQN, PPO, SAC, ContinuousBC, DiscreteBC, DQNConfig, target_update

KEY = jax.random.key(0)
SMALL = (32, 32)


def _obs(n=128, dim=4, seed=0):
    return jax.random.normal(jax.random.key(seed), (n, dim))


def _discrete_expert(obs):
    return (obs[:, 0] + 0.5 * obs[:, 1] > 0).astype(jnp.int32)


def _assert_single_trace(agent, batch, calls=3, **kwargs):
    """Compile the agent's update under a trace counter: repeated updates must not retrace."""
    chex.clear_trace_counter()  # a new agent config (static) may legitimately trace once more
    update = jax.jit(
        chex.assert_max_traces(type(agent).update.__wrapped__, n=1),
        static_argnames=("pmap_axis",),
    )
    infos = []
    for _ in range(calls):
        new_agent, info = update(agent, batch, **kwargs)
        chex.assert_trees_all_equal_shapes_and_dtypes(new_agent, agent)
        agent = new_agent
        infos.append(info)
    for value in infos[-1].values():
        assert value.shape == () and value.dtype == jnp.float32
    return agent


def _train(agent, batch, steps):
    infos = []
    for _ in range(steps):
        agent, info = agent.update(batch)
        infos.append(jax.device_get(info))
    return agent, infos


def _create(cls, batch, **config):
    """A ``cls`` agent with ``SMALL`` hidden layers on ``batch``'s observations and actions."""
    obs, actions = batch["observations"], batch["actions"]
    return cls.create(key=KEY, observations=obs, actions=actions, hidden_dims=SMALL, **config)


def _ppo(actions=None, **config):
    """A PPO on 4-dim observations; discrete (pass ``n_actions``) unless given float actions."""
    actions = jnp.zeros((), jnp.int32) if actions is None else actions
    return PPO.create(key=KEY, observations=jnp.zeros(4), actions=actions, **config)


# --------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("cls", "actions", "extra"),
    [
        (DiscreteBC, jnp.zeros((1,), jnp.int32), {"n_actions": 2}),
        (ContinuousBC, jnp.zeros((1, 2)), {}),
        (DQN, jnp.zeros((1,), jnp.int32), {"n_actions": 2}),
        (PPO, jnp.zeros((1,), jnp.int32), {"n_actions": 2}),
        (SAC, jnp.zeros((1, 2)), {}),
    ],
)
def test_unknown_config_key_is_named_with_valid_keys(cls, actions, extra):
    with pytest.raises(
        TypeError, match=r"unknown config key\(s\) 'lr'; valid keys are: .*pmap_axis"
    ):
        cls.create(key=KEY, observations=jnp.zeros((1, 4)), actions=actions, lr=1e-3, **extra)


def test_config_value_and_action_errors():
    obs = jnp.zeros((1, 4))
    with pytest.raises(ValueError, match="needs n_actions"):
        DQN.create(key=KEY, observations=obs, actions=jnp.zeros((1,), jnp.int32))
    with pytest.raises(ValueError, match="discount must be in"):
        DQN.create(
            key=KEY, observations=obs, actions=jnp.zeros(1, jnp.int32), n_actions=2, discount=1.5
        )
    with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
        DiscreteBC.create(
            key=KEY,
            observations=obs,
            actions=jnp.zeros(1, jnp.int32),
            n_actions=2,
            learning_rate=-1.0,
        )
    with pytest.raises(ValueError, match="activation must be one of"):
        PPO.create(key=KEY, observations=obs, actions=jnp.zeros(2), activation="sigmoidish")
    with pytest.raises(ValueError, match="hidden_dims must be a sequence"):
        SAC.create(key=KEY, observations=obs, actions=jnp.zeros(2), hidden_dims=64)
    with pytest.raises(ValueError, match="example float action"):
        SAC.create(key=KEY, observations=obs, actions=jnp.zeros(2, jnp.int32))
    with pytest.raises(ValueError, match="integer action"):
        DiscreteBC.create(key=KEY, observations=obs, actions=jnp.zeros(2), n_actions=2)
    # positional key/observations/actions, as in create(key, observations, actions, **config)
    positional = DQN.create(KEY, obs, jnp.zeros(1, jnp.int32), n_actions=2)
    keyword = DQN.create(key=KEY, observations=obs, actions=jnp.zeros(1, jnp.int32), n_actions=2)
    chex.assert_trees_all_equal(positional.q.params, keyword.q.params)


def test_config_object_can_be_passed_and_overridden():
    cfg = DQNConfig(n_actions=3, hidden_dims=[16], discount=0.9)
    assert cfg.hidden_dims == (16,)  # normalised to a hashable tuple
    agent = DQN.create(
        key=KEY,
        observations=jnp.zeros(4),
        actions=jnp.zeros((), jnp.int32),
        config=cfg,
        discount=0.5,
    )
    assert agent.config == dataclasses.replace(cfg, discount=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        agent.config.discount = 0.1
    # the config is static: not a pytree leaf
    assert all(not isinstance(leaf, DQNConfig) for leaf in jax.tree.leaves(agent))


def test_missing_batch_keys_are_reported_before_compilation():
    obs = _obs(8)
    agent = DQN.create(
        key=KEY, observations=obs, actions=jnp.zeros(8, jnp.int32), n_actions=2, hidden_dims=SMALL
    )
    with pytest.raises(KeyError, match="missing key.*next_observations"):
        agent.update(
            {"observations": obs, "actions": jnp.zeros(8, jnp.int32), "rewards": jnp.zeros(8)}
        )
    with pytest.raises(KeyError, match="'masks'.*'dones'"):
        agent.update(
            {
                "observations": obs,
                "actions": jnp.zeros(8, jnp.int32),
                "rewards": jnp.zeros(8),
                "next_observations": obs,
            }
        )


# --------------------------------------------------------------------------- behaviour cloning


def test_discrete_bc_learns_a_rule_on_a_fixed_batch():
    obs = _obs(256)
    batch = {"observations": obs, "actions": _discrete_expert(obs)}
    agent = _create(DiscreteBC, batch, n_actions=2, learning_rate=3e-3)
    agent = _assert_single_trace(agent, batch)
    agent, infos = _train(agent, batch, 150)
    assert infos[-1]["loss"] < 0.3 * infos[0]["loss"]
    assert infos[-1]["accuracy"] > 0.97
    greedy = agent.sample_actions(obs, seed=KEY, deterministic=True)
    assert greedy.dtype == jnp.int32 and greedy.shape == (256,)
    assert float(jnp.mean(greedy == batch["actions"])) > 0.97
    sampled = agent.sample_actions(obs[0], seed=KEY)
    assert sampled.shape == () and sampled.dtype == jnp.int32


def test_continuous_bc_regresses_expert_actions():
    obs = _obs(256, dim=3)
    actions = jnp.tanh(obs[:, :2] @ jnp.array([[1.0, -0.5], [0.3, 1.0]]))
    batch = {"observations": obs, "actions": actions}
    for tanh_squash in (False, True):
        agent = _create(ContinuousBC, batch, learning_rate=3e-3, tanh_squash=tanh_squash)
        agent = _assert_single_trace(agent, batch)
        agent, infos = _train(agent, batch, 200)
        assert infos[-1]["loss"] < infos[0]["loss"] - 1.0
        assert infos[-1]["mse"] < 0.1 * infos[0]["mse"]
        det = agent.sample_actions(obs, seed=KEY, deterministic=True)
        assert det.shape == (256, 2) and det.dtype == jnp.float32
        assert float(jnp.mean(jnp.sum((det - actions) ** 2, -1))) < 0.02


# --------------------------------------------------------------------------- DQN


def _dqn_batch(n=128, masks=None):
    obs = _obs(n)
    actions = jax.random.randint(jax.random.key(1), (n,), 0, 3)
    rewards = jnp.where(actions == _discrete_expert(obs) + 1, 1.0, -1.0)
    return {
        "observations": obs,
        "actions": actions,
        "rewards": rewards,
        "next_observations": _obs(n, seed=2),
        "masks": jnp.zeros(n) if masks is None else masks,
    }


@pytest.mark.slow
def test_dqn_td_loss_falls_and_q_values_fit_rewards():
    batch = _dqn_batch()
    agent = _create(DQN, batch, n_actions=3, learning_rate=3e-3)
    agent = _assert_single_trace(agent, batch)
    agent, infos = _train(agent, batch, 200)
    assert infos[-1]["loss"] < 0.2 * infos[0]["loss"]
    q = agent.q_values(batch["observations"])
    q_taken = jnp.take_along_axis(q, batch["actions"][:, None], axis=-1)[:, 0]
    assert float(jnp.mean(jnp.sign(q_taken) == batch["rewards"])) > 0.9
    greedy = agent.sample_actions(batch["observations"], seed=KEY, deterministic=True)
    assert greedy.dtype == jnp.int32 and greedy.shape == (128,)
    np.testing.assert_array_equal(greedy, jnp.argmax(q, -1))


def test_dqn_bootstrapped_loss_falls_and_dones_equal_masks():
    batch = _dqn_batch(masks=jnp.ones(128))
    agent = _create(
        DQN, batch, n_actions=3, discount=0.5, tau=0.05, target_update_period=1, learning_rate=3e-3
    )
    trained, infos = _train(agent, batch, 200)
    assert np.mean([i["loss"] for i in infos[-10:]]) < 0.3 * infos[0]["loss"]
    with_dones = {k: v for k, v in batch.items() if k != "masks"}
    with_dones["dones"] = jnp.zeros(128, bool)
    a1, i1 = agent.update(batch)
    a2, i2 = agent.update(with_dones)
    chex.assert_trees_all_close(a1.q.params, a2.q.params)
    chex.assert_trees_all_close(i1, i2)


def test_dqn_double_q_target_and_target_network_schedule():
    batch = _dqn_batch(masks=jnp.ones(128))
    agent = _create(DQN, batch, n_actions=3, discount=0.9, target_update_period=3, tau=1.0)
    # make online and target differ so double-Q matters
    target = agent.target_q.replace(params=jax.tree.map(lambda p: p * 1.5, agent.q.params))
    agent = agent.replace(target_q=target)
    _, info = agent.update(batch)
    next_online = agent.q(batch["next_observations"])
    next_target = agent.target_q(batch["next_observations"])
    chosen = jnp.argmax(next_online, -1)
    expected = batch["rewards"] + 0.9 * next_target[jnp.arange(128), chosen]
    np.testing.assert_allclose(info["target"], expected.mean(), rtol=1e-5)
    no_double = agent.replace(config=dataclasses.replace(agent.config, double_q=False))
    _, info_max = no_double.update(batch)
    expected_max = batch["rewards"] + 0.9 * next_target.max(-1)
    np.testing.assert_allclose(info_max["target"], expected_max.mean(), rtol=1e-5)

    # periodic hard update: the target is untouched for 2 steps, copied on the 3rd
    a1, _ = agent.update(batch)
    a2, _ = a1.update(batch)
    chex.assert_trees_all_close(a2.target_q.params, target.params)
    a3, _ = a2.update(batch)
    chex.assert_trees_all_close(a3.target_q.params, a3.q.params)
    # soft update every step
    soft = agent.replace(config=dataclasses.replace(agent.config, tau=0.1, target_update_period=1))
    s1, _ = soft.update(batch)
    chex.assert_trees_all_close(
        s1.target_q.params, target_update(s1.q, target, 0.1).params, rtol=1e-6
    )


def test_dqn_epsilon_greedy_exploration_rate():
    obs = jnp.zeros((4000, 4))
    agent = DQN.create(
        key=KEY, observations=obs, actions=jnp.zeros(1, jnp.int32), n_actions=4, hidden_dims=(8,)
    )
    greedy = int(agent.sample_actions(obs[:1], seed=KEY, deterministic=True)[0])
    acts = agent.sample_actions(obs, seed=jax.random.key(5), epsilon=0.4)
    # greedy w.p. 0.6 + 0.4/4, each other action w.p. 0.1
    freq = np.bincount(np.asarray(acts), minlength=4) / 4000
    expected = np.full(4, 0.1)
    expected[greedy] = 0.7
    np.testing.assert_allclose(freq, expected, atol=0.03)
    # epsilon may be a traced value (e.g. from a schedule inside a compiled loop)
    acts0 = jax.jit(lambda e: agent.sample_actions(obs, seed=KEY, epsilon=e))(0.0)
    assert bool(jnp.all(acts0 == greedy))


# --------------------------------------------------------------------------- PPO


def _ppo_rollout(agent, seed, T=16, N=8, reward_fn=None):
    obs = jax.random.normal(jax.random.key(seed), (T, N, 4))
    actions, log_probs, values = agent.act(obs, seed=jax.random.key(seed + 1))
    rewards = reward_fn(obs, actions) if reward_fn is not None else obs[..., 0]
    return {
        "observations": obs,
        "actions": actions,
        "log_probs": log_probs,
        "values": values,
        "rewards": rewards,
        "dones": jnp.ones((T, N), bool),  # one-step episodes (a contextual bandit)
        "last_values": jnp.zeros(N),
    }


@pytest.mark.slow
def test_ppo_losses_fall_on_a_fixed_rollout_and_no_retrace():
    # clip_value=False: on a fixed rollout, value clipping caps how far the value can move
    agent = _ppo(
        n_actions=2, num_minibatches=4, update_epochs=2, learning_rate=1e-3, clip_value=False
    )
    # the value can fit the observation-dependent part of the reward; the action-dependent
    # part (action 1 pays more) is what the actor learns
    batch = _ppo_rollout(
        agent, 0, reward_fn=lambda obs, a: 3.0 * obs[..., 0] + 0.5 * (2.0 * a - 1.0)
    )
    agent = _assert_single_trace(agent, batch, calls=2)
    agent, infos = _train(agent, batch, 30)
    assert infos[-1]["value_loss"] < 0.8 * infos[0]["value_loss"]
    assert infos[-1]["actor_loss"] < infos[0]["actor_loss"]
    a, logp, v = agent.act(batch["observations"], seed=KEY)
    assert a.dtype == jnp.int32 and a.shape == (16, 8)
    assert logp.dtype == jnp.float32 and logp.shape == (16, 8) and v.shape == (16, 8)


@pytest.mark.slow
def test_ppo_precomputed_advantages_equal_internal_gae():
    from realax.agents import gae

    agent = _ppo(n_actions=2, num_minibatches=2, update_epochs=1)
    batch = _ppo_rollout(agent, 3)
    batch["dones"] = jax.random.uniform(jax.random.key(9), (16, 8)) < 0.1
    adv, ret = gae(
        rewards=batch["rewards"],
        values=batch["values"],
        dones=batch["dones"],
        last_value=batch["last_values"],
        discount=0.99,
        gae_lambda=0.95,
    )
    pre = {k: batch[k] for k in ("observations", "actions", "log_probs", "values")}
    pre.update(advantages=adv, returns=ret)
    a1, i1 = agent.update(batch)
    a2, i2 = agent.update(pre)
    chex.assert_trees_all_close(a1.model.params, a2.model.params, rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_close(i1, i2, rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_ppo_discrete_policy_improves_on_a_bandit():
    agent = _ppo(n_actions=3, learning_rate=3e-3, ent_coef=0.0, num_minibatches=2)
    reward_fn = lambda obs, a: (a == 2).astype(jnp.float32)
    for i in range(15):
        agent, _ = agent.update(_ppo_rollout(agent, 10 + i, reward_fn=reward_fn))
    probe = jax.random.normal(jax.random.key(99), (256, 4))
    probs = agent.model(probe, method="policy").probs
    assert float(probs[:, 2].mean()) > 0.9
    assert bool(jnp.all(agent.sample_actions(probe, seed=KEY, deterministic=True) == 2))


@pytest.mark.slow
def test_ppo_continuous_policy_improves_on_a_bandit():
    agent = _ppo(jnp.zeros(2), learning_rate=1e-2, ent_coef=0.0, num_minibatches=2)
    target = jnp.array([0.5, -1.0])
    reward_fn = lambda obs, a: -jnp.sum((a - target) ** 2, axis=-1)
    for i in range(25):
        agent, info = agent.update(_ppo_rollout(agent, 50 + i, reward_fn=reward_fn))
    probe = jax.random.normal(jax.random.key(99), (64, 4))
    mean_action = agent.sample_actions(probe, seed=KEY, deterministic=True).mean(0)
    np.testing.assert_allclose(mean_action, target, atol=0.25)
    a, logp, _ = agent.act(probe, seed=KEY)
    assert a.shape == (64, 2) and a.dtype == jnp.float32 and logp.shape == (64,)


def test_ppo_rejects_indivisible_minibatches_before_compiling():
    agent = _ppo(n_actions=2, num_minibatches=3)
    batch = _ppo_rollout(agent, 0)
    with pytest.raises(ValueError, match=r"divisible by num_minibatches \(got 128.*=3\)"):
        agent.update(batch)


# --------------------------------------------------------------------------- SAC


def _sac_batch(n=256):
    obs = _obs(n, dim=3)
    actions = jax.random.uniform(jax.random.key(4), (n, 1), minval=-1.0, maxval=1.0)
    # reward peaks at a = 0.5 whatever the state
    rewards = -((actions[:, 0] - 0.5) ** 2)
    return {
        "observations": obs,
        "actions": actions,
        "rewards": rewards,
        "next_observations": _obs(n, dim=3, seed=5),
        "masks": jnp.zeros(n),
    }


@pytest.mark.slow
def test_sac_learns_the_best_action_and_losses_fall():
    batch = _sac_batch()
    agent = _create(
        SAC, batch, actor_lr=3e-3, critic_lr=3e-3, temperature_lr=3e-3, init_temperature=0.01
    )
    agent = _assert_single_trace(agent, batch)
    agent, infos = _train(agent, batch, 300)
    assert infos[-1]["critic_loss"] < 0.1 * infos[0]["critic_loss"]
    det = agent.sample_actions(batch["observations"], seed=KEY, deterministic=True)
    assert det.shape == (256, 1) and det.dtype == jnp.float32
    assert abs(float(det.mean()) - 0.5) < 0.15
    sampled = agent.sample_actions(batch["observations"][0], seed=KEY)
    assert sampled.shape == (1,) and bool(jnp.all(jnp.abs(sampled) <= 1.0))


@pytest.mark.slow
def test_sac_temperature_and_target_critic_updates():
    batch = _sac_batch(64)
    agent = _create(SAC, batch, tau=0.1, target_entropy=-5.0)
    new, info = agent.update(batch)
    # the initial policy's entropy is above the target of -5, so the temperature decreases
    assert info["entropy"] > -5.0
    assert float(new.temperature()) < float(agent.temperature())
    chex.assert_trees_all_close(
        new.target_critic.params,
        target_update(new.critic, agent.target_critic, 0.1).params,
        rtol=1e-6,
    )
    # twin critics are independent networks
    qs = new.critic(batch["observations"], batch["actions"])
    assert qs.shape == (2, 64) and not np.allclose(qs[0], qs[1])
    assert agent.config.target_entropy == -5.0
    default = SAC.create(key=KEY, observations=batch["observations"], actions=jnp.zeros(3))
    assert default.config.target_entropy == -3.0
