"""realax.train.rl.ReplayBuffer: circular writes, uniform sampling of filled rows, pytree use."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realax.train.rl import ReplayBuffer


def _example():
    return {
        "obs": jnp.zeros(2, jnp.float32),
        "action": jnp.zeros((), jnp.int32),
        "mask": jnp.zeros((), jnp.float32),
    }


def _rows(start, n):
    ids = jnp.arange(start, start + n)
    return {
        "obs": jnp.stack([ids, -ids], axis=1).astype(jnp.float32),
        "action": ids.astype(jnp.int32),
        "mask": jnp.ones(n),
    }


def test_create_is_empty_with_the_example_shapes_and_dtypes():
    buf = ReplayBuffer.create(_example(), capacity=5)
    assert buf.capacity == 5
    assert int(buf.size) == 0 and int(buf.pos) == 0
    assert buf.data["obs"].shape == (5, 2) and buf.data["obs"].dtype == jnp.float32
    assert buf.data["action"].shape == (5,) and buf.data["action"].dtype == jnp.int32


def test_add_wraps_around_and_overwrites_the_oldest_rows():
    buf = ReplayBuffer.create(_example(), capacity=5)
    buf = buf.add(_rows(0, 3))
    assert (int(buf.size), int(buf.pos)) == (3, 3)
    buf = buf.add(_rows(3, 3))  # rows 3, 4 fill the end, row 5 overwrites row 0
    assert (int(buf.size), int(buf.pos)) == (5, 1)
    np.testing.assert_array_equal(buf.data["action"], [5, 1, 2, 3, 4])
    np.testing.assert_array_equal(buf.data["obs"][:, 1], -np.array([5, 1, 2, 3, 4]))
    buf = buf.add(_rows(6, 4))
    assert (int(buf.size), int(buf.pos)) == (5, 0)
    np.testing.assert_array_equal(buf.data["action"], [5, 6, 7, 8, 9])


def test_sample_draws_only_filled_rows_uniformly():
    buf = ReplayBuffer.create(_example(), capacity=100).add(_rows(10, 4))
    batch = buf.sample(jax.random.key(0), 4000)
    assert batch["obs"].shape == (4000, 2) and batch["action"].shape == (4000,)
    values, counts = np.unique(np.asarray(batch["action"]), return_counts=True)
    np.testing.assert_array_equal(values, [10, 11, 12, 13])
    assert counts.min() > 850  # ~1000 each
    # rows stay whole: obs[:, 1] == -action
    np.testing.assert_array_equal(batch["obs"][:, 1], -batch["action"].astype(jnp.float32))


def test_buffer_jits_and_vmaps_as_a_pytree():
    @jax.jit
    def fill(buf, start):
        def body(b, i):
            return b.add(_rows(0, 1) | {"action": i[None].astype(jnp.int32)}), None

        return jax.lax.scan(body, buf, start + jnp.arange(7))[0]

    buf = ReplayBuffer.create(_example(), capacity=4)
    bufs = jax.vmap(fill, (None, 0))(buf, jnp.array([0, 100]))
    np.testing.assert_array_equal(bufs.data["action"], [[4, 5, 6, 3], [104, 105, 106, 103]])
    np.testing.assert_array_equal(bufs.size, [4, 4])


def test_bad_capacity_and_oversized_batches_are_rejected():
    with pytest.raises(ValueError, match="capacity must be a positive int"):
        ReplayBuffer.create(_example(), capacity=0)
    buf = ReplayBuffer.create(_example(), capacity=2)
    with pytest.raises(ValueError, match="3 transitions at once but the capacity is 2"):
        buf.add(_rows(0, 3))


def test_buffer_of_transitions_samples_transitions_for_the_agents():
    from realax.agents import DQN, Transition

    example = Transition(
        obs=jnp.zeros(4),
        actions=jnp.zeros((), jnp.int32),
        rewards=jnp.zeros(()),
        next_obs=jnp.zeros(4),
        terminated=jnp.zeros((), bool),
    )
    buf = ReplayBuffer.create(example, capacity=8)
    assert buf.data.terminated.dtype == jnp.bool_ and buf.data.obs.shape == (8, 4)
    ids = jnp.arange(6.0)
    rows = Transition(
        obs=jnp.tile(ids[:, None], (1, 4)),
        actions=(jnp.arange(6) % 2).astype(jnp.int32),
        rewards=ids,
        next_obs=jnp.tile(ids[:, None] + 1, (1, 4)),
        terminated=jnp.arange(6) == 5,
    )
    batch = buf.add(rows).sample(jax.random.key(0), 16)
    assert isinstance(batch, Transition)
    np.testing.assert_array_equal(batch.next_obs[:, 0], batch.obs[:, 0] + 1)
    np.testing.assert_array_equal(batch.masks, np.where(batch.rewards == 5, 0.0, 1.0))
    agent = DQN.create(
        key=jax.random.key(1),
        observations=example.obs,
        actions=example.actions,
        n_actions=2,
        hidden_dims=(8,),
    )
    _, info = agent.update(batch)
    assert np.isfinite(float(info["loss"]))
