"""The original realax README's ES and Grad examples, changed only as the migration table of
the root README says (``import realax as rx`` -> ``import realax.train as rx``,
``ex.FitnessShaper`` -> ``realax.train.FitnessShaper``, ``step_data=True`` for
``data["metrics"]``), and the original's names kept as deprecated aliases."""

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import realax.train as rx
from realax.train import FitnessShaper, evolve


# 1. define your fitness function (verbatim)
def rastrigin(x, key=None, data=None):
    x = jnp.clip(x, -5.12, 5.12)
    n = x.shape[0]
    A = 10.0
    y = A * n + jnp.sum(jnp.square(x) - A * jnp.cos(2 * jnp.pi * x))
    return y, dict()


@pytest.mark.slow
def test_original_es_example():
    # 2. Set your model parameters structure
    dims = 2
    prms = jnp.zeros((dims,))

    # 3. Instantiate your trainer (the README's spelling, n_devices=1. included)
    with pytest.warns(DeprecationWarning, match="EvosaxTrainer"):
        Evosaxtrainer = rx.Evosaxtrainer
    trainer = Evosaxtrainer(
        train_steps=32,
        strategy="CMA_ES",
        task=rastrigin,
        params_like=prms,
        fitness_shaper=FitnessShaper(maximize=False),
        popsize=32,
        eval_reps=1,
        n_devices=1.0,
        step_data=True,  # the original always collected data["metrics"]
    )

    # 3. Run es and collect data
    final_es_state, data = trainer.init_and_train(jr.key(1))
    assert data["metrics"]["fitness"].shape == (32, 32)  # (train_steps, popsize)
    assert data["eval_data"] == {} and data["metrics"]["eval_data"] == {}  # the task's info
    fitness = np.asarray(data["metrics"]["fitness"])
    np.testing.assert_array_equal(fitness.min(axis=1), data["fitness_min"])
    assert float(final_es_state.best_fitness) == float(fitness.min())

    # training loop can also be unrolled with fori_loop: the same run, final state only
    final_es_state_ = trainer.init_and_train_(jr.key(1))
    np.testing.assert_array_equal(final_es_state_.mean, final_es_state.mean)
    np.testing.assert_array_equal(final_es_state_.best_fitness, final_es_state.best_fitness)

    # the shorthand: the evolved parameters are the search distribution's mean
    evolved_prms, final_es_state, data = evolve(
        prms,
        rastrigin,
        jr.key(1),
        popsize=32,
        strategy="DES",
    )
    assert data["best_fitness"].shape == (1024,)  # steps=1024 by default, as in the original
    np.testing.assert_array_equal(evolved_prms, final_es_state.mean)
    assert float(rastrigin(evolved_prms)[0]) < 1.0  # started at the optimum, stays near it
    best, state, _ = evolve(prms, rastrigin, jr.key(1), popsize=32, strategy="DES",
                            return_best=True)  # fmt: skip
    np.testing.assert_array_equal(best, state.best_params)
    assert float(rastrigin(best)[0]) == float(state.best_fitness)


def test_original_es_names():
    """``train_step(state, key, data)``, ``train__`` and ``init_and_train__`` of the original."""
    trainer = rx.EvosaxTrainer(8, "SNES", rastrigin, params_like=jnp.ones(2), popsize=8)
    state = trainer.initialize(jr.key(0))
    old, metrics = trainer.train_step(state, jr.key(5), None)
    new, _ = trainer.train_step(state.replace(key=jr.key(5)))
    np.testing.assert_array_equal(old.mean, new.mean)
    assert int(old.step) == 1 and metrics["fitness_min"].shape == ()
    with pytest.raises(TypeError, match="original's \\(state, key, data\\)"):
        trainer.train_step(state, None, None)

    with pytest.warns(DeprecationWarning, match="train_python"):
        final = trainer.train__(state, jr.key(1))
    expected, _ = trainer.train_python(state.replace(key=jr.key(1)))
    np.testing.assert_array_equal(final.mean, expected.mean)
    with pytest.warns(DeprecationWarning, match="init_and_train_python"):
        final = trainer.init_and_train__(jr.key(2))
    np.testing.assert_array_equal(final.mean, trainer.init_and_train_python(jr.key(2))[0].mean)


def test_n_devices_must_be_whole():
    with pytest.raises(TypeError, match="n_devices must be a whole number.*n_devices=1"):
        rx.EvosaxTrainer(8, "SNES", rastrigin, params_like=jnp.ones(2), popsize=8, n_devices=1.5)
    trainer = rx.OptaxTrainer(4, "sgd", lambda k: jnp.ones(2), rastrigin, n_devices=1.0)
    assert trainer.n_devices == 1 and isinstance(trainer.n_devices, int)


def test_original_grad_example():
    # 2. Set your model constructor
    initializer = lambda key: jr.normal(key, (2,))

    # 3. Instantiate trainer
    trainer = rx.OptaxTrainer(
        epochs=64,
        optimizer="adamw",
        initializer=initializer,
        loss_fn=rastrigin,
        learning_rate=1e-3,
        step_data=True,  # the original always collected data["metrics"]
    )

    # 4. Optimize params
    final_state, data = trainer.init_and_train(jr.key(2))  # type:ignore

    losses = data["metrics"]["loss"]
    assert losses.shape == (64,)
    assert losses[-1] < losses[0]  # gradient descent decreases the loss
    assert float(final_state.best_loss) == float(losses.min())

    # the shorter function
    params, final_state, data = rx.optimize(
        initializer(jr.key(1)), rastrigin, jr.key(2), optimizer="adamw"
    )
    assert params.shape == (2,)
    assert data["loss"].shape == (1024,) and data["loss"][-1] < data["loss"][0]

    # train_params(params, key): the original's training from given parameters
    start = initializer(jr.key(1))
    state, data = trainer.train_params(start, jr.key(3))
    assert data["loss"].shape == (64,)
    assert float(data["loss"][0]) == float(rastrigin(start)[0])
    np.testing.assert_array_equal(jax.device_get(state.step), 64)
