"""Minari interchange: `Dataset.to_minari` / `Dataset.from_minari` with real Minari on disk."""

from __future__ import annotations

import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
from realax.agents import Dataset

minari = pytest.importorskip("minari")  # the extra realax-agents[minari]
gym = pytest.importorskip("gymnasium")  # comes with minari

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # minari's metadata advice


@pytest.fixture(autouse=True)
def _local_minari(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))


def _episodes(lengths, *, terminated, continuous, seed=0) -> Dataset:
    """Episodes of the given lengths; each ends terminated (masks 0) or truncated."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {k: [] for k in ("o", "a", "r", "m", "d", "n")}
    for length, term in zip(lengths, terminated, strict=True):
        obs = rng.normal(size=(length + 1, 3)).astype(np.float32)
        parts["o"].append(obs[:-1])
        parts["n"].append(obs[1:])
        if continuous:
            parts["a"].append(rng.uniform(-1, 1, size=(length, 2)).astype(np.float32))
        else:
            parts["a"].append(rng.integers(0, 3, size=length).astype(np.int32))
        parts["r"].append(rng.normal(size=length).astype(np.float32))
        masks = np.ones(length, np.float32)
        masks[-1] = 0.0 if term else 1.0
        parts["m"].append(masks)
        parts["d"].append(np.arange(length) == length - 1)
    c = {k: np.concatenate(v) for k, v in parts.items()}
    return Dataset.create(
        observations=c["o"],
        actions=c["a"],
        rewards=c["r"],
        masks=c["m"],
        dones=c["d"],
        next_observations=c["n"],
    )


def _assert_same(a: Dataset, b: Dataset) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


@pytest.mark.parametrize("continuous", [False, True])
def test_round_trip_through_minari(continuous):
    ds = _episodes([5, 3, 7, 4], terminated=[True, False, True, False], continuous=continuous)
    written = ds.to_minari("realax/test-v0", algorithm_name="test")
    assert written.total_episodes == 4 and written.total_steps == ds.size
    episodes = list(minari.load_dataset("realax/test-v0").iterate_episodes())
    assert [bool(e.terminations[-1]) for e in episodes] == [True, False, True, False]
    assert [bool(e.truncations[-1]) for e in episodes] == [False, True, False, True]
    assert not any(e.terminations[:-1].any() or e.truncations[:-1].any() for e in episodes)
    back = Dataset.from_minari("realax/test-v0")  # by id, from $MINARI_DATASETS_PATH
    _assert_same(ds, back)
    _assert_same(ds, Dataset.from_minari(written))
    np.testing.assert_array_equal(back.episode_returns(), ds.episode_returns())


def test_unfinished_last_episode_round_trips():
    ds = _episodes([4, 3], terminated=[True, False], continuous=False)
    dones = np.asarray(ds["dones"]).copy()
    dones[-1] = False  # the data ends in the middle of an episode
    ds = ds.replace(arrays={**ds.arrays, "dones": jnp.asarray(dones)})
    _assert_same(ds, Dataset.from_minari(ds.to_minari("realax/open-v0")))


def test_to_minari_errors():
    ds = _episodes([3, 3], terminated=[True, True], continuous=False)
    with pytest.raises(ValueError, match=r"extra key\(s\) \['extra'\]"):
        Dataset.create(**ds, extra=jnp.ones(6)).to_minari("realax/bad-v0")
    nxt = np.asarray(ds["next_observations"]).copy()
    nxt[1] += 1.0  # row 1's next observation is not row 2's observation, yet dones[1] is false
    broken = ds.replace(arrays={**ds.arrays, "next_observations": jnp.asarray(nxt)})
    with pytest.raises(ValueError, match=r"row\(s\) \[1\] differ .*dones=True"):
        broken.to_minari("realax/bad-v0")


def test_from_minari_rejects_dict_spaces():
    from minari.data_collector.episode_buffer import EpisodeBuffer

    space = gym.spaces.Dict({"x": gym.spaces.Box(-1, 1, (2,), np.float32)})
    buffer = EpisodeBuffer(
        id=0,
        observations={"x": np.zeros((3, 2), np.float32)},
        actions=np.zeros(2, np.int64),
        rewards=np.zeros(2),
        terminations=np.array([False, True]),
        truncations=np.zeros(2, bool),
    )
    minari.create_dataset_from_buffers(
        "realax/dict-v0", [buffer], observation_space=space, action_space=gym.spaces.Discrete(2)
    )
    with pytest.raises(ValueError, match="observation space is Dict"):
        Dataset.from_minari("realax/dict-v0")


def test_import_realax_agents_does_not_load_minari():
    code = "import sys, realax.agents; print('minari' in sys.modules, 'gymnasium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_missing_extra_names_it():
    from realax.agents._minari import _import

    with pytest.raises(ImportError, match=r'pip install "realax-agents\[minari\]"'):
        _import("minari_not_installed_here")
