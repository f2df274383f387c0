"""OfflineTrainer with n_devices=2 (2 forced CPU devices, in a subprocess): every minibatch is
split over the devices and gradients averaged through the agent's pmap_axis; the run equals
the one-device run up to float reassociation, for several seeds in one program too."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np
    from realax.agents import CQL, SAC, Dataset
    from realax.train.rl import OfflineTrainer, collect

    assert jax.device_count() == 2
    data = collect(lambda obs, key: jnp.int32(obs[2] > 0), "CartPole-v1", jax.random.key(0),
                   num_steps=512, num_envs=2, epsilon=0.2)
    rows = 256
    pendulum = Dataset.create(
        observations=jax.random.normal(jax.random.key(0), (rows, 3)),
        actions=jax.random.uniform(jax.random.key(1), (rows, 1), minval=-1, maxval=1),
        rewards=-jnp.ones(rows), masks=jnp.ones(rows), dones=jnp.zeros(rows, bool),
        next_observations=jax.random.normal(jax.random.key(2), (rows, 3)))
    cases = [(CQL, data, "CartPole-v1"),
             (SAC, pendulum, "Pendulum-v1")]
    for agent, ds, env in cases:
        kw = dict(train_steps=12, batch_size=32, eval_freq=6, eval_episodes=4,
                  eval_max_steps=50, agent_kwargs=dict(hidden_dims=(16,)))
        one = OfflineTrainer(agent, ds, env, n_devices=1, **kw)
        two = OfflineTrainer(agent, ds, env, n_devices=2, **kw)
        for key in (jax.random.key(3), jax.random.split(jax.random.key(4), 2)):
            s1, m1 = one.init_and_train(key)
            s2, m2 = two.init_and_train(key)
            assert sorted(m1) == sorted(m2)
            for name in m1:
                np.testing.assert_allclose(m1[name], m2[name], rtol=2e-4, atol=1e-5,
                                           err_msg=f"{agent.__name__} {name}")
            for a, b in zip(jax.tree.leaves(s1.agent), jax.tree.leaves(s2.agent)):
                if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
                    a, b = jax.random.key_data(a), jax.random.key_data(b)
                np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)
        print("equal", agent.__name__, flush=True)
    print("OK")
    """
)


@pytest.mark.slow
def test_two_devices_equal_one(tmp_path):
    script = tmp_path / "devices.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu"}  # fmt: skip
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "OK" in proc.stdout, proc.stdout
