"""Data-parallel updates on 4 CPU devices equal one device on the whole batch.

One subprocess (``_multidevice_worker.py``, with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` set before jax starts) runs every check
and reports the measured differences; the tests below assert on them.

For each agent (DiscreteBC, ContinuousBC, DQN, PPO, SAC) and for a bare `TrainState`, the
update runs twice under `jax.pmap` with ``pmap_axis`` on a batch split with `shard_batch`
(the agent copied with `replicate`) and twice on one device with the whole batch.

Tolerance: every leaf of the resulting agent (parameters of every network, optimiser states,
target networks, step counters, PRNG keys) agrees within ``ATOL = 1e-6`` absolute, while the
parameters moved by at least ``5e-4`` (so a wrong average, e.g. a sum over devices or a single
device's gradient, would be caught by orders of magnitude); the float32 differences left are
reduction-order rounding (~1e-8). The copies on the 4 devices are bit-identical.

PPO shuffles minibatches with the agent's key on every device, so with several minibatches a
device's minibatch ``i`` is a random quarter of the global minibatch ``i`` rather than one
device's shuffle of the whole rollout: equality with one device is checked with
``num_minibatches=1, update_epochs=1`` (where the step is a function of the whole rollout), and
with 2 minibatches x 2 epochs only the agreement between devices is checked.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("_multidevice_worker.py")
ATOL = 1e-6
INFO_ATOL = 1e-5
MIN_MOVE = 5e-4
EXACT = ["DiscreteBC", "ContinuousBC", "DQN", "PPO", "PPO (GAE inside, envs sharded)", "SAC"]


def _run_worker() -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    ).strip()
    env["JAX_PLATFORMS"] = "cpu"
    for attempt in range(2):
        proc = subprocess.run(
            [sys.executable, str(WORKER)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        # jaxlib's in-process CPU all-reduce can leave one of the 4 forced devices' threads
        # unscheduled on an oversubscribed 2-core machine; XLA then aborts the process after
        # 40 s ("Termination timeout for `all reduce ...`"). Seen once in a full CI run, in a
        # worker that passed in every other run; only that abort is retried, once.
        if attempt == 0 and proc.returncode < 0 and "Termination timeout for `all" in proc.stderr:
            continue
        break
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


@pytest.mark.slow
def test_data_parallel_updates_equal_one_device_on_the_whole_batch():
    # One test (not one per agent): a single 4-device subprocess runs every check, and
    # pytest-xdist would otherwise start it once per worker.
    out = _run_worker()
    assert out["devices"] == 4
    agents = {a["name"]: a for a in out["agents"]}
    failures = []

    def check(ok, what, r):
        if not ok:
            failures.append(f"{what}: {r}")

    for name in EXACT:
        r = agents[name]
        check(r["moved"] > MIN_MOVE, f"{name} params did not move", r)
        check(r["diff_vs_single"] < ATOL, f"{name} pmap != one device (atol {ATOL})", r)
        check(r["info_diff"] < INFO_ATOL, f"{name} info differs from one device", r)
        check(r["device_spread"] == 0.0, f"{name} devices disagree", r)
        check(r["info_spread"] == 0.0, f"{name} info differs across devices", r)
        check(r["step"] == 2, f"{name} step count", r)

    # PPO with shuffled minibatches: devices must stay in lockstep.
    r = agents["PPO (2 minibatches x 2 epochs)"]
    check(r["step"] == 8, "PPO 2x2 step count (2 updates x 2 epochs x 2 minibatches)", r)
    check(r["moved"] > MIN_MOVE, "PPO 2x2 params did not move", r)
    check(r["device_spread"] == 0.0 and r["info_spread"] == 0.0, "PPO 2x2 devices disagree", r)

    # TrainState.apply_loss_fn(pmap_axis=...) under jax.pmap + replicate + shard_batch, and
    # under jax.shard_map with a replicated state (in_specs=P()): there autodiff sums the
    # gradient over the axis itself, and the step must still be that of the mean loss.
    r = out["train_state"]
    check(r["moved"] > 1e-3, "TrainState params did not move", r)
    check(r["pmap_diff"] < ATOL and r["pmap_spread"] == 0.0, "TrainState pmap", r)
    check(r["shard_map_diff"] < ATOL, "TrainState shard_map != one device", r)
    check(max(r["pmap_loss_diff"], r["shard_map_loss_diff"]) < INFO_ATOL, "TrainState loss info", r)
    # Batch-norm running means kept in extra_variables (has_updates=True) are averaged: the
    # mean of the per-device batch means is the whole batch's mean (equal shard sizes).
    check(r["bn_moved"] > 1e-2, "batch stats did not move", r)
    check(r["bn_mean_diff"] < ATOL and r["bn_spread"] == 0.0, "batch-norm running mean", r)
    assert not failures, "\n".join(failures)
