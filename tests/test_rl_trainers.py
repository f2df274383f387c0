"""realax.train.rl trainers on real gymnax environments: metrics, state, truncation
bootstrapping, errors before compilation, seeds, checkpoints and exact resume, the rl extra.
"""

import functools
import os
import subprocess
import sys

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import realax.log as rlog
from realax.agents import DQN, PPO, SAC
from realax.train.rl import (
    OffPolicyTrainer,
    OnPolicyTrainer,
    RLState,
    default_rl_metrics,
    evaluate,
)

SMALL = {"hidden_dims": (16,)}


def _ppo(**kw):
    args = dict(num_envs=4, num_steps=16, train_steps=4, eval_freq=2, eval_episodes=4)
    args.update(kw)
    return OnPolicyTrainer(PPO, "CartPole-v1", agent_kwargs=SMALL, **args)


def _dqn(**kw):
    args = dict(
        buffer_size=256,
        batch_size=32,
        learning_starts=40,
        train_freq=4,
        train_steps=10,
        num_envs=2,
        eval_freq=5,
        eval_episodes=2,
        # explicit: the default schedule depends on the run length
        epsilon=optax.linear_schedule(1.0, 0.05, 50),
    )
    args.update(kw)
    return OffPolicyTrainer(DQN, "CartPole-v1", agent_kwargs=SMALL, **args)


def _assert_bit_identical(a, b, same_statics=True):
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    # agents built by two trainers hold distinct (unequal) optimiser closures
    assert tree_a == tree_b or not same_statics
    assert tree_a.num_leaves == tree_b.num_leaves
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), strict=True)


@jax.jit
@jax.vmap
def _cartpole_next_obs(obs, action):
    """gymnax CartPole's own dynamics from an observation (x, x_dot, theta, theta_dot)."""
    env, params = gymnax.make("CartPole-v1")
    state = gymnax.environments.classic_control.cartpole.EnvState(
        time=0, x=obs[0], x_dot=obs[1], theta=obs[2], theta_dot=obs[3]
    )
    next_obs, *_ = env.step_env(jax.random.key(0), state, action, params)
    return next_obs


# ----------------------------------------------------------------------------- on-policy


def test_ppo_trainer_metrics_state_and_evaluation_schedule():
    trainer = _ppo(train_steps=5, eval_freq=2)
    state, metrics = trainer.init_and_train(jax.random.key(0))
    assert isinstance(state, RLState) and isinstance(state.agent, PPO)
    assert int(state.step) == 5 and int(state.env_steps) == 5 * 4 * 16
    assert state.obs.shape == (4, 4) and state.episode_return.shape == (4,)
    assert jax.tree.leaves(state.env_state)[0].shape[0] == 4
    for name in (
        "episode_return",
        "episode_length",
        "episodes",
        "eval_return",
        "eval_length",
        "env_steps",
        "loss",
        "actor_loss",
        "value_loss",
        "entropy",
        "approx_kl",
    ):
        assert metrics[name].shape == (5,), name
    np.testing.assert_array_equal(metrics["env_steps"], 64 * np.arange(1, 6))
    # evaluations after steps 2, 4 and the last one (5); NaN length elsewhere
    evaluated = ~np.isnan(np.asarray(metrics["eval_length"]))
    np.testing.assert_array_equal(evaluated, [False, True, False, True, True])
    assert np.isnan(metrics["eval_return"][0]) and float(state.eval_return) > 0
    assert float(metrics["eval_return"][-1]) == float(state.eval_return)
    # finished episodes: CartPole gives 1 per step, so mean return == mean length
    ok = metrics["episodes"] > 0
    assert ok.any()
    np.testing.assert_allclose(metrics["episode_return"][ok], metrics["episode_length"][ok])
    assert np.all(np.isfinite(metrics["loss"]))


