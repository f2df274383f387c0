"""``realax`` answers at once: help and argument errors before JAX loads, and a run's first
line before the heavy imports; third-party noise stays out of the output."""

from __future__ import annotations

import subprocess

import pytest
from test_cli import COMMAND, _env, _error_line, realax

COMMANDS = ("evolve", "train", "resume", "eval", "plot", "envs", "strategies")


def _imported(tmp_path, *args: str) -> set[str]:
    """Top-level modules the real command imports for ``args`` (``-X importtime`` on stderr)."""
    env = {**_env(tmp_path), "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.run(
        [*COMMAND, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


@pytest.mark.parametrize("args", [["--help"], *[[c, "--help"] for c in COMMANDS]])
def test_help_does_not_import_jax(tmp_path, args):
    proc = realax(tmp_path, *args)
    assert proc.returncode == 0 and "usage: realax" in proc.stdout, proc.stderr
    imported = _imported(tmp_path, *args)
    # (needs `import realax.train` itself not to import JAX: lazy exports in its __init__)
    assert "jax" not in imported and "evosax" not in imported, "JAX was imported"


def test_argument_errors_answer_before_jax(tmp_path):
    _error_line(realax(tmp_path, "evolve", "CartPole-v1", "--popsize", "zero"))
    assert "jax" not in _imported(tmp_path, "evolve", "CartPole-v1", "--popsize", "zero")


def test_a_run_says_what_it_does_before_the_heavy_imports(tmp_path):
    args = ["evolve", "CartPole-v1", "--generations", "2", "--popsize", "8", "--wandb", "off"]
    proc = subprocess.Popen(
        [*COMMAND, *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stdout.readline()  # the run's header goes to stdout, like its summary
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert first.startswith("realax evolve: CartPole-v1, Open_ES, popsize 8, 2 generations")
    assert "runs/CartPole-v1-Open_ES-s0" in first and "loading JAX" in first


def test_no_third_party_noise(tmp_path):
    proc = realax(
        tmp_path, "evolve", "CartPole-v1", "--generations", "2", "--popsize", "8", "--wandb", "off"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for noise in (
        "Failed to import warp",
        "actively being maintained",
        "settotalmass",
        "Warning:",
        "warnings.warn(",
    ):
        assert noise not in proc.stdout + proc.stderr, noise


def test_wandb_online_without_a_login_says_so_once_and_logs_offline(tmp_path):
    env_home = tmp_path / "home"
    env_home.mkdir()
    args = ["evolve", "CartPole-v1", "--generations", "2", "--popsize", "8", "--wandb", "online"]
    env = {**_env(tmp_path), "HOME": str(env_home), "NETRC": str(env_home / "none")}
    env.pop("WANDB_API_KEY", None)
    env.pop("WANDB_MODE", None)
    proc = subprocess.run(
        [*COMMAND, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = [line for line in proc.stderr.splitlines() if "wandb login" in line]
    assert len(said) == 1 and said[0].startswith("realax: --wandb online needs a wandb login")
    assert "RuntimeWarning" not in proc.stderr and "warnings.warn" not in proc.stderr
    run = tmp_path / "runs" / "CartPole-v1-Open_ES-s0"
    assert list((run / "wandb").glob("offline-run-*"))
