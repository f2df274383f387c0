"""Normalisation in the RL trainers, end to end: statistics combined over 2 devices with the
same bits as one device (subprocess), the CLI's --normalize-obs / --normalize-reward through
train, eval and collect, and PPO learning brax inverted_pendulum with normalisation on.
(Kill/resume with normalisation on: the ``ppo-norm`` run of tests/test_crash_resume_rl.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

pytestmark = pytest.mark.slow

DEVICES_SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import PartitionSpec as P
    from realax.agents import DQN, PPO
    from realax.train._mesh import AXIS, make_mesh
    from realax.train.rl import OffPolicyTrainer, OnPolicyTrainer
    from realax.train.rl._normalize import Normalizer

    assert jax.device_count() == 2
    same = lambda a, b: jax.tree.map(
        lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y), strict=True),
        a, b)

    # 1. one update of the statistics from a (time, envs, features) batch split over devices
    norm = Normalizer(normalize_obs=True, normalize_reward=True)
    rng = np.random.default_rng(0)
    obs = jnp.asarray(rng.normal(2.0, 3.0, (32, 8, 5)), jnp.float32)
    rew = jnp.asarray(rng.normal(1.0, 1.0, (32, 8)), jnp.float32)
    done = jnp.asarray(rng.random((32, 8)) < 0.1)
    start = norm.init((5,), 8)
    one = jax.jit(lambda s: norm.update(s, obs, rew, done, None))(start)
    split = jax.shard_map(
        lambda s, o, r, d: norm.update(s, o, r, d, AXIS), mesh=make_mesh(2),
        in_specs=(Normalizer.specs(start), P(None, AXIS), P(None, AXIS), P(None, AXIS)),
        out_specs=Normalizer.specs(start), check_vma=False)
    same(one, jax.jit(split)(start, obs, rew, done))

    # 2. the trainers: the first train step's rollout is the initial agent's on both, so the
    # statistics after it agree bit for bit (the agents then differ by float reassociation
    # of the averaged gradients, as tests/test_rl_devices.py states)
    on = dict(normalize_obs=True, normalize_reward=True, eval_episodes=0)
    ppo = lambda n: OnPolicyTrainer(PPO, "CartPole-v1", num_envs=4, num_steps=16, train_steps=1,
                                    n_devices=n, agent_kwargs={"hidden_dims": (8,)}, **on)
    same(ppo(1).init_and_train(jax.random.key(0))[0].norm,
         ppo(2).init_and_train(jax.random.key(0))[0].norm)
    dqn = lambda n: OffPolicyTrainer(DQN, "CartPole-v1", buffer_size=64, batch_size=16,
                                     learning_starts=1000, train_freq=4, train_steps=3,
                                     num_envs=4, n_devices=n, **on)
    s1, s2 = (dqn(n).init_and_train(jax.random.key(0))[0] for n in (1, 2))
    same(s1.norm, s2.norm)
    assert float(s2.norm.obs.count) == 48
    print("BITWISE")
    """
)


def test_statistics_on_two_devices_equal_one_device_bitwise():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    run = subprocess.run(
        [sys.executable, "-c", DEVICES_SCRIPT], env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert "BITWISE" in run.stdout


def test_cli_normalize_through_train_eval_and_collect(tmp_path, monkeypatch, capsys):
    """``realax train ppo --normalize-obs --normalize-reward`` saves the agent with its
    statistics; ``realax eval`` and ``realax collect`` use them (collect stores raw rows)."""
    from realax.agents import Dataset
    from realax.train.cli import main
    from realax.train.rl import NormalizedAgent, collect

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    run_dir = tmp_path / "run"
    small = ["--width", "8", "--depth", "1", "--wandb", "off", "--num-envs", "2"]
    assert (
        main(["train", "ppo", "CartPole-v1", "--steps", "512", "--out", str(run_dir),
              "--normalize-obs", "--normalize-reward", "--eval-episodes", "2", *small])
        == 0
    )  # fmt: skip
    assert "normalize_obs = true" in (run_dir / "config.toml").read_text()
    assert main(["eval", str(run_dir), "--episodes", "3"]) == 0
    out = tmp_path / "data.npz"
    assert main(["collect", str(run_dir), "--steps", "64", "--out", str(out)]) == 0
    capsys.readouterr()

    from realax.train.cli import _rl
    from realax.train.cli._common import load_pytree
    from realax.train.cli._resolve import run_config

    setup = _rl.build(run_config(run_dir), devices=1)
    like = setup.trainer.policy(setup.initial_state())
    policy = load_pytree(run_dir / "policy.msgpack", like)
    assert isinstance(policy, NormalizedAgent)
    assert float(policy.obs_stats.count) == 512  # the whole run's observations
    data = Dataset.load(out)
    again = collect(policy, setup.trainer.env, jax.random.key(0), num_steps=64,
                    action_fn=setup.trainer.env_action)  # fmt: skip
    np.testing.assert_array_equal(data["actions"], again["actions"])
    np.testing.assert_array_equal(data["observations"], again["observations"])
    assert np.abs(data["observations"]).max() < 3.0  # raw CartPole states, not z-scores


def test_ppo_with_normalisation_learns_brax_inverted_pendulum():
    """A tiny budget, 150 train steps of 16 envs x 64 steps (153,600 env steps). Measured with
    the four keys ``jax.random.split(jax.random.key(0), 4)`` (greedy return over 8 episodes
    after 50 / 100 / 150 train steps): with normalisation 147-844 / 1000 / 1000 on all four;
    the same budget without it 304 / 291 / 277, 397 / 342 / 352, 356 / 327 / 587 and
    1000 / 1000 / 1000. This test trains the first key."""
    from realax.agents import PPO
    from realax.train.rl import OnPolicyTrainer

    trainer = OnPolicyTrainer(
        PPO, "inverted_pendulum", num_envs=16, num_steps=64, train_steps=150, anneal_lr=True,
        eval_freq=150, eval_episodes=8, normalize_obs=True, normalize_reward=True,
        agent_kwargs=dict(
            hidden_dims=(32, 32), num_minibatches=4, update_epochs=4, learning_rate=3e-4
        ),
    )  # fmt: skip
    state, _ = trainer.init_and_train(jax.random.split(jax.random.key(0), 4)[0])
    assert float(state.eval_return) >= 500, float(state.eval_return)
