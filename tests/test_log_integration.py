"""realax.log with realax.train and realax.tasks: the README's logging example on a gymnax task,
and runs stopped at step k, restored from disk and resumed, bit-identical to uninterrupted runs.
"""

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest
import realax.log as rlog
import realax.tasks as rt
from realax.train import EvosaxTrainer, FitnessShaper, OptaxTrainer, evolve


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    wandb_dir = tmp_path / "wandb_root"
    wandb_dir.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return wandb_dir


def _assert_bit_identical(a, b):
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert x.dtype == y.dtype
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), strict=True)


def _cartpole(obs_norm=True):
    env = rt.make("CartPole-v1")
    policy = rt.MLPPolicy.from_env(env, width=8, depth=1)
    task = rt.GymnaxTask("CartPole-v1", policy=policy, max_steps=60, obs_norm=obs_norm)
    params, _ = rt.make_model_factory(policy, jnp.zeros(env.obs_shape), jax.random.key(1))
    return task, params


def test_readme_logging_example_on_gymnax(tmp_path, offline_wandb):
    task, params = _cartpole()
    ckpt_dir = tmp_path / "ckpts_ex" / "es"
    logger = rlog.Logger(
        wandb_log=True,
        metrics_fn=rlog.default_es_metrics,
        ckpt_file=str(ckpt_dir),
        ckpt_freq=5,
    )
    config = {"mlp_width": 8, "mlp_depth": 1, "env": "CartPole-v1"}
    logger.init(project="es_gymnax_example", config=config)
    wandb_run_dir = logger.run.settings.sync_dir
    evolved, state = evolve(
        params,
        task,
        key=jax.random.key(2),
        strategy="DES",
        popsize=16,
        eval_reps=2,
        steps=12,
        use_scan=False,
        fitness_shaper=FitnessShaper(maximize=True),
        logger=logger,
    )
    logger.on_run_end(state)  # as the trainer loops do (idempotent if they already did)
    logger.finish()

    # metrics file: every generation, in order, ending at the returned state
    rows = rlog.read_metrics(ckpt_dir)
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert [r["generation"] for r in rows] == [r["step"] for r in rows]
    assert rows[-1]["best_fitness"] == float(state.best_fitness)
    assert all(r["fitness_min"] <= r["fitness_mean"] <= r["fitness_max"] for r in rows)
    # the offline wandb run holds the same values
    history = rlog.read_wandb_history(wandb_run_dir)
    assert [h["_step"] for h in history] == list(range(1, 13))
    for key in ("fitness_max", "fitness_mean", "best_fitness"):
        assert [h[key] for h in history] == [r[key] for r in rows]
    assert rlog.read_wandb_config(wandb_run_dir) == config
    # orbax checkpoints at the right steps (and the last one), holding the whole EvoState
    assert rlog.all_steps(ckpt_dir) == [5, 10, 12]
    _assert_bit_identical(rlog.restore(ckpt_dir, like=state), state)
    at10 = rlog.restore(ckpt_dir, like=state, step=10)
    assert int(at10.step) == 10
    assert rows[9]["best_fitness"] == float(at10.best_fitness)
    assert at10.data is not None  # observation statistics are part of the checkpoint
    # a plot of the learning curves
    png = rlog.plot(ckpt_dir, metrics=["fitness_max", "best_fitness"])
    assert matplotlib.image.imread(png).shape[:2] == (300, 840)
    assert jax.tree_util.tree_structure(evolved) == jax.tree_util.tree_structure(params)


def test_es_run_stopped_restored_and_resumed_equals_one_go(tmp_path):
    task, params = _cartpole(obs_norm=True)
    kwargs = dict(
        strategy="Open_ES",
        task=task,
        params_like=params,
        popsize=16,
        eval_reps=2,
        fitness_shaper=FitnessShaper(maximize=True),
    )
    key = jax.random.key(7)
    logger = rlog.Logger(
        wandb_log=False, metrics_fn=rlog.default_es_metrics, ckpt_dir=tmp_path, ckpt_freq=3
    )
    stopped = EvosaxTrainer(train_steps=6, logger=logger, **kwargs)  # "crashes" after step 6
    stopped.init_and_train(key)
    logger.finish()
    assert rlog.all_steps(tmp_path) == [3, 6]

    full = EvosaxTrainer(train_steps=10, **kwargs)
    restored = rlog.restore(tmp_path, like=full.initialize(jax.random.key(0)))
    assert int(restored.step) == 6
    resumed, _ = full.resume(restored)
    uninterrupted, _ = full.init_and_train(key)
    assert int(resumed.step) == 10
    _assert_bit_identical(resumed, uninterrupted)


