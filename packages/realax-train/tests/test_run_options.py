"""Run options of every trainer: the logger and the progress bar are arguments of the run,
``on_run_end`` and ``save_on_interrupt``, weak types stripped at the loops' entry, the bar's
"compiling" phase."""

import contextlib
import io
import re
import time

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realax.train import EvosaxTrainer, OptaxTrainer, _loops
from realax.train._progress import ProgressBar


def plain(tree):
    is_key = lambda x: jnp.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)


def quadratic(p, key):
    return jnp.sum((p - 3.0 - 0.1 * jax.random.normal(key, p.shape)) ** 2), {}


def grad_trainer(steps=3, **kw):
    return OptaxTrainer(steps, "adam", lambda k: jax.random.normal(k, (4,)), quadratic, 0.1, **kw)


def sphere(x, key, data=None):
    return jnp.sum(x**2) + 0.01 * jax.random.normal(key), {}


def es_trainer(steps=4, **kw):
    return EvosaxTrainer(steps, "SNES", sphere, params_like=jnp.ones(3), popsize=8, **kw)


class Steps:
    """A logger recording the steps it was given (from inside the compiled loop)."""

    def __init__(self):
        self.steps = []

    def log(self, state, metrics):
        jax.debug.callback(lambda s: self.steps.extend(np.ravel(s).tolist()), state.step)


class Full(Steps):
    """A logger with the optional hooks: save_on_interrupt and on_run_end."""

    def __init__(self):
        super().__init__()
        self.guarded = 0
        self.ends = []

    @contextlib.contextmanager
    def save_on_interrupt(self):
        self.guarded += 1
        yield

    def on_run_end(self, state):
        # every log call of the run has arrived by now
        self.ends.append((len(self.steps), np.asarray(state.step)))


# ----------------------------------------------------------------------------- run options


@pytest.mark.slow
def test_changing_the_logger_or_the_progress_bar_between_runs_takes_effect(capsys):
    a, b, c = Steps(), Steps(), Steps()
    t = grad_trainer(logger=a)
    s0 = t.initialize(jax.random.key(0))
    t.train(s0)
    jax.effects_barrier()
    assert a.steps == [1, 2, 3]
    t.logger = b  # assignment: the next run logs to b (the loops are jitted on the logger)
    t.train(s0)
    t.train_(s0)
    jax.effects_barrier()
    assert a.steps == [1, 2, 3] and b.steps == [1, 2, 3] * 2
    t.train(s0, logger=c)  # a run argument: this run only
    t.init_and_train(jax.random.split(jax.random.key(0), 2), logger=c)
    jax.effects_barrier()
    assert sorted(c.steps) == [1, 1, 1, 2, 2, 2, 3, 3, 3] and len(b.steps) == 6
    t.logger = None
    t.train(s0)
    jax.effects_barrier()
    assert len(a.steps) + len(b.steps) + len(c.steps) == 3 + 6 + 9

    capsys.readouterr()
    t.train(s0)
    assert "3/3" not in capsys.readouterr().err
    t.progress_bar = True
    t.train(s0)
    assert "3/3" in capsys.readouterr().err
    t.train(s0, progress_bar=False)
    assert "3/3" not in capsys.readouterr().err
    t.progress_bar = False
    t.train(s0, progress_bar=True)
    assert "3/3" in capsys.readouterr().err
    with pytest.raises(TypeError, match="logger must be None or an object with a log"):
        t.train(s0, logger="wandb")


@pytest.mark.parametrize("kind", ["scan", "fori", "seeds", "resume", "python"])
def test_on_run_end_gets_the_final_state_once_inside_save_on_interrupt(kind):
    log = Full()
    t = es_trainer(logger=log)
    key = jax.random.key(1)
    if kind == "scan":
        final = t.train(t.initialize(key))[0]
    elif kind == "fori":
        final = t.train_(t.initialize(key))
    elif kind == "seeds":
        final = t.init_and_train(jax.random.split(key, 3))[0]
    elif kind == "resume":
        final = t.resume(es_trainer(steps=2).train(t.initialize(key))[0])[0]
    else:
        final = t.init_and_train_python(key)[0]
    assert log.guarded == 1
    assert len(log.ends) == 1
    n_logged, step = log.ends[0]
    np.testing.assert_array_equal(step, final.step)
    assert np.all(step == 4)
    assert n_logged == {"seeds": 12, "resume": 2}.get(kind, 4)


def test_on_run_end_is_not_called_when_the_run_fails():
    calls = []

    def task(x, key):
        calls.append(1)
        if len(calls) > 6:
            raise RuntimeError("simulator crashed")
        return float(np.sum(np.asarray(x) ** 2)), {}

    log = Full()
    t = EvosaxTrainer(3, "SNES", task, params_like=np.ones(2, np.float32), popsize=4, logger=log)
    with pytest.raises(RuntimeError, match="simulator crashed"):
        t.init_and_train_python(jax.random.key(0))
    assert log.guarded == 1 and log.ends == []


