"""Recurrent PPO in OnPolicyTrainer: hidden states in the state, reset at episode ends,
carried through greedy evaluation; and the partially observable task it exists for: CartPole
with the velocities hidden, which the recurrent agent solves and feed-forward PPO does not."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import realax.tasks as rt
from realax.agents import PPO, RecurrentPPO
from realax.train.rl import OnPolicyTrainer, collect, evaluate
from realax.train.rl._recurrent import recurrent_rollout

SMALL = {"hidden_size": 8, "hidden_dims": (8,), "head_dims": (8,), "num_minibatches": 2}


def masked_cartpole(**kw):
    return rt.mask_observation(rt.make("CartPole-v1", **kw), keep=[0, 2])


def test_hidden_states_live_in_the_state_reset_at_episode_ends_and_evaluate():
    # 4-step episodes and 4-step rollouts: every environment's episode ends at the last step
    env = masked_cartpole(max_steps=4)
    trainer = OnPolicyTrainer(
        RecurrentPPO, env, num_envs=4, num_steps=4, train_steps=2, eval_episodes=2,
        agent_kwargs=SMALL,
    )  # fmt: skip
    state = trainer.initialize(jax.random.key(0))
    assert state.hidden.shape == (4, 8) and not np.any(np.asarray(state.hidden))
    carry, rollout, _ = jax.jit(lambda s: recurrent_rollout(trainer, s, jax.random.key(1)))(state)
    assert bool(jnp.all(rollout.dones[-1])) and not bool(jnp.any(rollout.dones[:-1]))
    assert not np.any(np.asarray(carry[-1]))  # reset after the episode ended
    # V of the final observation with the hidden state it was seen with, not a fresh one
    assert rollout.next_values.shape == (4, 4) and np.all(np.isfinite(rollout.next_values))
    np.testing.assert_allclose(rollout.next_values[:-1], rollout.values[1:], rtol=1e-5)

    final, metrics = trainer.train(state)
    assert final.hidden.shape == (4, 8)  # zeros: every rollout ended every episode
    assert np.isfinite(metrics["eval_return"][-1]) and np.all(np.isfinite(metrics["loss"]))
    returns, lengths = evaluate(final.agent, env, jax.random.key(2), episodes=3)
    assert returns.shape == (3,) and np.all(np.asarray(lengths) <= 4)
    data = collect(final.agent, env, jax.random.key(3), num_steps=16, num_envs=2)
    assert data.size == 16 and data["observations"].shape == (16, 2)


def test_minibatches_of_whole_environments_are_checked_before_compiling():
    with pytest.raises(ValueError, match="minibatches are whole environments"):
        OnPolicyTrainer(
            RecurrentPPO, "CartPole-v1", num_envs=6, num_steps=8, train_steps=1,
            agent_kwargs={**SMALL, "num_minibatches": 4},
        )  # fmt: skip


# measured (CPU, seed 0): recurrent greedy return 486 at the end; feed-forward PPO, same
# budget and settings, 41-46 throughout
BUDGET = {"num_envs": 8, "num_steps": 128, "total_env_steps": 200_000, "anneal_lr": True}
SOLVED, HALF = 400.0, 200.0


@pytest.mark.slow
def test_recurrent_ppo_solves_masked_cartpole_where_feed_forward_ppo_fails():
    env = masked_cartpole()
    rnn = {"learning_rate": 1e-3, "hidden_size": 64, "hidden_dims": (64,), "head_dims": (64,)}
    _, m_rnn = OnPolicyTrainer(
        RecurrentPPO, env, **BUDGET, agent_kwargs=rnn, eval_episodes=16
    ).init_and_train(jax.random.key(0))
    _, m_ff = OnPolicyTrainer(
        PPO, env, **BUDGET, agent_kwargs={"learning_rate": 1e-3, "hidden_dims": (64, 64)},
        eval_episodes=16,
    ).init_and_train(jax.random.key(0))  # fmt: skip
    rnn_final, ff = float(m_rnn["eval_return"][-1]), np.asarray(m_ff["eval_return"])
    print("recurrent", rnn_final, "feed-forward max", np.nanmax(ff))
    assert rnn_final >= SOLVED
    assert np.nanmax(ff) < HALF


def test_cli_recurrent_and_obs_keep_flags():
    from realax.train.cli._config import CliError
    from realax.train.cli._rl import build
    from realax.train.cli._schema import TrainConfig, with_algo_defaults

    config = with_algo_defaults(
        TrainConfig(
            algo="ppo", env="CartPole-v1", steps=4096, recurrent="gru", width=16, obs_keep="0,2"
        )
    )
    trainer = build(config).trainer
    agent = trainer._abstract_agent()
    assert trainer.env.obs_shape == (2,) and trainer.eval_env.obs_shape == (2,)
    assert isinstance(agent, RecurrentPPO) and agent.config.hidden_size == 16
    assert agent.config.hidden_dims == (16,) and agent.config.cell == "gru"
    dqn = with_algo_defaults(TrainConfig(algo="dqn", env="CartPole-v1", recurrent="gru"))
    with pytest.raises(CliError, match="--recurrent needs ppo"):
        build(dqn)
    with pytest.raises(CliError, match="--obs-keep takes comma-separated"):
        build(config.replace(obs_keep="0,x"))
