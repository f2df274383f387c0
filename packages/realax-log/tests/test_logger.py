"""Logger inside jit / lax.scan / lax.fori_loop / vmap: rows, order, checkpoint steps."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import realax.log as rlog
from jax import lax


def _rows(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def _eager_losses(ToyState, toy_step, n, seed=0):
    state = ToyState.create(key=jax.random.key(seed))
    losses = []
    for _ in range(n):
        state, m = toy_step(state)
        losses.append(float(m["loss"]))
    return state, losses


def test_scan_logs_every_step_in_order_and_checkpoints_every_ckpt_freq(tmp_path, toy):
    ToyState, toy_step = toy
    logger = rlog.Logger(
        wandb_log=False, metrics_fn=rlog.default_grad_metrics, ckpt_dir=tmp_path, ckpt_freq=4
    )

    final = ToyState.train(logger, ToyState.create(key=jax.random.key(0)), 13)  # jit + scan
    logger.finish()

    rows = _rows(tmp_path)
    assert [r["step"] for r in rows] == list(range(1, 14))
    _, losses = _eager_losses(ToyState, toy_step, 13)
    np.testing.assert_allclose([r["loss"] for r in rows], losses, rtol=1e-6)
    assert all("vec" not in r for r in rows)  # non-scalar metrics are not logged by default
    assert rlog.all_steps(tmp_path) == [4, 8, 12]
    assert rlog.latest_step(tmp_path) == 12
    restored = rlog.restore(tmp_path, like=final)
    assert int(restored.step) == 12


def test_fori_loop_and_eager_calls(tmp_path, toy):
    ToyState, toy_step = toy
    logger = rlog.Logger(
        wandb_log=False, metrics_fn=rlog.default_grad_metrics, ckpt_file=tmp_path, ckpt_freq=5
    )

    def body(i, state):
        del i
        state, metrics = toy_step(state)
        logger.log(state, metrics)
        return state

    state = jax.jit(lambda s: lax.fori_loop(0, 10, body, s))(ToyState.create(key=jax.random.key(0)))
    # Continue eagerly, outside any jit: the same callbacks run immediately.
    for _ in range(2):
        state = body(0, state)
    logger.finish()
    assert [r["step"] for r in _rows(tmp_path)] == list(range(1, 13))
    assert rlog.all_steps(tmp_path) == [5, 10]


def test_jitted_step_traces_once_and_log_calls_stay_ordered(tmp_path, toy):
    ToyState, toy_step = toy
    logger = rlog.Logger(wandb_log=False, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state):
        state, metrics = toy_step(state)
        logger.log(state, metrics)
        return state

    state = ToyState.create(key=jax.random.key(1))
    for _ in range(30):  # dispatched asynchronously; callbacks must still arrive in order
        state = step(state)
    logger.finish()
    assert [r["step"] for r in _rows(tmp_path)] == list(range(1, 31))
    assert not list(tmp_path.glob("[0-9]*"))  # no ckpt_dir -> no checkpoints


def test_vmapped_seeds_log_per_seed_and_checkpoint_the_batch(tmp_path, toy):
    ToyState, toy_step = toy
    logger = rlog.Logger(
        wandb_log=False, metrics_fn=rlog.default_grad_metrics, ckpt_dir=tmp_path, ckpt_freq=3
    )

    seeds = 4
    states = ToyState.seeds(seeds)
    final = ToyState.train(logger, states, 7, seeds=True)  # jit(vmap(scan))
    logger.finish()

    rows = _rows(tmp_path)
    assert len(rows) == 7 * seeds
    assert [(r["step"], r["seed"]) for r in rows] == [
        (s, i) for s in range(1, 8) for i in range(seeds)
    ]
    for i in range(seeds):
        single = jax.tree_util.tree_map(lambda x, i=i: x[i], states)
        losses = []
        for _ in range(7):
            single, m = toy_step(single)
            losses.append(float(m["loss"]))
        got = [r["loss"] for r in rows if r["seed"] == i]
        np.testing.assert_allclose(got, losses, rtol=1e-5)
    assert rlog.all_steps(tmp_path) == [3, 6]
    restored = rlog.restore(tmp_path, like=final)
    assert restored.params["w"].shape == (seeds, 3)
    np.testing.assert_array_equal(restored.step, np.full(seeds, 6))


def test_host_log_transform_and_custom_metrics_fn(tmp_path, toy):
    ToyState, toy_step = toy

    def metrics_fn(state, data):
        return {"loss": data["loss"], "w0": state.params["w"][0]}, None, state.step

    def transform(values):
        return {**values, "neg_loss": -values["loss"]}

    logger = rlog.Logger(
        wandb_log=False,
        metrics_fn=metrics_fn,
        host_log_transform=transform,
        ckpt_dir=tmp_path,
        ckpt_freq=1,
    )

    @jax.jit
    def step(state):
        state, metrics = toy_step(state)
        logger.log(state, metrics)
        return state

    state = ToyState.create(key=jax.random.key(0))
    for _ in range(3):
        state = step(state)
    logger.finish()
    rows = _rows(tmp_path)
    assert [r["neg_loss"] for r in rows] == [-r["loss"] for r in rows]
    assert all(set(r) == {"step", "loss", "w0", "neg_loss"} for r in rows)
    assert rlog.all_steps(tmp_path) == []  # ckpt_data=None: nothing to checkpoint


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"ckpt_freq": 0}, ValueError, "ckpt_freq must be a positive int"),
        ({"ckpt_freq": 2.5}, ValueError, "ckpt_freq must be a positive int"),
        ({"max_to_keep": 0}, ValueError, "max_to_keep must be a positive int or None"),
        ({"metrics_fn": "default"}, TypeError, "metrics_fn must be a function"),
        ({"ckpt_dir": "a", "ckpt_file": "b"}, ValueError, "ckpt_file is an alias of ckpt_dir"),
        ({"mode": "cloud"}, ValueError, "mode must be one of"),
    ],
)
def test_bad_constructor_arguments_are_named(kwargs, exc, match):
    args = {"wandb_log": False, "metrics_fn": rlog.default_es_metrics, **kwargs}
    with pytest.raises(exc, match=match):
        rlog.Logger(**args)


def test_bad_metrics_fn_output_fails_at_trace_time(tmp_path, toy):
    ToyState, toy_step = toy
    state = ToyState.create(key=jax.random.key(0))

    def two_outputs(state, data):
        return data, state

    def float_step(state, data):
        return data, state, jnp.float32(1.0)

    for fn, match in [(two_outputs, "must return a tuple"), (float_step, "integer scalar")]:
        logger = rlog.Logger(wandb_log=False, metrics_fn=fn, log_dir=tmp_path)
        with pytest.raises(TypeError, match=match):
            jax.jit(lambda s, lg=logger: lg.log(*toy_step(s)))(state)
    with pytest.raises(TypeError, match="trainer state with a `step` field"):
        rlog.default_es_metrics({"not": "a state"}, {"best_fitness": jnp.float32(0)})


def test_wandb_log_without_init_warns_once_and_still_writes_the_file(tmp_path, toy):
    ToyState, toy_step = toy
    logger = rlog.Logger(wandb_log=True, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path)
    state = ToyState.create(key=jax.random.key(0))
    with pytest.warns(RuntimeWarning, match="Logger.init") as record:
        for _ in range(3):
            state, m = toy_step(state)
            logger.log(state, m)
        logger.finish()
    assert sum("Logger.init" in str(w.message) for w in record) == 1
    assert [r["step"] for r in _rows(tmp_path)] == [1, 2, 3]
