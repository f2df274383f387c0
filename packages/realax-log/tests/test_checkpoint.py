"""Orbax checkpoints: bit-identical restore (typed keys too), damaged checkpoints, max_to_keep."""

import jax
import numpy as np
import pytest
import realax.log as rlog


def _assert_bit_identical(a, b):
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert x.dtype == y.dtype
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert jax.random.key_impl(x) == jax.random.key_impl(y)
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), strict=True)


def _run(toy_step, logger, state, n):
    ToyState = type(state)
    return ToyState.train(logger, state, n, step_fn=toy_step)


def _logged_run(tmp_path, toy, n=12, ckpt_freq=4, impl=None, **kwargs):
    ToyState, toy_step = toy
    init = ToyState.create(key=jax.random.key(3, impl=impl))
    logger = rlog.Logger(
        wandb_log=False,
        metrics_fn=rlog.default_grad_metrics,
        ckpt_dir=tmp_path,
        ckpt_freq=ckpt_freq,
        **kwargs,
    )
    final = _run(toy_step, logger, init, n)
    logger.finish()
    return init, final


@pytest.mark.parametrize("impl", ["threefry2x32", "rbg"])
def test_restore_is_bit_identical_including_typed_keys(tmp_path, toy, impl):
    init, final = _logged_run(tmp_path, toy, n=12, ckpt_freq=4, impl=impl)
    restored = rlog.restore(tmp_path, like=init)
    _assert_bit_identical(restored, final)  # 12 is a checkpoint step: latest == final
    # An older step, compared with the state recomputed without any logger.
    at8 = rlog.restore(tmp_path, like=init, step=8)
    _assert_bit_identical(at8, _run(toy[1], None, init, 8))
    # `like` may be abstract (jax.eval_shape) instead of a real state.
    abstract = jax.eval_shape(lambda: init)
    _assert_bit_identical(rlog.restore(tmp_path, like=abstract), final)


def test_restored_run_continues_exactly_like_an_uninterrupted_run(tmp_path, toy):
    ToyState, toy_step = toy
    init, _ = _logged_run(tmp_path, toy, n=8, ckpt_freq=4)
    resumed = _run(toy_step, None, rlog.restore(tmp_path, like=init), 12)
    uninterrupted = _run(toy_step, None, init, 20)
    _assert_bit_identical(resumed, uninterrupted)


def test_max_to_keep_keeps_only_the_newest(tmp_path, toy):
    _logged_run(tmp_path, toy, n=20, ckpt_freq=4, max_to_keep=2)
    assert rlog.all_steps(tmp_path) == [16, 20]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.isdigit()) == ["16", "20"]


def _files(step_dir):
    return [p for p in step_dir.rglob("*") if p.is_file() and p.stat().st_size > 0]


def test_corrupted_latest_checkpoint_is_skipped_with_a_warning(tmp_path, toy):
    init, _ = _logged_run(tmp_path, toy, n=12, ckpt_freq=4)
    expected = rlog.restore(tmp_path, like=init, step=8)
    for f in _files(tmp_path / "12" / "state"):  # flip every byte of the array files
        data = bytearray(f.read_bytes())
        f.write_bytes(bytes(b ^ 0xFF for b in data))
    with pytest.warns(RuntimeWarning, match="checkpoint step 12 .* incomplete or corrupted"):
        restored = rlog.restore(tmp_path, like=init)
    _assert_bit_identical(restored, expected)


def test_half_written_latest_checkpoint_is_skipped(tmp_path, toy):
    init, _ = _logged_run(tmp_path, toy, n=12, ckpt_freq=4)
    expected = rlog.restore(tmp_path, like=init, step=8)
    for f in _files(tmp_path / "12" / "state"):  # truncate: as if the writer died mid-way
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 3])
    (tmp_path / "12" / "meta" / "metadata").unlink()
    with pytest.warns(RuntimeWarning, match="checkpoint step 12"):
        restored = rlog.restore(tmp_path, like=init)
    _assert_bit_identical(restored, expected)
    with pytest.raises(FileNotFoundError, match="step 12 .* is damaged"):
        rlog.restore(tmp_path, like=init, step=12)


def test_mismatching_like_raises_value_error_naming_the_leaves(tmp_path, toy):
    ToyState, _ = toy
    _logged_run(tmp_path, toy, n=4, ckpt_freq=4)
    other = ToyState.create(key=jax.random.key(0), dim=5)
    with pytest.raises(
        ValueError, match=r"leaf \.params\['w'\] is float32\(3,\) in the checkpoint"
    ):
        rlog.restore(tmp_path, like=other)
    plain_key = ToyState.create(key=jax.random.PRNGKey(0))  # raw uint32 key instead of typed
    with pytest.raises(ValueError, match=r"leaf \.key is a typed PRNG key in the checkpoint"):
        rlog.restore(tmp_path, like=plain_key)
    missing = ToyState.create(key=jax.random.key(0)).replace(data=None)
    with pytest.raises(ValueError, match=r"leaf \.data\['mean'\] of the checkpoint is not in"):
        rlog.restore(tmp_path, like=missing)


def test_no_checkpoint_errors(tmp_path, toy):
    ToyState, _ = toy
    like = ToyState.create(key=jax.random.key(0))
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        rlog.restore(tmp_path / "nope", like=like)
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        rlog.restore(tmp_path, like=like)
    assert rlog.latest_step(tmp_path) is None


def test_resumed_run_overwrites_steps_saved_by_the_interrupted_attempt(tmp_path, toy):
    ToyState, toy_step = toy
    init, _ = _logged_run(tmp_path, toy, n=12, ckpt_freq=4)
    at8 = rlog.restore(tmp_path, like=init, step=8)
    # Pretend step 12 came from a different (e.g. crashed, differently seeded) attempt:
    # resuming from 8 with a perturbed key re-saves step 12 with the new content.
    perturbed = at8.replace(key=jax.random.key(99))
    logger = rlog.Logger(
        wandb_log=False,
        metrics_fn=rlog.default_grad_metrics,
        ckpt_dir=tmp_path,
        ckpt_freq=4,
        resume=True,
    )
    new_final = _run(toy_step, logger, perturbed, 4)
    logger.finish()
    assert rlog.all_steps(tmp_path) == [4, 8, 12]
    _assert_bit_identical(rlog.restore(tmp_path, like=init), new_final)
    meta = rlog.read_metadata(tmp_path, 12)
    assert {leaf["path"] for leaf in meta["leaves"]} >= {".step", ".key", ".params['w']"}
    assert next(leaf for leaf in meta["leaves"] if leaf["path"] == ".key")["key_impl"]
