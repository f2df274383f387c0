"""Per-step data (``step_data=``): the original's ``data["metrics"]`` / ``data["eval_data"]``."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realax.train import EvosaxTrainer, OptaxTrainer, _loops

STEPS, POPSIZE = 6, 8


def sphere(x, key, data=None):
    f = jnp.sum(x**2) + 0.01 * jax.random.normal(key)  # noisy: each evaluation differs
    return f, {"f": f, "x0": x[0], "pair": (x[1], jnp.ones(2))}


def _es(**kw):
    kw.setdefault("eval_reps", 2)
    return EvosaxTrainer(STEPS, "SNES", sphere, params_like=jnp.ones(3), popsize=POPSIZE, **kw)


class Recorder:
    """A logger (any object with ``log(state, metrics)``) keeping what each step hands it."""

    def __init__(self):
        self.rows = []

    def log(self, state, metrics):
        jax.debug.callback(lambda *xs: self.rows.append(xs), state.step, metrics["metrics"])


def test_es_fitness_and_eval_data_layout():
    state, data = _es(step_data=True).init_and_train(jax.random.key(0))
    assert data["metrics"]["fitness"].shape == (STEPS, POPSIZE)
    assert data["eval_data"]["x0"].shape == (STEPS, POPSIZE, 2)
    assert data["eval_data"]["pair"][1].shape == (STEPS, POPSIZE, 2, 2)
    # the original's layout kept eval_data inside "metrics": the same arrays
    assert data["metrics"]["eval_data"] is data["eval_data"]
    # the scalar metrics stay at the top level and are also under "metrics"
    for name in ("generation", "fitness_min", "fitness_mean", "best_fitness"):
        assert data[name].shape == (STEPS,)
        assert data["metrics"][name] is data[name]
    fitness = np.asarray(data["metrics"]["fitness"])
    np.testing.assert_array_equal(fitness.min(axis=1), data["fitness_min"])
    np.testing.assert_allclose(fitness.mean(axis=1), data["fitness_mean"], rtol=1e-6)
    # fitness is each member's mean over its eval_reps evaluations of the task
    np.testing.assert_allclose(fitness, np.mean(data["eval_data"]["f"], axis=-1), rtol=1e-6)


def test_es_off_is_unchanged():
    """Off by default: the same metrics keys and values, and the same compiled program."""
    on, off = _es(step_data=True), _es()
    state_on, data_on = on.init_and_train(jax.random.key(1))
    state_off, data_off = off.init_and_train(jax.random.key(1))
    assert "metrics" not in data_off and "eval_data" not in data_off
    assert set(data_on) - set(data_off) == {"metrics", "eval_data"}
    for name, value in data_off.items():
        np.testing.assert_array_equal(value, data_on[name])
    np.testing.assert_array_equal(state_on.mean, state_off.mean)

    def n_ops(trainer):
        lowered = _loops.lower(trainer.algorithm, trainer.initialize(jax.random.key(0)), n_steps=3)
        return sum("stablehlo." in line for line in lowered.as_text().splitlines())

    assert n_ops(_es(step_data=False)) == n_ops(off) < n_ops(on)


def test_es_reducer_runs_inside_the_step():
    trainer = _es(step_data=lambda fitness, info: {"best": jnp.min(fitness), "x0": info["x0"]})
    _, data = trainer.init_and_train(jax.random.key(2))
    assert data["eval_data"]["best"].shape == (STEPS,)
    np.testing.assert_array_equal(data["eval_data"]["best"], data["fitness_min"])
    np.testing.assert_array_equal(data["eval_data"]["best"], data["metrics"]["fitness"].min(1))


def test_es_fori_hands_the_data_to_the_logger():
    recorder = Recorder()
    trainer = _es(step_data=True)
    state = trainer.init_and_train_(jax.random.key(3), logger=recorder)
    jax.effects_barrier()
    assert [int(step) for step, _ in recorder.rows] == list(range(1, STEPS + 1))
    assert all(m["fitness"].shape == (POPSIZE,) for _, m in recorder.rows)
    _, data = trainer.init_and_train(jax.random.key(3))
    np.testing.assert_array_equal(
        np.stack([m["fitness"] for _, m in recorder.rows]), data["metrics"]["fitness"]
    )
    assert int(state.step) == STEPS


def test_es_seeds_and_python_loop():
    trainer = _es(step_data=True)
    _, data = trainer.init_and_train(jax.random.split(jax.random.key(4), 3))
    assert data["metrics"]["fitness"].shape == (3, STEPS, POPSIZE)
    assert data["metrics"]["best_fitness"].shape == (3, STEPS)
    _, py = trainer.init_and_train_python(jax.random.key(5))
    assert py["metrics"]["fitness"].shape == (STEPS, POPSIZE)
    assert py["eval_data"]["x0"].shape == (STEPS, POPSIZE, 2)


def test_bad_step_data_is_named():
    with pytest.raises(TypeError, match="step_data must be True, False or a reducer"):
        _es(step_data="yes")


def _loss(p, key, batch=None):
    return jnp.sum((p - 3.0) ** 2), {"p0": p[0]}


def test_grad_loss_layout_without_dataset():
    trainer = OptaxTrainer(7, "adam", lambda key: jnp.zeros(2), _loss, 0.1, step_data=True)
    _, data = trainer.init_and_train(jax.random.key(0))
    assert data["metrics"]["loss"].shape == (7,)
    assert data["metrics"]["loss"] is data["loss"]
    assert data["metrics"]["batch_loss"].shape == (7, 1)
    np.testing.assert_array_equal(data["metrics"]["batch_loss"][:, 0], data["loss"])
    assert data["eval_data"]["p0"].shape == (7, 1)
    assert data["metrics"]["loss"][-1] < data["metrics"]["loss"][0]


def test_grad_minibatches_and_off():
    dataset = {"x": jnp.arange(12.0)}

    def loss(p, key, batch):
        return jnp.mean((p[0] - batch["x"]) ** 2), {"mean_x": jnp.mean(batch["x"])}

    def make(**kw):
        init = lambda key: jnp.zeros(2)
        return OptaxTrainer(3, "adam", init, loss, 0.1, dataset=dataset, batch_size=4, **kw)

    _, on = make(step_data=True).init_and_train(jax.random.key(0))
    _, off = make().init_and_train(jax.random.key(0))
    assert on["metrics"]["batch_loss"].shape == (3, 3)
    np.testing.assert_allclose(on["metrics"]["batch_loss"].mean(1), on["loss"], rtol=1e-6)
    # every epoch sees every example once: the minibatch means average to the dataset's
    np.testing.assert_allclose(on["eval_data"]["mean_x"].mean(1), 5.5, rtol=1e-6)
    assert set(off) == {"step", "loss", "best_loss", "grad_norm"}
    np.testing.assert_array_equal(off["loss"], on["loss"])

    reduced = make(step_data=lambda losses, aux: jnp.max(losses))
    _, data = reduced.init_and_train(jax.random.key(0))
    np.testing.assert_array_equal(data["eval_data"], on["metrics"]["batch_loss"].max(1))


DEVICES_SCRIPT = """
import json
import jax, jax.numpy as jnp, numpy as np
from realax.train import EvosaxTrainer, OptaxTrainer