def test_ppo_rollout_bootstraps_truncated_episodes_from_the_final_observation():
    trainer = OnPolicyTrainer(
        PPO,
        "CartPole-v1",
        num_envs=2,
        num_steps=12,
        train_steps=1,
        eval_episodes=0,
        agent_kwargs=SMALL,
        env_kwargs={"max_steps": 5},
    )
    state = trainer.initialize(jax.random.key(1))
    rollout = jax.jit(trainer._rollout)(state, jax.random.key(2))[1]
    dones, terms = np.asarray(rollout.dones), np.asarray(rollout.terminated)
    # a random policy keeps the pole up for 5 steps: every 5th step is a truncation
    np.testing.assert_array_equal(dones[:, 0], np.arange(1, 13) % 5 == 0)
    assert not terms.any()
    obs, values = rollout.obs, np.asarray(rollout.values)
    next_values = np.asarray(rollout.next_values)
    # inside an episode V' is the value of the next visited state
    inside = ~dones[:-1]
    np.testing.assert_allclose(next_values[:-1][inside], values[1:][inside], rtol=1e-5)
    # at a truncation V' is the value of the true final observation, not of the reset one
    t = np.array([4, 9])
    final = _cartpole_next_obs(obs[t].reshape(4, 4), rollout.actions[t].reshape(4))
    expected = np.asarray(state.agent.value(final)).reshape(2, 2)
    np.testing.assert_allclose(next_values[t], expected, rtol=1e-5)
    assert np.all(np.abs(next_values[t] - values[t + 1]) > 1e-4)


# ----------------------------------------------------------------------------- off-policy


def test_dqn_trainer_buffer_keeps_final_observations_and_bootstrap_masks():
    trainer = _dqn(
        env_kwargs={"max_steps": 6},
        epsilon=1.0,
        learning_starts=10**6,
        train_steps=6,
        eval_episodes=0,
    )
    state, metrics = trainer.init_and_train(jax.random.key(3))
    buf = state.buffer
    assert int(buf.size) == 6 * 4 * 2 and buf.capacity == 256
    n = int(buf.size)
    data = jax.tree.map(lambda x: np.asarray(x[:n]).reshape(24, 2, *x.shape[1:]), buf.data)
    # every stored next observation is the env's own step from the stored observation:
    # also at truncations (every 6th step), where the env itself was reset
    expected = _cartpole_next_obs(data.obs.reshape(48, 4), data.actions.reshape(48))
    np.testing.assert_allclose(data.next_obs.reshape(48, 4), expected, atol=1e-6)
    truncated = np.flatnonzero(np.arange(1, 25) % 6 == 0)
    assert np.all(data.masks[truncated] == 1.0)  # truncation: bootstrap
    # the observation after a truncation is a fresh reset, not the stored next observation
    after = truncated[:-1] + 1
    assert np.all(np.abs(data.obs[after]) <= 0.05)
    gap = np.abs(data.next_obs[after - 1] - data.obs[after])
    assert np.all(gap.max(-1) > 1e-3)
    assert np.all(metrics["updates"] == 0) and np.all(np.isnan(metrics["loss"]))


def test_dqn_learning_starts_epsilon_schedule_and_updates():
    trainer = _dqn(learning_starts=40, train_freq=4, gradient_steps=3, train_steps=10, epsilon=None)
    state, metrics = trainer.init_and_train(jax.random.key(0))
    # 8 env steps per train step: updates start once 40 transitions were collected
    np.testing.assert_array_equal(metrics["updates"], [0, 0, 0, 0, 3, 3, 3, 3, 3, 3])
    assert int(state.agent.q.step) == 18
    assert np.all(np.isnan(metrics["loss"][:4])) and np.all(np.isfinite(metrics["loss"][4:]))
    # default: 1 -> 0.05 over the first half (40 env steps) of the run; the metric is the
    # rate of the step's last action, taken after 6, 14, 22, ... env steps
    eps = np.asarray(metrics["epsilon"])
    np.testing.assert_allclose(eps[:5], 1.0 - 0.95 * np.array([6, 14, 22, 30, 38]) / 40, rtol=1e-5)
    np.testing.assert_allclose(eps[5:], 0.05, rtol=1e-5)


