"""OfflineTrainer: minibatches of a fixed Dataset on the Algorithm + loops core; its dataset
checks (before anything compiles), resume, seeds and checkpoints."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realax.agents import DQN, SAC, ContinuousBC, Dataset, DiscreteBC
from realax.train.rl import OfflineState, OfflineTrainer, collect

_COMPILED: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda name, *a, **k: (
        _COMPILED.append(k.get("fun_name", "?"))
        if name == "/jax/core/compile/backend_compile_duration"
        else None
    )
)
_LOOPS = re.compile(r"jit\(_(scan_loop|fori_loop|seeds_loop|initialize|step)\)")

SMALL = {"hidden_dims": (8,)}


def lean(obs, key):
    return jnp.int32(obs[2] > 0)


@pytest.fixture(scope="module")
def data():
    return collect(lean, "CartPole-v1", jax.random.key(0), num_steps=256, num_envs=2)


def leaves(tree):
    """Every leaf as a numpy array (typed keys as their key data)."""
    is_key = lambda x: jnp.issubdtype(x.dtype, jax.dtypes.prng_key)  # noqa: E731
    return [np.asarray(jax.random.key_data(x) if is_key(x) else x) for x in jax.tree.leaves(tree)]


def trainer(data, agent=DiscreteBC, env="CartPole-v1", **kw):
    opts = dict(train_steps=8, batch_size=16, eval_freq=4, eval_episodes=2, agent_kwargs=SMALL)
    return OfflineTrainer(agent, data, env, **{**opts, **kw})


def _with(data, **arrays):
    return Dataset.create(**{**data.arrays, **arrays})


def _without(data, key):
    return Dataset.create(**{k: v for k, v in data.arrays.items() if k != key})


BAD = [
    ("missing key", lambda d: trainer(_without(d, "rewards"), DQN), KeyError, r"'rewards'"),
    ("lengths", lambda d: trainer({**d.arrays, "rewards": d["rewards"][:-1]}), ValueError,
     r"different lengths .*'rewards': 255"),
    ("obs shape", lambda d: trainer(_with(d, observations=jnp.zeros((256, 5)))), ValueError,
     r"shape \(5,\) per row but 'CartPole-v1' gives \(4,\)"),
    ("action kind", lambda d: trainer(_with(d, actions=jnp.zeros((256, 1)))), ValueError,
     r"discrete actions, so the dataset needs integer actions"),
    ("action range", lambda d: trainer(_with(d, actions=jnp.full(256, 2, jnp.int32))),
     ValueError, r"integers in \[0, 2\)"),
    ("batch size", lambda d: trainer(d, batch_size=512), ValueError,
     r"batch_size=512 is larger than the dataset \(256 transitions\)"),
    ("nan rewards", lambda d: trainer(_with(d, rewards=d["rewards"].at[7].set(jnp.nan))),
     ValueError, r"'rewards' has NaN values in 1 row\(s\), first at rows \[7\]"),
    ("continuous range", lambda d: trainer(
        collect_pendulum_raw(), ContinuousBC, "Pendulum-v1"), ValueError, r"\[-1, 1\]"),
    ("devices", lambda d: trainer(d, batch_size=15, n_devices=1 + jax.device_count()),
     ValueError, r"n_devices"),
]  # fmt: skip


def collect_pendulum_raw():
    rows = 16
    return Dataset.create(
        observations=jnp.zeros((rows, 3)), actions=jnp.full((rows, 1), 2.0),
        rewards=jnp.zeros(rows), masks=jnp.ones(rows), next_observations=jnp.zeros((rows, 3)),
    )  # fmt: skip


@pytest.mark.parametrize("build,error,match", [r[1:] for r in BAD], ids=[r[0] for r in BAD])
def test_bad_input_before_compiling(data, build, error, match):
    before = len(_COMPILED)
    with pytest.raises(error, match=match):
        build(data)
    assert not [n for n in _COMPILED[before:] if _LOOPS.fullmatch(n)]


@pytest.mark.slow
def test_trains_evaluates_and_resumes_bit_identically(data):
    t = trainer(data)
    state, metrics = t.init_and_train(jax.random.key(1))
    assert isinstance(state, OfflineState) and int(state.step) == 8
    assert {"loss", "eval_return", "eval_length"} <= set(metrics)
    evals = np.asarray(metrics["eval_length"])
    assert np.isnan(evals[[0, 1, 2, 4, 5, 6]]).all() and np.isfinite(evals[[3, 7]]).all()
    assert float(state.eval_return) == float(metrics["eval_return"][-1])

    half, _ = t.train(t.initialize(jax.random.key(1)), n_steps=3)
    resumed, rest = t.resume(half)
    for a, b in zip(leaves(state), leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(metrics["loss"][3:], rest["loss"])


@pytest.mark.slow
def test_seeds_in_one_program(data):
    t = trainer(data, eval_episodes=0)
    states, metrics = t.init_and_train(jax.random.split(jax.random.key(2), 2))
    assert metrics["loss"].shape == (2, 8) and states.step.tolist() == [8, 8]
    one, m_one = t.init_and_train(jax.random.split(jax.random.key(2), 2)[1])
    np.testing.assert_allclose(metrics["loss"][1], m_one["loss"], rtol=1e-5, atol=1e-6)
    assert np.isnan(np.asarray(metrics["eval_return"])).all()  # no evaluation


@pytest.mark.slow
def test_without_env_and_with_sac(data):
    t = trainer(data, env=None)
    assert t.eval_episodes == 0
    state, metrics = t.init_and_train(jax.random.key(0))
    assert np.isnan(float(state.eval_return)) and "eval_length" not in metrics

    rows = 64
    pendulum = Dataset.create(
        observations=jax.random.normal(jax.random.key(0), (rows, 3)),
        actions=jax.random.uniform(jax.random.key(1), (rows, 1), minval=-1, maxval=1),
        rewards=-jnp.ones(rows), masks=jnp.ones(rows), dones=jnp.zeros(rows, bool),
        next_observations=jax.random.normal(jax.random.key(2), (rows, 3)),
    )  # fmt: skip
    t = trainer(pendulum, SAC, "Pendulum-v1", eval_episodes=1, eval_max_steps=5)
    state, metrics = t.init_and_train(jax.random.key(0))
    assert "critic_loss" in metrics and np.isfinite(float(state.eval_return))


@pytest.mark.slow
def test_checkpoint_restore_resume(data, tmp_path):
    rlog = pytest.importorskip("realax.log")
    from realax.train.rl import default_rl_metrics

    reference, _ = trainer(data, eval_episodes=0).init_and_train(jax.random.key(4))
    logger = rlog.Logger(wandb_log=False, metrics_fn=default_rl_metrics,
                         ckpt_dir=str(tmp_path / "ckpt"), ckpt_freq=4)  # fmt: skip
    t = trainer(data, eval_episodes=0, train_steps=8, logger=logger)
    t.train_(t.initialize(jax.random.key(4)), n_steps=4)
    logger.finish()
    restored = rlog.restore(str(tmp_path / "ckpt"), like=t.initialize(jax.random.key(0)))
    assert int(restored.step) == 4
    t.logger = None
    final = t.resume_(restored)
    for a, b in zip(leaves(reference), leaves(final), strict=True):
        np.testing.assert_array_equal(a, b)
