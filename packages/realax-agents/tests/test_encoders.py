"""Convolutional encoders: shapes, the `encoder=` config field of the agents on MinAtar-shaped
observations (10x10x4), and the shape errors raised at ``create``."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realax.agents import (
    DQN,
    PPO,
    SAC,
    Encoded,
    ImpalaResNet,
    NatureCNN,
    Rollout,
    Transition,
)

OBS = (10, 10, 4)  # Breakout-MinAtar
INT = jnp.zeros((), jnp.int32)


def test_nature_cnn_sizes():
    assert NatureCNN.sized_for((84, 84, 4)) == NatureCNN()
    small = NatureCNN.sized_for(OBS)
    params = small.init(jax.random.key(0), jnp.zeros(OBS))
    assert small.apply(params, jnp.zeros((3, *OBS))).shape == (3, 128)
    atari = jax.eval_shape(NatureCNN().init, jax.random.key(0), jnp.zeros((84, 84, 4)))
    assert atari["params"]["Dense_0"]["kernel"].shape == (7 * 7 * 64, 512)


def test_impala_any_batch_axes_and_jit():
    net = ImpalaResNet()
    params = net.init(jax.random.key(0), jnp.zeros(OBS))
    out = jax.jit(net.apply)(params, jnp.ones((2, 3, *OBS)))
    assert out.shape == (2, 3, 256)
    assert np.all(np.isfinite(np.asarray(out)))


def _rollout(obs_batch: jax.Array, agent: PPO) -> Rollout:
    t, n = obs_batch.shape[:2]
    actions, log_probs, values = agent.act(obs_batch, seed=jax.random.key(1))
    return Rollout(
        obs=obs_batch,
        actions=actions,
        log_probs=log_probs,
        values=values,
        rewards=jnp.ones((t, n)),
        dones=jnp.zeros((t, n), bool),
        next_values=values,
    )


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["nature", "impala"])
def test_ppo_and_dqn_update_with_encoder(encoder):
    key = jax.random.key(0)
    obs = jax.random.uniform(key, (4, 2, *OBS))  # (steps, envs, H, W, C)
    ppo = PPO.create(key=0, observations=jnp.zeros(OBS), actions=INT, n_actions=3,
                     encoder=encoder, num_minibatches=2, update_epochs=1)  # fmt: skip
    assert isinstance(ppo.model.model_def, Encoded) and ppo.discrete
    new, info = ppo.update(_rollout(obs, ppo))
    assert np.isfinite(float(info["loss"]))
    assert new.model.step == 2
    changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), ppo.model.params, new.model.params)
    assert all(jax.tree.leaves(changed["encoder"]))  # the shared encoder learns

    dqn = DQN.create(key=0, observations=jnp.zeros(OBS), actions=INT, n_actions=3,
                     encoder=encoder)  # fmt: skip
    flat = obs.reshape(8, *OBS)
    batch = Transition(obs=flat, actions=jnp.zeros(8, jnp.int32), rewards=jnp.ones(8),
                       next_obs=flat, terminated=jnp.zeros(8, bool))  # fmt: skip
    new_dqn, info = dqn.update(batch)
    assert np.isfinite(float(info["loss"]))
    assert dqn.sample_actions(flat, seed=key, epsilon=0.5).shape == (8,)
    assert new_dqn.q_values(flat).shape == (8, 3)


def test_custom_encoder_module():
    class Flatten(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(8)(x.reshape((*x.shape[:-3], -1)))

    sac = jax.eval_shape(  # the continuous agents take encoders too
        lambda: SAC.create(
            key=0, observations=jnp.zeros(OBS), actions=jnp.zeros(2), encoder=Flatten()
        )  # fmt: skip
    )
    assert sac.actor.params["encoder"]["Dense_0"]["kernel"].shape == (400, 8)


def test_shape_errors_name_the_fix():
    with pytest.raises(ValueError, match=r"shape \(10, 10, 4\).*encoder='nature'"):
        PPO.create(key=0, observations=jnp.zeros(OBS), actions=INT, n_actions=3)
    with pytest.raises(ValueError, match=r"needs image observations.*got shape \(4,\)"):
        DQN.create(key=0, observations=jnp.zeros(4), actions=INT, n_actions=3, encoder="impala")
    with pytest.raises(ValueError, match=r"encoder must be None.*got encoder='resnet'"):
        DQN.create(key=0, observations=jnp.zeros(OBS), actions=INT, n_actions=3, encoder="resnet")
