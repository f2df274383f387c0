"""jaxrl_m spellings every agent accepts: an int seed as ``create(key=...)``,
``sample_actions(argmax=...)`` for ``deterministic=``, and ``temperature=`` where the policy
is a distribution with a scale."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realax.agents import CQL, DDPG, DQN, IQL, PPO, SAC, TD3, ContinuousBC, DiscreteBC

OBS = jnp.linspace(-1.0, 1.0, 20).reshape(5, 4)
DISCRETE = {"actions": jnp.zeros((), jnp.int32), "n_actions": 3}
CONTINUOUS = {"actions": jnp.zeros(2)}
AGENTS = [
    (DiscreteBC, DISCRETE),
    (ContinuousBC, CONTINUOUS),
    (DQN, DISCRETE),
    (CQL, DISCRETE),
    (PPO, DISCRETE),
    (PPO, CONTINUOUS),
    (SAC, CONTINUOUS),
    (TD3, CONTINUOUS),
    (DDPG, CONTINUOUS),
    (IQL, CONTINUOUS),
]
IDS = [f"{cls.__name__}-{'int' if 'n_actions' in kw else 'float'}" for cls, kw in AGENTS]


def _data(tree):
    """The leaves of ``tree`` (PRNG keys as key data): two agents' static parts are distinct
    module objects, so only the arrays are compared."""
    is_key = lambda x: jnp.issubdtype(jnp.asarray(x).dtype, jax.dtypes.prng_key)  # noqa: E731
    return [jax.random.key_data(x) if is_key(x) else x for x in jax.tree.leaves(tree)]


def _create(cls, kw, key):
    return cls.create(key=key, observations=OBS[0], hidden_dims=(8,), **kw)


@pytest.mark.parametrize(("cls", "kw"), AGENTS, ids=IDS)
def test_int_seed_equals_the_key_of_that_seed(cls, kw):
    ref = _data(_create(cls, kw, jax.random.key(3)))
    chex.assert_trees_all_equal(_data(_create(cls, kw, 3)), ref)
    chex.assert_trees_all_equal(_data(_create(cls, kw, np.int64(3))), ref)
    with pytest.raises(TypeError, match="key must be a jax PRNG key or an int seed"):
        _create(cls, kw, "3")
    with pytest.raises(TypeError, match="key must be"):
        _create(cls, kw, True)


@pytest.mark.parametrize(("cls", "kw"), AGENTS, ids=IDS)
def test_argmax_is_deterministic(cls, kw):
    agent = _create(cls, kw, 0)
    seed = jax.random.key(1)
    greedy = agent.sample_actions(OBS, seed=seed, deterministic=True)
    np.testing.assert_array_equal(agent.sample_actions(OBS, seed=seed, argmax=True), greedy)
    sampled = agent.sample_actions(OBS, seed=seed)
    assert sampled.shape == greedy.shape


@pytest.mark.parametrize("cls", [ContinuousBC, SAC, IQL])
def test_temperature_zero_samples_the_mode(cls):
    agent = _create(cls, CONTINUOUS, 0)
    seed = jax.random.key(1)
    cold = agent.sample_actions(OBS, seed=seed, temperature=0.0)
    np.testing.assert_allclose(cold, agent.sample_actions(OBS, seed=seed, argmax=True), atol=1e-6)
    hot = agent.sample_actions(OBS, seed=seed, temperature=2.0)
    assert not np.allclose(hot, cold)
