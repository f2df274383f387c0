"""Observation normalisation and reward scaling of the RL trainers (realax.train.rl._normalize):
the statistics against numpy, the trainers' hooks, and the program unchanged when off."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realax.agents import DQN, PPO
from realax.tasks import RunningStats
from realax.train import _loops
from realax.train.rl import NormalizedAgent, OffPolicyTrainer, OnPolicyTrainer, evaluate
from realax.train.rl._normalize import Normalizer, discounted_returns

PPO_KW = dict(num_envs=4, num_steps=16, agent_kwargs={"hidden_dims": (8,)})


def _rollout(seed=0, t=6, n=3, d=2):
    rng = np.random.default_rng(seed)
    obs = rng.normal(3.0, 2.0, (t, n, d)).astype(np.float32)
    rewards = rng.normal(1.0, 1.0, (t, n)).astype(np.float32)
    dones = rng.random((t, n)) < 0.3
    return jnp.asarray(obs), jnp.asarray(rewards), jnp.asarray(dones)


def _python_returns(rewards, dones, gamma, start):
    g, out = np.array(start, np.float64), []
    for r, d in zip(np.asarray(rewards), np.asarray(dones), strict=True):
        g = gamma * g + r
        out.append(g.copy())
        g = np.where(d, 0.0, g)
    return np.stack(out), g


def test_update_matches_numpy_and_merges_rollouts():
    norm = Normalizer(normalize_obs=True, normalize_reward=True, gamma=0.9)
    state = norm.init((2,), 3)
    obs, rewards, dones = _rollout(0)
    obs2, rewards2, dones2 = _rollout(1)
    one = norm.update(state, obs, rewards, dones, None)
    np.testing.assert_allclose(one.obs.mean, obs.reshape(-1, 2).mean(0), rtol=1e-6)
    np.testing.assert_allclose(one.obs.var, obs.reshape(-1, 2).var(0), rtol=1e-5)
    returns, end = _python_returns(rewards, dones, 0.9, np.zeros(3))
    np.testing.assert_allclose(one.ret.var, returns.var(), rtol=1e-5)
    np.testing.assert_allclose(one.disc_return, end, rtol=1e-6)
    # the accumulators carry over to the next rollout; statistics merge exactly (Chan)
    two = norm.update(one, obs2, rewards2, dones2, None)
    returns2, _ = _python_returns(rewards2, dones2, 0.9, end)
    both = np.concatenate([obs.reshape(-1, 2), obs2.reshape(-1, 2)])
    np.testing.assert_allclose(two.obs.mean, both.mean(0), rtol=1e-6)
    np.testing.assert_allclose(two.obs.var, both.var(0), rtol=1e-5)
    np.testing.assert_allclose(two.ret.var, np.concatenate([returns, returns2]).var(), rtol=1e-5)
    assert float(two.obs.count) == 36.0 == float(two.ret.count)


def test_discounted_returns_reset_after_episode_ends():
    rewards = jnp.ones((4, 1))
    dones = jnp.array([[False], [True], [False], [False]])
    returns, end = discounted_returns(jnp.zeros(1), rewards, dones, 0.5)
    np.testing.assert_allclose(returns[:, 0], [1.0, 1.5, 1.0, 1.5])
    np.testing.assert_allclose(end, [1.5])


def test_obs_and_reward_scaling_use_the_statistics_and_clip():
    norm = Normalizer(normalize_obs=True, normalize_reward=True, obs_clip=1.5, reward_clip=2.0)
    empty = norm.init((2,), 2)
    x = jnp.array([[4.0, -4.0]])
    np.testing.assert_array_equal(norm.obs(empty, x), x)  # identity until 2 observations
    np.testing.assert_array_equal(norm.rewards(empty, jnp.array([5.0])), [5.0])
    stats = RunningStats.from_batch(jnp.array([[0.0, 0.0], [2.0, 2.0]]))  # mean 1, var 1
    ret = RunningStats.from_batch(jnp.array([0.0, 4.0]))  # var 4: rewards halved
    full = empty.replace(obs=stats, ret=ret)
    np.testing.assert_allclose(norm.obs(full, jnp.array([1.5, 9.0])), [0.5, 1.5], rtol=1e-6)
    np.testing.assert_allclose(norm.rewards(full, jnp.array([1.0, 9.0])), [0.5, 2.0], rtol=1e-6)
    assert Normalizer().init((2,), 2) is None  # both off: no state


def _n_ops(trainer):
    lowered = _loops.lower(trainer.algorithm, trainer.initialize(jax.random.key(0)), n_steps=2)
    return sum("stablehlo." in line for line in lowered.as_text().splitlines())


@pytest.mark.slow
def test_off_by_default_keeps_the_program():
    """Without normalisation the state has no statistics and the hooks trace nothing (the
    lowered program was checked identical, text for text, to the one before normalisation
    existed); with it the step has operations of its own."""
    off = OnPolicyTrainer(PPO, "CartPole-v1", train_steps=2, eval_episodes=2, **PPO_KW)
    state = off.initialize(jax.random.key(0))
    assert state.norm is None and off.policy(state) is state.agent
    both = OnPolicyTrainer(
        PPO, "CartPole-v1", train_steps=2, eval_episodes=2, normalize_obs=True,
        normalize_reward=True, **PPO_KW,
    )  # fmt: skip
    assert _n_ops(off) < _n_ops(both)


@pytest.mark.slow
def test_ppo_counts_every_rollout_and_hands_out_the_normalised_policy():
    trainer = OnPolicyTrainer(
        PPO, "CartPole-v1", train_steps=3, eval_episodes=2, normalize_obs=True,
        normalize_reward=True, **PPO_KW,
    )  # fmt: skip
    state, metrics = trainer.init_and_train(jax.random.key(0))
    assert float(state.norm.obs.count) == 3 * 4 * 16 == float(state.norm.ret.count)
    assert state.norm.disc_return.shape == (4,)
    assert np.isfinite(metrics["loss"]).all()
    policy = trainer.policy(state)
    assert isinstance(policy, NormalizedAgent) and policy.obs_stats is state.norm.obs
    returns, lengths = evaluate(policy, trainer.env, jax.random.key(1), episodes=3)
    assert returns.shape == (3,) and (lengths > 0).all()


@pytest.mark.slow
def test_dqn_stores_raw_rows_and_counts_them():
    """The replay buffer keeps raw observations: the running statistics are those of the
    buffer's rows (it never wrapped around here)."""
    trainer = OffPolicyTrainer(
        DQN, "CartPole-v1", buffer_size=512, batch_size=32, learning_starts=64, train_freq=8,
        train_steps=12, num_envs=2, eval_episodes=2, agent_kwargs={"hidden_dims": (16,)},
        normalize_obs=True, normalize_reward=True,
    )  # fmt: skip
    state, metrics = trainer.init_and_train(jax.random.key(0))
    size = int(state.buffer.size)
    assert size == 12 * 8 * 2 == float(state.norm.obs.count)
    rows = np.asarray(state.buffer.data.obs[:size])
    np.testing.assert_allclose(state.norm.obs.mean, rows.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(state.norm.obs.var, rows.var(0), rtol=1e-4, atol=1e-6)
    assert np.isfinite(metrics["loss"][-1])


@pytest.mark.parametrize(
    ("kw", "error", "words"),
    [
        ({"normalize_obs": "yes"}, TypeError, "normalize_obs"),
        ({"normalize_reward": 1}, TypeError, "normalize_reward"),
        ({"obs_clip": 0.0}, ValueError, "obs_clip"),
        ({"reward_clip": -1}, ValueError, "reward_clip"),
    ],
)
def test_bad_options_are_named(kw, error, words):
    with pytest.raises(error, match=words):
        OnPolicyTrainer(PPO, "CartPole-v1", train_steps=1, **PPO_KW, **kw)


def test_recurrent_agents_refuse_normalisation_before_compiling():
    from realax.agents import RecurrentPPO

    with pytest.raises(ValueError, match="not supported with a recurrent agent"):
        OnPolicyTrainer(
            RecurrentPPO,
            "CartPole-v1",
            num_envs=4,
            num_steps=8,
            train_steps=1,
            normalize_obs=True,
            agent_kwargs={"num_minibatches": 2},
        )
