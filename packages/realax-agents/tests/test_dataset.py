"""`realax.agents.Dataset`: save/load, construction helpers, `check_dataset`, sharding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from realax.agents import Dataset, Transition, shard_batch
from realax.agents._dataset import check_dataset
from realax.agents._dataset_io import HEADER_KEY, DatasetFileError


def _dataset(n: int = 12) -> Dataset:
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n + 1, 3)).astype(np.float32)
    dones = np.zeros(n, bool)
    dones[[3, n - 4]] = True
    masks = np.ones(n, np.float32)
    masks[3] = 0.0  # terminated at row 3; row 8 is a truncation (masks 1, dones True)
    return Dataset.create(
        observations=obs[:-1],
        actions=rng.integers(0, 4, size=n).astype(np.int32),
        rewards=rng.normal(size=n).astype(np.float32),
        masks=masks,
        dones=dones,
        next_observations=obs[1:],
        images=rng.integers(0, 255, size=(n, 2, 2, 3)).astype(np.uint8),
        logits=jnp.asarray(rng.normal(size=(n, 4)), jnp.bfloat16),
    )


def _assert_same(a: Dataset, b: Dataset) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert a[k].shape == b[k].shape, k
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


@pytest.mark.parametrize("compress", [False, True])
def test_save_load_round_trip_exact(tmp_path, compress):
    ds = _dataset()
    path = ds.save(tmp_path / "data.npz", compress=compress)
    assert path == tmp_path / "data.npz"
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]  # no temporary file left
    loaded = Dataset.load(path)
    _assert_same(ds, loaded)
    assert loaded["logits"].dtype == jnp.bfloat16 and loaded["dones"].dtype == jnp.bool_
    # an ordinary .npz: numpy reads the native arrays as they are
    with np.load(path) as raw:
        np.testing.assert_array_equal(raw["rewards"], np.asarray(ds["rewards"]))
        assert HEADER_KEY in raw.files


def test_save_replaces_atomically(tmp_path):
    path = tmp_path / "data.npz"
    _dataset(12).save(path)
    _dataset(20).save(path)
    assert Dataset.load(path).size == 20
    assert [p.name for p in tmp_path.iterdir()] == ["data.npz"]


def test_truncated_file_raises_naming_it(tmp_path):
    path = _dataset().save(tmp_path / "data.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetFileError, match="data.npz.*truncated or corrupt"):
        Dataset.load(path)


def test_corrupt_array_bytes_fail_the_checksum(tmp_path):
    path = _dataset().save(tmp_path / "data.npz")
    # rewrite one array with different content but a valid archive: only the sha256 sees it
    with np.load(path) as raw:
        arrays = {k: raw[k] for k in raw.files}
    arrays["rewards"] = arrays["rewards"] + 1.0
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(DatasetFileError, match="'rewards' does not match its recorded sha256"):
        Dataset.load(path)


def test_flipped_byte_is_detected(tmp_path):
    path = _dataset().save(tmp_path / "data.npz")
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetFileError, match="data.npz"):
        Dataset.load(path)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        Dataset.load(tmp_path / "missing.npz")
    plain = tmp_path / "plain.npz"
    np.savez(plain, rewards=np.ones(3))
    with pytest.raises(DatasetFileError, match="without a realax dataset header"):
        Dataset.load(plain)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _dataset().save(tmp_path / "no" / "such" / "folder.npz")
    with pytest.raises(TypeError, match="PRNG keys"):
        Dataset.create(keys=jax.random.split(jax.random.key(0), 3)).save(tmp_path / "k.npz")


def test_repr_names_keys_shapes_and_size():
    text = repr(_dataset())
    assert text.startswith("Dataset(size=12, observations=float32[12, 3], actions=int32[12]")
    assert "logits=bfloat16[12, 4]" in text


def test_from_transition_and_derived_dones():
    obs = jnp.arange(10.0).reshape(5, 2)
    nxt = obs + 2.0  # continuous trajectory: next_obs[i] == obs[i + 1] ...
    nxt = nxt.at[1].set(-1.0)  # ... except after row 1 (a reset: the episode was truncated)
    t = Transition(
        obs=obs,
        actions=jnp.zeros(5, jnp.int32),
        rewards=jnp.ones(5),
        next_obs=nxt,
        terminated=jnp.array([False, False, False, True, False]),
    )
    derived = Dataset.from_transition(t)
    assert derived["masks"].tolist() == [1.0, 1.0, 1.0, 0.0, 1.0]
    assert derived["dones"].tolist() == [False, True, False, True, True]
    assert derived.episode_returns().tolist() == [2.0, 2.0, 1.0]
    given = Dataset.from_transition(t, dones=jnp.array([0, 0, 1, 1, 0], bool), extra=jnp.ones(5))
    assert given["dones"].tolist() == [False, False, True, True, False]
    assert sorted(given) == sorted([*derived, "extra"])
    # a (T, n_envs) transition is flattened row-major, or env by env with time_major=True
    t2 = jax.tree.map(lambda x: jnp.stack([x, x], axis=1), t)
    t2 = t2.replace(obs=t2.obs.at[:, 1].add(100.0), next_obs=t2.next_obs.at[:, 1].add(100.0))
    assert Dataset.from_transition(t2).size == 10
    by_env = Dataset.from_transition(t2, time_major=True)
    np.testing.assert_array_equal(by_env["observations"][:5], obs)
    np.testing.assert_array_equal(by_env["observations"][5:], obs + 100)
    assert by_env["dones"].tolist() == [False, True, False, True, True] * 2
    with pytest.raises(ValueError, match=r"time_major=True needs leading axes \(T, n_envs\)"):
        Dataset.from_transition(t, time_major=True)
    with pytest.raises(TypeError, match="expects a realax.agents.Transition"):
        Dataset.from_transition({"obs": obs})  # type: ignore[arg-type]


def test_create_derives_dones_only_when_absent():
    ds = Dataset.create(rewards=jnp.ones(3), masks=jnp.array([1.0, 0.0, 1.0]))
    assert ds["dones"].tolist() == [False, True, True]
    assert "dones" not in Dataset.create(rewards=jnp.ones(3))
    given = Dataset.create(masks=jnp.ones(3), dones=jnp.zeros(3, bool))
    assert given["dones"].tolist() == [False, False, False]


def test_concatenate():
    a, b = _dataset(12), _dataset(6)
    both = Dataset.concatenate([a, b])
    assert both.size == 18
    np.testing.assert_array_equal(both["rewards"][12:], b["rewards"])
    with pytest.raises(ValueError, match="dataset 1 has keys"):
        Dataset.concatenate([a, Dataset.create(rewards=jnp.ones(2))])
    with pytest.raises(ValueError, match="'rewards' is int32"):
        Dataset.concatenate([a, b.replace(arrays={**b.arrays, "rewards": jnp.ones(6, int)})])


def test_shard_batch_of_a_dataset_and_jit():
    ds = _dataset(12)
    sharded = shard_batch(ds, n_devices=2)
    assert isinstance(sharded, Dataset)
    assert sharded["observations"].shape == (2, 6, 3)
    with pytest.raises(ValueError, match=r"arrays\['actions'\], n_devices=5"):
        shard_batch(ds, n_devices=5)
    batch = jax.jit(lambda d, k: d.sample(k, 7))(ds, jax.random.key(0))
    assert isinstance(batch, Dataset) and batch.size == 7


def test_check_dataset_errors():
    ds = _dataset(12)
    check_dataset(ds, ["observations", "actions"], owner="IQL", batch_size=12)
    assert ds.validate(["rewards"]) is ds
    with pytest.raises(ValueError, match=r"IQL: the dataset has no 'values', 'returns'"):
        check_dataset(ds, ["observations", "values", "returns"], owner="IQL")
    uneven = {"observations": np.zeros((4, 3)), "rewards": np.zeros(5)}
    with pytest.raises(ValueError, match=r"same leading length.*'observations': 4"):
        check_dataset(uneven, [], owner="CQL")
    rewards = np.asarray(ds["rewards"]).copy()
    rewards[[2, 7]] = np.nan
    bad = ds.replace(arrays={**ds.arrays, "rewards": jnp.asarray(rewards)})
    with pytest.raises(ValueError, match=r"NaN or infinite at row\(s\) 2, 7 \(of 12\)"):
        bad.validate(owner="TD3")
    with pytest.raises(ValueError, match="batch_size=64 is larger than the dataset"):
        check_dataset(ds, [], owner="X", batch_size=64)
    with pytest.raises(
        ValueError, match=r"'observations' has rows of shape \(3,\), expected \(4,\)"
    ):
        check_dataset(ds, [], owner="X", observation_shape=(4,))
    with pytest.raises(ValueError, match=r"'actions' has rows of shape \(\), expected \(1,\)"):
        check_dataset(ds, [], owner="X", action_shape=(1,))
    with pytest.raises(ValueError, match="expected a realax.agents.Dataset"):
        check_dataset([1, 2], [], owner="X")  # type: ignore[arg-type]


def test_jaxrl_m_habits_get_clear_errors():
    ds = _dataset(12)
    with pytest.raises(TypeError, match=r"takes a PRNG key first"):
        ds.sample(256)
    with pytest.raises(ValueError, match=r"\['observations'\] are nested dicts"):
        Dataset.create(observations={"image": np.zeros((3, 2)), "state": np.zeros((3, 1))})
