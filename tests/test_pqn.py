"""PQN and C51: the Q(lambda) returns and the distribution projection, the trainer's checks,
and learning tests (fixed seeds): PQN solves CartPole-v1, C51 solves CartPole-v1 with the
trainer settings of ``realax train dqn``, and PQN with the small Nature CNN beats a random
policy on Breakout-MinAtar (the random policy's return measured here with `evaluate`).

Kill/resume and 2-device equality of PQNTrainer are in tests/test_crash_resume_rl.py and
tests/test_rl_devices.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import struct
from realax.agents import C51, PQN
from realax.agents._c51 import project_distribution
from realax.agents._pqn import q_lambda_returns
from realax.train.rl import OffPolicyTrainer, PQNTrainer, evaluate


def test_q_lambda_returns_cut_at_episode_ends():
    rewards = jnp.ones(4)
    next_q = jnp.array([1.0, 2.0, 3.0, 4.0])
    dones = jnp.array([False, True, False, False])  # step 1 ends an episode
    terminated = jnp.array([False, False, False, False])  # by a time limit: bootstrap
    g = q_lambda_returns(rewards, next_q, dones, terminated, discount=0.5, q_lambda=0.5)
    g3 = 1 + 0.5 * 4.0  # last step: bootstrap from next_q
    g2 = 1 + 0.5 * (0.5 * 3.0 + 0.5 * g3)
    g1 = 1 + 0.5 * 2.0  # truncated: next_q of the final observation, no lambda chain
    g0 = 1 + 0.5 * (0.5 * 1.0 + 0.5 * g1)
    np.testing.assert_allclose(g, [g0, g1, g2, g3], rtol=1e-6)
    g = q_lambda_returns(rewards, next_q, dones, dones, discount=0.5, q_lambda=0.5)
    assert float(g[1]) == 1.0  # terminated: no bootstrap


def test_projection_keeps_the_mass():
    atoms = jnp.linspace(0.0, 10.0, 11)
    probs = jax.nn.softmax(jax.random.normal(jax.random.key(0), (5, 11)))
    shifted = 1.3 + 0.9 * atoms  # partly beyond the support
    projected = project_distribution(atoms, jnp.broadcast_to(shifted, (5, 11)), probs)
    np.testing.assert_allclose(projected.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(project_distribution(atoms, atoms, probs), probs, atol=1e-6)


def test_pqn_trainer_checks():
    with pytest.raises(ValueError, match="PQN needs discrete actions; Pendulum-v1"):
        PQNTrainer(PQN, "Pendulum-v1", train_steps=1)
    with pytest.raises(ValueError, match="epsilon must be a float in"):
        PQNTrainer(PQN, "CartPole-v1", train_steps=1, epsilon=2.0)


@pytest.mark.slow
def test_pqn_solves_cartpole():
    # the defaults of PQN and PQNTrainer (32 envs x 32 steps, 2 epochs x 4 minibatches,
    # lambda 0.9, LayerNorm (128, 128)); 195 updates; greedy 500 from update ~110 on (seed 0)
    trainer = PQNTrainer(PQN, "CartPole-v1", total_env_steps=200_000, anneal_lr=True, eval_freq=10)
    state, metrics = trainer.init_and_train(jax.random.key(0))
    evals = np.asarray(metrics["eval_return"])[9::10]
    print("PQN CartPole greedy returns every 10 updates:", evals)
    assert float(state.eval_return) >= 475, evals
    np.testing.assert_allclose(metrics["epsilon"][0], 1.0)
    assert float(metrics["epsilon"][-1]) == pytest.approx(0.05)


@pytest.mark.slow
def test_c51_solves_cartpole():
    # the trainer settings of `realax train dqn` (an update phase of 128 steps on minibatches
    # of 64 every 256 env steps) and C51's defaults (51 atoms on [0, 100])
    steps = 50_000  # greedy 500 from ~25,000 steps on (seed 0); at 30,000 steps it was 164
    trainer = OffPolicyTrainer(
        C51, "CartPole-v1", buffer_size=50_000, learning_starts=1_000, train_freq=256,
        gradient_steps=128, batch_size=64, total_env_steps=steps, eval_freq=10,
        epsilon=optax.linear_schedule(1.0, 0.04, int(0.16 * steps)),
    )  # fmt: skip
    state, metrics = trainer.init_and_train(jax.random.key(0))
    evals = np.asarray(metrics["eval_return"])[9::10]
    print("C51 CartPole greedy returns every 10 update phases:", evals)
    assert float(state.eval_return) >= 475, evals


class RandomAgent(struct.PyTreeNode):
    """Plays uniformly random actions (``evaluate`` passes a key per step and episode)."""

    def sample_actions(self, obs, *, seed, deterministic=False):
        return jax.random.randint(seed, obs.shape[:-3], 0, 3)


@pytest.mark.slow
def test_pqn_with_cnn_beats_random_on_breakout_minatar():
    # 24 updates of 32 envs x 32 steps: greedy return 2.34 (32 episodes) against 0.44 for the
    # random policy (seed 0; 0.94 after 10 updates). With 50,000 steps it reached 5.5, but
    # that run alone cost ~100 s of CPU.
    steps = 25_000
    trainer = PQNTrainer(
        PQN, "Breakout-MinAtar", total_env_steps=steps, anneal_lr=True, eval_freq=1_000,
        eval_episodes=32, agent_kwargs={"encoder": "nature", "hidden_dims": (64,)},
    )  # fmt: skip
    state, metrics = trainer.init_and_train(jax.random.key(0))
    trained = float(state.eval_return)

    returns, _ = evaluate(RandomAgent(), "Breakout-MinAtar", jax.random.key(1), episodes=32)
    random_return = float(np.mean(returns))
    print(f"Breakout-MinAtar greedy return {trained:.2f}, random policy {random_return:.2f}")
    assert trained >= random_return + 1.5 and trained >= 4 * random_return