assert jax.device_count() == 2, jax.devices()
ds = {"x": jnp.arange(16.0)}
loss = lambda p, key, b: (jnp.mean((p[0] - b["x"]) ** 2), {"m": b["x"].mean()})
grad = lambda n, **kw: OptaxTrainer(3, "adam", lambda key: jnp.zeros(2), loss, 0.1,
                                    dataset=ds, batch_size=8, n_devices=n, **kw)
_, two = grad(2, step_data=True).init_and_train(jax.random.key(0))
_, off = grad(2).init_and_train(jax.random.key(0))
f = lambda x, key, data=None: (jnp.sum(x**2), {"x0": x[0]})
es = lambda n: EvosaxTrainer(3, "SNES", f, params_like=jnp.ones(3), popsize=8, n_devices=n,
                             step_data=True)
_, es2 = es(2).init_and_train(jax.random.key(0))
_, es1 = es(1).init_and_train(jax.random.key(0))
print(json.dumps({
    "batch_loss": list(two["metrics"]["batch_loss"].shape),
    "aux": list(two["eval_data"]["m"].shape),
    "same_loss": bool(np.array_equal(two["loss"], off["loss"])),
    "fitness": list(es2["metrics"]["fitness"].shape),
    "same_fitness": bool(np.array_equal(es2["metrics"]["fitness"], es1["metrics"]["fitness"])),
}))
"""


@pytest.mark.slow
def test_per_step_data_on_two_devices():
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    run = subprocess.run(
        [sys.executable, "-c", DEVICES_SCRIPT], env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["batch_loss"] == [3, 2]  # (epochs, n_batches)
    assert out["aux"] == [3, 2, 2]  # (epochs, n_batches, n_devices)
    assert out["same_loss"] and out["same_fitness"]
    assert out["fitness"] == [3, 8]  # (steps, popsize): the gathered population
