"""Crash and resume of an OfflineTrainer run: CQL on a saved CartPole dataset, killed with
SIGKILL at a random point after its first checkpoint and started again, ends bit-identical to
an uninterrupted run, with every step's metrics written once.

The dataset is not in the checkpoint (the trainer holds it): the script loads it again from
its file (``Dataset.load`` verifies its checksums), as ``realax resume`` does from the path in
config.toml. Each step is throttled to ~25 ms by a host callback so that the kill lands in the
middle of training.
"""

from __future__ import annotations

import random
import signal
import textwrap
import time

import _subprocs as sp
import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # three JAX processes

STEPS = 60

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import jax, jax.numpy as jnp, numpy as np
    from jax.experimental import io_callback
    import realax.log as rlog
    from realax.agents import CQL, DiscreteBC, Dataset
    import realax.agents as ra
    from realax.train.rl import OfflineTrainer, default_rl_metrics

    data_path, ckpt_dir, out, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

    class Throttled:
        def __init__(self, inner):
            self.inner = inner

        def log(self, state, metrics):
            self.inner.log(state, metrics)
            io_callback(lambda s: time.sleep(delay), None, state.step, ordered=True)

        def save_on_interrupt(self):
            return self.inner.save_on_interrupt()

    logger = rlog.Logger(wandb_log=False, metrics_fn=default_rl_metrics, ckpt_dir=ckpt_dir,
                         ckpt_freq=4, resume=True)
    agent = getattr(ra, "CQL", DiscreteBC)
    trainer = OfflineTrainer(agent, Dataset.load(data_path), "CartPole-v1", train_steps=60,
                             batch_size=32, eval_freq=20, eval_episodes=2,
                             agent_kwargs=dict(hidden_dims=(8,)), logger=Throttled(logger))
    state = trainer.initialize(jax.random.key(0))
    if rlog.latest_step(ckpt_dir) is not None:
        state = rlog.restore(ckpt_dir, like=state)
        print(f"RESUMED {int(state.step)}", flush=True)
    state = trainer.resume_(state)
    logger.finish()
    is_key = lambda x: jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
    np.savez(out, *[np.asarray(jax.random.key_data(x) if is_key(x) else x)
                    for x in jax.tree.leaves(state)])
    print("DONE", flush=True)
    """
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from realax.train.rl import collect

    base = tmp_path_factory.mktemp("crash_offline")
    script = base / "train.py"
    script.write_text(SCRIPT)
    data = collect(lambda obs, key: jnp.int32(obs[2] > 0), "CartPole-v1", jax.random.key(0),
                   num_steps=512, num_envs=2, epsilon=0.2)  # fmt: skip
    data_path = data.save(base / "data.npz")
    ref, killed = base / "reference", base / "killed"
    reference = sp.start(script, data_path, ref, ref / "final.npz", 0.0)
    victim = sp.start(script, data_path, killed, base / "killed.npz", 0.025)
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    deadline, kill_at = time.monotonic() + 300, None
    while victim.poll() is None:
        assert time.monotonic() < deadline, f"no checkpoint appeared (seed {seed})"
        if kill_at is None and sp.steps_on_disk(killed):
            kill_at = time.monotonic() + rng.uniform(0.0, 0.8)  # 56 steps x 25 ms follow
        elif kill_at is not None and time.monotonic() >= kill_at:
            victim.send_signal(signal.SIGKILL)
        time.sleep(0.01)
    code, _, err = sp.finish(victim)
    assert code == -signal.SIGKILL, f"finished before the kill (seed {seed}): {err[-2000:]}"
    on_disk = sp.steps_on_disk(killed)
    assert on_disk and on_disk[-1] < STEPS
    restarted = sp.start(script, data_path, killed, killed / "final.npz", 0.0)
    out = {"ref": ref, "killed": killed, "on_disk": on_disk}
    for name, proc in (("reference", reference), ("restarted", restarted)):
        code, stdout, err = sp.finish(proc)
        assert code == 0, err[-3000:]
        out[name] = stdout
    return out


def test_sigkill_then_restart_is_bit_identical(runs):
    import realax.log as rlog

    assert "RESUMED" not in runs["reference"]
    last = runs["on_disk"][-1]
    assert last % 4 == 0 and f"RESUMED {last}" in runs["restarted"]
    resumed = sp.load_arrays(runs["killed"] / "final.npz")
    reference = sp.load_arrays(runs["ref"] / "final.npz")
    assert len(resumed) == len(reference)
    for x, y in zip(resumed, reference, strict=True):
        np.testing.assert_array_equal(x, y, strict=True)
    rows, ref_rows = rlog.read_metrics(runs["killed"]), rlog.read_metrics(runs["ref"])
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert rows == ref_rows
    assert sp.steps_on_disk(runs["killed"]) == list(range(4, STEPS + 1, 4))
