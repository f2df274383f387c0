"""What a run leaves on disk: strict-JSON metrics (NaN -> null), the final step checkpointed
by ``on_run_end``, and a resumed run whose metrics file is byte-identical to one that was never
stopped (rows after the newest checkpoint and half-written checkpoints are dropped)."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import realax.log as rlog


def _strict_rows(path):
    def no_constants(name):
        raise AssertionError(f"non-JSON constant {name} in {path}")

    text = (path / "metrics.jsonl").read_text()
    return [json.loads(line, parse_constant=no_constants) for line in text.splitlines()]


def _logger(tmp_path, **kwargs):
    kwargs.setdefault("ckpt_dir", tmp_path)
    return rlog.Logger(wandb_log=False, metrics_fn=rlog.default_grad_metrics, **kwargs)


def _run(toy_step, logger, state, n, seeds=False):
    return type(state).train(logger, state, n, seeds=seeds, step_fn=toy_step)


def test_nan_and_inf_metrics_are_written_as_null_and_read_back_as_nan(tmp_path, toy):
    ToyState, toy_step = toy

    def with_gaps(state):  # like an episode return: only defined on some steps
        state, m = toy_step(state)
        ret = jnp.where(state.step % 3 == 0, m["loss"], jnp.nan)
        return state, {**m, "episode_return": ret, "inf": jnp.float32(jnp.inf)}

    logger = _logger(tmp_path, ckpt_freq=100)
    _run(with_gaps, logger, ToyState.create(key=jax.random.key(0)), 7)
    logger.finish()
    rows = _strict_rows(tmp_path)  # parses with Python's strict JSON: no NaN / Infinity
    assert [r["episode_return"] is None for r in rows] == [s % 3 != 0 for s in range(1, 8)]
    assert all(r["inf"] is None for r in rows)
    read = rlog.read_metrics(tmp_path)
    assert [math.isnan(r["episode_return"]) for r in read] == [s % 3 != 0 for s in range(1, 8)]
    assert read[2]["episode_return"] == rows[2]["episode_return"] == read[2]["loss"]
    assert read == rlog.read_metrics(tmp_path)  # rows with NaN compare equal, as before


@pytest.mark.parametrize(("n", "freq", "steps"), [(48, 20, [20, 40, 48]), (7, 20, [7])])
def test_on_run_end_checkpoints_the_last_step(tmp_path, toy, n, freq, steps):
    ToyState, toy_step = toy
    logger = _logger(tmp_path, ckpt_freq=freq)
    final = _run(toy_step, logger, ToyState.create(key=jax.random.key(0)), n)
    logger.on_run_end(final)  # what the trainers' loops do after a compiled run
    assert rlog.all_steps(tmp_path) == steps  # on disk already, before finish()
    assert [r["step"] for r in rlog.read_metrics(tmp_path)] == list(range(1, n + 1))
    restored = rlog.restore(tmp_path, like=final)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(final), strict=True):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # idempotent and cheap: the step is saved, nothing is written again
    stamp = (tmp_path / str(n)).stat().st_mtime_ns
    logger.on_run_end(final)
    assert (tmp_path / str(n)).stat().st_mtime_ns == stamp
    logger.finish()
    assert rlog.all_steps(tmp_path) == steps


def test_on_run_end_saves_a_vmapped_final_state_whole(tmp_path, toy):
    ToyState, toy_step = toy
    logger = _logger(tmp_path, ckpt_freq=5)
    final = _run(toy_step, logger, ToyState.seeds(3), 7, True)
    logger.on_run_end(final)
    logger.on_run_end(final)
    logger.finish()
    assert rlog.all_steps(tmp_path) == [5, 7]
    assert rlog.read_metadata(tmp_path, 7)["seed_dims"] == 1
    restored = rlog.restore(tmp_path, like=final)
    np.testing.assert_array_equal(restored.step, np.full(3, 7))
    np.testing.assert_array_equal(restored.params["w"], final.params["w"])


def test_on_run_end_respects_no_checkpoints(tmp_path, toy):
    ToyState, toy_step = toy
    logger = rlog.Logger(
        False, lambda s, d: ({"loss": d["loss"]}, None, s.step), ckpt_dir=tmp_path, ckpt_freq=2
    )
    final = _run(toy_step, logger, ToyState.create(key=jax.random.key(0)), 3)
    logger.on_run_end(final)
    logger.finish()
    assert rlog.all_steps(tmp_path) == []
    no_dir = rlog.Logger(False, rlog.default_grad_metrics, log_dir=tmp_path / "log")
    no_dir.on_run_end(_run(toy_step, no_dir, ToyState.create(key=jax.random.key(0)), 2))
    no_dir.finish()
    assert [r["step"] for r in rlog.read_metrics(tmp_path / "log")] == [1, 2]


def test_resume_drops_rows_after_the_newest_checkpoint_and_half_written_ones(tmp_path, toy):
    ToyState, toy_step = toy
    init = ToyState.create(key=jax.random.key(0))
    ref = _logger(tmp_path / "ref", ckpt_freq=4)
    ref.on_run_end(_run(toy_step, ref, init, 14))
    ref.finish()

    run = tmp_path / "run"  # an attempt "killed" after step 10: checkpoints 4 and 8 only
    killed = _logger(run, ckpt_freq=4)
    _run(toy_step, killed, init, 10)
    killed.finish()
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 11, "loss": 0.')  # cut short by the kill
    (run / "12.orbax-checkpoint-tmp-1700000000").mkdir()  # a save cut short
    assert rlog.all_steps(run) == [4, 8]

    resumed = _logger(run, ckpt_freq=4, resume=True)
    assert [r["step"] for r in rlog.read_metrics(run)] == list(range(1, 9))
    assert not list(run.glob("*orbax-checkpoint-tmp*"))
    state = rlog.restore(run, like=init)
    resumed.on_run_end(_run(toy_step, resumed, state, 14 - int(state.step)))
    resumed.finish()
    assert (run / "metrics.jsonl").read_bytes() == (tmp_path / "ref" / "metrics.jsonl").read_bytes()
    assert rlog.all_steps(run) == rlog.all_steps(tmp_path / "ref") == [4, 8, 12, 14]


def test_resume_from_an_older_checkpoint_rewrites_the_later_rows(tmp_path, toy):
    # restore() falls back past a damaged newest checkpoint: the rows after the step the
    # run really resumed from are replaced by the resumed run's, each step once
    ToyState, toy_step = toy
    init = ToyState.create(key=jax.random.key(0))
    first = _logger(tmp_path, ckpt_freq=4)
    first.on_run_end(_run(toy_step, first, init, 12))
    first.finish()
    reference = (tmp_path / "metrics.jsonl").read_bytes()
    resumed = _logger(tmp_path, ckpt_freq=4, resume=True)
    state = rlog.restore(tmp_path, like=init, step=4)
    resumed.on_run_end(_run(toy_step, resumed, state, 8))
    resumed.finish()
    assert (tmp_path / "metrics.jsonl").read_bytes() == reference
