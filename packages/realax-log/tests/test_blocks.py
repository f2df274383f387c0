"""Rows handed over in blocks (open_block / log_to_block / close_block) are the rows of a
per-step ``log``; checkpoints are packed (realax-log/2) and those orbax wrote (realax-log/1)
still restore."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import realax.log as rlog
from jax import lax
from realax.log import _blocks, _serialize


def _block_train(logger, state, n, step_fn, *, seeds=False, fori=False):
    """The toy loop of conftest.train, carrying the logger's block beside the state."""

    def run(state):
        like = jax.eval_shape(lambda s: step_fn(s)[1], state)
        block = logger.open_block(state, like)

        def step(carry):
            s, b = carry
            s, metrics = step_fn(s)
            return s, logger.log_to_block(b, s, metrics)

        if fori:
            state, block = lax.fori_loop(0, n, lambda _, c: step(c), (state, block))
        else:
            state, block = lax.scan(lambda c, _: (step(c), None), (state, block), None, n)[0]
        logger.close_block(block)
        return state

    return jax.jit(jax.vmap(run) if seeds else run)(state)


def _logger(path, **kw):
    return rlog.Logger(wandb_log=False, metrics_fn=rlog.default_grad_metrics, ckpt_dir=path, **kw)


@pytest.mark.parametrize(
    ("block", "seeds", "fori"), [(3, False, False), (None, False, True), (2, True, False)]
)
def test_blocks_write_the_rows_and_checkpoints_of_per_step_logging(
    tmp_path, toy, block, seeds, fori
):
    ToyState, toy_step = toy
    init = ToyState.seeds(2) if seeds else ToyState.create(key=jax.random.key(0))
    per_step = _logger(tmp_path / "step", ckpt_freq=5)
    ref = ToyState.train(per_step, init, 13, seeds=seeds)
    per_step.on_run_end(ref)
    per_step.finish()
    blocks = _logger(tmp_path / "block", ckpt_freq=5, log_block=block)
    final = _block_train(blocks, init, 13, toy_step, seeds=seeds, fori=fori)
    blocks.on_run_end(final)
    blocks.finish()
    a, b = (tmp_path / "step" / "metrics.jsonl"), (tmp_path / "block" / "metrics.jsonl")
    assert b.read_bytes() == a.read_bytes() and len(rlog.read_metrics(b.parent)) == 13 * (
        2 if seeds else 1
    )
    assert rlog.all_steps(b.parent) == rlog.all_steps(a.parent) == [5, 10, 13]
    for s in (10, 13):
        x, y = rlog.restore(a.parent, like=init, step=s), rlog.restore(b.parent, like=init, step=s)
        for u, v in zip(jax.tree.leaves(x), jax.tree.leaves(y), strict=True):
            if jax.dtypes.issubdtype(u.dtype, jax.dtypes.prng_key):
                u, v = jax.random.key_data(u), jax.random.key_data(v)
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v), strict=True)
    meta = rlog.read_metadata(b.parent, 10)
    assert meta["format"] == "realax-log/2" and meta["seed_dims"] == (1 if seeds else 0)
    assert {g["dtype"] for g in meta["groups"]} == {"int32", "uint32", "float32", "bfloat16"}


def test_block_clock_grows_towards_the_target_and_stays_within_capacity():
    fixed = _blocks.BlockClock(7)
    assert [fixed.next(n, 256) for n in (1, 7, 7)] == [7, 7, 7]
    assert fixed.next(7, 5) == 5
    auto = _blocks.BlockClock(None)
    assert auto.next(1, 256) == 4  # no timing yet: grow 4x
    sizes = [auto.next(n, 256) for n in (4, 16, 64)]  # instant steps: 4x per block, capped
    assert sizes == [16, 64, 256]
    assert _blocks.capacity(None, 8) == 256 and _blocks.capacity(None, 1 << 19) == 2
    assert _blocks.capacity(5, 8) == 5


def test_log_block_must_be_a_positive_int():
    with pytest.raises(ValueError, match=r"log_block must be a positive int or None .*log_block=0"):
        rlog.Logger(wandb_log=False, metrics_fn=rlog.default_grad_metrics, log_block=0)


def _save_orbax_layout(directory, step, tree):
    """A checkpoint as realax-log 0.1 wrote it: one orbax item per leaf, a JSON record."""
    import orbax.checkpoint as ocp
    from realax.log import _checkpoint

    leaves, paths, impls = _serialize.split_keys(tree)
    arrays = [np.asarray(x) for x in leaves]
    described = [
        {"path": p, "shape": list(a.shape), "dtype": a.dtype.name, "key_impl": k,
         "crc32": _serialize.crc32(a)}
        for a, p, k in zip(arrays, paths, impls, strict=True)
    ]  # fmt: skip
    meta = {"format": "realax-log/1", "step": step, "seed_dims": 0, "leaves": described}
    items = {_serialize.leaf_name(i): a for i, a in enumerate(arrays)}
    with _checkpoint.manager(directory, max_to_keep=None) as mngr:
        mngr.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(items), meta=ocp.args.JsonSave(meta)
            ),
        )
        mngr.wait_until_finished()


def test_a_checkpoint_in_the_orbax_layout_of_earlier_versions_restores(tmp_path, toy):
    ToyState, toy_step = toy
    init = ToyState.create(key=jax.random.key(1))
    at4 = ToyState.train(None, init, 4)
    _save_orbax_layout(tmp_path, 4, at4)
    assert rlog.all_steps(tmp_path) == [4]
    restored = rlog.restore(tmp_path, like=init)
    for u, v in zip(jax.tree.leaves(restored), jax.tree.leaves(at4), strict=True):
        if jax.dtypes.issubdtype(u.dtype, jax.dtypes.prng_key):
            assert jax.random.key_impl(u) == jax.random.key_impl(v)
            u, v = jax.random.key_data(u), jax.random.key_data(v)
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v), strict=True)
    # a run resumed from it writes packed checkpoints beside the old one
    logger = _logger(tmp_path, ckpt_freq=4, resume=True)
    logger.on_run_end(_block_train(logger, restored, 4, toy_step))
    logger.finish()
    assert rlog.all_steps(tmp_path) == [4, 8]
    assert rlog.read_metadata(tmp_path, 8)["format"] == "realax-log/2"
    assert int(rlog.restore(tmp_path, like=init).step) == 8


def test_pack_and_unpack_are_inverse():
    leaves = [np.arange(6, dtype=np.float32).reshape(2, 3), np.int32(4), np.ones(2, np.float32)]
    records, groups = _serialize.manifest(leaves)
    assert groups == ["float32", "int32"] and [r["offset"] for r in records] == [0, 0, 6]
    packed = _serialize.pack(leaves, records, groups)
    assert [a.shape for a in packed] == [(8,), (1,)]
    back = _serialize.unpack(packed, records, groups)
    for a, b in zip(back, leaves, strict=True):
        np.testing.assert_array_equal(a, b)
    traced = jax.jit(lambda *xs: _serialize.pack(list(xs), records, groups, jnp))(*leaves)
    np.testing.assert_array_equal(traced[0], packed[0])
