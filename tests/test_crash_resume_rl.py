"""Crash and resume for the RL trainers: a PPO with observation and reward normalisation
(OnPolicyTrainer; its running statistics are part of the checkpoint), a recurrent PPO (the
GRU's hidden states are), a DQN (OffPolicyTrainer, whose replay buffer is) and a PQN
(PQNTrainer) run on gymnax CartPole, killed with SIGKILL at a random point after its first
checkpoint and started again, end bit-identical to an uninterrupted run, with every step's
metrics written once.

The training script (SCRIPT below) is what a user would write: it resumes from its ckpt_dir
when a checkpoint exists, else starts fresh. Each step is throttled to ~25 ms by a host
callback so that the kill lands in the middle of training. The uninterrupted reference runs
and the runs to be killed are started at the same time.
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

pytestmark = pytest.mark.slow  # five JAX processes

STEPS = 60

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import jax, jax.numpy as jnp, numpy as np
    from jax.experimental import io_callback
    import realax.log as rlog
    from realax.agents import DQN, PPO, PQN, RecurrentPPO
    from realax.train.rl import OffPolicyTrainer, OnPolicyTrainer, PQNTrainer, default_rl_metrics

    kinds, root, delay = sys.argv[1].split(","), sys.argv[2], float(sys.argv[3])
    STEPS = 60

    class Throttled:
        # the real Logger, plus a host callback that makes every step take `delay` seconds
        def __init__(self, inner):
            self.inner = inner

        def log(self, state, metrics):
            self.inner.log(state, metrics)
            io_callback(lambda s: time.sleep(delay), None, state.step, ordered=True)

        def save_on_interrupt(self):
            return self.inner.save_on_interrupt()

    def train(kind, ckpt_dir, out):
        logger = rlog.Logger(wandb_log=False, metrics_fn=default_rl_metrics, ckpt_dir=ckpt_dir,
                             ckpt_freq=4, resume=True)
        if kind in ("ppo-norm", "rppo"):
            recurrent = dict(hidden_size=8, head_dims=(8,)) if kind == "rppo" else {}
            norm = kind == "ppo-norm"  # with observation and reward normalisation
            trainer = OnPolicyTrainer(
                RecurrentPPO if kind == "rppo" else PPO, "CartPole-v1", num_envs=4,
                num_steps=8, train_steps=STEPS,
                eval_episodes=0, logger=Throttled(logger),
                normalize_obs=norm, normalize_reward=norm,
                agent_kwargs=dict(hidden_dims=(8,), num_minibatches=2, update_epochs=1,
                                  **recurrent))
        elif kind == "pqn":  # epsilon follows the env steps: restored from the state
            trainer = PQNTrainer(
                PQN, "CartPole-v1", num_envs=4, num_steps=8, train_steps=STEPS,
                eval_episodes=0, logger=Throttled(logger),
                agent_kwargs=dict(hidden_dims=(8,), num_minibatches=2, update_epochs=1))
        else:  # a 64-row buffer: it wraps around several times before the end
            trainer = OffPolicyTrainer(
                DQN, "CartPole-v1", buffer_size=64, batch_size=16, learning_starts=32,
                train_freq=2, train_steps=STEPS, num_envs=4, eval_episodes=0,
                agent_kwargs=dict(hidden_dims=(8,)), logger=Throttled(logger))

        state = trainer.initialize(jax.random.key(0))
        if rlog.latest_step(ckpt_dir) is not None:
            state = rlog.restore(ckpt_dir, like=state)
            print(f"RESUMED {kind} {int(state.step)}", flush=True)
        print("TRAINING", flush=True)
        state = trainer.resume_(state)
        logger.finish()
        is_key = lambda x: jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
        leaves = [np.asarray(jax.random.key_data(x) if is_key(x) else x)
                  for x in jax.tree.leaves(state)]
        np.savez(out, *leaves)

    for kind in kinds:
        train(kind, f"{root}/{kind}", f"{root}/{kind}.npz")
    print("DONE", flush=True)
    """
)

KINDS = ("ppo-norm", "dqn", "rppo", "pqn")


def _kill_after_first_checkpoint(procs: dict, root: Path, timeout: float = 900.0) -> dict:
    """SIGKILL each run at a random moment after its first checkpoint appeared.

    The runs compile before their first checkpoint, several at once on a shared machine:
    the deadline only catches a run that hangs (a run that exits early fails at once)."""
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    deadline = time.monotonic() + timeout
    kill_at: dict[str, float] = {}
    while len(kill_at) < len(procs) or any(procs[k].poll() is None for k in procs):
        now = time.monotonic()
        assert now < deadline, f"no checkpoint appeared in {timeout:.0f} s (seed {seed})"
        for kind, proc in procs.items():
            if kind not in kill_at and sp.steps_on_disk(root / kind):
                kill_at[kind] = now + rng.uniform(0.0, 0.8)  # 56 steps x 25 ms follow step 4
            elif kind in kill_at and now >= kill_at[kind] and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            elif kind not in kill_at:
                assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.01)
    on_disk = {}
    for kind, proc in procs.items():
        code, _, _ = sp.finish(proc)
        assert code == -signal.SIGKILL, f"{kind} finished before the kill (seed {seed})"
        on_disk[kind] = sp.steps_on_disk(root / kind)
        assert on_disk[kind] and on_disk[kind][-1] < STEPS, (kind, on_disk[kind], seed)
        assert not (root / f"{kind}.npz").exists()
    return on_disk


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("crash_rl")
    script = base / "train.py"
    script.write_text(SCRIPT)
    ref_root, root = base / "reference", base / "killed"
    ref_root.mkdir()
    root.mkdir()
    reference = sp.start(script, ",".join(KINDS), ref_root, 0.0)  # both runs, one process
    killed = {k: sp.start(script, k, root, 0.025) for k in KINDS}
    on_disk = _kill_after_first_checkpoint(killed, root)
    restarted = {k: sp.start(script, k, root, 0.0) for k in KINDS}
    out = {"ref_root": ref_root, "root": root, "on_disk": on_disk}
    code, stdout, err = sp.finish(reference)
    assert code == 0, err[-3000:]
    out["reference"] = stdout
    for kind, proc in restarted.items():
        code, stdout, err = sp.finish(proc)
        assert code == 0, err[-3000:]
        out["restarted", kind] = stdout
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_sigkill_then_restart_is_bit_identical_to_an_uninterrupted_run(runs, kind):
    import realax.log as rlog

    assert "RESUMED" not in runs["reference"]
    # the restart resumed from the newest complete checkpoint (a multiple of ckpt_freq=4)
    last = runs["on_disk"][kind][-1]
    assert last % 4 == 0 and f"RESUMED {kind} {last}" in runs["restarted", kind]
    # every leaf of the final state (agent, optimiser, environments, replay buffer, key)
    resumed, reference = (
        sp.load_arrays(runs["root"] / f"{kind}.npz"),
        sp.load_arrays(runs["ref_root"] / f"{kind}.npz"),
    )
    assert len(resumed) == len(reference)
    for x, y in zip(resumed, reference, strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y, strict=True)
    # nothing lost or repeated in the metrics: every step once, as in the uninterrupted run
    rows = rlog.read_metrics(runs["root"] / kind)
    ref_rows = rlog.read_metrics(runs["ref_root"] / kind)
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert rows == ref_rows
    assert ref_rows[-1]["env_steps"] == STEPS * (8 if kind == "dqn" else 32)
    assert sp.steps_on_disk(runs["root"] / kind) == list(range(4, STEPS + 1, 4))