def test_gradient_run_stopped_restored_and_resumed_equals_one_go(tmp_path):
    w_true = jnp.array([1.0, -2.0, 0.5])

    def loss_fn(params, key):
        x = jax.random.normal(key, (32, 3))  # a fresh minibatch per step from the step key
        return jnp.mean((x @ params["w"] + params["b"] - x @ w_true) ** 2), {}

    kwargs = dict(
        optimizer="adamw",
        initializer=lambda key: {"w": jax.random.normal(key, (3,)), "b": jnp.zeros(())},
        loss_fn=loss_fn,
        learning_rate=0.1,
    )
    key = jax.random.key(3)
    logger = rlog.Logger(
        wandb_log=False, metrics_fn=rlog.default_grad_metrics, ckpt_dir=tmp_path, ckpt_freq=10
    )
    stopped, logged = OptaxTrainer(epochs=25, logger=logger, **kwargs).init_and_train(key)
    logger.on_run_end(stopped)  # as the trainer loops do: the last step is saved too
    logger.finish()
    assert rlog.all_steps(tmp_path) == [10, 20, 25]
    rows = rlog.read_metrics(tmp_path)
    assert [r["step"] for r in rows] == list(range(1, 26))
    # default_grad_metrics logs the OptaxTrainer's own per-step loss and best loss
    for key_ in ("loss", "best_loss"):
        np.testing.assert_array_equal([r[key_] for r in rows], np.asarray(logged[key_]))

    full = OptaxTrainer(epochs=80, **kwargs)
    restored = rlog.restore(tmp_path, like=full.initialize(jax.random.key(0)))
    resumed, _ = full.resume(restored)
    uninterrupted, metrics = full.init_and_train(key)
    _assert_bit_identical(resumed, uninterrupted)
    assert float(metrics["loss"][-1]) < 0.05 * float(metrics["loss"][0])


def test_on_run_end_after_a_trainer_run_saves_the_last_step_seeds_included(tmp_path):
    # what the trainer loops do once their compiled run returns: logger.on_run_end(state)
    kwargs = dict(
        optimizer="adam",
        initializer=lambda key: {"w": jax.random.normal(key, (3,))},
        loss_fn=lambda p, key: (jnp.sum((p["w"] - jax.random.normal(key, (3,))) ** 2), {}),
        learning_rate=0.05,
    )
    logger = rlog.Logger(False, rlog.default_grad_metrics, ckpt_dir=tmp_path / "one", ckpt_freq=10)
    trainer = OptaxTrainer(epochs=25, logger=logger, **kwargs)
    state, _ = trainer.train(trainer.initialize(jax.random.key(0)))
    logger.on_run_end(state)
    logger.on_run_end(state)  # idempotent
    logger.finish()
    assert rlog.all_steps(tmp_path / "one") == [10, 20, 25]
    _assert_bit_identical(rlog.restore(tmp_path / "one", like=state), state)

    seeds = rlog.Logger(False, rlog.default_grad_metrics, ckpt_dir=tmp_path / "seeds", ckpt_freq=10)
    trainer = OptaxTrainer(epochs=25, logger=seeds, **kwargs)
    states, _ = trainer.init_and_train(jax.random.split(jax.random.key(0), 3))
    seeds.on_run_end(states)  # a leading seed axis: saved whole, like the periodic ones
    seeds.finish()
    assert rlog.all_steps(tmp_path / "seeds") == [10, 20, 25]
    _assert_bit_identical(rlog.restore(tmp_path / "seeds", like=states), states)


@pytest.mark.parametrize("use_scan", [True, False])
def test_step_data_with_the_default_es_metrics_logger(tmp_path, use_scan):
    """Per-step data (``step_data=True``) next to realax.log's default ES metrics: the
    scalar rows are logged as without it, the per-member data stays out of the metrics file."""

    def sphere(x, key, data=None):
        return jnp.sum(x**2), {"x0": x[0]}

    rows = {}
    for on in (False, True):
        logger = rlog.Logger(
            wandb_log=False, metrics_fn=rlog.default_es_metrics, ckpt_dir=tmp_path / str(on)
        )
        trainer = EvosaxTrainer(
            4,
            "SNES",
            sphere,
            params_like=jnp.ones(3),
            popsize=8,
            logger=logger,
            step_data=on,
        )
        run = trainer.init_and_train if use_scan else trainer.init_and_train_
        out = run(jax.random.key(0))
        logger.finish()
        rows[on] = rlog.read_metrics(tmp_path / str(on))
        if on and use_scan:
            assert out[1]["metrics"]["fitness"].shape == (4, 8)
    assert len(rows[True]) == 4
    assert rows[True] == rows[False]
