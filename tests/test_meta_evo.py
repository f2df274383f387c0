"""realax.tasks.MetaEvoTask driven by realax.train.EvosaxTrainer (evosax strategies inside)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from evosax.algorithms import CMA_ES, SNES
from realax.tasks import MetaEvoTask, generation_weights
from realax.train import EvosaxTrainer, FitnessShaper

CENTRE = jnp.array([3.0, -2.0])


def shifted_sphere(x, key, shift):
    """One task of the family: higher is better, optimum at ``shift``."""
    return -jnp.sum(jnp.square(x - shift)), {}


def draw_shift(key):
    return CENTRE + 0.3 * jax.random.normal(key, (2,))


def make_meta(**kw):
    inner = SNES(8, jnp.zeros(2))
    params = inner.default_params.replace(std_init=0.2)
    return MetaEvoTask(
        shifted_sphere,
        jnp.zeros(2),
        8,
        8,
        inner,
        inner_es_params=params,
        inner_data_fn=draw_shift,
        **kw,
    )


def test_weights_and_aggregates():
    np.testing.assert_allclose(generation_weights("uniform", 4), [0.25] * 4)
    np.testing.assert_allclose(generation_weights("linear", 4), np.arange(1, 5) / 10)
    w = generation_weights("exponential", 3, decay=0.5)
    np.testing.assert_allclose(w, np.array([0.25, 0.5, 1.0]) / 1.75, rtol=1e-6)
    key = jax.random.key(0)
    best, info = make_meta(population_aggregate="max")(jnp.zeros(2), key)
    mean, info_mean = make_meta(population_aggregate="mean")(jnp.zeros(2), key)
    # same inner run (same key): the best member of each generation beats the average one
    assert (info["generation_fitness"] >= info_mean["generation_fitness"]).all()
    assert float(best) >= float(mean)
    np.testing.assert_allclose(float(best), float(jnp.mean(info["generation_fitness"])), rtol=1e-6)


def test_es_params_mode_and_errors():
    inner = CMA_ES(8, jnp.zeros(2))
    sphere = lambda x, key: (-jnp.sum(jnp.square(x - 1.0)), {})  # noqa: E731
    meta = MetaEvoTask(
        sphere, jnp.zeros(2), 6, 8, inner, outer="es_params", generation_weights="linear"
    )
    fitness, info = meta({"std_init": jnp.float32(0.5)}, jax.random.key(1))
    assert info["generation_fitness"].shape == (6,) and np.isfinite(float(fitness))
    with pytest.raises(ValueError, match="inner_popsize=4 disagrees.*population_size=8"):
        MetaEvoTask(sphere, jnp.zeros(2), 6, 4, inner)
    with pytest.raises(ValueError, match="population_aggregate must be one of"):
        MetaEvoTask(sphere, jnp.zeros(2), 6, 8, inner, population_aggregate="median")
    with pytest.raises(ValueError, match="generation weights must be one of"):
        MetaEvoTask(sphere, jnp.zeros(2), 6, 8, inner, generation_weights="cubic")
    with pytest.raises(TypeError, match="init/ask/tell"):
        MetaEvoTask(sphere, jnp.zeros(2), 6, 8, object())


@pytest.mark.slow
def test_meta_evolution_of_the_initial_mean_improves_the_outer_fitness():
    """Outer SNES (popsize 16, 25 generations) evolves the inner SNES's initial mean over a
    family of shifted spheres (shift ~ N((3, -2), 0.3^2)); the inner runs (8 generations,
    popsize 8, std 0.2) cannot travel far, so a good initial mean is what counts."""
    meta = make_meta(generation_weights="linear")
    trainer = EvosaxTrainer(
        25,
        "SNES",
        meta,
        params_like=jnp.zeros(2),
        popsize=16,
        fitness_shaper=FitnessShaper(maximize=True),
        eval_reps=2,
    )
    state, metrics = trainer(jax.random.key(0))
    fitness = np.asarray(metrics["fitness_mean"])
    # fitness <= 0, the (weighted) squared distance the inner runs leave: -4.8 at the start
    assert fitness[0] < -2.0 and fitness[-5:].mean() > -0.1
    assert fitness[-5:].mean() > fitness[:5].mean() + 2.0
    assert float(jnp.linalg.norm(state.mean - CENTRE)) < 0.5
