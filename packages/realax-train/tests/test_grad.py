"""OptaxTrainer and optimize: constructor arguments, datasets, state, closed-form agreement."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from realax.train import GradState, OptaxTrainer, available_optimizers, optimize


def quadratic(p, key):
    return jnp.sum((p - 3.0) ** 2), {"p0": p[0]}


def zeros3(key):
    return jnp.zeros(3)


def plain(tree):
    """The tree with typed PRNG keys replaced by their raw data (comparable with chex)."""
    is_key = lambda x: jnp.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)
    return jax.tree.map(lambda x: jax.random.key_data(x) if is_key(x) else x, tree)


def least_squares_problem(n=64, d=5, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d)).astype(np.float32)
    x_true = rng.normal(size=d).astype(np.float32)
    b = (a @ x_true + noise * rng.normal(size=n)).astype(np.float32)
    return a, b


# ----------------------------------------------------------------------------- optimize


def test_optimize_least_squares_matches_closed_form():
    a, b = least_squares_problem()
    x_star = np.linalg.lstsq(a.astype(np.float64), b.astype(np.float64), rcond=None)[0]
    aj, bj = jnp.asarray(a), jnp.asarray(b)

    def loss(x, key):
        return jnp.mean((aj @ x - bj) ** 2), {}

    params, state, metrics = optimize(
        jnp.zeros(5), loss, jax.random.key(0), "adam", steps=1500, learning_rate=0.02
    )
    # tolerance: float32 least squares, residual gradient ~1e-6 -> 1e-4 on the solution
    np.testing.assert_allclose(params, x_star, atol=1e-4)
    assert isinstance(state, GradState) and int(state.step) == 1500
    # a line-search optimiser by name (optax.lbfgs takes extra update arguments) gets there
    # in a few epochs
    # (use_scan=False: fori_loop, returns (params, state) without metrics)
    params_lbfgs, state_lbfgs = optimize(
        jnp.zeros(5), loss, jax.random.key(0), "lbfgs", steps=15, learning_rate=1.0, use_scan=False
    )
    np.testing.assert_allclose(params_lbfgs, x_star, atol=1e-5)
    assert int(state_lbfgs.step) == 15
    optimum = float(np.mean((a @ x_star - b) ** 2))
    np.testing.assert_allclose(float(metrics["loss"][-1]), optimum, rtol=1e-5)
    assert metrics["loss"][0] > 2 * optimum  # it started far away


def test_optimize_minibatch_sgd_on_consistent_least_squares():
    # b = A x exactly: every minibatch gradient vanishes at x*, so minibatch SGD converges to it
    a, _ = least_squares_problem(n=96, d=4)
    x_true = np.array([1.0, -2.0, 0.5, 3.0], np.float32)
    b = a @ x_true
    x_star = np.linalg.lstsq(a, b, rcond=None)[0]

    def loss(x, key, batch):
        return jnp.mean((batch["a"] @ x - batch["b"]) ** 2), {}

    params, state, metrics = optimize(
        jnp.zeros(4),
        loss,
        jax.random.key(1),
        "sgd",
        steps=60,
        learning_rate=0.1,
        dataset={"a": a, "b": b},
        batch_size=16,
    )
    np.testing.assert_allclose(params, x_star, atol=1e-4)
    # 96 / 16 = 6 updates per epoch: the sgd momentum-free count is not stored, use the loss
    assert metrics["loss"].shape == (60,) and metrics["loss"][-1] < 1e-7


# ----------------------------------------------------------------------------- constructor


def test_epochs_sets_steps_and_metric_length():
    t = OptaxTrainer(7, "sgd", zeros3, quadratic, learning_rate=0.1)
    assert t.epochs == t.train_steps == 7
    state, metrics = t.init_and_train(jax.random.key(0))
    assert int(state.step) == 7
    np.testing.assert_array_equal(metrics["step"], np.arange(1, 8))
    assert set(metrics) == {"step", "loss", "best_loss", "grad_norm"}
    for bad, err in [(0, ValueError), (-3, ValueError), (2.5, TypeError), (True, TypeError)]:
        with pytest.raises(err, match="epochs"):
            OptaxTrainer(bad, "sgd", zeros3, quadratic)


def test_optimizer_name_equals_transformation_and_learning_rate_is_used():
    by_name = OptaxTrainer(20, "adam", zeros3, quadratic, learning_rate=0.05)
    by_obj = OptaxTrainer(20, optax.adam(0.05), zeros3, quadratic)
    s1, m1 = by_name(jax.random.key(0))
    s2, m2 = by_obj(jax.random.key(0))
    chex.assert_trees_all_equal(s1.params, s2.params)
    chex.assert_trees_all_equal(m1, m2)

    # one sgd step is exactly p - lr * grad: learning_rate reaches the alias
    for lr in (0.1, 0.25):
        s, _ = OptaxTrainer(1, "sgd", zeros3, quadratic, learning_rate=lr)(jax.random.key(0))
        np.testing.assert_allclose(s.params, np.full(3, lr * 6.0), rtol=1e-6)

    # a schedule is accepted as learning_rate: lr 0.1 for the first step, then 0
    sched = optax.piecewise_constant_schedule(0.1, {1: 0.0})
    s, _ = OptaxTrainer(5, "sgd", zeros3, quadratic, learning_rate=sched)(jax.random.key(0))
    np.testing.assert_allclose(s.params, np.full(3, 0.6), rtol=1e-6)
    for bad in (0.0, -1e-3, "fast", True):
        with pytest.raises(ValueError, match="learning_rate"):
            OptaxTrainer(1, "sgd", zeros3, quadratic, learning_rate=bad)


def test_optimizer_names_and_errors():
    names = available_optimizers()
    assert {"adam", "adamw", "sgd", "rmsprop", "lion", "adabelief"} <= set(names)
    with pytest.raises(ValueError, match=r"unknown optimizer 'adamm'.*'adam'"):
        OptaxTrainer(1, "adamm", zeros3, quadratic)
    with pytest.raises(ValueError, match=r"unknown optimizer 'SGD'.*'sgd'"):
        OptaxTrainer(1, "SGD", zeros3, quadratic)
    with pytest.raises(TypeError, match="optimizer must be"):
        OptaxTrainer(1, 3, zeros3, quadratic)
    # every listed alias builds and takes an update step (one compiled program for all)
    trainers = {
        name: OptaxTrainer(
            1,
            name,
            zeros3,
            quadratic,
            1e-2,
            opt_kws={"key": jax.random.key(0)} if name == "noisy_sgd" else None,
        )
        for name in names
    }

    @jax.jit
    def one_step_each(key):
        return {n: t.train_step(t.initialize(key))[0].params for n, t in trainers.items()}

    for name, params in one_step_each(jax.random.key(0)).items():
        assert np.all(np.isfinite(params)) and np.all(params >= 0), name  # never away from 3


def test_opt_kws_reach_the_alias():
    with_kws = OptaxTrainer(10, "sgd", zeros3, quadratic, 0.05, opt_kws={"momentum": 0.9})
    direct = OptaxTrainer(10, optax.sgd(0.05, momentum=0.9), zeros3, quadratic)
    plain = OptaxTrainer(10, "sgd", zeros3, quadratic, 0.05)
    s1, s2, s3 = (t(jax.random.key(0))[0] for t in (with_kws, direct, plain))
    chex.assert_trees_all_equal(s1.params, s2.params)
    assert not np.allclose(s1.params, s3.params)  # momentum changed the trajectory
    with pytest.raises(TypeError, match=r"opt_kws=\{'momentun': 0.9\} do not fit optax.sgd"):
        OptaxTrainer(1, "sgd", zeros3, quadratic, opt_kws={"momentun": 0.9})
    with pytest.raises(ValueError, match="opt_kws only apply when optimizer is a name"):
        OptaxTrainer(1, optax.sgd(0.1), zeros3, quadratic, opt_kws={"momentum": 0.9})
    with pytest.raises(TypeError, match="opt_kws must be a dict"):
        OptaxTrainer(1, "sgd", zeros3, quadratic, opt_kws=[0.9])


def test_initializer_gets_a_key_and_sets_params():
    init = lambda key: {"w": jax.random.normal(key, (2, 3)), "b": jnp.zeros(3)}
    loss = lambda p, key: (jnp.sum(p["w"] ** 2) + jnp.sum((p["b"] - 1.0) ** 2), {})
    t = OptaxTrainer(200, "adam", init, loss, learning_rate=0.05)
    s_a, s_b = t.initialize(jax.random.key(0)), t.initialize(jax.random.key(1))
    assert not np.allclose(s_a.params["w"], s_b.params["w"])  # params drawn from the key
    chex.assert_trees_all_equal(s_a.best_params, s_a.params)
    assert float(s_a.best_loss) == np.inf and int(s_a.step) == 0
    final, _ = t.train(s_a)
    chex.assert_trees_all_close(final.params, {"w": jnp.zeros((2, 3)), "b": jnp.ones(3)}, atol=1e-2)
    with pytest.raises(TypeError, match="initializer must be callable"):
        OptaxTrainer(1, "sgd", jnp.zeros(3), quadratic)
    with pytest.raises(ValueError, match="initializer\\(key\\) failed when traced"):
        OptaxTrainer(1, "sgd", lambda key: np.asarray(key) + 1, quadratic)


def test_loss_fn_signatures_and_aux():
    # (params, key): the key is the epoch's key, fresh every epoch
    def noisy(p, key):
        return jnp.sum((p - jax.random.normal(key, p.shape)) ** 2), {}

    _, m = OptaxTrainer(4, "sgd", zeros3, noisy, 1e-3)(jax.random.key(0))
    assert len(np.unique(np.round(m["loss"], 4))) == 4

    # (params, key, batch) with user data: data reaches the loss
    def with_data(p, key, batch):
        return jnp.sum((p - batch) ** 2), {"n": batch.shape[0]}

    t = OptaxTrainer(200, "adam", zeros3, with_data, 0.05)
    state, _ = t.init_and_train(jax.random.key(0), data=jnp.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(state.params, [1.0, 2.0, 3.0], atol=1e-2)
    np.testing.assert_array_equal(state.data, [1.0, 2.0, 3.0])  # kept in the state

    # aux may be any pytree; wrong outputs raise clear errors before compiling
    with pytest.raises(TypeError, match=r"loss_fn must return a tuple \(loss, aux\)"):
        OptaxTrainer(1, "sgd", zeros3, lambda p, key: jnp.sum(p))
    with pytest.raises(ValueError, match="loss_fn must return a scalar loss"):
        OptaxTrainer(1, "sgd", zeros3, lambda p, key: (p, {}))
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        OptaxTrainer(1, "sgd", zeros3, "mse")
    # a loss that needs data but got none fails before compiling, naming the shapes
    t = OptaxTrainer(1, "sgd", zeros3, with_data)
    with pytest.raises(ValueError, match="loss_fn failed when traced"):
        t.init_and_train(jax.random.key(0))


def test_logger_and_progress_bar_arguments(capsys):
    class Recorder:
        def __init__(self):
            self.rows = []

        def log(self, state, metrics):
            jax.debug.callback(
                lambda step, loss: self.rows.append((int(step), float(loss))),
                state.step,
                metrics["loss"],
                ordered=True,
            )

    rec = Recorder()
    t = OptaxTrainer(6, "sgd", zeros3, quadratic, 0.1, logger=rec, progress_bar=True)
    state, m = t.init_and_train(jax.random.key(0))
    assert [r[0] for r in rec.rows] == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose([r[1] for r in rec.rows], m["loss"], rtol=1e-6)
    assert "6/6" in capsys.readouterr().err
    with pytest.raises(TypeError, match="logger must be None or an object with a log"):
        OptaxTrainer(1, "sgd", zeros3, quadratic, logger=print)
    with pytest.raises(TypeError, match="progress_bar must be True or False"):
        OptaxTrainer(1, "sgd", zeros3, quadratic, progress_bar="yes")


def test_n_devices_argument_checked_before_compiling():
    # the 4-device behaviour is tested in test_devices.py (forced CPU devices, subprocess)
    with pytest.raises(ValueError, match=r"n_devices=64 but only \d+ JAX device"):
        OptaxTrainer(1, "sgd", zeros3, quadratic, n_devices=64)
    with pytest.raises(ValueError, match="n_devices must be a positive int"):
        OptaxTrainer(1, "sgd", zeros3, quadratic, n_devices=0)
    t = OptaxTrainer(1, "sgd", zeros3, quadratic, n_devices=1)
    assert t.n_devices == 1


# ----------------------------------------------------------------------------- dataset


def test_dataset_is_minibatched_every_epoch_without_replacement():
    # loss = sum of the params picked by the batch's indices: one sgd step (lr 1) lowers each
    # picked param by exactly 1, so params count how often each example was used
    n, bs = 10, 3
    seen_shapes = []

    def pick(p, key, batch):
        seen_shapes.append(batch["i"].shape)
        return jnp.sum(p[batch["i"]]) + 0.0 * jnp.sum(batch["x"]), {}

    dataset = {"i": jnp.arange(n), "x": jnp.ones((n, 2, 2))}
    per_epoch = []

    class ParamsLog:
        def log(self, state, metrics):
            jax.debug.callback(
                lambda p: per_epoch.append(np.asarray(p)), state.params, ordered=True
            )

    t = OptaxTrainer(
        6,
        "sgd",
        lambda k: jnp.zeros(n),
        pick,
        1.0,
        dataset=dataset,
        batch_size=bs,
        logger=ParamsLog(),
    )
    assert t.n_batches == 3 and t.batch_size == bs
    state, m = t(jax.random.key(0))
    assert set(seen_shapes) == {(bs,)}  # the loss only ever sees minibatches
    used = -np.diff(np.stack([np.zeros(n), *per_epoch]), axis=0)  # uses per epoch
    for epoch_use in used:  # 3 batches of 3 per epoch, no repeats, one example dropped
        assert sorted(epoch_use.tolist()) == [0.0] + [1.0] * 9
    # the shuffle changes which example is left out from epoch to epoch
    assert len({int(np.argmin(u)) for u in used}) > 1
    np.testing.assert_array_equal(-state.params, used.sum(0))
    # default batch size: the whole dataset, one update per epoch
    t4 = OptaxTrainer(2, "sgd", lambda k: jnp.zeros(n), pick, 1.0, dataset=dataset)
    assert t4.batch_size == n and t4.n_batches == 1
    np.testing.assert_array_equal(t4(jax.random.key(0))[0].params, np.full(n, -2.0))


def test_dataset_errors():
    pick = lambda p, key, batch: (jnp.sum(p * batch["x"]), {})
    with pytest.raises(ValueError, match="same leading axis of examples"):
        OptaxTrainer(1, "sgd", zeros3, pick, dataset={"x": jnp.ones((4, 3)), "y": jnp.ones(5)})
    with pytest.raises(ValueError, match="batch_size must be <= the number of examples"):
        OptaxTrainer(1, "sgd", zeros3, pick, dataset={"x": jnp.ones((4, 3))}, batch_size=5)
    with pytest.raises(ValueError, match="batch_size=2 needs a dataset"):
        OptaxTrainer(1, "sgd", zeros3, quadratic, batch_size=2)
    with pytest.raises(ValueError, match=r"loss_fn failed when traced.*batch \{'y'"):
        OptaxTrainer(1, "sgd", zeros3, pick, dataset={"y": jnp.ones((4, 3))})  # no "x" leaf


# ----------------------------------------------------------------------------- state


def test_state_tracks_best_loss_and_best_params():
    # a too-large sgd step makes the loss oscillate and grow: the best is the first epoch's start
    t = OptaxTrainer(8, "sgd", lambda k: jnp.ones(3), quadratic, learning_rate=1.05)
    state, m = t(jax.random.key(0))
    assert np.all(np.diff(m["loss"]) > 0)  # diverging
    assert float(state.best_loss) == float(m["loss"][0]) == float(m["best_loss"][-1])
    np.testing.assert_array_equal(state.best_params, np.ones(3))  # params of that epoch
    # converging: best loss = last epoch's loss, and it is the loss of best_params
    t = OptaxTrainer(30, "sgd", lambda k: jnp.ones(3), quadratic, learning_rate=0.1)
    state, m = t(jax.random.key(0))
    np.testing.assert_array_equal(m["best_loss"], np.minimum.accumulate(m["loss"]))
    assert float(state.best_loss) == float(m["loss"][-1])
    np.testing.assert_allclose(quadratic(state.best_params, None)[0], state.best_loss, rtol=1e-6)
    assert jax.tree.structure(state.opt_state) == jax.tree.structure(
        optax.sgd(0.1).init(jnp.ones(3))
    )
    np.testing.assert_allclose(m["grad_norm"][0], np.linalg.norm(np.full(3, -4.0)), rtol=1e-6)


def test_scan_and_fori_give_the_same_state():
    t = OptaxTrainer(25, "adamw", lambda k: jax.random.normal(k, (4,)), quadratic, 0.05)
    s_scan, _ = t.init_and_train(jax.random.key(5))
    s_fori = t.init_and_train_(jax.random.key(5))
    chex.assert_trees_all_close(plain(s_scan), plain(s_fori), rtol=1e-6, atol=1e-7)


def test_several_seeds_in_one_program_equal_separate_runs():
    init = lambda k: jax.random.normal(k, (3,)) * 5.0
    t = OptaxTrainer(15, "adam", init, quadratic, 0.1)
    keys = jax.random.split(jax.random.key(0), 4)
    states, metrics = t.init_and_train(keys)
    assert metrics["loss"].shape == (4, 15) and states.params.shape == (4, 3)
    assert len(np.unique(np.asarray(states.params[:, 0]))) == 4  # independent runs
    for i in range(4):
        s_i, m_i = t.init_and_train(keys[i])
        chex.assert_trees_all_close(
            plain(jax.tree.map(lambda x, i=i: x[i], states)), plain(s_i), rtol=1e-5, atol=1e-6
        )
        np.testing.assert_allclose(metrics["loss"][i], m_i["loss"], rtol=1e-5)
    # fori variant with a batch of keys returns the states only
    states_ = t.init_and_train_(keys)
    chex.assert_trees_all_close(states_.params, states.params, rtol=1e-5, atol=1e-6)
