"""Multi-host RL: OnPolicyTrainer (PPO) and OffPolicyTrainer (DQN) on gymnax CartPole run
unchanged under ``jax.distributed``: 2 processes x 2 CPU devices over loopback (gloo
collectives) give the results of 1 process x 4 devices, with a Logger that writes metrics and
checkpoints once (process 0).

Three launches of the same script (WORKER below), only ``jax.distributed.initialize`` differs:

* ``multi``: 2 processes x 2 devices, gloo collectives;
* ``gloo``: 1 process x 4 devices, also started through ``jax.distributed`` with gloo;
* ``plain``: 1 process x 4 devices, no ``jax.distributed`` (XLA's in-process collectives).

``multi`` and ``gloo`` agree bit for bit: the environments, the replay buffer and every key are
independent of how devices are spread over processes. ``plain`` agrees bit for bit on
everything the environments produce, but the agents' parameters differ in the last bits: the
agents average gradients (and PPO its advantage statistics) with ``lax.pmean``, and XLA's
in-process all-reduce adds the four devices' values in another order than gloo's. That one
difference is what the ``gloo`` launch isolates.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import _subprocs as sp
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # four JAX processes, each compiling two trainers

WORKER = textwrap.dedent(
    """
    import json, sys
    import jax

    n_proc, proc_id, port, run_dir, gloo = sys.argv[1:6]
    n_proc, proc_id = int(n_proc), int(proc_id)
    if gloo == "1":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{port}", num_processes=n_proc, process_id=proc_id
        )

    import numpy as np
    import realax.log as rlog
    from jax.experimental import multihost_utils
    from realax.agents import DQN, PPO
    from realax.train.rl import OffPolicyTrainer, OnPolicyTrainer, default_rl_metrics

    n_dev = jax.device_count()  # every device of every process
    out = {"process_index": jax.process_index(), "device_count": n_dev,
           "local_device_count": jax.local_device_count()}

    def leaves(state):
        # {field of the RLState: its leaves as lists}; environment leaves are split over all
        # processes' devices, so each process gathers the other processes' parts first
        def one(x):
            if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
                x = jax.random.key_data(x)
            if not x.is_fully_addressable:
                x = multihost_utils.process_allgather(x, tiled=True)
            return np.asarray(x).tolist()

        return {f: [one(x) for x in jax.tree.leaves(getattr(state, f))]
                for f in type(state).__dataclass_fields__}

    def run(name, trainer_cls, agent, ckpt_freq, **kw):
        logger = rlog.Logger(wandb_log=False, metrics_fn=default_rl_metrics,
                             ckpt_dir=f"{run_dir}/{name}", ckpt_freq=ckpt_freq)
        trainer = trainer_cls(agent, "CartPole-v1", num_envs=2 * n_dev, n_devices=n_dev,
                              logger=logger, **kw)
        state, metrics = trainer.init_and_train(jax.random.key(0))
        logger.finish()  # every process waits until process 0 has written everything
        restored = rlog.restore(f"{run_dir}/{name}", like=trainer.initialize(jax.random.key(1)))
        out[name] = {
            "state": leaves(state),
            "metrics": jax.tree.map(lambda x: np.asarray(x).tolist(), metrics),
            "restored": leaves(restored),
            "obs_devices": len(state.obs.sharding.device_set),
            "obs_addressable": state.obs.is_fully_addressable,
        }

    run("ppo", OnPolicyTrainer, PPO, 2, num_steps=8, train_steps=4, eval_freq=2,
        eval_episodes=n_dev,
        agent_kwargs=dict(hidden_dims=(8,), num_minibatches=2, update_epochs=2))
    run("dqn", OffPolicyTrainer, DQN, 3, buffer_size=16 * n_dev, batch_size=4 * n_dev,
        learning_starts=32, train_freq=2, train_steps=6, eval_episodes=0,
        agent_kwargs=dict(hidden_dims=(8,)))
    print("RESULT " + json.dumps(out), flush=True)
    """
)


def _launch(script: Path, n_proc: int, devices_per_proc: int, run_dir: Path, gloo: bool):
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices_per_proc}",
        "JAX_PLATFORMS": "cpu",
    }
    port = str(sp.free_port())
    argv = [str(n_proc), None, port, str(run_dir), "1" if gloo else "0"]
    return [
        subprocess.Popen(
            [sys.executable, str(script), *(str(i) if a is None else a for a in argv)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n_proc)
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("multihost_rl")
    script = base / "worker.py"
    script.write_text(WORKER)
    launches = {
        "multi": _launch(script, 2, 2, base / "multi", gloo=True),
        "gloo": _launch(script, 1, 4, base / "gloo", gloo=True),
        "plain": _launch(script, 1, 4, base / "plain", gloo=False),
    }
    results = {name: sp.collect(procs) for name, procs in launches.items()}
    return {**results, "dirs": {name: base / name for name in launches}}


AGENTS = ["ppo", "dqn"]


def test_topology_and_sharding(runs):
    (plain,), (gloo,) = runs["plain"], runs["gloo"]
    p0, p1 = runs["multi"]
    assert (p0["process_index"], p1["process_index"]) == (0, 1)
    assert p0["device_count"] == p1["device_count"] == 4
    assert p0["local_device_count"] == p1["local_device_count"] == 2
    assert plain["local_device_count"] == gloo["local_device_count"] == 4
    for name in AGENTS:
        # the environments are split over the 4 devices; with 2 processes each holds half
        assert p0[name]["obs_devices"] == plain[name]["obs_devices"] == 4
        assert not p0[name]["obs_addressable"] and plain[name]["obs_addressable"]


def test_every_process_ends_with_the_same_state_and_metrics(runs):
    p0, p1 = runs["multi"]
    for name in AGENTS:
        assert p0[name] == p1[name]


@pytest.mark.parametrize("name", AGENTS)
def test_two_processes_match_one_process_bit_for_bit(runs, name):
    # same collectives (gloo), different topology: every bit of state and metrics agrees
    two, one = runs["multi"][0][name], runs["gloo"][0][name]
    assert two["state"] == one["state"]
    assert two["metrics"] == one["metrics"]


@pytest.mark.parametrize("name", AGENTS)
def test_two_processes_match_one_plain_process(runs, name):
    two, one = runs["multi"][0][name], runs["plain"][0][name]
    # Everything the environments produce is bit-identical (environment states, observations,
    # episode statistics, step counters, replay buffer), as are the keys ...
    for field in one["state"]:
        if field != "agent":
            assert two["state"][field] == one["state"][field], field
    m2, m1 = two["metrics"], one["metrics"]
    for metric in ("episode_return", "episode_length", "episodes", "env_steps", "eval_return"):
        if metric in m1:
            np.testing.assert_array_equal(m2[metric], m1[metric], err_msg=metric)
    # ... while the agent's parameters and the losses differ at float32 rounding level only:
    # the agents' lax.pmean sums the devices' gradients in another order in XLA's in-process
    # all-reduce than in gloo's (the `gloo` launch, one process too, matches bit for bit).
    for a, b in zip(two["state"]["agent"], one["state"]["agent"], strict=True):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    for metric in m1:
        np.testing.assert_allclose(
            np.asarray(m2[metric], np.float64),
            np.asarray(m1[metric], np.float64),
            rtol=1e-5,
            atol=1e-6,
            err_msg=metric,
        )


def test_training_happened(runs):
    ppo, dqn = runs["multi"][0]["ppo"]["metrics"], runs["multi"][0]["dqn"]["metrics"]
    assert ppo["env_steps"] == [64, 128, 192, 256]  # 8 envs x 8 steps per train step
    assert np.isfinite(ppo["loss"]).all() and np.isfinite(ppo["eval_return"][1])
    assert dqn["env_steps"] == [16, 32, 48, 64, 80, 96]  # 8 envs x train_freq 2
    assert dqn["updates"] == [0, 1, 1, 1, 1, 1]  # learning starts at 32 env steps
    assert np.isfinite(dqn["loss"][1:]).all()


@pytest.mark.parametrize("name", AGENTS)
def test_logger_writes_once_and_every_process_restores_the_final_checkpoint(runs, name):
    n_steps, ckpts = {"ppo": (4, [2, 4]), "dqn": (6, [3, 6])}[name]
    for launch in ("multi", "gloo", "plain"):
        run_dir = runs["dirs"][launch] / name
        rows = (run_dir / "metrics.jsonl").read_text().splitlines()
        assert len(rows) == n_steps, launch  # in `multi`, process 1 wrote nothing
        assert [json.loads(r)["step"] for r in rows] == list(range(1, n_steps + 1))
        steps = sorted(int(p.name) for p in run_dir.iterdir() if p.name.isdigit())
        assert steps == ckpts, launch
    multi = (runs["dirs"]["multi"] / name / "metrics.jsonl").read_text()
    gloo = (runs["dirs"]["gloo"] / name / "metrics.jsonl").read_text()
    assert multi == gloo
    for proc in runs["multi"]:  # each process restores process 0's last checkpoint by itself
        assert proc[name]["restored"] == proc[name]["state"]