def test_sac_trainer_rescales_actions_to_the_env_bounds():
    trainer = OffPolicyTrainer(
        SAC,
        "Pendulum-v1",
        buffer_size=128,
        batch_size=16,
        learning_starts=16,
        train_freq=4,
        train_steps=4,
        num_envs=2,
        eval_episodes=2,
        eval_max_steps=20,
        agent_kwargs=SMALL,
    )
    np.testing.assert_allclose(
        trainer._to_env_action(jnp.array([[-1.0], [0.0], [1.0]])), [[-2.0], [0.0], [2.0]]
    )
    state, metrics = trainer.init_and_train(jax.random.key(0))
    actions = np.asarray(state.buffer.data.actions[: int(state.buffer.size)])
    assert actions.shape == (32, 1) and np.all(np.abs(actions) <= 1.0)
    assert np.isfinite(metrics["critic_loss"][-1]) and np.isfinite(metrics["eval_return"][-1])
    assert -20 * 16.3 <= float(state.eval_return) <= 0.0  # Pendulum: reward in [-16.3, 0]


# ----------------------------------------------------------------------------- seeds, timing


def test_seeds_train_in_one_program_and_run_reports_env_steps_per_second():
    trainer = _ppo(train_steps=3)
    keys = jax.random.split(jax.random.key(0), 3)
    states, metrics, timing = trainer.run(keys)
    assert states.obs.shape == (3, 4, 4) and metrics["loss"].shape == (3, 3)
    assert not np.allclose(metrics["loss"][0], metrics["loss"][1])
    # each seed equals its own single run
    single, single_metrics = trainer.init_and_train(keys[1])
    np.testing.assert_allclose(metrics["loss"][1], single_metrics["loss"], rtol=1e-5)
    np.testing.assert_allclose(states.obs[1], single.obs, rtol=1e-5)
    assert timing["env_steps"] == 3 * 3 * 64
    assert timing["env_steps_per_second"] > 0 and timing["compile_seconds"] > 0


# ----------------------------------------------------------------------------- errors


def test_bad_arguments_are_reported_before_compiling():
    with pytest.raises(ValueError, match="num_minibatches=4"):
        OnPolicyTrainer(PPO, "CartPole-v1", num_envs=3, num_steps=5, train_steps=1)
    with pytest.raises(TypeError, match="For DQN or SAC use OffPolicyTrainer"):
        OnPolicyTrainer(DQN, "CartPole-v1", num_steps=16, train_steps=1)
    with pytest.raises(ValueError, match="exactly one of train_steps"):
        OnPolicyTrainer(PPO, "CartPole-v1", train_steps=2, total_env_steps=1000)
    with pytest.raises(ValueError, match="total_env_steps=100 is less than one train step"):
        OnPolicyTrainer(PPO, "CartPole-v1", total_env_steps=100)
    with pytest.raises(ValueError, match="n_devices=64 but only"):
        OnPolicyTrainer(PPO, "CartPole-v1", train_steps=1, n_devices=64)
    with pytest.raises(ValueError, match="unknown|Unknown|close"):
        OnPolicyTrainer(PPO, "CartPol-v1", train_steps=1)
    with pytest.raises(TypeError, match="unknown config key"):
        OnPolicyTrainer(PPO, "CartPole-v1", train_steps=1, agent_kwargs={"lr": 1e-3})
    with pytest.raises(TypeError, match="agent must be an agent class"):
        OnPolicyTrainer(3, "CartPole-v1", train_steps=1)
    with pytest.raises(ValueError, match="epsilon applies to discrete actions only"):
        OffPolicyTrainer(SAC, "Pendulum-v1", train_steps=1, epsilon=0.1)
    with pytest.raises(ValueError, match="epsilon must be a float in"):
        OffPolicyTrainer(DQN, "CartPole-v1", train_steps=1, epsilon=2.0)
    with pytest.raises(ValueError, match="buffer_size must hold"):
        OffPolicyTrainer(DQN, "CartPole-v1", buffer_size=2, num_envs=4, train_steps=1)
    with pytest.raises(ValueError, match="the RL trainers take no data"):
        _ppo().initialize(jax.random.key(0), data={"x": 1})


