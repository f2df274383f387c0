"""``compact="auto"``: the rollout strategy chosen by batch size and step cost."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import realax.tasks as rt
from realax.tasks import _rollout


def _cartpole(compact, **kw):
    policy = rt.MLPPolicy(action_dims=2, discrete=True, width=8, depth=1)
    return rt.GymnaxTask("CartPole-v1", policy=policy, compact=compact, **kw)


def _population(task, n):
    params, _ = rt.make_model_factory(task.policy, jnp.zeros(4), jax.random.key(0))
    noise = lambda x: x + jax.random.normal(jax.random.key(1), (n, 2, *x.shape))  # noqa: E731
    pop, keys = jax.tree.map(noise, params), jax.random.split(jax.random.key(2), (n, 2))
    data = task.init_data(jax.random.key(0))
    inner = jax.vmap(task, in_axes=(0, 0, None))
    return jax.jit(jax.vmap(inner, in_axes=(0, 0, None)))(pop, keys, data)


def test_the_choice_by_batch_size_and_step_cost():
    assert _rollout.prefers_compact(128, 6000) and not _rollout.prefers_compact(128, 100)
    assert not _rollout.prefers_compact(16, 6000)  # too few members to gather a quarter of
    task = _cartpole("auto")
    params, _ = rt.make_model_factory(task.policy, jnp.zeros(4), jax.random.key(0))
    ops = _rollout.step_ops(task._runner, params, jax.random.key(0), None)
    assert 20 < ops < _rollout.AUTO_MIN_STEP_OPS  # CartPole: cheap, the plain vmap


def test_auto_keeps_cheap_steps_on_the_plain_vmap(capsys):
    auto, plain = _cartpole("auto", obs_norm=True), _cartpole(False, obs_norm=True)
    (f1, i1), (f2, i2) = _population(auto, 32), _population(plain, 32)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(i1["episode_length"], i2["episode_length"])
    assert auto.compact_choices[64] == "vmap"
    assert "compact='auto'" not in capsys.readouterr().err  # nothing to say


def test_auto_compacting_equals_forcing_it_and_says_so_once(monkeypatch, capsys):
    # a step "as costly as brax's" (the threshold lowered), on CartPole to keep it fast
    monkeypatch.setattr(_rollout, "AUTO_MIN_STEP_OPS", 1)
    auto, forced = _cartpole("auto", obs_norm=True), _cartpole(True, obs_norm=True)
    (f1, i1), (f2, i2) = _population(auto, 32), _population(forced, 32)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(i1["episode_length"], i2["episode_length"])
    jax.tree.map(np.testing.assert_array_equal, i1["obs_stats"], i2["obs_stats"])
    assert auto.compact_choices[64] == "compact"
    _population(auto, 32)  # compiled again: said once
    err = capsys.readouterr().err
    assert err.count("a batch of 64 members") == 1 and "compact=False forces" in err


def test_brax_steps_are_costly_enough_to_compact():
    policy = rt.MLPPolicy(action_dims=1, width=8, depth=1, action_low=-3.0, action_high=3.0)
    task = rt.BraxTask("inverted_pendulum", 20, policy=policy)
    params, _ = rt.make_model_factory(policy, jnp.zeros(4), jax.random.key(0))
    ops = _rollout.step_ops(task._runner, params, jax.random.key(0), None)
    assert _rollout.prefers_compact(128, ops)


def test_compact_accepts_auto_and_refuses_other_strings():
    assert _cartpole("auto").compact == "auto"
    with pytest.raises(TypeError, match="compact must be True or False, or 'auto'"):
        _cartpole("sometimes")
