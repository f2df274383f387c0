"""Traced hyperparameters of OptaxTrainer, and population-based training (PBT) on it.

The learning test is noisy SGD on an ill-conditioned quadratic (gradient noise of fixed
scale): a large learning rate converges fast to a high noise floor, a small one slowly to a
low floor, so the best schedule starts high and drops. PBT must beat every fixed learning rate
of its initial population at the same compute (each member trains as long as a fixed run).
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from realax.train import PBT, OptaxTrainer, member_values

D = 16
CURVATURE = jnp.linspace(0.2, 1.0, D)
LRS = [1.0, 0.5, 0.3, 0.1, 0.05, 0.03, 0.01, 0.003]


def noisy_quadratic(p, key):
    """Loss value = the true quadratic; its gradient carries N(0, 1) noise."""
    lin = jnp.dot(jax.random.normal(key, (D,)), p)
    return 0.5 * jnp.sum(CURVATURE * (p - 3.0) ** 2) + lin - jax.lax.stop_gradient(lin), {}


def quadratic_trainer(steps=200):
    return OptaxTrainer(steps, "sgd", lambda k: jnp.zeros(D), noisy_quadratic, 0.1)


def regression(optimizer="adam", **kw):
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(64, 3)).astype(np.float32)
    ys = xs @ np.array([1.0, -2.0, 0.5], np.float32)
    return OptaxTrainer(
        20,
        optimizer,
        lambda k: jax.random.normal(k, (3,)),
        lambda p, k, b: (jnp.mean((b["x"] @ p - b["y"]) ** 2), {}),
        0.05,
        dataset={"x": xs, "y": ys},
        batch_size=16,
        **kw,
    )


def leaves_equal(a, b):
    def data(x):
        return jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x

    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(data(x)), np.asarray(data(y)))


# -- OptaxTrainer: sweepable, shape_settings, traced ---------------------------------------


def test_sweepable_and_shape_settings():
    t = regression("adamw", opt_kws={"b1": 0.8})
    assert t.sweepable() == {
        "b1": 0.8,
        "b2": 0.999,
        "eps": 1e-8,
        "eps_root": 0.0,
        "weight_decay": 1e-4,
        "learning_rate": 0.05,
    }
    assert t.shape_settings() == {"optimizer": "adamw", "batch_size": 16, "n_devices": 1}
    # a shape setting changes through rebuild (the sweep's one program per shape)
    rebuilt = t.traced(["learning_rate"]).rebuild(batch_size=32)
    assert (rebuilt.batch_size, rebuilt.n_batches) == (32, 2)
    assert rebuilt.traced_values == {"learning_rate": 0.05}
    sgd = OptaxTrainer(5, "sgd", lambda k: jnp.zeros(2), lambda p, k: (p.sum(), {}), 0.1)
    assert sgd.sweepable() == {"learning_rate": 0.1}  # momentum=None is not a number
    schedule = OptaxTrainer(5, "sgd", lambda k: jnp.zeros(2), lambda p, k: (p.sum(), {}), abs)
    assert schedule.sweepable() == {}
    import optax

    given = OptaxTrainer(5, optax.sgd(0.1), lambda k: jnp.zeros(2), lambda p, k: (p.sum(), {}))
    assert given.sweepable() == {}


def test_traced_runs_equal_the_static_run():
    static = regression("adam")
    s0, m0 = static.init_and_train(jax.random.key(0))
    assert s0.hparams == {}  # untraced: no extra leaves
    # learning_rate and eps: the same bits
    s1, m1 = static.traced(["learning_rate", "eps"]).init_and_train(jax.random.key(0))
    np.testing.assert_array_equal(m1["loss"], m0["loss"])
    np.testing.assert_array_equal(s1.params, s0.params)
    assert sorted(s1.hparams) == ["eps", "learning_rate"]
    # b1: optax computes 1 - b1 from the Python float in double precision when b1 is static,
    # in float32 when it is traced, so the last bit may differ
    s2, m2 = static.traced(["b1"]).init_and_train(jax.random.key(0))
    np.testing.assert_allclose(m2["loss"], m0["loss"], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(s2.params, s0.params, rtol=1e-5, atol=1e-6)


def test_the_traced_learning_rate_is_read_from_the_state():
    t = regression("sgd").traced(["learning_rate"])
    state = t.initialize(jax.random.key(1))
    frozen = state.replace(hparams={"learning_rate": jnp.float32(0.0)})
    out, _ = t.train(frozen, n_steps=3)
    np.testing.assert_array_equal(out.params, state.params)  # rate 0: nothing moves
    moved, _ = t.train(state, n_steps=3)
    assert not np.array_equal(moved.params, state.params)


def test_traced_refuses_unknown_and_shape_names():
    t = regression("adam")
    with pytest.raises(ValueError, match=r"unknown hyperparameter 'learnig_rate'.*'learning_rate'"):
        t.traced(["learnig_rate"])
    with pytest.raises(ValueError, match="'batch_size' changes array shapes"):
        t.traced(["batch_size"])
    with pytest.raises(TypeError, match="names must be a list of hyperparameter names"):
        t.traced("learning_rate")


class OldGradState(struct.PyTreeNode):  # GradState before it had an hparams field
    params: object
    opt_state: object
    step: object
    key: object
    best_loss: object
    best_params: object
    data: object = None


def test_an_old_checkpoint_layout_restores_into_the_new_state():
    # realax.log stores leaves by key path; the empty hparams dict adds none
    t = regression("adam")
    state = t.initialize(jax.random.key(0))
    old = OldGradState(**{f: getattr(state, f) for f in OldGradState.__dataclass_fields__})
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
    old_paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(old)[0]]
    assert paths == old_paths


# -- PBT ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_pbt_beats_every_fixed_learning_rate_of_its_population():
    inner = quadratic_trainer()
    interval = 10
    traced = inner.traced(["learning_rate"])
    start = traced.initialize(jax.random.key(1))
    fixed = {}
    for lr in LRS:  # one compiled program for all of them: the rate is a traced value
        _, m = traced.train(start.replace(hparams={"learning_rate": jnp.float32(lr)}))
        fixed[lr] = float(np.mean(m["loss"][-interval:]))
    pbt = PBT(inner, population=len(LRS), hparams={"learning_rate": LRS}, interval=interval)
    state, metrics = pbt.init_and_train(jax.random.key(0))
    final = member_values(metrics, "loss")[-interval:].mean(axis=0)  # the same statistic
    assert final.min() < 0.8 * min(fixed.values()), (final, fixed)
    # the winning rates dropped below the best fixed rate's
    best_fixed = min(fixed, key=fixed.get)
    lrs = np.asarray(state.members.hparams["learning_rate"])
    assert lrs[np.argmin(final)] < best_fixed
    history = member_values(metrics, "hparams/learning_rate")
    np.testing.assert_allclose(history[0], LRS)  # step 1 ran the listed values
    assert metrics["loss"].shape == (200,)


def small_pbt(**kw):
    kw = {"population": 4, "hparams": {"learning_rate": [1.0, 0.3, 0.1, 0.01]}, "interval": 5}
    return PBT(quadratic_trainer(20), **kw)


@pytest.fixture(scope="module")
def small_run():
    pbt = small_pbt()
    return pbt, pbt.init_and_train(jax.random.key(0))


def test_lineage_copies_the_source_state_at_each_event(small_run):
    pbt, (state, metrics) = small_run
    lin = state.lineage
    assert lin.step.tolist() == [5, 10, 15] and lin.parent.shape == (3, 4)
    parents = member_values(metrics, "parent")
    np.testing.assert_array_equal(parents[np.array([4, 9, 14])], lin.parent)
    assert (parents[np.arange(20) % 5 != 4] == np.arange(4)).all()  # no event: itself
    # re-run to step 9 (one compiled step, called 9 times), take step 10 of the members by
    # hand, compare with the exploit
    before, _ = pbt.train_python(pbt.initialize(jax.random.key(0)), n_steps=9)
    alg = pbt.trainer.algorithm
    pre, _ = jax.jit(jax.vmap(lambda m: alg.step(m, None, None, None)))(before.members)
    after, _ = pbt.train_python(before, n_steps=1)
    parent = np.asarray(after.lineage.parent[1])
    np.testing.assert_array_equal(parent, lin.parent[1])
    replaced = parent != np.arange(4)
    assert replaced.sum() == pbt.n_replaced == 1
    np.testing.assert_array_equal(after.members.params, np.asarray(pre.params)[parent])
    leaves_equal(after.members.key, pre.key)  # every member keeps its own key
    src_lr = np.asarray(pre.hparams["learning_rate"])[parent]
    new_lr = np.asarray(after.members.hparams["learning_rate"])
    np.testing.assert_array_equal(new_lr[~replaced], src_lr[~replaced])
    ratio = new_lr[replaced] / src_lr[replaced]
    resampled = np.isin(new_lr[replaced], np.float32([1.0, 0.3, 0.1, 0.01]))
    assert (np.isclose(ratio, 0.8) | np.isclose(ratio, 1.2) | resampled).all()
    np.testing.assert_array_equal(lin.hparams["learning_rate"][1], new_lr)
    # the worst member by the interval's mean loss was the one replaced
    score = np.asarray(after.lineage.score[1])
    assert replaced[np.argmax(score)] and parent[np.argmax(score)] == np.argmin(score)


def test_exploit_is_deterministic_given_the_key(small_run):
    pbt, (state, _) = small_run
    again, _ = pbt.init_and_train(jax.random.key(0))
    leaves_equal(again.lineage, state.lineage)
    leaves_equal(again.members, state.members)
    other, _ = pbt.init_and_train(jax.random.key(7))
    assert not np.array_equal(
        other.lineage.hparams["learning_rate"], state.lineage.hparams["learning_rate"]
    )


def test_pbt_distributions_start_inside_their_bounds():
    pbt = PBT(
        quadratic_trainer(20),
        population=6,
        hparams={"learning_rate": ("log_uniform", 1e-3, 1e-1)},
        interval=10,
        fraction=0.5,
        resample_prob=0.0,
        perturb=(100.0,),  # every copied rate leaves the bounds, and is clipped back
    )
    state = pbt.initialize(jax.random.key(0))
    lr = np.asarray(state.members.hparams["learning_rate"])
    assert ((lr >= 1e-3) & (lr <= 1e-1)).all() and len(set(lr.tolist())) == 6
    state, _ = pbt.train(state, n_steps=10)
    lr = np.asarray(state.members.hparams["learning_rate"])
    parent = np.asarray(state.lineage.parent[0])
    np.testing.assert_allclose(lr[parent != np.arange(6)], 0.1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"hparams": {"learnig_rate": [0.1]}}, ValueError, "Did you mean 'learning_rate'"),
        ({"hparams": {"learning_rate": ("normal", 0, 1)}}, ValueError, "unknown distribution"),
        ({"hparams": {"learning_rate": ("log_uniform", 0, 1)}}, ValueError, "low > 0"),
        ({"hparams": {}}, ValueError, "non-empty dict"),
        ({"fraction": 0.0}, ValueError, r"fraction must be in \(0, 0.5\]"),
        ({"fraction": 0.6}, ValueError, r"fraction must be in \(0, 0.5\]"),
        ({"fraction": 0.1}, ValueError, "replaces no member"),
        ({"interval": 0}, ValueError, "interval must be a positive int"),
        ({"interval": 7}, ValueError, r"interval must divide.*use interval in \[4, 5, 8\]"),
        ({"interval": 40}, ValueError, "interval must divide"),
        ({"population": 1}, ValueError, "population must be >= 2"),
        ({"perturb": ()}, ValueError, "perturb must be"),
        ({"resample_prob": 2.0}, ValueError, "resample_prob must be in"),
        ({"mode": "best"}, ValueError, "mode must be"),
    ],
)
def test_bad_pbt_input_fails_before_compiling(kwargs, error, match):
    base = {"population": 4, "hparams": {"learning_rate": [0.1, 0.01]}, "interval": 5}
    with pytest.raises(error, match=match):
        PBT(quadratic_trainer(40), **{**base, **kwargs})


def test_an_unknown_metric_is_named_before_compiling():
    pbt = PBT(
        quadratic_trainer(20),
        population=4,
        hparams={"learning_rate": [0.1]},
        interval=5,
        metric="acc",
    )
    with pytest.raises(ValueError, match=r"metric='acc' is not a scalar metric.*'best_loss'"):
        pbt.init_and_train(jax.random.key(0))
    with pytest.raises(TypeError, match="traced hyperparameters"):
        PBT(object(), population=2, hparams={"learning_rate": [0.1]}, interval=5)


def test_default_metric_and_mode_follow_the_trainer():
    from realax.train import EvosaxTrainer, FitnessShaper

    kw = {"population": 4, "interval": 5}
    pbt = PBT(quadratic_trainer(20), hparams={"learning_rate": [0.1]}, **kw)
    assert (pbt.metric, pbt.mode) == ("loss", "min")
    for maximize, mode in ((False, "min"), (True, "max")):
        es = EvosaxTrainer(
            20, "SNES", lambda x, key, data=None: (jnp.sum(x**2), {}), params_like=jnp.ones(2),
            popsize=8, fitness_shaper=FitnessShaper(maximize=maximize),
        )  # fmt: skip
        pbt = PBT(es, hparams={"std_init": [0.5, 2.0]}, **kw)
        assert (pbt.metric, pbt.mode) == ("best_fitness", mode)
    assert PBT(es, hparams={"std_init": [1.0]}, mode="min", **kw).mode == "min"


DEVICES_SCRIPT = textwrap.dedent(
    """
    import json
    import jax, jax.numpy as jnp, numpy as np
    from realax.train import PBT, OptaxTrainer

    def loss(p, key):
        lin = jnp.dot(jax.random.normal(key, (4,)), p)
        return 0.5 * jnp.sum((p - 3.0) ** 2) + lin - jax.lax.stop_gradient(lin), {}

    runs = []
    for n in (1, 2):
        inner = OptaxTrainer(20, "adam", lambda k: jax.random.normal(k, (4,)), loss, 0.1)
        pbt = PBT(inner, population=4, hparams={"learning_rate": ("log_uniform", 1e-3, 1.0)},
                  interval=5, fraction=0.5, n_devices=n)
        runs.append(pbt.init_and_train(jax.random.key(0)))
    (a, ma), (b, mb) = runs
    same = all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(
        jax.tree.leaves((a.members.params, a.members.opt_state, a.lineage, ma)),
        jax.tree.leaves((b.members.params, b.members.opt_state, b.lineage, mb))))
    sharded = len(b.members.params.sharding.device_set)
    print(json.dumps({"same": same, "devices": jax.device_count(), "sharded": sharded,
                      "copied": int((np.asarray(a.lineage.parent) != np.arange(4)).sum())}))
    """
)


@pytest.mark.slow
def test_two_devices_equal_one():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    out = subprocess.run(
        [sys.executable, "-c", DEVICES_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["devices"] == 2 and result["copied"] == 6
    assert result["sharded"] == 2  # the members live on both devices
    assert result["same"], result
