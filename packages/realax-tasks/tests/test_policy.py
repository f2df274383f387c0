"""Policies: protocol checks, output shapes and bounds, model factories."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest
import realax.tasks as rt


def _init(policy, obs):
    return rt.make_model_factory(policy, obs, jax.random.key(0))


def test_continuous_mlp_actions_stay_within_per_dimension_bounds():
    low, high = (-3.0, 0.0, 10.0), (3.0, 0.5, 20.0)
    policy = rt.MLPPolicy(action_dims=3, width=8, depth=2, action_low=low, action_high=high)
    params, _ = _init(policy, jnp.zeros(5))
    # large parameters saturate the tanh: actions must still respect the bounds
    params = jax.tree.map(lambda x: 50.0 * x, params)
    obs = 10.0 * jax.random.normal(jax.random.key(1), (256, 5))
    acts, states = jax.vmap(policy.apply, (None, 0, None, None))(params, obs, None, None)
    assert acts.shape == (256, 3) and states is None
    assert bool(jnp.all(acts >= jnp.array(low))) and bool(jnp.all(acts <= jnp.array(high)))
    # the range is used, not just its midpoint
    assert bool(jnp.all(acts.max(0) - acts.min(0) > 0.5 * (jnp.array(high) - jnp.array(low))))


def test_discrete_mlp_argmax_is_deterministic_and_sampling_covers_actions():
    obs = jnp.ones(4)
    greedy = rt.MLPPolicy(action_dims=5, width=8, depth=1, discrete=True)
    params, _ = _init(greedy, obs)
    a1, _ = greedy.apply(params, obs, None, jax.random.key(1))
    a2, _ = greedy.apply(params, obs, None, jax.random.key(2))
    assert a1.dtype == jnp.int32 and a1.shape == () and int(a1) == int(a2)
    sampler = rt.MLPPolicy(action_dims=5, width=8, depth=1, discrete=True, stochastic=True)
    acts = jax.vmap(lambda k: sampler.apply(params, obs, None, k)[0])(
        jax.random.split(jax.random.key(3), 500)
    )
    assert set(acts.tolist()) == set(range(5))


def test_multi_discrete_mlp_outputs_one_action_per_component():
    policy = rt.MLPPolicy(action_dims=(3, 1, 6), width=8, depth=1, discrete=True)
    params, _ = _init(policy, jnp.zeros(7))
    obs = jax.random.normal(jax.random.key(0), (64, 7))
    acts = jax.vmap(lambda o: policy.apply(params, o, None, None)[0])(obs)
    assert acts.shape == (64, 3)
    assert bool(jnp.all(acts >= 0)) and bool(jnp.all(acts < jnp.array([3, 1, 6])))


def test_gru_policy_carries_its_state():
    policy = rt.GRUPolicy(action_dims=2, hidden_size=6, action_low=-2.0, action_high=2.0)
    params, factory = _init(policy, jnp.zeros(3))
    model = factory(params)
    h = model.initialize(jax.random.key(0))
    assert h.shape == (6,) and not bool(jnp.any(h))
    a, h1 = model(jnp.ones(3), h, jax.random.key(1))
    a2, h2 = model(jnp.ones(3), h1, jax.random.key(1))
    assert a.shape == (2,) and bool(jnp.all(jnp.abs(a) <= 2.0))
    assert not bool(jnp.allclose(h1, h2))  # same input, different memory


def test_model_factory_matches_apply_and_jits_and_vmaps_over_params():
    policy = rt.MLPPolicy(action_dims=2, width=8, depth=2)
    keys = jax.random.split(jax.random.key(0), 4)
    pop = jax.vmap(lambda k: rt.make_model_factory(policy, jnp.zeros(3), k)[0])(keys)
    _, factory = _init(policy, jnp.zeros(3))

    @jax.jit
    def act(p, o):
        model = factory(p)
        return model(o, model.initialize(jax.random.key(0)), jax.random.key(1))[0]

    out = jax.vmap(act, (0, None))(pop, jnp.ones(3))
    ref = jax.vmap(lambda p: policy.apply(p, jnp.ones(3), None, None)[0])(pop)
    chex.assert_trees_all_close(out, ref, atol=1e-5)
    assert out.shape == (4, 2)


def test_protocol_violations_are_reported():
    class NoState(nn.Module):
        @nn.compact
        def __call__(self, obs, state, key):
            return nn.Dense(2)(obs)  # forgot to return the state

        def initialize(self, key):
            return None

    with pytest.raises(TypeError, match=r"must return \(action, state\)"):
        rt.check_policy(NoState(), jnp.zeros(3))

    class WrongSignature(rt.BasePolicy):
        @nn.compact
        def __call__(self, obs):
            return nn.Dense(2)(obs), None

    with pytest.raises(TypeError, match="does not follow the protocol"):
        rt.BasePolicy.check(WrongSignature(), jnp.zeros(3))
    with pytest.raises(TypeError, match="flax linen Module"):
        rt.check_policy(lambda o, s, k: (o, s), jnp.zeros(3))
    with pytest.raises(ValueError, match="action_low must be < action_high"):
        rt.MLPPolicy(action_dims=2, action_low=1.0, action_high=1.0)
    with pytest.raises(ValueError, match="action_dims must be a positive int"):
        rt.MLPPolicy(action_dims=0)
    with pytest.raises(ValueError, match="needs discrete=True"):
        rt.MLPPolicy(action_dims=(2, 3))


def test_from_env_sizes_policies_for_the_environment():
    env = rt.make("Pendulum-v1")
    policy = rt.MLPPolicy.from_env(env, width=4, depth=1)
    assert policy.action_dims == 1 and policy.action_low == (-2.0,) and not policy.discrete
    gru = rt.GRUPolicy.from_env(rt.make("Acrobot-v1"), hidden_size=4)
    assert gru.action_dims == 3 and gru.discrete
