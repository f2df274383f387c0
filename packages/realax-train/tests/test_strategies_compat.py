"""Strategy names and arguments of the original realax (evosax < 0.2) on evosax 0.3."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from evosax.algorithms import SV_CMA_ES as EvosaxSV_CMA_ES
from realax.train import EvosaxTrainer


def sphere(x, key=None):
    return jnp.sum(jnp.square(x - 0.5)), {}


def test_random_search_with_the_old_range_arguments():
    # evosax < 0.2: RandomSearch(popsize, num_dims, range_min=0.0, range_max=1.0)
    t = EvosaxTrainer(
        20,
        "RandomSearch",
        sphere,
        params_like=jnp.zeros(3),
        popsize=16,
        es_kws={"range_min": -2.0, "range_max": 2.0},
    )
    state, m = t(jax.random.key(0))
    assert float(state.best_fitness) < 1.0
    best = np.asarray(state.best_params)
    assert (best >= -2.0).all() and (best < 2.0).all()
    # the old defaults: uniform in [0, 1)
    t = EvosaxTrainer(3, "RandomSearch", sphere, params_like=jnp.zeros(3), popsize=8)
    state, _ = t(jax.random.key(1))
    best = np.asarray(state.best_params)
    assert (best >= 0.0).all() and (best < 1.0).all()


def test_random_search_range_as_old_params_gives_the_new_call():
    # evosax 0.2 kept range_min / range_max in the strategy's params
    with pytest.raises(ValueError, match=r"pass es_kws=\{'range_min': -1.0, 'range_max': 1.0\}"):
        EvosaxTrainer(
            3,
            "RandomSearch",
            sphere,
            params_like=jnp.zeros(3),
            popsize=8,
            es_params={"range_min": -1.0, "range_max": 1.0},
        )


def test_random_search_with_a_sampling_fn_as_evosax_0_3():
    fn = lambda key: jax.random.normal(key, (3,))  # noqa: E731
    t = EvosaxTrainer(
        3, "RandomSearch", sphere, params_like=jnp.zeros(3), popsize=8, es_kws={"sampling_fn": fn}
    )
    assert t.strategy.sampling_fn is fn
    state, _ = t(jax.random.key(0))
    assert np.isfinite(float(state.best_fitness))


def test_sv_cma_es_old_arguments_fail_with_the_new_call():
    with pytest.raises(
        ValueError,
        match=r"popsize=32, es_kws=\{'num_populations': 4\}, "
        r"es_params=\{'std_init': 0.5\}",
    ):
        EvosaxTrainer(
            3,
            "SV_CMA_ES",
            sphere,
            params_like=jnp.zeros(2),
            popsize=32,
            es_kws={"npop": 4, "subpopsize": 8, "sigma_init": 0.5},
        )
    with pytest.raises(ValueError, match=r"needs es_kws=\{'num_populations': k\}"):
        EvosaxTrainer(3, "SV_CMA_ES", sphere, params_like=jnp.zeros(2), popsize=32)
    with pytest.raises(ValueError, match="divisible"):
        EvosaxTrainer(
            3,
            "SV_CMA_ES",
            sphere,
            params_like=jnp.zeros(2),
            popsize=30,
            es_kws={"num_populations": 4},
        )


def far_sphere(x, key=None):
    return jnp.sum(jnp.square(x - 2.0)), {}


@pytest.mark.parametrize("name", ["SV_CMA_ES", "SV_Open_ES"])
def test_sv_strategies_train(name):
    t = EvosaxTrainer(
        40, name, far_sphere, params_like=jnp.zeros(2), popsize=32, es_kws={"num_populations": 4}
    )
    assert t.popsize == 32 and t.strategy.num_populations == 4
    state, m = t(jax.random.key(0))
    means = np.asarray(state.es_state.mean)
    assert means.shape == (4, 2) and len(np.unique(means[:, 0])) == 4  # distinct particles
    fitness = np.asarray(m["fitness_mean"])
    assert np.isfinite(fitness).all()
    if name == "SV_CMA_ES":  # SV_Open_ES's default SGD step (1e-3) hardly moves in 40 steps
        assert fitness[-1] < 0.5 * fitness[0]


def test_sv_instance_is_accepted():
    inst = EvosaxSV_CMA_ES(8, 4, jnp.zeros(2))
    t = EvosaxTrainer(5, inst, sphere)
    assert t.popsize == 32 and t.strategy_name == "SV_CMA_ES"
    state, _ = t(jax.random.key(0))
    assert np.isfinite(float(state.best_fitness))
