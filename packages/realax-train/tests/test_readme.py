"""The original README's ES and Grad snippets, moved to the new imports."""

import jax.numpy as jnp
import jax.random as jr
import numpy as np
import realax.train as rx
from realax.train import FitnessShaper, evolve


def rastrigin(x, key=None, data=None):
    x = jnp.clip(x, -5.12, 5.12)
    n = x.shape[0]
    A = 10.0
    y = A * n + jnp.sum(jnp.square(x) - A * jnp.cos(2 * jnp.pi * x))
    return y, dict()


def test_readme_es_snippet():
    dims = 2
    prms = jnp.zeros((dims,))
    trainer = rx.EvosaxTrainer(
        train_steps=32,
        strategy="CMA_ES",
        task=rastrigin,
        params_like=prms,
        fitness_shaper=FitnessShaper(maximize=False),
        popsize=32,
        eval_reps=1,
        n_devices=1,
    )
    final_es_state, metrics = trainer.init_and_train(jr.key(1))
    assert metrics["fitness_min"].shape == (32,)
    # started at the optimum (params_like's value is now the starting point): stays there
    assert float(final_es_state.best_fitness) < 1e-3
    final_es_state_ = trainer.init_and_train_(jr.key(1))
    np.testing.assert_array_equal(final_es_state_.best_fitness, final_es_state.best_fitness)

    evolved_prms, final_es_state, data = evolve(
        prms + 1.0, rastrigin, jr.key(1), popsize=32, strategy="DES", steps=64,
        return_best=True,  # evolve returns the distribution's mean by default (issue #16)
    )
    assert evolved_prms.shape == (dims,)
    assert float(rastrigin(evolved_prms)[0]) == float(final_es_state.best_fitness)
    assert float(final_es_state.best_fitness) < float(rastrigin(prms + 1.0)[0])


def test_readme_grad_snippet():
    initializer = lambda key: jr.normal(key, (2,))
    trainer = rx.OptaxTrainer(
        epochs=64, optimizer="adamw", initializer=initializer, loss_fn=rastrigin,
        learning_rate=1e-3,
    )
    final_state, metrics = trainer.init_and_train(jr.key(2))
    losses = metrics["loss"]  # was data["metrics"]["loss"]
    assert losses.shape == (64,)
    assert losses[-1] < losses[0]  # gradient descent decreases the loss

    params, final_state, metrics = rx.optimize(
        initializer(jr.key(1)), rastrigin, jr.key(2), optimizer="adamw", steps=64
    )
    assert params.shape == (2,)
    assert metrics["loss"][-1] < metrics["loss"][0]
