"""BaseTrainer loops: scan vs fori, seeds in one program, resume, logger, progress bar, memory."""

import json
import re
import subprocess
import sys
import textwrap
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realax.train import EvosaxTrainer, OptaxTrainer


def plain(tree):
    """The tree with typed PRNG keys replaced by their raw data (comparable with chex)."""
    is_key = lambda x: jnp.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)


def noisy_sphere(x, key, data=None):
    # reads its key: per-member evaluation keys must line up between the loops compared
    return jnp.sum(x**2) + 0.01 * jax.random.normal(key), {}


def quadratic(p, key):
    # a target jittered by the key: the gradient depends on the step's key
    return jnp.sum((p - 3.0 - 0.1 * jax.random.normal(key, p.shape)) ** 2), {}


def es_trainer(steps=12, **kw):
    return EvosaxTrainer(steps, "SNES", noisy_sphere, params_like=jnp.ones(5), popsize=8, **kw)


def init4(key):
    return jax.random.normal(key, (4,))


def grad_trainer(steps=12, **kw):
    return OptaxTrainer(steps, "adam", init4, quadratic, learning_rate=0.1, **kw)


# shared by several tests so their compiled loops are reused (a trainer caches its programs)
ES = es_trainer()
GRAD = grad_trainer()


class Recorder:
    """A logger: any object with log(state, metrics) works; this one records to a list."""

    def __init__(self, field):
        self.field = field
        self.rows = []

    def log(self, state, metrics):
        value = state.mean if self.field == "mean" else getattr(state, self.field)
        jax.debug.callback(
            lambda step, v, m: self.rows.append((np.asarray(step), np.asarray(v), m)),
            state.step,
            value,
            metrics,
            ordered=True,
        )


# ----------------------------------------------------------------------------- scan / fori


@pytest.mark.parametrize("t", [ES, GRAD], ids=["es", "grad"])
def test_train_metrics_are_per_step_and_fori_matches_scan(t):
    state0 = t.initialize(jax.random.key(0))
    state, metrics = t.train(state0)
    assert int(state.step) == 12
    # every metric is one value per step: nothing shaped like the params or the state
    for name, m in metrics.items():
        assert np.shape(m) == (12,), (name, np.shape(m))
    n_state_leaves = sum(np.size(x) for x in jax.tree.leaves(plain(state)))
    assert sum(np.size(m) for m in metrics.values()) < 12 * n_state_leaves
    # fori_loop: same final state, bit for bit
    state_ = t.train_(state0)
    chex.assert_trees_all_equal(plain(state_), plain(state))
    # __call__ is init_and_train, init_and_train_ its fori twin
    s_call, m_call = t(jax.random.key(0))
    chex.assert_trees_all_equal(plain(s_call), plain(state))
    chex.assert_trees_all_equal(m_call, metrics)
    chex.assert_trees_all_equal(plain(t.init_and_train_(jax.random.key(0))), plain(state))


def test_train_key_reseeds_and_train_step_is_one_step():
    t = grad_trainer(steps=5)
    state0 = t.initialize(jax.random.key(0))
    reseeded, _ = t.train(state0, key=jax.random.key(7))
    same, _ = t.train(state0.replace(key=jax.random.key(7)))
    chex.assert_trees_all_equal(plain(reseeded), plain(same))
    original, metrics = t.train(state0)
    assert not np.allclose(reseeded.params, original.params)
    # train = train_steps applications of train_step
    step = jax.jit(t.train_step)
    s = state0
    for i in range(5):
        s, m = step(s)
        np.testing.assert_allclose(m["loss"], metrics["loss"][i], rtol=1e-6)
    chex.assert_trees_all_close(plain(s), plain(original), rtol=1e-6)
    # the python-driven loop of BaseTrainer agrees with the compiled one
    s_py, m_py = t.train_python(state0)
    np.testing.assert_allclose(m_py["loss"], metrics["loss"], rtol=1e-6)
    chex.assert_trees_all_close(s_py.params, original.params, rtol=1e-6)


def test_resume_finishes_the_run_bit_identically():
    full = grad_trainer(steps=10)
    part = grad_trainer(steps=4)
    s_full, m_full = full(jax.random.key(3))
    s_part, _ = part(jax.random.key(3))
    s_rest, m_rest = full.resume(s_part)
    assert m_rest["loss"].shape == (6,)
    chex.assert_trees_all_equal(plain(s_rest), plain(s_full))
    np.testing.assert_array_equal(m_rest["loss"], m_full["loss"][4:])
    chex.assert_trees_all_equal(plain(full.resume_(s_part)), plain(s_full))


