"""Discrete CQL on hand-made batches: regulariser, unseen actions pushed down, devices, bandit."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec
from realax.agents import CQL, DQN, Transition

N_ACTIONS = 3


def _bandit(n=512, seed=0, behaviour=None):
    """One-step episodes with 3 actions: reward 1 for ``a*(s) = argmax(s[:3])``, else 0; the
    behaviour policy is uniform (or ``behaviour(obs, key)``)."""
    k_obs, k_act = jax.random.split(jax.random.key(seed))
    obs = jax.random.normal(k_obs, (n, 4))
    best = jnp.argmax(obs[:, :N_ACTIONS], axis=-1).astype(jnp.int32)
    if behaviour is None:
        actions = jax.random.randint(k_act, (n,), 0, N_ACTIONS, jnp.int32)
    else:
        actions = behaviour(obs, k_act)
    rewards = (actions == best).astype(jnp.float32)
    batch = Transition(
        obs=obs, actions=actions, rewards=rewards, next_obs=obs, terminated=jnp.ones(n, bool)
    )
    return batch, best


def _create(**config):
    config.setdefault("hidden_dims", (32, 32))
    return CQL.create(
        key=0, observations=jnp.zeros(4), actions=jnp.zeros((), jnp.int32), n_actions=N_ACTIONS,
        **config,
    )  # fmt: skip


def _data(tree):
    is_key = lambda x: jnp.issubdtype(jnp.asarray(x).dtype, jax.dtypes.prng_key)  # noqa: E731
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)


def test_shapes_info_and_regulariser_value():
    batch, _ = _bandit(n=64)
    agent = _create()
    assert isinstance(agent, DQN)
    new, info = agent.update(batch)
    assert set(info) == {"loss", "td_loss", "cql_loss", "q", "target", "td_abs"}
    assert all(v.shape == () and v.dtype == jnp.float32 for v in info.values())
    q_all = agent.q(batch.obs)
    q_a = jnp.take_along_axis(q_all, batch.actions[:, None], -1)[:, 0]
    want = jnp.mean(jax.nn.logsumexp(q_all, -1) - q_a)
    np.testing.assert_allclose(float(info["cql_loss"]), float(want), rtol=1e-5)
    np.testing.assert_allclose(float(info["loss"]), float(info["td_loss"] + want), rtol=1e-5)
    # terminal one-step data: the target is the reward
    np.testing.assert_allclose(float(info["target"]), float(jnp.mean(batch.rewards)), rtol=1e-6)
    greedy = new.sample_actions(batch.obs, seed=jax.random.key(1), deterministic=True)
    assert greedy.shape == (64,) and greedy.dtype == jnp.int32


def test_cql_pushes_down_actions_the_data_never_takes():
    # the data takes only action 0 and action 1, both with reward 0.5: action 2 is unseen
    batch, _ = _bandit(n=256, behaviour=lambda o, k: jax.random.randint(k, (256,), 0, 2))
    batch = batch.replace(rewards=jnp.full(256, 0.5))
    gaps = {}
    for alpha in (0.0, 1.0):
        agent = _create(cql_alpha=alpha, learning_rate=1e-3)
        step = jax.jit(lambda a: a.update(batch))
        for _ in range(300):
            agent, _ = step(agent)
        q = agent.q(batch.obs)
        gaps[alpha] = float(jnp.mean(q[:, 2] - jnp.maximum(q[:, 0], q[:, 1])))
    assert gaps[1.0] < -0.5, gaps
    assert gaps[1.0] < gaps[0.0] - 0.3, gaps


def test_jit_vmap_and_pmap_shard_map_on_one_device_equal_no_axis():
    batch, _ = _bandit(n=32)
    agents = jax.vmap(
        lambda k: CQL.create(key=k, observations=jnp.zeros(4), actions=jnp.zeros((), jnp.int32),
                             n_actions=N_ACTIONS, hidden_dims=(16,))
    )(jax.random.split(jax.random.key(0), 3))  # fmt: skip
    _, info = jax.vmap(lambda a: a.update(batch))(agents)
    assert info["loss"].shape == (3,)

    agent = _create()
    ref = _data(agent.update(batch))
    expand = lambda t: jax.tree.map(lambda x: x[None], t)  # noqa: E731
    pm = jax.pmap(lambda a, b: a.update(b, pmap_axis="d"), axis_name="d")(
        expand(agent), expand(batch)
    )
    chex.assert_trees_all_close(_data(jax.tree.map(lambda x: x[0], pm)), ref, atol=1e-6)
    sm = jax.shard_map(
        lambda a, b: a.update(b, pmap_axis="d"),
        mesh=Mesh(np.array(jax.devices()[:1]), ("d",)),
        in_specs=(PartitionSpec(), PartitionSpec("d")),
        out_specs=(PartitionSpec(), PartitionSpec()),
    )
    chex.assert_trees_all_close(_data(jax.jit(sm)(agent, batch)), ref, atol=1e-6)


def test_config_errors_name_the_argument():
    with pytest.raises(ValueError, match="cql_alpha"):
        _create(cql_alpha=-1.0)
    with pytest.raises(ValueError, match="n_actions"):
        CQL.create(key=0, observations=jnp.zeros(4), actions=jnp.zeros((), jnp.int32))
    with pytest.raises(TypeError, match="cql_alhpa"):
        _create(cql_alhpa=1.0)


@pytest.mark.slow
def test_learns_the_best_action_of_a_one_step_bandit_from_noisy_expert_data():
    # 16 states, 64 samples each (so the values are per-state averages, not per-sample
    # memorisation); the behaviour takes the best action half of the time, else uniform
    states = jax.random.normal(jax.random.key(7), (16, 4))
    obs = jnp.repeat(states, 64, axis=0)
    k_explore, k_random = jax.random.split(jax.random.key(8))
    best = jnp.argmax(obs[:, :N_ACTIONS], -1).astype(jnp.int32)
    random = jax.random.randint(k_random, best.shape, 0, N_ACTIONS, jnp.int32)
    actions = jnp.where(jax.random.uniform(k_explore, best.shape) < 0.5, random, best)
    batch = Transition(
        obs=obs,
        actions=actions,
        rewards=(actions == best).astype(jnp.float32),
        next_obs=obs,
        terminated=jnp.ones(obs.shape[0], bool),
    )
    agent = _create(hidden_dims=(64, 64), learning_rate=1e-3)
    step = jax.jit(lambda a: a.update(batch))
    for _ in range(1000):
        agent, info = step(agent)
    greedy = agent.sample_actions(states, seed=jax.random.key(0), deterministic=True)
    assert greedy.tolist() == jnp.argmax(states[:, :N_ACTIONS], -1).tolist(), info
