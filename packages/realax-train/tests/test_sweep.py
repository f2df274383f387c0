"""Traced hyperparameters (``trainer.traced``, ``set_hparams``) and ``realax.train.sweep`` on
evolution strategies: a sweep's member equals its configuration run alone, bit for bit."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realax.train import EvosaxTrainer, SweepResult, set_hparams, sweep
from realax.train._loops import lower

_COMPILED: list[str] = []
jax.monitoring.register_event_duration_secs_listener(
    lambda name, *a, **k: (
        _COMPILED.append(k.get("fun_name", "?"))
        if name == "/jax/core/compile/backend_compile_duration"
        else None
    )
)

KEY = jax.random.key(3)


def sphere(x, key, data=None):
    return jnp.sum(x**2), {}


def es(**kw):
    args = dict(train_steps=12, strategy="SNES", task=sphere, params_like=jnp.ones(3), popsize=8)
    args.update(kw)
    return EvosaxTrainer(**args)


def same(a, b):
    return all(np.array_equal(np.asarray(a[k]), np.asarray(b[k]), equal_nan=True) for k in a)


# ----------------------------------------------------------------------------- traced


def test_sweepable_and_shape_settings():
    t = es()
    assert t.sweepable() == pytest.approx({"std_init": 1.0, "lr_std_init": 0.4732670})
    assert t.shape_settings() == {"popsize": 8, "eval_reps": 1, "n_devices": 1}
    assert "init_std" in es(strategy="SimpleGA").sweepable()  # population-based


@pytest.mark.slow
def test_traced_run_equals_the_static_run_bit_for_bit():
    t = es(strategy="SimpleGA", train_steps=4)
    state, metrics = t.init_and_train(KEY)
    traced = t.traced(list(t.sweepable()))
    state_t, metrics_t = traced.init_and_train(KEY)
    assert same(metrics, metrics_t)
    assert state.hparams == {}
    assert set(state_t.hparams) == {"crossover_rate", "init_std", "sigma"}
    assert all(v.dtype == jnp.float32 and v.shape == () for v in state_t.hparams.values())
    # the untraced state has no more leaves than before, and the untraced trainer's program
    # takes exactly those leaves
    assert len(jax.tree.leaves(state)) == len(jax.tree.leaves(state.replace(hparams={})))
    assert t.traced_values == {} and traced is not t


def test_untraced_program_is_unchanged_by_the_field():
    def n_args(trainer):
        state = trainer.initialize(KEY)
        text = lower(trainer.algorithm, state, n_steps=2).as_text()
        return text.split("func.func public @main(")[1].split(")")[0].count("%arg")

    t = es()
    # an empty hparams dict adds no argument to the program; each traced value adds one
    assert n_args(t.traced(["std_init"])) == n_args(t) + 1
    assert n_args(t.traced([])) == n_args(t)


def test_set_hparams_changes_the_run_and_refuses_unknown_names():
    t = es().traced(["std_init"])
    state = t.initialize(KEY)
    assert float(state.hparams["std_init"]) == 1.0
    smaller = set_hparams(state, {"std_init": 0.5})
    assert float(smaller.hparams["std_init"]) == 0.5
    assert smaller.hparams["std_init"].dtype == jnp.float32
    with pytest.raises(ValueError, match=r"does not trace 'std_int'.*'std_init'"):
        set_hparams(state, {"std_int": 0.1})
    with pytest.raises(TypeError, match="hparams dict"):
        set_hparams(object(), {"std_init": 0.1})
    # under jit and vmap, one value per member
    stacked = jax.tree.map(lambda x: jnp.stack([x, x]), state)
    out = jax.jit(jax.vmap(set_hparams, in_axes=(0, None)))(stacked, {"std_init": 2.0})
    assert out.hparams["std_init"].tolist() == [2.0, 2.0]
    per_member = set_hparams(stacked, {"std_init": jnp.array([0.1, 0.2])})
    assert per_member.hparams["std_init"].tolist() == pytest.approx([0.1, 0.2])


def test_traced_rejects_unknown_and_shape_names_before_compiling():
    _COMPILED.clear()
    with pytest.raises(ValueError, match=r"unknown hyperparameter 'std_int'.*'std_init'"):
        es().traced(["std_int"])
    with pytest.raises(ValueError, match="'popsize' changes array shapes"):
        es().traced(["popsize"])
    with pytest.raises(TypeError, match="list of hyperparameter names"):
        es().traced("std_init")
    assert not [n for n in _COMPILED if "loop" in n]


def open_es(sigma, lr, **kw):
    """Open_ES as `realax evolve --sigma --lr` builds it (the rate in the optimizer's state)."""
    import optax

    es_kws = {
        "std_schedule": optax.constant_schedule(sigma),
        "optimizer": optax.inject_hyperparams(optax.adam)(learning_rate=lr),
    }
    return es(strategy="Open_ES", popsize=16, es_kws=es_kws, **kw)


@pytest.mark.slow
def test_open_es_sigma_and_learning_rate_sweep_like_their_lone_runs():
    import optax

    base = open_es(0.1, 0.05)
    assert base.sweepable() == pytest.approx({"sigma": 0.1, "learning_rate": 0.05})
    # a plain optimizer keeps its rate in the closure: only sigma can be traced
    plain = es(strategy="Open_ES", popsize=16, es_kws={"optimizer": optax.adam(0.05)})
    assert set(plain.sweepable()) == {"sigma"}
    key = jax.random.split(KEY, 1)[0]
    # sigma: bit for bit the lone run built with that schedule
    result = sweep(base, {"sigma": [0.03, 0.3]}, KEY, seeds=1)
    for c, config in enumerate(result.configs):
        state, metrics = open_es(config["sigma"], 0.05).init_and_train(key)
        for name in result.curves:
            np.testing.assert_array_equal(result.curves[name][c, 0], metrics[name])
        member = result.state_of(c, 0)
        np.testing.assert_array_equal(member.es_state.mean, state.es_state.mean)
        # the stored std is the schedule's; the traced sigma is applied before each ask
        assert float(member.es_state.std) == pytest.approx(0.1)
    # learning_rate: a traced lone run is bit for bit the static one; vmapped over the
    # configurations, XLA fuses Adam's per-member rate differently (1 float32 ulp per step)
    traced = base.traced(["learning_rate"])
    state, metrics = traced.train(set_hparams(traced.initialize(key), {"learning_rate": 0.1}))
    _, static = open_es(0.1, 0.1).init_and_train(key)
    np.testing.assert_array_equal(metrics["best_fitness"], static["best_fitness"])
    result = sweep(base, {"learning_rate": [0.01, 0.1]}, KEY, seeds=1)
    for c, config in enumerate(result.configs):
        _, metrics = open_es(0.1, config["learning_rate"]).init_and_train(key)
        np.testing.assert_allclose(result.curves["best_fitness"][c, 0], metrics["best_fitness"],
                                   rtol=1e-5)
    assert result.curves["best_fitness"][0, 0, -1] != result.curves["best_fitness"][1, 0, -1]


# ----------------------------------------------------------------------------- sweep


@pytest.mark.slow
def test_sweep_members_equal_their_lone_runs_one_program_per_shape(capsys):
    space = {"std_init": [0.3, 1.0], "popsize": [8, 16]}
    result = sweep(es(), space, KEY, seeds=2)
    assert "2 shapes of popsize: one compiled program per shape" in capsys.readouterr().out
    assert isinstance(result, SweepResult)
    assert len(result.configs) == 4 and result.groups == [[0, 2], [1, 3]]
    assert result.curves["best_fitness"].shape == (4, 2, 12)
    keys = jax.random.split(KEY, 2)
    for c, s in ((1, 1), (2, 0)):  # one of each shape, one of each value, one of each seed
        config = result.configs[c]
        lone = es(popsize=config["popsize"], es_params={"std_init": config["std_init"]})
        state, metrics = lone.init_and_train(keys[s])
        for name in result.curves:
            np.testing.assert_array_equal(result.curves[name][c, s], metrics[name])
        member = result.state_of(c, s)
        np.testing.assert_array_equal(member.best_fitness, state.best_fitness)
        assert float(member.hparams["std_init"]) == np.float32(config["std_init"])


def test_result_table_ranking_and_files(tmp_path):
    result = sweep(es(train_steps=6), {"std_init": [1e-4, 1.0]}, KEY, seeds=2)
    rows = result.table()
    assert len(rows) == 4
    assert rows[0]["config"] == 0 and rows[0]["seed"] == 0 and rows[0]["std_init"] == 1e-4
    assert {"final_best_fitness", "best_best_fitness", "final_fitness_mean"} <= set(rows[0])
    # minimising: the best value is the lowest; a tiny std barely moves from the start
    assert result.maximize is False
    assert result.ranking() == [1, 0] and result.best_config == {"std_init": 1.0}
    assert np.all(result.best() <= result.final())
    csv_text = result.to_csv(tmp_path / "t.csv").read_text().splitlines()
    assert csv_text[0].startswith("config,std_init,seed,") and len(csv_text) == 5
    doc = json.loads(result.to_json(tmp_path / "t.json").read_text())
    assert doc["ranking"] == [1, 0] and len(doc["table"]) == 4


def test_random_search_is_reproducible_and_within_bounds():
    from realax.train._sweep_space import check_space, configurations

    space = {"std_init": ("log_uniform", 1e-3, 1.0), "lr_std_init": ("choice", [0.1, 0.2])}
    t = es(train_steps=2)
    checked = check_space(space, t.sweepable(), t.shape_settings(), "random")
    assert configurations(checked, "random", 5, 7) == configurations(checked, "random", 5, 7)
    a = sweep(t, space, KEY, method="random", num_samples=5)
    assert len(a.configs) == 5 and a.curves["fitness_mean"].shape == (5, 1, 2)
    assert all(1e-3 <= c["std_init"] <= 1.0 and c["lr_std_init"] in (0.1, 0.2) for c in a.configs)
    assert len({c["std_init"] for c in a.configs}) == 5


@pytest.mark.parametrize(
    ("space", "kw", "error", "match"),
    [
        ({"std_int": [0.1]}, {}, ValueError, r"unknown setting 'std_int'. Did you mean 'std_init'"),
        ({"std_init": ["big"]}, {}, TypeError, r"'std_init' is a traced float.*got 'big'"),
        ({"std_init": [True]}, {}, TypeError, r"'std_init' is a traced float"),
        ({"popsize": [8.5]}, {}, TypeError, r"'popsize' takes integers"),
        ({"std_init": []}, {}, ValueError, r"space\['std_init'\] is empty"),
        ({}, {}, ValueError, "non-empty dict"),
        ({"popsize": ("uniform", 4, 16)}, {"method": "random", "num_samples": 2}, ValueError,
         "'popsize' changes array shapes.*cannot be drawn from a continuous"),
        ({"std_init": ("uniform", 0.1, 1.0)}, {}, ValueError, "only random search"),
        ({"std_init": ("uniform", 1.0, 0.1)}, {"method": "random", "num_samples": 2},
         ValueError, "low < high"),
        ({"std_init": [0.1]}, {"method": "random"}, ValueError, "needs num_samples"),
        ({"std_init": [0.1]}, {"num_samples": 3}, ValueError, "num_samples is for"),
        ({"std_init": [0.1]}, {"method": "bayes"}, ValueError, "'grid' or 'random'"),
        ({"n_devices": [1, 2]}, {}, ValueError, "n_devices cannot be swept"),
        ({"std_init": 0.1}, {}, TypeError, r"must be a list of values.*\[0.1\]"),
        ({"std_init": [0.1, 0.2, 0.3]}, {"seeds": 1, "n_devices": 64}, ValueError,
         "only 1 devices exist"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_compiling(space, kw, error, match):
    _COMPILED.clear()
    with pytest.raises(error, match=match):
        sweep(es(), space, KEY, **kw)
    assert not [n for n in _COMPILED if "loop" in n or "init" in n]


def test_shape_values_that_cannot_be_grouped():
    from realax.train._sweep_space import group_by_shape

    with pytest.raises(TypeError, match="cannot be grouped.*use tuples"):
        group_by_shape([{"hidden_dims": [32]}], ["hidden_dims"])
