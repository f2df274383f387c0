"""RL trainers learn: PPO solves CartPole-v1 (8 seeds in one program), DQN solves CartPole-v1,
SAC reaches a mean return above -250 on Pendulum-v1, PPO improves on brax inverted_pendulum;
and the default settings of ``realax train ppo|dqn|sac`` (the agents' own defaults and the
trainer settings the CLI passes, spelled out below) solve CartPole-v1 / Pendulum-v1.

Returns are those of the greedy / deterministic policy on fresh environments, evaluated inside
the compiled loop, unless said otherwise.
"""

import jax
import numpy as np
import optax
import pytest
from realax.agents import DQN, PPO, SAC
from realax.train.rl import OffPolicyTrainer, OnPolicyTrainer


@pytest.mark.slow
def test_ppo_solves_cartpole_with_8_seeds_in_one_program():
    # PureJaxRL's CartPole configuration: 4 envs x 128 steps, 4 epochs x 4 minibatches,
    # lr 2.5e-4 annealed to 0, 5e5 environment steps (976 updates)
    trainer = OnPolicyTrainer(
        PPO,
        "CartPole-v1",
        num_envs=4,
        num_steps=128,
        total_env_steps=500_000,
        anneal_lr=True,
        agent_kwargs=dict(learning_rate=2.5e-4, update_epochs=4, num_minibatches=4),
        eval_freq=100,
        eval_episodes=16,
    )
    states, metrics, timing = trainer.run(jax.random.split(jax.random.key(0), 8))
    final = np.asarray(states.eval_return)
    print("final eval returns per seed:", final, timing)
    assert final.shape == (8,)
    assert np.sum(final >= 475) >= 6, final  # most seeds solve it
    assert np.median(final) >= 475, final
    assert int(states.env_steps[0]) == 976 * 512 <= 500_000


@pytest.mark.slow
def test_dqn_solves_cartpole():
    # CleanRL/PureJaxRL-style DQN (hard target updates every 500 env steps, MSE TD loss)
    trainer = OffPolicyTrainer(
        DQN,
        "CartPole-v1",
        buffer_size=10_000,
        batch_size=128,
        learning_starts=10_000,
        train_freq=1,
        gradient_steps=1,
        num_envs=10,
        total_env_steps=150_000,
        epsilon=optax.linear_schedule(1.0, 0.05, 37_500),
        agent_kwargs=dict(
            learning_rate=2.5e-4, hidden_dims=(120, 84), target_update_period=50, loss="mse"
        ),
        eval_episodes=16,
    )
    state, metrics, timing = trainer.run(jax.random.key(0))
    print("eval returns:", np.asarray(metrics["eval_return"])[trainer.eval_freq - 1 :: 1500])
    print(timing)
    assert float(state.eval_return) >= 475
    assert float(np.nanmean(metrics["episode_return"][-500:])) >= 400  # with epsilon 0.05


@pytest.mark.slow
def test_sac_reaches_minus_250_on_pendulum():
    trainer = OffPolicyTrainer(
        SAC,
        "Pendulum-v1",
        buffer_size=20_000,
        batch_size=128,
        learning_starts=1_000,
        train_freq=1,
        gradient_steps=1,
        total_env_steps=12_000,
        agent_kwargs=dict(hidden_dims=(64, 64)),
        eval_freq=1_000,
        eval_episodes=8,
    )
    state, metrics, timing = trainer.run(jax.random.key(0))
    evals = np.asarray(metrics["eval_return"])[trainer.eval_freq - 1 :: trainer.eval_freq]
    print("eval returns:", evals, timing)
    assert evals[0] < -700  # before learning: the pendulum hangs down
    assert float(state.eval_return) > -250


