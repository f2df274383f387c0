"""replicate / unreplicate / shard_batch on the local device(s), including property tests."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from realax.agents import replicate, shard_batch, unreplicate


def test_shard_batch_splits_rows_in_order():
    batch = {"observations": np.arange(24.0).reshape(12, 2), "actions": jnp.arange(12)}
    sharded = shard_batch(batch, n_devices=3)
    assert sharded["observations"].shape == (3, 4, 2)
    assert isinstance(sharded["observations"], np.ndarray)
    assert sharded["actions"].shape == (3, 4)
    np.testing.assert_array_equal(sharded["actions"][1], np.arange(4, 8))


def test_shard_batch_default_uses_local_device_count():
    n = jax.local_device_count()
    out = shard_batch({"x": jnp.zeros((2 * n, 3))})
    assert out["x"].shape == (n, 2, 3)


def test_shard_batch_indivisible_names_both_numbers():
    with pytest.raises(ValueError, match=r"leading size 10 .*n_devices=4.*8 or 12"):
        shard_batch({"observations": jnp.zeros((10, 3))}, n_devices=4)


def test_shard_batch_rejects_scalars_and_bad_counts():
    with pytest.raises(ValueError, match="scalar"):
        shard_batch({"discount": jnp.float32(0.9)}, n_devices=1)
    with pytest.raises(ValueError, match="n_devices must be a positive integer"):
        shard_batch({"x": jnp.zeros(4)}, n_devices=0)


def test_replicate_handles_typed_keys_and_scalars():
    tree = {"key": jax.random.key(3), "step": 0, "w": np.ones((2, 2), np.float32)}
    rep = replicate(tree)
    n = jax.local_device_count()
    assert rep["w"].shape == (n, 2, 2)
    assert rep["step"].shape == (n,)
    back = unreplicate(rep)
    assert jax.random.key_data(back["key"]).tolist() == jax.random.key_data(tree["key"]).tolist()
    chex.assert_trees_all_equal(back["w"], tree["w"])


_leaf_shapes = st.lists(st.integers(0, 3), min_size=0, max_size=2).map(tuple)


@settings(max_examples=40, deadline=None)
@given(
    n_devices=st.integers(1, 6),
    per_device=st.integers(1, 5),
    trailing=st.lists(_leaf_shapes, min_size=1, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_shard_batch_round_trip_property(n_devices, per_device, trailing, seed):
    rng = np.random.default_rng(seed)
    size = n_devices * per_device
    batch = {f"leaf{i}": rng.normal(size=(size, *shape)) for i, shape in enumerate(trailing)}
    sharded = shard_batch(batch, n_devices=n_devices)
    for name, leaf in batch.items():
        assert sharded[name].shape == (n_devices, per_device, *leaf.shape[1:])
        # concatenating the device shards gives the batch back, in order
        np.testing.assert_array_equal(np.concatenate(list(sharded[name]), axis=0), leaf)


@settings(max_examples=20, deadline=None)
@given(
    size=st.integers(1, 40),
    n_devices=st.integers(2, 7),
)
def test_shard_batch_raises_iff_indivisible(size, n_devices):
    batch = {"x": np.zeros((size, 2))}
    if size % n_devices:
        with pytest.raises(ValueError, match=f"leading size {size}"):
            shard_batch(batch, n_devices=n_devices)
    else:
        assert shard_batch(batch, n_devices=n_devices)["x"].shape[:2] == (
            n_devices,
            size // n_devices,
        )


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=6),
    as_int=st.booleans(),
)
def test_replicate_unreplicate_round_trip_property(values, as_int):
    dtype = np.int32 if as_int else np.float32
    tree = {"a": np.asarray(values, dtype=dtype), "b": (np.asarray(values[0], dtype=dtype),)}
    rep = replicate(tree)
    n = jax.local_device_count()
    for leaf, orig in zip(jax.tree.leaves(rep), jax.tree.leaves(tree), strict=True):
        assert leaf.shape == (n, *orig.shape)
        assert leaf.dtype == orig.dtype
        for i in range(n):  # every device holds the same copy
            np.testing.assert_array_equal(np.asarray(leaf[i]), orig)
    chex.assert_trees_all_equal(unreplicate(rep), jax.tree.map(jnp.asarray, tree))
