"""A QD run on an environment task (CartPole with a behaviour descriptor), killed with SIGKILL
at a random point and started again, ends bit-identical to an uninterrupted run: the same
repertoire, emitter state and metrics file. MAP-Elites and CMA-ME (whose emitter state holds
CMA-ES distributions and its own key) alike.

The script is what a user would write: it resumes from its ckpt_dir when a checkpoint exists.
Each iteration is throttled to ~25 ms by a host callback so the kill lands mid-run.
"""

from __future__ import annotations

import random
import signal
import textwrap
import time
from pathlib import Path

import _subprocs as sp
import numpy as np
import pytest

pytest.importorskip("qdax")

STEPS = 40
SCRIPT = textwrap.dedent(
    """
    import sys, time
    import jax, jax.numpy as jnp, numpy as np
    from jax.experimental import io_callback
    import realax.log as rlog
    import realax.tasks as rt
    from realax.train import QDTrainer

    emitter, root, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])

    class Throttled:
        # the real Logger, plus a host callback that makes every step take `delay` seconds
        def __init__(self, inner):
            self.inner = inner

        def log(self, state, metrics):
            self.inner.log(state, metrics)
            io_callback(lambda s: time.sleep(delay), None, state.step, ordered=True)

        def save_on_interrupt(self):
            return self.inner.save_on_interrupt()

        def on_run_end(self, state):
            self.inner.on_run_end(state)

    policy = rt.MLPPolicy(action_dims=2, discrete=True, width=4, depth=1)
    env_task = rt.GymnaxTask("CartPole-v1", policy=policy, max_steps=40)
    task = rt.DescriptorTask(env_task, "mean_obs", ([-2.4, -0.21], [2.4, 0.21]),
                             obs_indices=(0, 2))
    key = jax.random.key(0)
    params = policy.init(key, jnp.zeros(4), policy.initialize(key), key)
    ckpt_dir = f"{root}/{emitter}"
    logger = rlog.Logger(wandb_log=False, metrics_fn=rlog.default_es_metrics,
                         ckpt_dir=ckpt_dir, ckpt_freq=5, resume=True)
    trainer = QDTrainer(STEPS, task, params, emitter=emitter, batch_size=16, grid_shape=(6, 6),
                        init_std=0.5, iso_sigma=0.05, line_sigma=0.1, sigma_g=0.2,
                        logger=Throttled(logger))
    state = trainer.initialize(jax.random.key(1))
    if rlog.latest_step(ckpt_dir) is not None:
        state = rlog.restore(ckpt_dir, like=state)
        print(f"RESUMED {int(state.step)}", flush=True)
    print("TRAINING", flush=True)
    state = trainer.resume_(state)
    logger.finish()
    is_key = lambda x: jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
    leaves = [np.asarray(jax.random.key_data(x) if is_key(x) else x)
              for x in jax.tree.leaves(state)]
    np.savez(f"{root}/{emitter}.npz", *leaves)
    print("DONE", flush=True)
    """
).replace("STEPS", str(STEPS))


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("qd") / "qd_train.py"
    path.write_text(SCRIPT)
    return path


def _wait_for_checkpoint(proc, ckpt_dir: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not sp.steps_on_disk(ckpt_dir):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


@pytest.mark.slow
# CMA-ME: its emitter state (CMA means, covariances, pools) must come back too; MAP-Elites
# resume is covered by tests/test_cli_qd.py
@pytest.mark.parametrize("emitter", ["cma_me"])
def test_qd_sigkill_then_resume_is_bit_identical(script, tmp_path, emitter):
    ref_root, root = tmp_path / "reference", tmp_path / "killed"
    ref_root.mkdir()
    root.mkdir()
    code, stdout, err = sp.finish(sp.start(script, emitter, ref_root, 0.0), timeout=600)
    assert code == 0, err[-3000:]
    # killed at a random moment once the first checkpoint is on disk
    seed = random.randrange(2**32)
    proc = sp.start(script, emitter, root, 0.025)
    _wait_for_checkpoint(proc, root / emitter)
    time.sleep(random.Random(seed).uniform(0.0, 0.4))  # 40 steps x 25 ms
    proc.send_signal(signal.SIGKILL)
    code, _, _ = sp.finish(proc)
    assert code == -signal.SIGKILL, f"the run finished before the kill (seed {seed})"
    on_disk = sp.steps_on_disk(root / emitter)
    assert on_disk and on_disk[-1] < STEPS, (on_disk, seed)
    # started again: resumes from the newest complete checkpoint, ends as if never stopped
    code, stdout, err = sp.finish(sp.start(script, emitter, root, 0.0), timeout=600)
    assert code == 0, err[-3000:]
    assert f"RESUMED {on_disk[-1]}" in stdout
    ours = sp.load_arrays(root / f"{emitter}.npz")
    theirs = sp.load_arrays(ref_root / f"{emitter}.npz")
    assert len(ours) == len(theirs)
    for x, y in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(x, y, strict=True)
    ref_file = ref_root / emitter / "metrics.jsonl"
    assert (root / emitter / "metrics.jsonl").read_bytes() == ref_file.read_bytes()
    # the repertoire really filled up (the run did something worth resuming)
    import realax.log as rlog

    rows = rlog.read_metrics(root / emitter)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert rows[-1]["coverage"] > rows[0]["coverage"]