@pytest.mark.slow
def test_ppo_improves_on_brax_inverted_pendulum():
    # no in-loop evaluation here: it would compile brax's step a second time
    trainer = OnPolicyTrainer(
        PPO,
        "inverted_pendulum",
        num_envs=16,
        num_steps=64,
        train_steps=60,
        anneal_lr=True,
        agent_kwargs=dict(learning_rate=1e-3, hidden_dims=(32, 32)),
        eval_episodes=0,
    )
    state, metrics, timing = trainer.run(jax.random.key(0))
    returns = np.asarray(metrics["episode_return"])
    print("training episode returns:", returns.round(1), timing)
    first, last = np.nanmean(returns[:3]), np.nanmean(returns[-10:])
    assert first < 40
    assert last > 4 * first and last > 120


# --------------------------------------------------------------- the defaults of `realax train`
# The trainer settings of `realax train <algo> <env>` with nothing else given (64x64 networks,
# 32 evaluation episodes) and every agent setting left at its `create` default.
CLI_AGENT_KWARGS = {"hidden_dims": (64, 64)}


@pytest.mark.slow
def test_dqn_defaults_solve_cartpole_with_8_seeds_in_one_program():
    # 195 train steps of 256 env steps, each followed by 128 updates (minibatch 64); epsilon
    # 1.0 -> 0.04 over the first 16% of the run. Before: 50,000 env steps, one Huber update
    # per step, target copy every 100 updates: Q-values grew to ~1e7 and the greedy return
    # stayed at 9.4. DQN's greedy policy on CartPole still drops now and then (measured on
    # 32 seeds: 25 >= 475 at the end, the others 129-470), so most seeds must solve it, not
    # all. The seeds are those of `realax train dqn --seed 0..7` (fold_in(key(seed), 1)).
    trainer = OffPolicyTrainer(
        DQN,
        "CartPole-v1",
        buffer_size=50_000,
        batch_size=64,
        learning_starts=1_000,
        train_freq=256,
        gradient_steps=128,
        total_env_steps=50_000,
        num_envs=1,
        epsilon=optax.linear_schedule(1.0, 0.04, 8_000),
        agent_kwargs=CLI_AGENT_KWARGS,
        eval_episodes=32,
    )
    keys = jax.numpy.stack([jax.random.fold_in(jax.random.key(s), 1) for s in range(8)])
    states, metrics, timing = trainer.run(keys)
    final = np.asarray(states.eval_return)
    q = np.asarray(metrics["q"])
    print("final eval returns per seed:", final, "max mean Q:", np.nanmax(q), timing)
    assert final.shape == (8,)
    assert np.sum(final >= 475) >= 6, final
    assert np.median(final) >= 475, final
    # no divergence: returns of at most 500 with discount 0.99 bound Q by 100
    assert np.nanmax(q) < 150


@pytest.mark.slow
def test_ppo_defaults_solve_cartpole():
    # 8 envs x 128 steps per train step, 488 train steps (499,712 env steps), annealed lr
    trainer = OnPolicyTrainer(
        PPO,
        "CartPole-v1",
        num_envs=8,
        num_steps=128,
        total_env_steps=500_000,
        anneal_lr=True,
        agent_kwargs=CLI_AGENT_KWARGS,
        eval_episodes=32,
    )
    state, metrics, timing = trainer.run(jax.random.key(0))
    evals = np.asarray(metrics["eval_return"])[trainer.eval_freq - 1 :: trainer.eval_freq]
    print("eval returns:", evals, timing)
    assert float(state.eval_return) >= 475


@pytest.mark.slow
def test_sac_defaults_reach_minus_250_on_pendulum():
    # `realax train sac`'s settings (cli/_rl.py sac_settings): 30,000 env steps, every 50 an
    # update phase of 50 (minibatch 256), after 1,000 uniform-action steps
    trainer = OffPolicyTrainer(
        SAC,
        "Pendulum-v1",
        buffer_size=30_000,
        batch_size=256,
        learning_starts=1_000,
        train_freq=50,
        gradient_steps=50,
        total_env_steps=30_000,
        num_envs=1,
        agent_kwargs=CLI_AGENT_KWARGS,
        eval_episodes=32,
    )
    state, metrics, timing = trainer.run(jax.random.key(0))
    evals = np.asarray(metrics["eval_return"])[trainer.eval_freq - 1 :: trainer.eval_freq]
    print("eval returns:", evals, timing)
    assert float(state.eval_return) > -250
