"""IQL on hand-made batches: expectile value, advantage weights, devices, a bandit."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec
from realax.agents import IQL, Dataset, Transition
from realax.agents._iql import expectile_loss

SMALL = (32, 32)
INFO_KEYS = {
    "critic_loss", "q", "value_loss", "v", "actor_loss", "adv", "adv_weight", "bc_log_probs",
}  # fmt: skip


def _bandit(n=512, seed=0, repeat=1):
    """One-step episodes: reward ``-(a - a*(s))^2``, ``a*(s) = 0.6 * tanh(s_0)``; the data
    takes ``a*(s)`` plus noise of std 0.3 half of the time, else a uniform action. Each of
    the ``n // repeat`` states is repeated ``repeat`` times."""
    k_obs, k_noise, k_uni, k_mix = jax.random.split(jax.random.key(seed), 4)
    obs = jnp.repeat(jax.random.normal(k_obs, (n // repeat, 3)), repeat, axis=0)
    best = 0.6 * jnp.tanh(obs[:, :1])
    noisy = jnp.clip(best + 0.3 * jax.random.normal(k_noise, best.shape), -1, 1)
    uniform = jax.random.uniform(k_uni, best.shape, minval=-1.0, maxval=1.0)
    actions = jnp.where(jax.random.uniform(k_mix, best.shape) < 0.5, noisy, uniform)
    rewards = -jnp.sum((actions - best) ** 2, -1)
    batch = Transition(
        obs=obs, actions=actions, rewards=rewards, next_obs=obs, terminated=jnp.ones(n, bool)
    )
    return batch, best


def _create(batch, **config):
    config.setdefault("hidden_dims", SMALL)
    return IQL.create(key=0, observations=batch.obs[0], actions=batch.actions[0], **config)


def _data(tree):
    is_key = lambda x: jnp.issubdtype(jnp.asarray(x).dtype, jax.dtypes.prng_key)  # noqa: E731
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)


def _expectile(values, tau):
    """The ``tau``-expectile of ``values``: the fixed point of the weighted mean."""
    v = float(np.mean(values))
    for _ in range(200):
        w = np.where(values > v, tau, 1 - tau)
        v = float(np.sum(w * values) / np.sum(w))
    return v


def test_expectile_loss_on_fixed_values():
    diff = jnp.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(
        expectile_loss(diff, 0.9), [0.1 * 4, 0.1 * 0.25, 0.0, 0.9 * 0.25, 0.9 * 4], rtol=1e-6
    )
    np.testing.assert_allclose(expectile_loss(diff, 0.5), 0.5 * diff**2, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("expectile", [0.5, 0.7, 0.9])
def test_value_fits_the_expectile_of_the_frozen_target_critic(expectile):
    # one state, many actions; tau=0 keeps the target critics (the value's Q) fixed
    n = 64
    actions = jax.random.uniform(jax.random.key(1), (n, 1), minval=-1, maxval=1)
    obs = jnp.zeros((n, 2))
    batch = Transition(obs=obs, actions=actions, rewards=jnp.zeros(n), next_obs=obs,
                       terminated=jnp.ones(n))  # fmt: skip
    agent = _create(batch, tau=0.0, expectile=expectile, value_lr=3e-2, hidden_dims=(8,))
    scale_last = lambda x: x * 10.0 if x.ndim == 3 and x.shape[-1] == 1 else x  # noqa: E731
    target = agent.target_critic.replace(  # spread the Q values out
        params=jax.tree.map(scale_last, agent.target_critic.params)
    )
    agent = agent.replace(target_critic=target)
    q = np.asarray(jnp.min(target(obs, actions), axis=0))
    assert np.std(q) > 0.05
    step = jax.jit(lambda a: a.update(batch))
    for _ in range(400):
        agent, info = step(agent)
    np.testing.assert_allclose(float(info["v"]), _expectile(q, expectile), atol=5e-3)
    chex.assert_trees_all_equal(agent.target_critic.params, target.params)  # tau = 0


@pytest.mark.slow
def test_shapes_info_keys_no_retrace_and_mapping_batches():
    batch, _ = _bandit(n=64)
    agent = _create(batch)
    chex.clear_trace_counter()
    update = jax.jit(
        chex.assert_max_traces(IQL.update.__wrapped__, n=1), static_argnames="pmap_axis"
    )
    new = agent
    for _ in range(3):
        nxt, info = update(new, batch)
        chex.assert_trees_all_equal_shapes_and_dtypes(nxt, new)
        new = nxt
    assert set(info) == INFO_KEYS
    assert all(v.shape == () and v.dtype == jnp.float32 for v in info.values())
    mapping = {
        "observations": batch.obs,
        "actions": batch.actions,
        "rewards": batch.rewards,
        "masks": batch.masks,
        "next_observations": batch.next_obs,
    }
    ref = agent.update(batch)
    chex.assert_trees_all_equal(agent.update(mapping), ref)
    chex.assert_trees_all_equal(agent.update(Dataset.create(**mapping)), ref)
    assert agent.sample_actions(batch.obs, seed=jax.random.key(0)).shape == (64, 1)
    a = agent.sample_actions(batch.obs, seed=jax.random.key(0), temperature=0.0)
    np.testing.assert_allclose(
        a, agent.sample_actions(batch.obs, seed=jax.random.key(0), deterministic=True)
    )


def test_advantage_weights_are_exp_temperature_adv_clipped():
    batch, _ = _bandit(n=64)
    agent = _create(batch, temperature=0.0)
    _, info = agent.update(batch)
    assert float(info["adv_weight"]) == 1.0  # temperature 0: plain behaviour cloning
    agent = _create(batch, temperature=1e4)
    _, info = agent.update(batch)
    q = jnp.min(agent.target_critic(batch.obs, batch.actions), axis=0)
    adv = q - agent.value(batch.obs)
    want = jnp.mean(jnp.minimum(jnp.exp(1e4 * adv), 100.0))
    np.testing.assert_allclose(float(info["adv_weight"]), float(want), rtol=1e-5)
    assert float(info["adv_weight"]) <= 100.0


@pytest.mark.slow
def test_vmap_and_pmap_shard_map_on_one_device_equal_no_axis():
    batch, _ = _bandit(n=32)
    obs, act = batch.obs[0], batch.actions[0]
    agents = jax.vmap(
        lambda k: IQL.create(key=k, observations=obs, actions=act, hidden_dims=(16,))
    )(jax.random.split(jax.random.key(0), 3))
    _, info = jax.vmap(lambda a: a.update(batch))(agents)
    assert info["actor_loss"].shape == (3,)

    agent = _create(batch)
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
    batch, _ = _bandit(n=4)
    with pytest.raises(ValueError, match="expectile"):
        _create(batch, expectile=1.5)
    with pytest.raises(ValueError, match="actor_decay_steps"):
        _create(batch, actor_decay_steps=0)
    with pytest.raises(TypeError, match="expectle"):
        _create(batch, expectle=0.7)
    with pytest.raises(ValueError, match="float action"):
        IQL.create(key=0, observations=jnp.zeros(3), actions=jnp.zeros((), jnp.int32))


@pytest.mark.slow
def test_learns_better_than_behaviour_cloning_on_a_one_step_bandit():
    # 16 states with 64 actions each, so that the actor fits a weighted average of a state's
    # actions rather than memorising each (noisy) action
    batch, best = _bandit(n=1024, repeat=64)
    errors = {}
    for temperature in (0.0, 3.0):
        agent = _create(batch, hidden_dims=(64, 64), temperature=temperature, actor_lr=1e-3,
                        critic_lr=1e-3, value_lr=1e-3)  # fmt: skip
        step = jax.jit(lambda a: a.update(batch))
        for _ in range(800):
            agent, info = step(agent)
        got = agent.sample_actions(batch.obs, seed=jax.random.key(0), deterministic=True)
        errors[temperature] = float(jnp.sqrt(jnp.mean((got - best) ** 2)))
    assert errors[3.0] < 0.1, errors
    assert errors[3.0] < 0.5 * errors[0.0], errors
