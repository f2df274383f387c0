"""``realax train bc|cql|td3bc --dataset PATH ENV`` as a real command: the run folder, the
dataset path and checksum in config.toml, ``realax resume`` (which reloads and verifies the
dataset) and ``realax eval``; one-line errors for a missing or changed dataset."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest
import realax.log as rlog
from test_cli import _error_line, _ok, realax

pytestmark = pytest.mark.slow  # JAX subprocesses

FAST = ["--width", "16", "--depth", "1", "--wandb", "off", "--eval-episodes", "2"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    from realax.train.rl import collect

    data = collect(lambda obs, key: jnp.int32(obs[2] > 0), "CartPole-v1", jax.random.key(0),
                   num_steps=512, num_envs=2, epsilon=0.1)  # fmt: skip
    return data.save(tmp_path_factory.mktemp("data") / "cartpole.npz")


def test_train_resume_eval_offline(tmp_path, dataset):
    args = ["train", "cql", "CartPole-v1", "--dataset", str(dataset), "--steps", "40",
            "--ckpt-freq", "20", "--out", "run", *FAST]  # fmt: skip
    proc = _ok(realax(tmp_path, *args))
    assert "realax train cql: offline on" in proc.stdout and "512 transitions" in proc.stdout
    run = tmp_path / "run"
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["algo"] == "cql" and config["dataset"] == dataset.resolve().as_posix()
    assert len(config["dataset_sha256"]) == 64
    summary = json.loads((run / "summary.json").read_text())
    assert summary["train_steps"] == 40 and summary["dataset_size"] == 512
    assert (run / "policy.msgpack").is_file()
    assert [r["step"] for r in rlog.read_metrics(run)] == list(range(1, 41))

    # resume runs it longer, from its last checkpoint, with the dataset from config.toml
    _ok(realax(tmp_path, "resume", "run", "--steps", "60"))
    assert [r["step"] for r in rlog.read_metrics(run)] == list(range(1, 61))
    assert json.loads((run / "summary.json").read_text())["train_steps"] == 60

    proc = _ok(realax(tmp_path, "eval", "run", "--episodes", "2"))
    assert "CartPole-v1" in proc.stdout

    # a changed dataset file is refused: run2 is this run, pointed at a copy of the dataset
    # (its sha256 recorded in config.toml still matches), then the copy changes
    copy = tmp_path / "copy.npz"
    copy.write_bytes(dataset.read_bytes())
    shutil.copytree(run, tmp_path / "run2")
    toml = tmp_path / "run2" / "config.toml"
    toml.write_text(toml.read_text().replace(dataset.resolve().as_posix(), copy.as_posix()))
    from realax.agents import Dataset

    Dataset.load(copy).subset(jnp.arange(100)).save(copy)
    line = _error_line(realax(tmp_path, "resume", "run2", "--steps", "80"))
    assert "changed since this run started" in line


def test_offline_errors(tmp_path, dataset):
    line = _error_line(realax(tmp_path, "train", "bc", "CartPole-v1", *FAST))
    assert "--dataset PATH" in line
    line = _error_line(realax(tmp_path, "train", "td3bc", "CartPole-v1", "--dataset",
                              str(dataset), *FAST))  # fmt: skip
    assert "td3bc needs continuous actions" in line and "realax train cql" in line
    line = _error_line(realax(tmp_path, "train", "bc", "Pendulum-v1", "--dataset",
                              str(dataset), *FAST))  # fmt: skip
    assert "observations have shape (4,) per row but 'Pendulum-v1' gives (3,)" in line


def test_collect_from_a_train_run_then_train_on_it(tmp_path):
    _ok(realax(tmp_path, "train", "dqn", "CartPole-v1", "--steps", "512", "--out", "dqn",
               "--learning-starts", "256", *FAST))  # fmt: skip
    proc = _ok(realax(tmp_path, "collect", "dqn", "--steps", "400", "--num-envs", "2",
                      "--epsilon", "0.1", "--out", "data/dqn.npz"))  # fmt: skip
    assert "400 transitions of CartPole-v1" in proc.stdout
    from realax.agents import Dataset

    data = Dataset.load(tmp_path / "data" / "dqn.npz")
    assert data.size == 400 and bool(data["dones"][199]) and bool(data["dones"][399])
    _ok(realax(tmp_path, "train", "bc", "CartPole-v1", "--dataset", "data/dqn.npz", "--steps",
               "20", "--out", "bc", *FAST))  # fmt: skip
    assert json.loads((tmp_path / "bc" / "summary.json").read_text())["train_steps"] == 20
    line = _error_line(realax(tmp_path, "collect", "dqn", "--steps", "5", "--num-envs", "2",
                              "--out", "x.npz"))  # fmt: skip
    assert "multiple of --num-envs" in line


def test_collect_help_does_not_import_jax(tmp_path):
    from test_cli_startup import _imported

    proc = realax(tmp_path, "collect", "--help")
    assert proc.returncode == 0 and "--epsilon" in proc.stdout
    assert "jax" not in _imported(tmp_path, "collect", "--help")
