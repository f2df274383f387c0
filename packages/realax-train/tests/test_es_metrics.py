"""EvosaxTrainer's ``metrics=`` choice and the deferred fitness statistics of a scan."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realax.train import EvosaxTrainer, _es_metrics, _loops
from realax.train._es_metrics import METRIC_NAMES


def _flaky_sphere(x, key, data=None):
    # noisy, and NaN for the worst members: the statistics skip them, n_nonfinite counts them
    value = jnp.sum(x**2) + 0.1 * jax.random.normal(key)
    return jnp.where(value > 4.0, jnp.nan, value), {}


class _Rows:
    """A logger keeping every generation's metrics (forces the in-step statistics)."""

    def __init__(self):
        self.rows = []

    def log(self, state, metrics):
        jax.debug.callback(lambda m: self.rows.append(m), metrics, ordered=True)


def _trainer(strategy="SNES", **kw):
    return EvosaxTrainer(30, strategy, _flaky_sphere, params_like=jnp.ones(4), popsize=16, **kw)


def _assert_same(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype, name
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def _assert_same_state(a, b):
    key_free = lambda s: s.replace(key=jax.random.key_data(s.key))  # noqa: E731
    jax.tree.map(np.testing.assert_array_equal, key_free(a), key_free(b))


@pytest.mark.parametrize("strategy", ["Sep_CMA_ES", "SimpleGA"])
def test_deferred_statistics_equal_the_in_step_ones_bit_for_bit(strategy):
    trainer = _trainer(strategy)
    state0 = trainer.initialize(jax.random.key(0))
    state, metrics = trainer.train(state0)  # no logger: statistics after the loop
    ref_state, ref = _loops.run(trainer.algorithm, state0, n_steps=30)  # inside the step
    assert list(metrics) == list(ref) == sorted(METRIC_NAMES)
    assert int(metrics["n_nonfinite"].sum()) > 0  # the NaN path is exercised
    _assert_same(metrics, ref)
    _assert_same_state(state, ref_state)
    # a logger gets the same rows from inside the step
    rows = _Rows()
    logged_state, logged = trainer.train(state0, logger=rows)
    _assert_same(logged, ref)
    assert len(rows.rows) == 30
    np.testing.assert_array_equal([r["fitness_mean"] for r in rows.rows], ref["fitness_mean"])
    _assert_same_state(logged_state, ref_state)


def test_runs_over_the_limit_compute_the_statistics_in_the_step(monkeypatch):
    trainer = _trainer()
    state0 = trainer.initialize(jax.random.key(1))
    _, deferred = trainer.train(state0)
    monkeypatch.setattr(_es_metrics, "DEFER_LIMIT", 16 * 30 - 1)  # one value short of this run
    _, in_step = trainer.train(state0)
    _assert_same(deferred, in_step)


def test_minimal_metrics_keep_the_run_and_its_best_fitness_curve():
    full, minimal = _trainer(), _trainer(metrics="minimal")
    state_f, m_f = full.init_and_train(jax.random.key(2))
    state_m, m_m = minimal.init_and_train(jax.random.key(2))
    assert sorted(m_m) == ["best_fitness", "generation"]
    np.testing.assert_array_equal(m_m["best_fitness"], m_f["best_fitness"])
    np.testing.assert_array_equal(m_m["generation"], m_f["generation"])
    _assert_same_state(state_m, state_f)  # best member, search state: the same run
    rows = _Rows()
    minimal.init_and_train(jax.random.key(2), logger=rows)
    assert sorted(rows.rows[0]) == ["best_fitness", "generation"]


def test_a_subset_of_metrics_and_its_program():
    def n_ops(alg, state):
        text = _loops.lower(alg, state, n_steps=2).as_text()
        return sum("stablehlo." in line for line in text.splitlines())

    some = _trainer(metrics=("fitness_mean", "best_fitness"))
    state0 = some.initialize(jax.random.key(3))
    _, metrics = some.train(state0)
    assert sorted(metrics) == ["best_fitness", "fitness_mean"]
    _, full = _loops.run(_trainer().algorithm, state0, n_steps=30)
    np.testing.assert_array_equal(metrics["fitness_mean"], full["fitness_mean"])
    # fewer operations per generation: the statistics leave the step (deferred), or go
    # altogether with "minimal"
    everything = _trainer()
    in_step = n_ops(everything.algorithm, state0)
    assert n_ops(everything._alg.deferred_algorithm(), state0) < in_step
    assert n_ops(_trainer(metrics="minimal").algorithm, state0) < in_step


@pytest.mark.parametrize("bad", ["some", (), ("fitness_mean", "loss"), 3])
def test_bad_metrics_are_refused_naming_the_argument(bad):
    with pytest.raises(ValueError, match=r"metrics must be 'all', 'minimal'.*got metrics="):
        _trainer(metrics=bad)