def test_states_from_initialize_a_run_and_a_checkpoint_run_one_program_and_the_same_bits():
    t = es_trainer(steps=3)
    s0 = t.initialize(jax.random.key(0))
    ref, ref_metrics = t.train(s0)
    compiled = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, *a, **k: (
            compiled.append(k.get("fun_name"))
            if name == "/jax/core/compile/backend_compile_duration"
            else None
        )
    )
    # weak types, as a state rebuilt from Python numbers has them ...
    weak = s0.replace(step=0, best_fitness=jnp.asarray(float(s0.best_fitness)))
    assert weak.best_fitness.weak_type
    # ... and numpy leaves, as a checkpoint restores them
    is_key = lambda x: jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
    restored = jax.tree.map(lambda x: x if is_key(x) else np.asarray(x), s0)
    for state in (weak, restored):
        out, metrics = t.train(state)
        chex.assert_trees_all_equal(plain(out), plain(ref))
        chex.assert_trees_all_equal(metrics, ref_metrics)
    t.train(ref)  # a state from a previous run
    assert "jit(_scan_loop)" not in compiled, compiled


# ----------------------------------------------------------------------------- progress bar


def _etas(text):
    """Seconds of every ETA tqdm printed (``[elapsed<eta, rate]``)."""
    out = []
    for eta in re.findall(r"<([\d:]+),", text):
        parts = [int(p) for p in eta.split(":")]
        out.append(sum(p * 60**i for i, p in enumerate(reversed(parts))))
    return out


def test_progress_bar_says_compiling_until_the_first_step_then_counts_from_it():
    buf = io.StringIO()
    with ProgressBar.maybe(True, 10, 0, "loss", file=buf) as token:
        time.sleep(1.3)  # "compiling": the bar redraws its elapsed time by itself
        compiling = buf.getvalue()
        ProgressBar.host_update(token, 1, 0.5)  # the first compiled step reports
        for step in range(2, 11):
            time.sleep(0.05)
            ProgressBar.host_update(token, step, 0.5 / step)
    text = buf.getvalue()
    assert "training: compiling (00:01)" in compiling, compiling
    assert "/10" not in compiling and "step/s" not in compiling  # no count, rate or ETA yet
    counting = text[len(compiling) :]
    assert "10/10" in counting and "loss=0.05" in counting
    # rate and ETA start after the first step: ~20 steps/s, never the compile time per step
    etas = _etas(counting)
    assert etas and max(etas) <= 2, etas
    rates = [float(r) for r in re.findall(r"([\d.]+)step/s", counting)]
    assert rates and min(rates) > 5, rates


def test_trainer_progress_bar_shows_compiling_first(capsys):
    t = grad_trainer(steps=4, progress_bar=True)
    capsys.readouterr()
    t.init_and_train(jax.random.key(3))
    err = capsys.readouterr().err
    assert "compiling" in err and "4/4" in err
    assert err.index("compiling") < err.index("4/4")


def test_n_steps_runs_chunks_that_add_up_to_one_run():
    t = grad_trainer(steps=5)
    s0 = t.initialize(jax.random.key(4))
    full, metrics = t.train(s0)
    part, m1 = t.train(s0, n_steps=2)
    rest = t.train_(part, n_steps=3)
    chex.assert_trees_all_equal(plain(rest), plain(full))
    np.testing.assert_array_equal(m1["loss"], metrics["loss"][:2])
    with pytest.raises(ValueError, match=r"n_steps must be a positive int \(got n_steps=0\)"):
        t.train(s0, n_steps=0)


def test_the_loops_run_any_algorithm_even_with_a_tuple_state():
    from typing import NamedTuple

    from realax.train import Algorithm

    class S(NamedTuple):
        x: jax.Array
        step: jax.Array
        key: jax.Array

    def step(s, data, consts, keys):
        noise = jax.random.normal(jax.random.fold_in(s.key, s.step) if keys is None else keys)
        s = S(s.x * 0.5 + 0.0 * noise, s.step + 1, s.key)
        return s, {"x": s.x}

    alg = Algorithm(
        lambda key, data: S(jnp.ones(()), jnp.zeros((), jnp.int32), key),
        step,
        step_keys=lambda key: key,
        progress_metric="x",
    )
    log = Full()
    s0 = _loops.init(alg, jax.random.key(0))
    final = _loops.run(alg, s0, n_steps=3, scan=False, logger=log)
    assert isinstance(final, S) and int(final.step) == 3
    assert len(log.ends) == 1 and int(log.ends[0][1]) == 3
    state, metrics = _loops.run(alg, s0, n_steps=3, logger=log)
    np.testing.assert_array_equal(metrics["x"], [0.5, 0.25, 0.125])
    states, _ = _loops.run_seeds(alg, jax.random.split(jax.random.key(1), 2), n_steps=3)
    assert states.step.tolist() == [3, 3]
