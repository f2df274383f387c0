"""``realax.train.sweep`` with the RL trainers, across devices and through SIGKILL / resume.

A traced RL run with the static values is bit-identical to the static run. A sweep member
equals its configuration run alone to float32 rounding, not bit for bit: the members are
``vmap``-ped, and XLA's CPU kernels for the batched matrix products and reductions of PPO's
update sum in another order than the unbatched ones (the seeds loop differs from a lone run
the same way). ES sweeps are bit-identical (``packages/realax-train/tests/test_sweep.py``).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import _subprocs as sp
import jax
import numpy as np
import pytest
from realax.agents import C51, DQN, PPO, PQN
from realax.train import sweep
from realax.train.rl import OffPolicyTrainer, OnPolicyTrainer, PQNTrainer

KEY = jax.random.key(1)
PPO_KW = {"hidden_dims": (8,), "num_minibatches": 2, "update_epochs": 2}


def ppo(train_steps=3, **agent_kw):
    return OnPolicyTrainer(
        PPO, "CartPole-v1", num_envs=4, num_steps=16, train_steps=train_steps,
        eval_episodes=4, agent_kwargs={**PPO_KW, **agent_kw},
    )  # fmt: skip


#: the key of seed 1 of a 2-seed sweep from KEY
KEY_1 = jax.random.split(KEY, 2)[1]


@pytest.fixture(scope="module")
def ppo_static():
    """The static PPO run from KEY_1 (the default learning rate 2.5e-4, clip 0.2)."""
    return ppo().init_and_train(KEY_1)[1]


@pytest.fixture(scope="module")
def ppo_sweep():
    return sweep(ppo(), {"learning_rate": [1e-3, 2.5e-4], "clip_eps": [0.2]}, KEY, seeds=2)


def test_traced_ppo_run_equals_the_static_run_bit_for_bit(ppo_static):
    t = ppo()
    assert set(t.sweepable()) == {
        "learning_rate", "max_grad_norm", "discount", "gae_lambda", "clip_eps", "vf_coef",
        "ent_coef",
    }  # fmt: skip
    assert t.shape_settings()["num_envs"] == 4
    state, traced = t.traced(list(t.sweepable())).init_and_train(KEY_1)
    for name in ppo_static:
        np.testing.assert_array_equal(ppo_static[name], traced[name])
    assert float(state.hparams["clip_eps"]) == np.float32(0.2)
    assert float(state.agent.hparams["learning_rate"]) == np.float32(2.5e-4)


@pytest.mark.parametrize("agent", [DQN, C51], ids=["dqn", "c51"])
def test_traced_q_learning_run_equals_the_static_run_bit_for_bit(agent):
    d = OffPolicyTrainer(
        agent, "CartPole-v1", buffer_size=64, batch_size=16, learning_starts=16, train_freq=2,
        train_steps=12, num_envs=4, eval_episodes=0, agent_kwargs={"hidden_dims": (8,), "tau": 0.1},
    )  # fmt: skip
    assert d.sweepable() == pytest.approx(
        {"learning_rate": 2.3e-3, "max_grad_norm": 10.0, "discount": 0.99, "tau": 0.1}
    )
    _, static = d.init_and_train(KEY)
    _, traced = d.traced(list(d.sweepable())).init_and_train(KEY)
    for name in static:
        np.testing.assert_array_equal(static[name], traced[name])


def test_traced_pqn_run_equals_the_static_run_bit_for_bit():
    p = PQNTrainer(PQN, "CartPole-v1", num_envs=4, num_steps=8, train_steps=3, eval_episodes=0,
                   agent_kwargs={"hidden_dims": (8,)})  # fmt: skip
    assert set(p.sweepable()) == {"learning_rate", "max_grad_norm", "discount", "q_lambda"}
    _, static = p.init_and_train(KEY)
    state, traced = p.traced(list(p.sweepable())).init_and_train(KEY)
    for name in static:
        np.testing.assert_array_equal(static[name], traced[name])
    assert float(state.agent.hparams["q_lambda"]) == np.float32(p.sweepable()["q_lambda"])
    with pytest.raises(ValueError, match="learning_rate cannot be traced with anneal_lr_steps"):
        PQN.create(key=0, observations=np.zeros(4), actions=np.zeros((), np.int32), n_actions=2,
                   anneal_lr_steps=10, hparams={"learning_rate": 1e-3})  # fmt: skip


def test_ppo_sweep_member_equals_its_lone_run(ppo_sweep, ppo_static):
    result = ppo_sweep
    assert result.metric == "episode_return" and result.maximize
    assert result.curves["loss"].shape == (2, 2, 3)
    c, s = 1, 1  # learning rate 2.5e-4 (the default), seed 1: the static run from KEY_1
    for name in ("loss", "entropy", "value_loss", "episode_return", "env_steps"):
        np.testing.assert_allclose(
            result.curves[name][c, s], ppo_static[name], rtol=1e-5, atol=1e-6
        )
    member = result.state_of(c, s)
    assert float(member.hparams["learning_rate"]) == np.float32(2.5e-4)


def test_rl_sweep_refuses_bad_input():
    with pytest.raises(ValueError, match="unknown setting 'gama'"):
        sweep(ppo(), {"gama": [0.9]}, KEY)
    with pytest.raises(ValueError, match="'num_envs' changes array shapes"):
        ppo().traced(["num_envs"])


@pytest.mark.slow
def test_ppo_cartpole_sweep_ranks_a_tiny_learning_rate_last():
    rates = [1e-6, 3e-4, 2.5e-3]
    t = OnPolicyTrainer(
        PPO, "CartPole-v1", num_envs=4, num_steps=32, train_steps=40, eval_episodes=0,
        agent_kwargs={"hidden_dims": (32,), "num_minibatches": 2, "update_epochs": 4},
    )  # fmt: skip
    result = sweep(t, {"learning_rate": rates}, jax.random.key(0), seeds=2)
    late = np.nanmean(result.curves["episode_return"][:, :, -10:], axis=(1, 2))
    assert int(np.argmin(late)) == 0, late
    assert result.ranking()[-1] == 0, result.table()
    assert result.best_config["learning_rate"] != 1e-6


# ----------------------------------------------------------------------------- devices

DEVICES = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from realax.train import EvosaxTrainer, sweep
    f = lambda x, key, data=None: (jnp.sum(x**2) + 0.1 * jax.random.normal(key), {})
    t = EvosaxTrainer(8, "SNES", f, params_like=jnp.ones(3), popsize=8)
    space = {"std_init": [0.3, 1.0]}
    one = sweep(t, space, jax.random.key(0), seeds=2)
    two = sweep(t, space, jax.random.key(0), seeds=2, n_devices=2)
    # float32 rounding apart: each device vmaps 2 members instead of 4, and XLA's CPU
    # kernels for a batch of 2 sum in another order than for a batch of 4
    for name in one.curves:
        np.testing.assert_allclose(one.curves[name], two.curves[name], rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(one.states), jax.tree.leaves(two.states)):
        if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
            np.testing.assert_array_equal(jax.random.key_data(a), jax.random.key_data(b))
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    print("SHARDS", len(two.states[0].best_fitness.sharding.device_set))
    """
)