class StepByStepKeys(EvosaxTrainer):
    """Derives each generation's keys inside the step, as train_step does."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        step = self.algorithm.step

        def per_step(state, data, consts, keys):
            assert keys is None
            return step(state, data, consts, None)

        self.algorithm = self.algorithm._replace(step=per_step, step_keys=None)


@pytest.mark.slow
def test_es_keys_derived_before_the_loop_are_the_per_step_keys():
    # train derives every generation's keys in one batched call before the scan, train_ in
    # blocks of 256 generations: both must be the keys of fold_in(state.key, step) derived
    # inside each step. 300 generations = one full block of train_ and a shorter last one;
    # from a state at step 7 the keys start at step 7.
    kw = dict(task=noisy_sphere, params_like=jnp.ones(2), popsize=4)
    t = EvosaxTrainer(300, "SNES", **kw)
    ref = StepByStepKeys(300, "SNES", **kw)
    state0 = t.initialize(jax.random.key(0))
    s_part = state0
    for _ in range(7):  # train_step derives its keys in the step
        s_part, _ = jax.jit(t.train_step)(s_part)
    for start in (state0, s_part):  # the same compiled programs, from step 0 and step 7
        state, metrics = t.train(start)
        ref_state, ref_metrics = ref.train(start)
        chex.assert_trees_all_equal(plain(state), plain(ref_state))
        chex.assert_trees_all_equal(metrics, ref_metrics)
        chex.assert_trees_all_equal(plain(t.train_(start)), plain(state))


# ----------------------------------------------------------------------------- seeds


@pytest.mark.slow
@pytest.mark.parametrize("t", [ES, GRAD], ids=["es", "grad"])
def test_batch_of_keys_gives_per_seed_results_equal_to_separate_runs(t):
    keys = jax.random.split(jax.random.key(1), 3)
    states, metrics = t.init_and_train(keys)
    assert int(states.step.shape[0]) == 3
    for name, m in metrics.items():
        assert np.shape(m) == (3, 12), name
    states_ = t.init_and_train_(keys)
    for i in range(3):
        s_i, m_i = t.init_and_train(keys[i])
        pick = lambda tree, i=i: jax.tree.map(lambda x: x[i], tree)
        # vmapped and unbatched programs may reassociate floating point sums
        chex.assert_trees_all_close(plain(pick(states)), plain(s_i), rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(pick(metrics), m_i, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_close(plain(pick(states_)), plain(s_i), rtol=1e-5, atol=1e-6)
    # the seeds really are different runs
    first = jax.tree.leaves(states.best_params)[0]
    assert not np.allclose(first[0], first[1])
    with pytest.raises(ValueError, match="expects a batch of keys"):
        t.init_and_train_seeds(jax.random.key(0))


# ----------------------------------------------------------------------------- logger


@pytest.mark.parametrize("loop", ["scan", "fori"])
def test_logger_log_is_called_every_step_with_that_steps_state(loop):
    rec = Recorder("params")
    t = grad_trainer(steps=8, logger=rec)
    state0 = t.initialize(jax.random.key(2))
    out = t.train(state0) if loop == "scan" else t.train_(state0)
    final = out[0] if loop == "scan" else out
    jax.effects_barrier()
    assert [int(r[0]) for r in rec.rows] == list(range(1, 9))
    # the states logged are the successive states of the run
    step = jax.jit(grad_trainer(steps=8).train_step)
    s = state0
    for row in rec.rows:
        s, m = step(s)
        np.testing.assert_allclose(row[1], s.params, rtol=1e-6)
        np.testing.assert_allclose(row[2]["loss"], m["loss"], rtol=1e-6)
    np.testing.assert_array_equal(rec.rows[-1][1], final.params)
    if loop == "scan":
        np.testing.assert_array_equal([r[2]["loss"] for r in rec.rows], out[1]["loss"])


@pytest.mark.slow
def test_logger_sees_es_states_and_every_seed():
    rec = Recorder("mean")
    t = es_trainer(steps=6, logger=rec)
    state, metrics = t.init_and_train(jax.random.key(0))
    jax.effects_barrier()
    assert [int(r[0]) for r in rec.rows] == list(range(1, 7))
    np.testing.assert_array_equal(rec.rows[-1][1], state.mean)
    np.testing.assert_array_equal([r[2]["best_fitness"] for r in rec.rows], metrics["best_fitness"])
    # with a batch of keys every seed's every step reaches the logger
    rec.rows.clear()
    t.init_and_train(jax.random.split(jax.random.key(0), 3))
    jax.effects_barrier()
    steps = np.concatenate([np.ravel(r[0]) for r in rec.rows])
    np.testing.assert_array_equal(np.sort(steps), np.repeat(np.arange(1, 7), 3))


# ----------------------------------------------------------------------------- progress bar


class SlowLogger:
    """Makes each compiled step take ~20 ms, so a live bar has time to redraw mid-run."""

    def log(self, state, metrics):
        jax.debug.callback(lambda s: time.sleep(0.02), state.step, ordered=True)


def bar_counts(err, total):
    return [int(k) for k in re.findall(rf"(\d+)/{total}\b", err)]


@pytest.mark.slow
def test_progress_bar_advances_live_from_inside_the_compiled_loop(capsys):
    t = grad_trainer(steps=40, logger=SlowLogger(), progress_bar=True)
    capsys.readouterr()
    state, _ = t.init_and_train(jax.random.key(0))
    counts = bar_counts(capsys.readouterr().err, 40)
    assert counts[-1] == 40  # reached the total
    # redrawn mid-run: only the callbacks inside the loop can report these
    assert any(0 < c < 40 for c in counts), counts
    assert counts == sorted(counts)

    # fori loop and a batch of seeds also drive the bar to the total
    t = es_trainer(steps=15, progress_bar=True)
    t.init_and_train_(jax.random.key(0))
    assert bar_counts(capsys.readouterr().err, 15)[-1] == 15
    t.init_and_train(jax.random.split(jax.random.key(0), 3))
    err = capsys.readouterr().err
    assert bar_counts(err, 15)[-1] == 15 and "best_fitness=" in err


def test_progress_bar_shows_the_metric(capsys):
    t = grad_trainer(steps=5, progress_bar=True)
    t.init_and_train(jax.random.key(0))
    err = capsys.readouterr().err
    assert re.search(r"loss=\d", err), err
    assert bar_counts(err, 5)[-1] == 5


# ----------------------------------------------------------------------------- memory

MEMORY_CHILD = textwrap.dedent(
    """
    import json, sys
    import jax, jax.numpy as jnp
    from realax.train import EvosaxTrainer

    mode, steps = sys.argv[1], int(sys.argv[2])
    dims = 250_000  # ~1 MB per parameter vector; an ES state holds a few of them
    task = lambda x, key, data=None: (jnp.sum(x**2), {})
    t = EvosaxTrainer(steps, "SNES", task, params_like=jnp.ones(dims), popsize=4)
    state = t.initialize(jax.random.key(0))
    if mode == "fori":
        out = t.train_(state)
    elif mode == "scan":
        out = t.train(state)
    else:  # control: the original realax's loop, stacking a copy of the state every step
        def body(s, _):
            s, _ = t.train_step(s)
            return s, s
        out = jax.jit(lambda s: jax.lax.scan(body, s, None, length=steps))(state)
    jax.block_until_ready(out)
    # VmHWM: this program's own peak RSS. (ru_maxrss is kept across fork+exec on Linux, so it
    # would report the parent's peak when the parent, e.g. a pytest worker, is larger.)
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(json.dumps({"maxrss_kb": hwm}))
    """
)


@pytest.mark.slow
def test_memory_is_flat_in_the_number_of_steps():
    # each configuration in its own fresh interpreter (peak RSS never goes down in a process);
    # run side by side to save wall time (peak RSS is per process)
    configs = [("fori", 10), ("fori", 100), ("stack", 100)]
    procs = {
        c: subprocess.Popen(
            [sys.executable, "-c", MEMORY_CHILD, c[0], str(c[1])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in configs
    }
    peak = {}
    for c, p in procs.items():
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        peak[c] = json.loads(out.strip().splitlines()[-1])["maxrss_kb"] / 1024
    # train_ (fori_loop): 10x more steps, peak RSS grows < 10%
    assert peak[("fori", 100)] < 1.10 * peak[("fori", 10)], peak
    # control: the measurement does see per-step state copies (the original realax's scan
    # stacked the whole state every step, here ~100 x 3 MB)
    assert peak[("stack", 100)] > 1.30 * peak[("fori", 10)], peak
