"""The ``realax`` command line, driven as a real command in subprocesses.

Every test runs the installed console script (``realax``, or ``python -m realax.train.cli`` if
the script is missing) in a temporary folder with ``WANDB_MODE=offline``: real gymnax
environments, real orbax checkpoints, a real offline wandb run, real signals.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import matplotlib.image
import pytest
import realax.log as rlog

SCRIPT = Path(sys.executable).with_name("realax")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "realax.train.cli"]
# small, fast runs: 16 members, short CartPole episodes are cheap
SMALL = ["--popsize", "16", "--width", "8", "--depth", "1", "--wandb", "off"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(
        WANDB_MODE="offline",
        WANDB_DIR=str(tmp_path),
        WANDB_SILENT="true",
        MPLBACKEND="Agg",
        PYTHONUNBUFFERED="1",
    )
    return env


def no_render(args: tuple[str, ...] | list[str]) -> list[str]:
    """``args`` with ``--no-render`` added to an evolve/train command that does not choose:
    the end-of-run rollout.gif is tested in test_cli_render.py, and drawing it costs seconds
    in each of the many runs here."""
    args = list(args)
    if args[:1] in (["evolve"], ["train"]) and not {"--render", "--no-render"} & set(args):
        args.append("--no-render")
    return args


def realax(tmp_path: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMMAND, *no_render(args)],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )
    return proc


def _error_line(proc: subprocess.CompletedProcess) -> str:
    """The command failed with status 2 and exactly one error line, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("realax: error: ")
    return lines[0]


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


# ----------------------------------------------------------------------------- the main job


@pytest.mark.slow
def test_default_evolve_solves_cartpole_and_leaves_the_run_folder(tmp_path):
    start = time.perf_counter()
    proc = _ok(realax(tmp_path, "evolve", "CartPole-v1"))
    elapsed = time.perf_counter() - start
    run = tmp_path / "runs" / "CartPole-v1-Open_ES-s0"
    summary = _summary(run)
    print(f"`realax evolve CartPole-v1` took {elapsed:.1f} s; summary: {summary}")
    # solved: the saved policy balances the pole in fresh episodes
    assert summary["eval_return_mean"] >= 475.0, summary
    assert summary["generations"] == 50 and summary["best_fitness"] == 500.0
    # the summary table and the live progress bar with the current fitness
    assert "realax evolve: done" in proc.stdout and "mean return" in proc.stdout
    # (the trainer's own bar since the CLI stopped drawing one: it shows best_fitness)
    assert re.search(r"100%.*50/50.*best_fitness=", proc.stderr)

    # the run folder: config, metrics, checkpoints, wandb offline run, curves, policy
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["env"] == "CartPole-v1" and config["strategy"] == "Open_ES"
    assert config["popsize"] == 64 and config["generations"] == 50
    rows = rlog.read_metrics(run)
    assert [r["step"] for r in rows] == list(range(1, 51))
    assert rows[-1]["best_fitness"] == summary["best_fitness"]
    assert rlog.all_steps(run) == [10, 20, 30, 40, 50]
    wandb_runs = list((run / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1
    history = rlog.read_wandb_history(wandb_runs[0])
    assert [h["best_fitness"] for h in history] == [r["best_fitness"] for r in rows]
    assert rlog.read_wandb_config(wandb_runs[0])["env"] == "CartPole-v1"
    png = run / "learning_curves.png"
    assert matplotlib.image.imread(png).shape[0] > 100
    assert (run / "policy.msgpack").stat().st_size > 0

    # eval runs the saved policy
    out = _ok(realax(tmp_path, "eval", "runs/CartPole-v1-Open_ES-s0", "--episodes", "8")).stdout
    mean = float(re.search(r"mean return ([\d.]+)", out)[1])
    assert mean >= 475.0, out
    # plot redraws the curves
    png.unlink()
    out = _ok(realax(tmp_path, "plot", "runs/CartPole-v1-Open_ES-s0")).stdout
    assert png.is_file() and str(png.name) in out
    # the same command again never overwrites the run
    line = _error_line(realax(tmp_path, "evolve", "CartPole-v1"))
    assert "already holds a run" in line and "realax resume runs/CartPole-v1-Open_ES-s0" in line
    assert _summary(run) == summary


# ----------------------------------------------------------------------------- interruptions

# long enough that the signal lands mid-run: checkpoints are written one after another (the
# writer queue is short), so the run cannot get far ahead of its first checkpoint on disk
# long enough that a signal sent once the first checkpoint is on disk arrives mid-run (saves no
# longer hold the loop back, and one 5-generation chunk of this size takes milliseconds)
GENERATIONS = 300
RESUMABLE = ["evolve", "CartPole-v1", "--generations", str(GENERATIONS), "--ckpt-freq", "5", *SMALL]


def _stop_after_first_checkpoint(tmp_path: Path, out: str, sig: int) -> int:
    """Start a run, send ``sig`` once its first checkpoint is on disk; the last step saved."""
    run = tmp_path / out
    proc = subprocess.Popen(
        [*COMMAND, *RESUMABLE, "--out", out],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not (run / "5").is_dir():  # the first checkpoint is complete once its folder exists
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err[-3000:]
        assert f"realax resume {out}" in err, err[-3000:]
        assert not (run / "summary.json").exists()
    else:
        assert proc.returncode == -signal.SIGKILL
    stopped_at = max(rlog.all_steps(run))
    assert 5 <= stopped_at < GENERATIONS, stopped_at
    return stopped_at


def test_runs_stopped_by_sigint_or_sigkill_resume_to_the_uninterrupted_result(tmp_path):
    _ok(realax(tmp_path, *RESUMABLE, "--out", "reference"))
    reference = tmp_path / "reference"
    for sig, out in ((signal.SIGINT, "interrupted"), (signal.SIGKILL, "killed")):
        stopped_at = _stop_after_first_checkpoint(tmp_path, out, sig)
        resumed = _ok(realax(tmp_path, "resume", out))
        assert f"from generation {stopped_at}/{GENERATIONS}" in resumed.stderr
        run = tmp_path / out
        a, b = _summary(run), _summary(reference)
        assert a["best_fitness"] == b["best_fitness"], sig
        assert a["eval_returns"] == b["eval_returns"], sig
        assert (run / "policy.msgpack").read_bytes() == (reference / "policy.msgpack").read_bytes()
        assert rlog.read_metrics(run) == rlog.read_metrics(reference), sig
    # resuming a finished run changes nothing
    before = _summary(tmp_path / "killed")
    done = _ok(realax(tmp_path, "resume", "killed"))
    assert "is finished" in done.stdout
    assert _summary(tmp_path / "killed") == before


# ----------------------------------------------------------------------------- configuration


def test_config_file_keys_mirror_flags_and_flags_override(tmp_path):
    (tmp_path / "cfg.yaml").write_text(
        "strategy: SNES\npopsize: 8\ngenerations: 5\neval-reps: 1\nwidth: 4\ndepth: 1\n"
        "policy: gru\nwandb: 'off'\nckpt_freq: 2\nseed: 3\n"
    )
    _ok(
        realax(
            tmp_path,
            "evolve",
            "CartPole-v1",
            "--config",
            "cfg.yaml",
            "--generations",
            "3",
            "--devices",
            "2",
            "--name",
            "from_yaml",
        )
    )
    run = tmp_path / "runs" / "from_yaml"
    saved = tomllib.loads((run / "config.toml").read_text())
    assert saved["strategy"] == "SNES" and saved["popsize"] == 8 and saved["policy"] == "gru"
    assert saved["generations"] == 3  # the flag beat the file
    assert saved["devices"] == 2 and saved["seed"] == 3 and saved["eval_reps"] == 1
    assert rlog.all_steps(run) == [2, 3]  # every --ckpt-freq steps, and the final step
    assert _summary(run)["generations"] == 3
    # the saved config.toml is itself a valid --config (its `out` is that run: refused)
    line = _error_line(realax(tmp_path, "evolve", "--config", "runs/from_yaml/config.toml"))
    assert "runs/from_yaml already holds a run" in line


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["evolve", "CartPol-v1"], "Did you mean 'CartPole-v1'"),
        (["evolve", "CartPole-v1", "--strategy", "CMA-ESS"], "Did you mean"),
        (["evolve", "CartPole-v1", "--config", "bad.toml"], "Did you mean 'popsize'"),
        (["evolve", "CartPole-v1", "--popsize", "-3"], "--popsize must be an integer >= 1"),
        (["evolve", "CartPole-v1", "--strategy", "CMA_ES", "--lr", "0.1"], "--lr does not apply"),
        (["evolve", "CartPole-v1", "--popsize", "15"], "even popsize"),
        (["resume", "nowhere"], "not a run folder"),
    ],
    ids=["env", "strategy", "config-key", "value", "lr", "odd-popsize", "resume"],
)
def test_bad_input_is_one_line_with_status_2(tmp_path, args, expected):
    (tmp_path / "bad.toml").write_text("popsiz = 8\n")
    line = _error_line(
        realax(tmp_path, *args, "--wandb", "off")
        if args[0] == "evolve"
        else realax(tmp_path, *args)
    )
    assert expected in line, line
    assert not (tmp_path / "runs").exists()  # nothing was started


