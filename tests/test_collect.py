"""realax.train.rl.collect: transitions of an agent or a policy as a Dataset, with masks
(terminations only), dones (every episode end) and the final observation at an episode end."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import realax.tasks as rt
from realax.agents import PPO, SAC, Dataset
from realax.train.rl import OffPolicyTrainer, OnPolicyTrainer, ReplayBuffer, collect


def lean(obs, key):
    """A fair CartPole policy: push towards the pole's lean."""
    return jnp.int32(obs[2] > 0)


@pytest.fixture(scope="module")
def cartpole():
    # max_steps=30: episodes of the lean policy end both by termination and by truncation
    env = rt.make("CartPole-v1").replace(max_steps=30)
    return env, collect(lean, env, jax.random.key(0), num_steps=600, num_envs=3)


def test_keys_shapes_and_dtypes(cartpole):
    _, data = cartpole
    assert isinstance(data, Dataset) and data.size == 600
    assert sorted(data) == sorted(
        ["observations", "actions", "rewards", "masks", "dones", "next_observations"]
    )
    assert data["observations"].shape == data["next_observations"].shape == (600, 4)
    assert data["actions"].dtype == jnp.int32 and data["actions"].shape == (600,)
    assert data["rewards"].dtype == data["masks"].dtype == jnp.float32
    assert data["dones"].dtype == jnp.bool_


def test_masks_dones_and_next_observations(cartpole):
    env, data = cartpole
    obs, nxt = np.asarray(data["observations"]), np.asarray(data["next_observations"])
    masks, dones = np.asarray(data["masks"]), np.asarray(data["dones"])
    # every termination is an episode end; some episode ends are truncations (masks 1)
    assert np.all(dones[masks == 0])
    assert (masks == 0).sum() > 0 and (dones & (masks == 1)).sum() > 0
    # within an episode the next observation is the next row's observation
    inside = ~dones[:-1]
    np.testing.assert_array_equal(nxt[:-1][inside], obs[1:][inside])
    # at a termination the next observation is the final one (the pole has fallen), not a
    # fresh reset (all values within +-0.05)
    term = np.nonzero(masks == 0)[0]
    assert np.all(np.abs(nxt[term, 2]) > 0.2)
    # each environment's block of 200 rows ends with a done (cut by the end of collection)
    assert dones[199] and dones[399] and dones[599]
    # the lean policy is deterministic: actions follow the observations
    np.testing.assert_array_equal(np.asarray(data["actions"]), (obs[:, 2] > 0).astype(np.int32))
    # the episode returns are the episodes' lengths (reward 1 per step), at most 30
    returns = data.episode_returns()
    assert returns.max() <= 30 and returns.sum() == 600


def test_same_key_same_data_and_epsilon_one_is_uniform():
    a = collect(lean, "CartPole-v1", jax.random.key(3), num_steps=64, num_envs=2, epsilon=1.0)
    b = collect(lean, "CartPole-v1", jax.random.key(3), num_steps=64, num_envs=2, epsilon=1.0)
    jax.tree.map(np.testing.assert_array_equal, a.arrays, b.arrays)
    obs = np.asarray(a["observations"])
    agree = np.mean(np.asarray(a["actions"]) == (obs[:, 2] > 0))
    assert 0.25 < agree < 0.75  # random actions, not the policy's


def test_agents_discrete_and_continuous():
    ppo = OnPolicyTrainer(PPO, "CartPole-v1", num_envs=2, num_steps=8, train_steps=1)
    agent = ppo.initialize(jax.random.key(0)).agent
    data = collect(agent, "CartPole-v1", jax.random.key(1), num_steps=40, epsilon=0.1)
    assert data.size == 40 and data["actions"].dtype == jnp.int32

    sac = OffPolicyTrainer(SAC, "Pendulum-v1", buffer_size=64, batch_size=8, train_steps=1,
                           learning_starts=0, eval_episodes=0,
                           agent_kwargs={"hidden_dims": (8,)})  # fmt: skip
    agent = sac.initialize(jax.random.key(0)).agent
    data = collect(agent, "Pendulum-v1", jax.random.key(1), num_steps=400, num_envs=2)
    actions = np.asarray(data["actions"])
    assert actions.shape == (400, 1) and np.abs(actions).max() <= 1.0
    assert np.all(np.asarray(data["masks"]) == 1.0)  # Pendulum never terminates
    dones = np.nonzero(np.asarray(data["dones"]))[0]
    np.testing.assert_array_equal(dones, [199, 399])  # its 200-step time limit


def test_replay_buffer_from_dataset(cartpole):
    _, data = cartpole
    buf = ReplayBuffer.from_dataset(data, capacity=1000)
    assert int(buf.size) == 600 and int(buf.pos) == 600 and buf.capacity == 1000
    np.testing.assert_array_equal(buf.data.obs[:600], data["observations"])
    np.testing.assert_array_equal(buf.data.terminated[:600], np.asarray(data["masks"]) == 0)
    with pytest.raises(ValueError, match="capacity>=600"):
        ReplayBuffer.from_dataset(data, capacity=100)


def test_off_policy_trainer_prefill(cartpole):
    from realax.agents import DQN

    _, data = cartpole
    trainer = OffPolicyTrainer(DQN, "CartPole-v1", buffer_size=1000, batch_size=16,
                               learning_starts=0, train_freq=4, train_steps=3, eval_episodes=0,
                               prefill=data, agent_kwargs={"hidden_dims": (8,)})  # fmt: skip
    state = trainer.initialize(jax.random.key(0))
    assert int(state.buffer.size) == 600
    state, metrics = trainer.train(state)
    assert int(state.buffer.size) == 612 and int(metrics["updates"][0]) == 1
    with pytest.raises(ValueError, match="buffer_size>=600"):
        OffPolicyTrainer(DQN, "CartPole-v1", buffer_size=100, train_steps=1, prefill=data)


def test_bad_arguments():
    with pytest.raises(ValueError, match="multiple of num_envs"):
        collect(lean, "CartPole-v1", jax.random.key(0), num_steps=10, num_envs=3)
    with pytest.raises(ValueError, match="epsilon"):
        collect(lean, "CartPole-v1", jax.random.key(0), num_steps=10, epsilon=1.5)
    with pytest.raises(TypeError, match="policy"):
        collect(42, "CartPole-v1", jax.random.key(0), num_steps=10)
