"""Multi-host: 2 processes x 2 CPU devices (jax.distributed over loopback, gloo collectives)
give the results of 1 process x 4 devices, for EvosaxTrainer and OptaxTrainer, with a Logger
that writes metrics, wandb and checkpoints once (process 0).

Every process runs the same unchanged script (WORKER below); only
``jax.distributed.initialize`` differs. The script prints its results as JSON.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import _subprocs as sp
import numpy as np
import pytest

pytestmark = pytest.mark.slow  # three JAX processes; about a minute on 2 cores

WORKER = textwrap.dedent(
    """
    import json, sys
    import jax

    n_proc, proc_id, port, run_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if n_proc > 1:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=f"127.0.0.1:{port}", num_processes=n_proc, process_id=proc_id
        )

    import jax.numpy as jnp
    import numpy as np
    import realax.log as rlog
    from realax.train import EvosaxTrainer, OptaxTrainer

    n_dev = jax.device_count()  # every device of every process
    out = {"process_index": jax.process_index(), "device_count": n_dev,
           "local_device_count": jax.local_device_count()}

    def tolist(tree):
        return jax.tree.map(lambda x: np.asarray(x).tolist(), tree)

    # -- ES: population sharded over all 4 devices; the task reads its evaluation key -----------
    def task(x, key, data=None):
        return jnp.sum((x["w"] - 1.0) ** 2) + jnp.sum(x["b"] ** 2) + 0.05 * jax.random.normal(
            key), {}

    like = {"w": jnp.zeros((2, 3)), "b": jnp.full(2, 0.5)}
    es_logger = rlog.Logger(wandb_log=True, metrics_fn=rlog.default_es_metrics,
                            ckpt_dir=f"{run_dir}/es", ckpt_freq=5, mode="offline")
    es_logger.init(project="realax-multihost", config={"popsize": 16})
    for name in ("SNES", "SimpleGA"):
        t = EvosaxTrainer(15, name, task, params_like=like, popsize=16, eval_reps=2,
                          n_devices=n_dev, logger=es_logger if name == "SNES" else None)
        state, metrics = t.init_and_train(jax.random.key(0))
        out[f"es_{name}"] = {"mean": tolist(state.mean), "best": float(state.best_fitness),
                             "best_params": tolist(state.best_params),
                             "metrics": tolist(metrics)}
        if name == "SNES":
            es_logger.finish()
            restored = rlog.restore(f"{run_dir}/es", like=t.initialize(jax.random.key(1)))
            out["es_restored_mean"] = tolist(restored.mean)
            out["es_restored_step"] = int(restored.step)

    try:  # a mesh over some processes' devices only
        EvosaxTrainer(6, "SNES", task, params_like=like, popsize=8, n_devices=2)
        out["partial_mesh_error"] = None
    except ValueError as e:
        out["partial_mesh_error"] = str(e)

    # several seeds in one program, each population sharded over the 4 devices
    t = EvosaxTrainer(6, "CMA_ES", task, params_like=like, popsize=8, n_devices=n_dev)
    seeds, seed_metrics = t.init_and_train(jax.random.split(jax.random.key(2), 2))
    out["es_seeds"] = {"mean": tolist(seeds.mean), "best": tolist(seeds.best_fitness),
                       "metrics": tolist(seed_metrics)}

    # -- gradients: each minibatch sharded over all 4 devices ------------------------------------
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(64, 3)).astype(np.float32)
    ys = (xs @ np.array([1.0, -2.0, 0.5], np.float32)).astype(np.float32)

    def loss(p, key, batch):
        return jnp.mean((batch["x"] @ p["w"] + p["b"] - batch["y"]) ** 2), {}

    grad_logger = rlog.Logger(wandb_log=False, metrics_fn=rlog.default_grad_metrics,
                              ckpt_dir=f"{run_dir}/grad", ckpt_freq=4)
    g = OptaxTrainer(8, "adam", lambda k: {"w": jax.random.normal(k, (3,)), "b": jnp.zeros(())},
                     loss, learning_rate=0.05, n_devices=n_dev, dataset={"x": xs, "y": ys},
                     batch_size=16, logger=grad_logger)
    gstate, gmetrics = g.init_and_train(jax.random.key(0))
    grad_logger.finish()
    out["grad"] = {"params": tolist(gstate.params), "metrics": tolist(gmetrics)}
    restored = rlog.restore(f"{run_dir}/grad", like=g.initialize(jax.random.key(1)))
    out["grad_restored_params"] = tolist(restored.params)

    # -- the same run, each process passing only its own part of the examples ------------------
    init = lambda k: {"w": jax.random.normal(k, (3,)), "b": jnp.zeros(())}
    part = len(xs) // jax.process_count()
    lo = part * jax.process_index()
    local = {"x": xs[lo:lo + part], "y": ys[lo:lo + part]}
    g = OptaxTrainer(8, "adam", init, loss, learning_rate=0.05, n_devices=n_dev, dataset=local,
                     batch_size=16, dataset_sharding="process_local")
    lstate, lmetrics = g.init_and_train(jax.random.key(0))
    out["grad_local"] = {"params": tolist(lstate.params), "metrics": tolist(lmetrics)}
    out["grad_local_n_examples"] = g.n_examples
    bad = {}
    for label, rows in (("uneven", 31), ("unequal", 32 if jax.process_index() == 0 else 28)):
        try:
            OptaxTrainer(2, "adam", init, loss, n_devices=n_dev, dataset_sharding="process_local",
                         dataset={"x": xs[:rows], "y": ys[:rows]}, batch_size=4)
            bad[label] = None
        except ValueError as e:
            bad[label] = str(e)
    out["grad_local_errors"] = bad
    print("RESULT " + json.dumps(out), flush=True)
    """
)


def _launch(script: Path, n_proc: int, devices_per_proc: int, run_dir: Path, port: int):
    env = {
        **os.environ,
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices_per_proc}",
        "JAX_PLATFORMS": "cpu",
        "WANDB_MODE": "offline",
        "WANDB_DIR": str(run_dir / "wandb"),
        "WANDB_SILENT": "true",
    }
    (run_dir / "wandb").mkdir(parents=True)
    return [
        subprocess.Popen(
            [sys.executable, str(script), str(n_proc), str(i), str(port), str(run_dir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n_proc)
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("multihost")
    script = base / "worker.py"
    script.write_text(WORKER)
    # both configurations at once: 1 process x 4 devices, and 2 processes x 2 devices
    single = _launch(script, 1, 4, base / "single", sp.free_port())
    multi = _launch(script, 2, 2, base / "multi", sp.free_port())
    return {
        "single": sp.collect(single)[0],
        "multi": sp.collect(multi),
        "single_dir": base / "single",
        "multi_dir": base / "multi",
    }


def _flat(tree):
    if isinstance(tree, dict):
        return np.concatenate([_flat(tree[k]) for k in sorted(tree)])
    return np.ravel(np.asarray(tree, dtype=np.float64))


def test_topology(runs):
    assert runs["single"]["device_count"] == 4 and runs["single"]["local_device_count"] == 4
    p0, p1 = runs["multi"]
    assert (p0["process_index"], p1["process_index"]) == (0, 1)
    assert p0["device_count"] == 4 and p0["local_device_count"] == 2
    # n_devices must span every process (or be 1); fine within one process
    assert runs["single"]["partial_mesh_error"] is None
    assert "n_devices=2 in a run of 2 processes" in p0["partial_mesh_error"]
    assert "n_devices=jax.device_count() (=4" in p0["partial_mesh_error"]


def test_every_process_gets_identical_results(runs):
    p0, p1 = runs["multi"]
    # states and metrics are replicated: the same bits on every process
    del p0["process_index"], p1["process_index"]
    assert p0 == p1


@pytest.mark.parametrize("name", ["SNES", "SimpleGA", "seeds"])
def test_es_two_processes_match_one_process(runs, name):
    one, two = runs["single"][f"es_{name}"], runs["multi"][0][f"es_{name}"]
    # The population is evaluated shard by shard and gathered exactly (an all-gather copies
    # bits); everything else runs replicated, the same program on every device, so the two
    # topologies agree bit for bit. (Before the ES state was pinned replicated, XLA sharded a
    # GA's population over devices and state.mean became an all-reduce whose order depended
    # on the topology.)
    assert one.keys() == two.keys()
    for part in one:
        np.testing.assert_array_equal(_flat(two[part]), _flat(one[part]))
    best = np.asarray(one["metrics"]["best_fitness"])  # (steps,) or (seeds, steps)
    assert np.all(best[..., -1] <= best[..., 0])  # (6 CMA_ES steps may not improve a seed)
    if name != "seeds":
        assert best[-1] < best[0]
    steps = 6 if name == "seeds" else 15
    assert np.asarray(one["metrics"]["generation"])[..., :].tolist() == (
        [list(range(1, steps + 1))] * 2 if name == "seeds" else list(range(1, steps + 1))
    )


def test_grad_two_processes_match_one_process_bit_for_bit(runs):
    # gradients are gathered and averaged in device order: no topology-dependent reduction
    one, two = runs["single"]["grad"], runs["multi"][0]["grad"]
    assert one == two
    assert one["metrics"]["loss"][-1] < one["metrics"]["loss"][0]


def test_grad_process_local_shards_match_the_full_dataset(runs):
    # each of 2 processes passes half of the examples; the minibatches are assembled from the
    # shards exactly, so the run equals one process holding the whole dataset
    full = runs["single"]["grad"]
    assert runs["single"]["grad_local"] == full
    for proc in runs["multi"]:
        assert proc["grad_local_n_examples"] == 64
        assert proc["grad_local"] == full
    # shapes that do not fit: a clear error on every process, before anything is compiled
    for proc in runs["multi"]:
        errors = proc["grad_local_errors"]
        uneven = "split evenly over its 2 device(s) (got 31 examples on process 0)"
        assert uneven in errors["uneven"]
        assert "same number of examples (got [32, 28]" in errors["unequal"]
    errors = runs["single"]["grad_local_errors"]
    assert "split evenly over its 4 device(s) (got 31 examples" in errors["uneven"]
    assert errors["unequal"] is None


def test_logger_writes_once_and_checkpoints_restore_on_every_process(runs):
    for key, n_rows in (("es", 15), ("grad", 8)):
        single = (runs["single_dir"] / key / "metrics.jsonl").read_text().splitlines()
        multi = (runs["multi_dir"] / key / "metrics.jsonl").read_text().splitlines()
        assert len(single) == len(multi) == n_rows  # process 1 wrote nothing
        steps = sorted(int(p.name) for p in (runs["multi_dir"] / key).iterdir() if p.name.isdigit())
        assert steps == ([5, 10, 15] if key == "es" else [4, 8])
    for proc in runs["multi"]:  # each process restores the final checkpoint by itself
        assert proc["es_restored_step"] == 15
        np.testing.assert_array_equal(
            _flat(proc["es_restored_mean"]), _flat(proc["es_SNES"]["mean"])
        )
        assert proc["grad_restored_params"] == proc["grad"]["params"]
    # wandb: one offline run for the multi-process job, started by process 0 only
    runs_multi = list((runs["multi_dir"] / "wandb" / "wandb").glob("offline-run-*"))
    runs_single = list((runs["single_dir"] / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs_multi) == len(runs_single) == 1