def test_agents_on_the_wrong_kind_of_actions_name_the_ones_that_fit():
    with pytest.raises(
        ValueError,
        match=r"^SAC needs continuous actions; CartPole-v1 has discrete actions: use DQN or PPO",
    ):
        OffPolicyTrainer(SAC, "CartPole-v1", train_steps=1)
    small_sac = functools.partial(SAC.create, hidden_dims=(8,))
    with pytest.raises(ValueError, match=r"^SAC needs continuous actions; CartPole-v1"):
        OffPolicyTrainer(small_sac, "CartPole-v1", train_steps=1)
    with pytest.raises(
        ValueError,
        match=r"^DQN needs discrete actions; Pendulum-v1 has continuous actions: use SAC or PPO",
    ):
        OffPolicyTrainer(DQN, "Pendulum-v1", train_steps=1)


def test_public_evaluate_is_the_trainers_evaluation():
    trainer = _ppo(train_steps=1, eval_episodes=4)
    state = trainer.initialize(jax.random.key(0))
    key = jax.random.key(5)
    returns, lengths = evaluate(
        state.agent, trainer.eval_env, key, episodes=4, action_fn=trainer.env_action
    )
    assert returns.shape == (4,) and lengths.shape == (4,) and lengths.dtype == jnp.int32
    mean_ret, mean_len = jax.jit(lambda a, k: trainer._evaluate(a, k, jnp.asarray(True), None))(
        state.agent, key
    )
    np.testing.assert_allclose(mean_ret, returns.mean(), rtol=1e-6)
    np.testing.assert_allclose(mean_len, lengths.mean(), rtol=1e-6)
    # the greedy return of CartPole is the episode length; a name works and max_steps cuts
    np.testing.assert_array_equal(returns, lengths)
    short, short_len = evaluate(state.agent, "CartPole-v1", key, episodes=4, max_steps=3)
    assert np.all(np.asarray(short_len) <= 3)
    with pytest.raises(ValueError, match="episodes must be a positive int"):
        evaluate(state.agent, "CartPole-v1", key, episodes=0)


# ----------------------------------------------------------------------------- checkpoints


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    wandb_dir = tmp_path / "wandb_root"
    wandb_dir.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return wandb_dir


@pytest.mark.parametrize("make", [_ppo, _dqn], ids=["ppo", "dqn"])
def test_run_stopped_restored_and_resumed_equals_one_go(make, tmp_path, offline_wandb):
    key = jax.random.key(5)
    ckpt_dir = tmp_path / "ckpt"
    logger = rlog.Logger(
        wandb_log=True, metrics_fn=default_rl_metrics, ckpt_dir=ckpt_dir, ckpt_freq=3
    )
    logger.init(project="rl_resume")
    stopped = make(train_steps=6, eval_freq=2, logger=logger)  # "crashes" after step 6
    at6, _ = stopped.init_and_train(key)
    logger.finish()
    assert rlog.all_steps(ckpt_dir) == [3, 6]
    rows = rlog.read_metrics(ckpt_dir)
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert all("episode_return" in r and "env_steps" in r for r in rows)

    full = make(train_steps=10, eval_freq=2)
    restored = rlog.restore(ckpt_dir, like=full.initialize(jax.random.key(0)))
    # the checkpoint holds the whole run: agent, environment states, replay buffer, keys
    _assert_bit_identical(restored, at6, same_statics=False)
    assert int(restored.step) == 6
    if restored.buffer is not None:
        assert int(restored.buffer.size) == 6 * 4 * 2
        assert np.any(np.asarray(restored.buffer.data.obs) != 0)
    resumed, resumed_metrics = full.resume(restored)
    uninterrupted, metrics = full.init_and_train(key)
    assert int(resumed.step) == 10
    _assert_bit_identical(resumed, uninterrupted)
    for name in metrics:
        np.testing.assert_array_equal(resumed_metrics[name], metrics[name][6:], strict=True)


# ----------------------------------------------------------------------------- the rl extra


def test_realax_train_imports_without_the_rl_extra_and_names_it():
    code = """
import sys
sys.modules["realax.agents"] = None  # as if realax-agents were not installed
import realax.train
assert realax.train.OptaxTrainer
for attempt in ("import realax.train.rl", "realax.train.OnPolicyTrainer"):
    try:
        exec(attempt)
    except ImportError as e:
        assert 'pip install "realax-train[rl]"' in str(e), str(e)
    else:
        raise AssertionError(attempt + " did not raise")
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