# ----------------------------------------------------------------------------- RL


def test_train_ppo_leaves_the_same_run_folder_and_evaluates(tmp_path):
    args = [
        "train",
        "ppo",
        "CartPole-v1",
        "--steps",
        "4096",
        "--num-envs",
        "4",
        "--width",
        "16",
        "--depth",
        "1",
        "--ckpt-freq",
        "4",
        "--eval-episodes",
        "4",
        "--wandb",
        "offline",
    ]
    proc = _ok(realax(tmp_path, *args))
    run = tmp_path / "runs" / "CartPole-v1-ppo-s0"
    assert "realax train ppo: done" in proc.stdout
    summary = _summary(run)
    assert summary["train_steps"] == 8 and summary["env_steps"] == 4096
    assert rlog.all_steps(run) == [4, 8]
    rows = rlog.read_metrics(run)
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1
    assert (run / "learning_curves.png").is_file() and (run / "policy.msgpack").is_file()
    saved = tomllib.loads((run / "config.toml").read_text())
    assert saved["command"] == "train" and saved["algo"] == "ppo" and saved["num_envs"] == 4
    out = _ok(realax(tmp_path, "eval", "runs/CartPole-v1-ppo-s0", "--episodes", "4")).stdout
    assert float(re.search(r"mean return ([\d.]+)", out)[1]) >= 8.0  # CartPole pays 1 per step


# ----------------------------------------------------------------------------- listings


def test_envs_and_strategies_listings(tmp_path):
    out = _ok(realax(tmp_path, "envs", "--suite", "gymnax")).stdout
    row = next(line for line in out.splitlines() if line.startswith("CartPole-v1 "))
    assert row.split()[1:] == ["gymnax", "4", "2", "discrete"]
    row = next(line for line in out.splitlines() if line.startswith("Pendulum-v1 "))
    assert row.split()[1:] == ["gymnax", "3", "1", "continuous"]
    out = _ok(realax(tmp_path, "strategies")).stdout
    names = {line.split()[0] for line in out.splitlines()[1:]}
    assert {"Open_ES", "CMA_ES", "SNES", "SimpleGA"} <= names
    assert re.search(r"Open_ES +distribution +aliases: OpenES +--lr --sigma", out)