@pytest.mark.slow
def test_two_devices_split_the_members_and_equal_one_device(tmp_path):
    script = tmp_path / "devices.py"
    script.write_text(DEVICES)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "SHARDS 2" in out.stdout


# ----------------------------------------------------------------------------- resume

RESUME = textwrap.dedent(
    """
    import sys, time
    import jax, jax.numpy as jnp, numpy as np
    import realax.log as rlog
    from realax.train import EvosaxTrainer, sweep, sweep_init

    root, delay = sys.argv[1], float(sys.argv[2])

    class Throttled:
        def __init__(self, inner):
            self.inner = inner

        def log(self, state, metrics):
            self.inner.log(state, metrics)
            # (an ordered io_callback cannot be vmapped; a debug callback can)
            jax.debug.callback(lambda s: time.sleep(delay), state.step)

        def save_on_interrupt(self):
            return self.inner.save_on_interrupt()

        def on_run_end(self, state):
            self.inner.on_run_end(state)

    f = lambda x, key, data=None: (jnp.sum((x - 1.0) ** 2) + 0.1 * jax.random.normal(key), {})
    t = EvosaxTrainer(60, "SNES", f, params_like=jnp.zeros(3), popsize=8)
    space, key = {"std_init": [0.3, 1.0]}, jax.random.key(0)
    logger = rlog.Logger(wandb_log=False, metrics_fn=rlog.default_es_metrics,
                         ckpt_dir=f"{root}/ckpt", ckpt_freq=5, resume=True)
    state = None
    if rlog.latest_step(f"{root}/ckpt") is not None:
        state = rlog.restore(f"{root}/ckpt", like=sweep_init(t, space, key, seeds=2))
        print(f"RESUMED {int(np.max(state.step))}", flush=True)
    print("TRAINING", flush=True)
    result = sweep(t, space, key, seeds=2, logger=Throttled(logger), resume=state)
    logger.finish()
    is_key = lambda x: jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
    np.savez(f"{root}/final.npz", *[np.asarray(jax.random.key_data(x) if is_key(x) else x)
                                   for x in jax.tree.leaves(result.states)])
    print("DONE", flush=True)
    """
)


@pytest.mark.slow
def test_sweep_sigkill_then_resume_is_bit_identical(tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(RESUME)
    ref_root, run_root = tmp_path / "ref", tmp_path / "run"
    ref_root.mkdir()
    run_root.mkdir()
    ref = sp.start(script, ref_root, 0.0)
    run = sp.start(script, run_root, 0.025)
    deadline = time.monotonic() + 300
    while not [s for s in sp.steps_on_disk(run_root / "ckpt") if s > 0]:
        assert run.poll() is None, run.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    seed = random.randrange(2**32)
    time.sleep(random.Random(seed).uniform(0.0, 0.5))
    run.send_signal(signal.SIGKILL)
    code, _, _ = sp.finish(run)
    assert code == -signal.SIGKILL, f"the sweep finished before the kill (seed {seed})"
    assert sp.steps_on_disk(run_root / "ckpt")[-1] < 60
    code, out, err = sp.finish(sp.start(script, run_root, 0.0))
    assert code == 0 and "RESUMED" in out, err[-3000:]
    code, out, err = sp.finish(ref)
    assert code == 0 and "RESUMED" not in out, err[-3000:]
    a, b = sp.load_arrays(run_root / "final.npz"), sp.load_arrays(ref_root / "final.npz")
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y, strict=True)
