"""RL trainers with n_devices > 1 (2 forced CPU devices, in a subprocess): environments (and a
recurrent agent's hidden states) split over devices and gradients averaged through the
agents' pmap_axis.
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import jax
    import numpy as np
    from realax.agents import DQN, PPO, PQN
    from realax.train.rl import OffPolicyTrainer, OnPolicyTrainer, PQNTrainer

    assert jax.device_count() == 2

    # 1. PPO with one full-batch step per epoch and no advantage normalisation: the gradient
    # averaged over the two halves of the environments equals the one-device gradient, and
    # every environment gets the same keys, so both runs agree up to float reassociation.
    kw = dict(
        num_envs=4, num_steps=32, train_steps=6, eval_freq=3, eval_episodes=4,
        agent_kwargs=dict(
            hidden_dims=(16,), num_minibatches=1, update_epochs=2, normalize_advantages=False
        ),
    )
    one, m_one = OnPolicyTrainer(PPO, "CartPole-v1", n_devices=1, **kw).init_and_train(
        jax.random.key(0)
    )
    two, m_two = OnPolicyTrainer(PPO, "CartPole-v1", n_devices=2, **kw).init_and_train(
        jax.random.key(0)
    )
    assert two.obs.sharding.spec == jax.sharding.PartitionSpec("devices")
    assert len(two.obs.sharding.device_set) == 2
    assert sorted(m_one) == sorted(m_two)
    for name in m_one:
        assert m_one[name].shape == m_two[name].shape, name
        np.testing.assert_allclose(m_one[name], m_two[name], rtol=1e-4, atol=1e-5, err_msg=name)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
        one.agent.model.params, two.agent.model.params,
    )
    np.testing.assert_array_equal(one.obs, two.obs)

    # 2. PPO still learns CartPole with its environments on two devices (PureJaxRL config)
    trainer = OnPolicyTrainer(
        PPO, "CartPole-v1", num_envs=4, num_steps=128, train_steps=80, anneal_lr=True,
        eval_freq=40, eval_episodes=8, n_devices=2,
    )
    state, metrics = trainer.init_and_train(jax.random.key(1))
    first = float(np.nanmean(metrics["episode_return"][:5]))
    evals = np.asarray(metrics["eval_return"])[[39, 79]]
    print("ppo 2 devices: first returns", first, "eval", evals)
    assert float(state.eval_return) > 150 and float(state.eval_return) > 5 * first

    # 3. DQN: replay rows and minibatches split over devices, the same shapes as one device
    kw = dict(
        buffer_size=512, batch_size=64, learning_starts=64, train_freq=4, train_steps=12,
        num_envs=4, eval_freq=6, eval_episodes=4, agent_kwargs=dict(hidden_dims=(16,)),
    )
    s1, m1 = OffPolicyTrainer(DQN, "CartPole-v1", **kw).init_and_train(jax.random.key(3))
    s2, m2 = OffPolicyTrainer(DQN, "CartPole-v1", n_devices=2, **kw).init_and_train(
        jax.random.key(3)
    )
    assert [x.shape for x in jax.tree.leaves(s1)] == [x.shape for x in jax.tree.leaves(s2)]
    assert {k: v.shape for k, v in m1.items()} == {k: v.shape for k, v in m2.items()}
    obs_rows = s2.buffer.data.obs
    assert len(obs_rows.sharding.device_set) == 2
    assert int(s2.buffer.size) == 12 * 4 * 4 // 2  # rows per device
    np.testing.assert_array_equal(m1["env_steps"], m2["env_steps"])
    np.testing.assert_array_equal(m1["updates"], m2["updates"])
    assert np.all(np.isfinite(m2["loss"][4:]))

    # 4. seeds and devices together: 3 seeds in one program, each with its environments on two
    # devices. (Initialising vmapped seeds batched the QR of the orthogonal initialisers, and
    # jaxlib's batched CPU LAPACK deadlocked here; seeds are now initialised one by one.)
    trainer = OnPolicyTrainer(
        PPO, "CartPole-v1", num_envs=4, num_steps=128, train_steps=20, n_devices=2,
        agent_kwargs=dict(update_epochs=2, num_minibatches=2),
    )
    states, metrics, timing = trainer.run(jax.random.split(jax.random.key(4), 3))
    np.testing.assert_array_equal(states.env_steps, [20 * 512] * 3)
    assert metrics["loss"].shape == (3, 20) and np.all(np.isfinite(metrics["loss"]))
    params = jax.tree.leaves(states.agent.model.params)[0]
    assert not np.allclose(params[0], params[1])  # independent seeds

    # 5. recurrent PPO: the hidden states are split over devices with their environments;
    # one full-batch step per epoch, so two devices equal one (as 1.)
    import realax.tasks as rt
    from realax.agents import RecurrentPPO

    masked = rt.mask_observation(rt.make("CartPole-v1"), keep=[0, 2])
    kw = dict(
        num_envs=4, num_steps=16, train_steps=4, eval_freq=2, eval_episodes=4,
        agent_kwargs=dict(hidden_size=16, hidden_dims=(16,), head_dims=(16,),
                          num_minibatches=1, update_epochs=2, normalize_advantages=False),
    )
    one, m_one = OnPolicyTrainer(RecurrentPPO, masked, **kw).init_and_train(jax.random.key(5))
    two, m_two = OnPolicyTrainer(RecurrentPPO, masked, n_devices=2, **kw).init_and_train(
        jax.random.key(5)
    )
    assert two.hidden.sharding.spec == jax.sharding.PartitionSpec("devices")
    for name in m_one:
        np.testing.assert_allclose(m_one[name], m_two[name], rtol=1e-4, atol=1e-5, err_msg=name)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
        (one.agent.model.params, one.hidden), (two.agent.model.params, two.hidden),
    )

    # 6. PQN with one full-batch step per epoch: as 1., two devices equal one (the epsilon-greedy
    # keys are those of the environments, whatever device they are on)
    kw = dict(
        num_envs=4, num_steps=16, train_steps=6, eval_freq=3, eval_episodes=4,
        agent_kwargs=dict(hidden_dims=(16,), num_minibatches=1, update_epochs=2),
    )
    one, m_one = PQNTrainer(PQN, "CartPole-v1", **kw).init_and_train(jax.random.key(5))
    two, m_two = PQNTrainer(PQN, "CartPole-v1", n_devices=2, **kw).init_and_train(
        jax.random.key(5)
    )
    assert sorted(m_one) == sorted(m_two)
    for name in m_one:
        np.testing.assert_allclose(m_one[name], m_two[name], rtol=1e-4, atol=1e-5, err_msg=name)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
        one.agent.q.params, two.agent.q.params,
    )
    np.testing.assert_array_equal(one.obs, two.obs)
    print("ok")
    """
)


@pytest.mark.slow
def test_rl_trainers_on_two_devices():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600
    )
    print(out.stdout)
    assert out.returncode == 0, out.stderr[-5000:]
    assert out.stdout.strip().endswith("ok")
