"""EvosaxTrainer behaviour: convergence, names, shaping, eval_reps, data, NaN, Python loop."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from evosax.algorithms import SNES, Open_ES
from evosax.core.fitness_shaping import (
    centered_rank_fitness_shaping_fn,
    identity_fitness_shaping_fn,
)
from realax.train import (
    STRATEGY_ALIASES,
    EvosaxTrainer,
    EvoState,
    FitnessShaper,
    available_strategies,
    resolve_strategy,
)


def sphere(x, key=None, data=None):
    return jnp.sum(x**2), {}


def rastrigin(x, key=None, data=None):
    x = jnp.clip(x, -5.12, 5.12)
    return 10.0 * x.shape[0] + jnp.sum(x**2 - 10.0 * jnp.cos(2 * jnp.pi * x)), {}


def test_sphere_10d_from_away_gets_below_1e_3():
    trainer = EvosaxTrainer(150, "SNES", sphere, params_like=jnp.full(10, 3.0), popsize=16)
    state, metrics = trainer.init_and_train(jax.random.key(0))
    assert float(sphere(jnp.full(10, 3.0))[0]) == 90.0
    assert float(state.best_fitness) < 1e-3
    assert float(sphere(state.mean)[0]) < 1e-3
    # metrics contract
    assert set(metrics) >= {
        "generation",
        "fitness_min",
        "fitness_mean",
        "fitness_max",
        "fitness_std",
        "best_fitness",
        "n_nonfinite",
    }
    np.testing.assert_array_equal(metrics["generation"], np.arange(1, 151))
    assert np.all(np.diff(metrics["best_fitness"]) <= 0)  # best-so-far never worsens
    assert isinstance(state, EvoState) and int(state.step) == 150
    assert jax.tree.structure(state.best_params) == jax.tree.structure(trainer.params_like)


@pytest.mark.slow
def test_cma_es_rastrigin_2d_eight_of_ten_seeds_in_one_program():
    trainer = EvosaxTrainer(
        150,
        "CMA_ES",
        rastrigin,
        params_like=jnp.full(2, 2.5),
        popsize=128,
        es_params={"std_init": 2.0},
    )
    assert float(rastrigin(jnp.full(2, 2.5))[0]) > 40
    states, metrics = trainer.init_and_train(jax.random.split(jax.random.key(0), 10))
    best = np.asarray(states.best_fitness)
    assert best.shape == (10,) and metrics["best_fitness"].shape == (10, 150)
    assert np.sum(best < 1e-2) >= 8, best
    # the seeds are independent runs
    assert len(np.unique(np.asarray(states.mean)[:, 0])) == 10
    # batched mean property works per seed
    assert states.mean.shape == (10, 2)


def test_pytree_params_and_init_mean_override():
    like = {"w": jnp.zeros((2, 2)), "b": jnp.zeros(3)}
    target = {"w": jnp.full((2, 2), 1.5), "b": jnp.arange(3.0)}

    def task(p, key, data=None):
        err = jax.tree.map(lambda a, b: jnp.sum((a - b) ** 2), p, target)
        return sum(jax.tree.leaves(err)), {"norm": jnp.sum(p["w"] ** 2)}

    start = {"w": jnp.ones((2, 2)), "b": jnp.ones(3)}
    trainer = EvosaxTrainer(80, "Sep_CMA_ES", task, params_like=like, popsize=16, init_mean=start)
    state0 = trainer.initialize(jax.random.key(0))
    jax.tree.map(np.testing.assert_array_equal, state0.mean, start)  # starts at init_mean
    state, _ = trainer.train(state0)
    assert set(state.best_params) == {"w", "b"} and state.best_params["w"].shape == (2, 2)
    assert float(state.best_fitness) < 1e-3
    # without init_mean the search starts at params_like's value
    t2 = EvosaxTrainer(1, "Sep_CMA_ES", task, params_like=target, popsize=16)
    jax.tree.map(np.testing.assert_array_equal, t2.initialize(jax.random.key(0)).mean, target)


def test_maximize_vs_minimize():
    f = lambda x, key=None, data=None: (-jnp.sum((x - 1.0) ** 2), {})
    kw = dict(params_like=jnp.zeros(3), popsize=16)
    up = EvosaxTrainer(60, "SNES", f, fitness_shaper=FitnessShaper(maximize=True), **kw)
    down = EvosaxTrainer(60, "SNES", f, **kw)
    s_up, m_up = up(jax.random.key(0))
    s_down, m_down = down(jax.random.key(0))
    assert float(s_up.best_fitness) > -1e-3  # found the maximum at x = 1
    np.testing.assert_allclose(s_up.mean, jnp.ones(3), atol=0.05)
    assert float(s_down.best_fitness) < -10.0  # minimising runs away from x = 1
    assert np.all(np.diff(m_up["best_fitness"]) >= 0)
    assert np.all(np.diff(m_down["best_fitness"]) <= 0)
    assert float(s_down.best_fitness) == float(np.min(m_down["fitness_min"]))


@pytest.mark.slow
def test_eval_reps_averages_fitness_over_keys():
    # noisy task: fitness = noise ~ U(0,1); the member-wise mean of k draws has variance 1/(12k)
    def noisy(x, key, data=None):
        return jax.random.uniform(key), {}

    stds = []
    for reps in (1, 16):
        t = EvosaxTrainer(3, "SNES", noisy, params_like=jnp.zeros(2), popsize=64, eval_reps=reps)
        _, m = t(jax.random.key(0))
        stds.append(float(np.mean(m["fitness_std"])))
    np.testing.assert_allclose(stds[0], np.sqrt(1 / 12), rtol=0.2)
    np.testing.assert_allclose(stds[1], np.sqrt(1 / (12 * 16)), rtol=0.25)


def test_names_and_aliases_resolve_to_evosax_algorithms():
    import evosax.algorithms as ea

    names = available_strategies()
    assert set(ea.algorithms) <= set(names) and set(STRATEGY_ALIASES) <= set(names)
    for alias, target in {
        "OpenES": ea.Open_ES,
        "DES": ea.DiscoveredES,
        "CMA_ES": ea.CMA_ES,
        "SimpleGA": ea.SimpleGA,
        "PGPE": ea.PGPE,
        "SNES": ea.SNES,
        "xNES": ea.xNES,
        "ARS": ea.ARS,
        "Sep_CMA_ES": ea.Sep_CMA_ES,
        "DE": ea.DifferentialEvolution,
        "open-es": ea.Open_ES,
        "cma_es": ea.CMA_ES,
    }.items():
        t = EvosaxTrainer(1, alias, sphere, params_like=jnp.zeros(2), popsize=8)
        assert type(t.strategy) is target, alias
    with pytest.raises(ValueError, match=r"unknown strategy 'CMA_EZ'.*'CMA_ES'"):
        EvosaxTrainer(1, "CMA_EZ", sphere, params_like=jnp.zeros(2), popsize=8)
    # IPOP_CMA_ES / BIPOP_CMA_ES are strategies again (tests/test_restarts.py); a removed
    # pre-0.2 name is still refused with what to use instead
    with pytest.raises(ValueError, match="PBT.*use e.g. 'SimpleGA'"):
        EvosaxTrainer(1, "PBT", sphere, params_like=jnp.zeros(2), popsize=8)


@pytest.mark.slow
def test_every_name_runs_one_generation():
    # every accepted name builds and runs (learned strategies ship their own weights)
    for name in [
        "Open_ES",
        "SimpleGA",
        "PSO",
        "DifferentialEvolution",
        "ARS",
        "xNES",
        "HillClimbing",
        "SimpleES",
        "MA_ES",
    ]:
        t = EvosaxTrainer(2, name, sphere, params_like=jnp.ones(3), popsize=8)
        state, m = t(jax.random.key(1))
        assert int(state.step) == 2 and np.isfinite(m["fitness_min"]).all(), name


def test_strategy_instance_used_as_given():
    inst = Open_ES(
        population_size=16,
        solution=jnp.zeros(4),
        optimizer=optax.adam(0.1),
        std_schedule=optax.constant_schedule(0.1),
    )
    t = EvosaxTrainer(100, inst, sphere, init_mean=jnp.ones(4))
    assert t.strategy is inst and t.popsize == 16
    state, _ = t(jax.random.key(0))
    assert float(state.best_fitness) < 0.05
    assert t.strategy.fitness_shaping_fn is centered_rank_fitness_shaping_fn


def test_shaping_composition_with_evosax_defaults():
    kw = dict(params_like=jnp.zeros(2), popsize=8)
    # a value transform requested with a value-shaping default -> identity (realax's wins)
    t = EvosaxTrainer(1, "OpenES", sphere, fitness_shaper=FitnessShaper(z_score=True), **kw)
    assert t.strategy.fitness_shaping_fn is identity_fitness_shaping_fn
    # plain maximise keeps the algorithm's default
    t = EvosaxTrainer(1, "OpenES", sphere, fitness_shaper=FitnessShaper(maximize=True), **kw)
    assert t.strategy.fitness_shaping_fn is centered_rank_fitness_shaping_fn
    # rank-to-weights defaults are part of the algorithm and are kept
    t = EvosaxTrainer(1, "SNES", sphere, fitness_shaper=FitnessShaper(z_score=True), **kw)
    assert t.strategy.fitness_shaping_fn is SNES(8, jnp.zeros(2)).fitness_shaping_fn
    # an explicit es_kws choice wins
    t = EvosaxTrainer(
        1,
        "OpenES",
        sphere,
        fitness_shaper=FitnessShaper(z_score=True),
        es_kws={"fitness_shaping_fn": centered_rank_fitness_shaping_fn},
        **kw,
    )
    assert t.strategy.fitness_shaping_fn is centered_rank_fitness_shaping_fn


def test_es_kws_and_es_params_reach_the_algorithm():
    t = EvosaxTrainer(
        80,
        "OpenES",
        sphere,
        params_like=jnp.ones(4),
        popsize=32,
        es_kws={"optimizer": optax.adam(0.05), "std_schedule": optax.constant_schedule(0.05)},
    )
    state, _ = t(jax.random.key(0))
    assert float(state.es_state.std) == pytest.approx(0.05)
    assert float(sphere(state.mean)[0]) < 0.05
    t = EvosaxTrainer(
        1, "CMA_ES", sphere, params_like=jnp.ones(2), popsize=8, es_params={"std_init": 0.3}
    )
    assert float(t.initialize(jax.random.key(0)).es_state.std) == pytest.approx(0.3)


def test_nan_fitness_ranks_worst_and_search_goes_on():
    # half of the space fails (NaN), the optimum sits on its border at x = 0.5
    def task(x, key=None, data=None):
        f = jnp.sum((x - 0.5) ** 2)
        return jnp.where(x[0] > 0.5, jnp.nan, f), {}

    t = EvosaxTrainer(100, "SNES", task, params_like=jnp.full(2, -1.0), popsize=16)
    state, m = t(jax.random.key(0))
    assert m["n_nonfinite"].sum() > 0  # failures happened and were counted
    assert np.all(m["n_nonfinite"] < 16)
    assert np.isfinite(m["fitness_min"]).all() and np.isfinite(state.mean).all()
    assert np.isfinite(float(state.best_fitness)) and float(state.best_fitness) < 1e-3
    assert float(state.best_params[0]) <= 0.5  # a NaN member never becomes best


def test_all_nan_population_keeps_state_finite():
    t = EvosaxTrainer(
        3, "CMA_ES", lambda x, k, d=None: (jnp.nan, {}), params_like=jnp.ones(2), popsize=8
    )
    state, m = t(jax.random.key(0))
    np.testing.assert_array_equal(m["n_nonfinite"], 8)
    assert np.isnan(m["fitness_mean"]).all() and float(state.best_fitness) == np.inf
    assert np.isfinite(state.mean).all()


class CountingTask:
    """A task with the stateful-data protocol: data counts evaluations and sums fitness."""

    def __call__(self, params, key, data):
        # data shifts the optimum: a task that actually reads its data
        return jnp.sum((params - data["shift"]) ** 2), {"f": jnp.sum(params**2)}

    def init_data(self, key):
        return {"shift": jnp.ones(2), "count": jnp.zeros((), jnp.int32)}

    def update_data(self, data, info):
        return {"shift": data["shift"], "count": data["count"] + info["f"].size}


def test_task_data_protocol():
    t = EvosaxTrainer(20, "SNES", CountingTask(), params_like=jnp.zeros(2), popsize=8, eval_reps=2)
    state, _ = t(jax.random.key(0))
    assert int(state.data["count"]) == 20 * 8 * 2  # infos batched (popsize, eval_reps)
    np.testing.assert_allclose(state.mean, jnp.ones(2), atol=0.2)


def test_user_data_passed_to_task():
    task = lambda x, key, data: (jnp.sum((x - data) ** 2), {})
    t = EvosaxTrainer(60, "SNES", task, params_like=jnp.zeros(3), popsize=16)
    state, _ = t.init_and_train(jax.random.key(0), data=jnp.full(3, 2.0))
    np.testing.assert_allclose(state.mean, jnp.full(3, 2.0), atol=0.05)


def test_python_loop_on_non_jittable_task():
    calls = []

    def numpy_task(x, key):
        x = np.asarray(x)  # fails under tracing: a concrete numpy computation
        calls.append(1)
        return float(np.sum((x - 2.0) ** 2)), {"x0": np.float32(x[0])}

    t = EvosaxTrainer(40, "SNES", numpy_task, params_like=np.zeros(2, np.float32), popsize=8)
    with pytest.raises(ValueError, match="failed when traced"):
        t.init_and_train(jax.random.key(0))
    state, m = t.init_and_train_python(jax.random.key(0))
    assert len(calls) == 40 * 8
    assert m["best_fitness"].shape == (40,) and float(state.best_fitness) < 1e-2
    # population-based algorithms evaluate their first population in Python too
    t = EvosaxTrainer(5, "SimpleGA", numpy_task, params_like=np.zeros(2, np.float32), popsize=8)
    calls.clear()
    state, m = t.init_and_train_python(jax.random.key(0))
    assert len(calls) == 6 * 8 and int(state.step) == 5


def test_python_loop_matches_compiled_loop():
    t = EvosaxTrainer(5, "CMA_ES", sphere, params_like=jnp.ones(3), popsize=8)
    s1, m1 = t.init_and_train(jax.random.key(3))
    s2, m2 = t.init_and_train_python(jax.random.key(3))
    np.testing.assert_allclose(m1["fitness_mean"], m2["fitness_mean"], rtol=1e-5)
    np.testing.assert_allclose(s1.mean, s2.mean, rtol=1e-5)


@pytest.mark.parametrize("strategy", ["Open_ES", "CMA_ES", "SNES"])
def test_states_have_no_weak_types_so_a_second_train_does_not_recompile(strategy):
    # a weakly typed leaf (a Python scalar in an evosax state) would differ from the strong
    # leaf train() returns, and train(state) on the returned state would compile again
    trainer = EvosaxTrainer(3, strategy, sphere, params_like=jnp.ones(3), popsize=8)
    state = trainer.initialize(jax.random.key(0))
    trained, _ = trainer.train(state)
    for tree in (state, trained):
        weak = [
            jax.tree_util.keystr(path)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
            if getattr(leaf, "weak_type", False)
        ]
        assert not weak, weak
    chex.assert_trees_all_equal_shapes_and_dtypes(state, trained)


def test_fitness_metrics_equal_numpy_nan_statistics():
    # the metrics are computed from one mask and one count; they must be the values of
    # jnp.nanmin / nanmean / nanmax / nanstd with non-finite members set to NaN, bit for bit
    from realax.train._es import _fitness_stats

    rng = np.random.default_rng(0)
    cases = [rng.normal(size=n).astype(np.float32) * 10.0**e for n, e in ((1, 0), (64, 3))]
    mixed = rng.normal(size=16).astype(np.float32)
    mixed[[2, 5, 11]] = [np.nan, np.inf, -np.inf]
    cases += [mixed, np.full(8, np.nan, np.float32), np.array([np.inf, 1.0], np.float32)]
    stats = jax.jit(_fitness_stats)
    for raw in map(jnp.asarray, cases):
        finite = jnp.isfinite(raw)
        masked = jnp.where(finite, raw, jnp.nan)
        want = {
            "fitness_min": jnp.nanmin(masked),
            "fitness_mean": jnp.nanmean(masked),
            "fitness_max": jnp.nanmax(masked),
            "fitness_std": jnp.nanstd(masked),
            "n_nonfinite": jnp.sum(~finite).astype(jnp.int32),
        }
        got = stats(raw, finite)
        for name in want:
            assert got[name].dtype == want[name].dtype, name
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def test_w_decay_needs_the_flat_population():
    shaper = FitnessShaper(w_decay=0.1)
    with pytest.raises(ValueError, match="needs the population's flat parameters"):
        shaper.apply(None, jnp.zeros(3))
    # without w_decay the parameters are not read
    assert FitnessShaper().apply(None, jnp.array([1.0, jnp.nan])).tolist() == [1.0, 1.0]


def test_even_population_strategies_say_so_before_compiling():
    for name in ("Open_ES", "OpenES", "PGPE", "ARS"):
        with pytest.raises(ValueError) as info:
            EvosaxTrainer(5, name, sphere, params_like=jnp.ones(3), popsize=7)
        canonical = resolve_strategy(name)[0]
        assert str(info.value).startswith(
            f"{canonical} needs an even population size (got popsize=7); use popsize=8"
        ), str(info.value)


def test_resolve_strategy_is_public():
    assert resolve_strategy("Open_ES")[0] == "Open_ES"
    assert resolve_strategy("openes") == resolve_strategy("OpenES")
    assert resolve_strategy("DE")[1].__name__ == "DifferentialEvolution"
    with pytest.raises(ValueError, match="Did you mean 'CMA_ES'"):
        resolve_strategy("CMA-ESS")


def test_a_task_may_have_init_data_without_update_data():
    class Offset:
        def __call__(self, x, key, data):
            return jnp.sum((x - data) ** 2), {}

        def init_data(self, key):
            return jnp.full(2, 0.5)

    t = EvosaxTrainer(40, "SNES", Offset(), params_like=jnp.zeros(2), popsize=16)
    state, _ = t.init_and_train(jax.random.key(0))
    np.testing.assert_array_equal(state.data, [0.5, 0.5])  # never updated
    np.testing.assert_allclose(state.mean, [0.5, 0.5], atol=0.05)
