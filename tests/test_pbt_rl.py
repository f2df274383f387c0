"""PBT with the other packages: a PBT run checkpointed by a realax.log Logger, restored and
resumed, equals an uninterrupted one; PBT over PPO (realax.agents) on gymnax CartPole copies
whole RL states (agent, environments) at its events and its agents train with their members'
hyperparameters.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import realax.log as rlog
from realax.agents import PPO
from realax.train import PBT, OptaxTrainer, member_values
from realax.train.rl import OnPolicyTrainer


def _leaves_equal(a, b):
    def data(x):
        return jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x

    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        np.testing.assert_array_equal(np.asarray(data(x)), np.asarray(data(y)), strict=True)


def _loss(p, key):
    lin = jnp.dot(jax.random.normal(key, (4,)), p)
    return 0.5 * jnp.sum((p - 3.0) ** 2) + lin - jax.lax.stop_gradient(lin), {}


def test_pbt_stopped_restored_and_resumed_equals_one_go(tmp_path):
    inner = OptaxTrainer(20, "sgd", lambda k: jnp.zeros(4), _loss, 0.1)
    pbt = PBT(inner, population=4, hparams={"learning_rate": [1.0, 0.3, 0.1, 0.01]}, interval=5)
    key = jax.random.key(0)

    def logger(name, **kw):
        return rlog.Logger(
            wandb_log=False,
            metrics_fn=rlog.default_grad_metrics,
            ckpt_dir=tmp_path / name,
            ckpt_freq=5,
            **kw,
        )

    first = logger("run")
    stopped, _ = pbt.train(pbt.initialize(key), n_steps=12, logger=first)  # on_run_end saves 12
    first.finish()
    assert rlog.all_steps(tmp_path / "run") == [5, 10, 12]
    restored = rlog.restore(tmp_path / "run", like=pbt.initialize(jax.random.key(1)))
    _leaves_equal(restored, stopped)
    second = logger("run", resume=True)
    resumed, _ = pbt.resume(restored, logger=second)
    second.finish()

    whole = logger("whole")
    uninterrupted, metrics = pbt.init_and_train(key, logger=whole)
    whole.finish()
    _leaves_equal(resumed, uninterrupted)
    assert int(resumed.lineage.step[-1]) == 15
    rows, ref = rlog.read_metrics(tmp_path / "run"), rlog.read_metrics(tmp_path / "whole")
    assert [r["step"] for r in rows] == list(range(1, 21))
    assert rows == ref
    # every member's hyperparameters and parents are in the metrics file
    logged = np.array([[r[f"hparams/learning_rate/{i}"] for i in range(4)] for r in rows])
    np.testing.assert_array_equal(logged, member_values(metrics, "hparams/learning_rate"))
    assert {f"parent/{i}" for i in range(4)} <= set(rows[0])


@pytest.mark.slow
def test_pbt_over_ppo_copies_whole_rl_states():
    inner = OnPolicyTrainer(
        PPO,
        "CartPole-v1",
        num_envs=4,
        num_steps=16,
        train_steps=6,
        eval_episodes=0,
        agent_kwargs={"hidden_dims": (16,), "num_minibatches": 2, "update_epochs": 1},
    )
    lrs = [3e-3, 1e-3, 1e-6, 1e-5]
    pbt = PBT(inner, population=4, hparams={"learning_rate": lrs, "ent_coef": [0.01]}, interval=3)
    assert (pbt.metric, pbt.mode) == ("episode_return", "max")
    # three steps (one compiled step, called three times): an exploit event after step 3
    before, _ = pbt.train_python(pbt.initialize(jax.random.key(0)), n_steps=2)
    after, metrics = pbt.train_python(before, n_steps=1)
    parent = np.asarray(after.lineage.parent[0])
    assert int(after.lineage.step[0]) == 3 and (parent != np.arange(4)).sum() == 1
    score = np.asarray(after.lineage.score[0])
    worst = int(np.nanargmin(score))
    assert parent[worst] != worst and parent[worst] == int(np.nanargmax(score))
    # the replaced member holds its source's whole state (the source kept its own)
    members = after.members
    copied = jax.tree.map(lambda x: x[parent], (members.agent, members.env_state, members.obs))
    _leaves_equal((members.agent, members.env_state, members.obs), copied)
    keys = jax.random.key_data(members.key)
    assert not np.array_equal(keys[worst], keys[parent[worst]])  # own keys: futures differ
    # the rest of the run: the agents read their members' (new) hyperparameters
    final, _ = pbt.train_python(after, n_steps=3)
    assert int(final.step) == 6
    assert np.isfinite(member_values(metrics, "hparams/learning_rate")).all()
    lr = np.asarray(final.members.hparams["learning_rate"])
    assert lr[worst] != lrs[worst]
    np.testing.assert_array_equal(np.asarray(final.members.agent.hparams["learning_rate"]), lr)
