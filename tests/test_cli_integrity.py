"""Run integrity at the command level: finished runs, the final checkpoint, resumed sessions,
settings fixed by the checkpoints, kill -9, two Ctrl-Cs, Ctrl-C with the output piped."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import realax.log as rlog
from test_cli import COMMAND, SMALL, _env, _error_line, _ok, _summary, realax

EVOLVE = ["evolve", "CartPole-v1", "--ckpt-freq", "5", "--no-render", *SMALL]
LONG = 400  # generations: long enough that a signal sent after the first checkpoint lands mid-run


def test_final_step_is_checkpointed_and_finished_runs_are_not_rerun(tmp_path):
    _ok(realax(tmp_path, *EVOLVE, "--generations", "12", "--out", "run"))
    run = tmp_path / "run"
    assert rlog.all_steps(run) == [5, 10, 12]
    metrics = (run / "metrics.jsonl").read_bytes()
    summary = _summary(run)
    done = _ok(realax(tmp_path, "resume", "run"))
    assert "is finished" in done.stdout and "nothing to resume" in done.stdout
    assert (run / "metrics.jsonl").read_bytes() == metrics  # no rows appended
    assert _summary(run) == summary and rlog.all_steps(run) == [5, 10, 12]


def test_a_resumed_run_reports_the_whole_run_and_this_session(tmp_path):
    _ok(realax(tmp_path, *EVOLVE, "--generations", "12", "--out", "run"))
    out = _ok(realax(tmp_path, "resume", "run", "--generations", "20")).stdout
    assert "20 generations, 8 of them in this session, in " in out
    summary = _summary(tmp_path / "run")
    assert summary["generations"] == 20 and summary["session_start"] == 12
    assert [r["step"] for r in rlog.read_metrics(tmp_path / "run")] == list(range(1, 21))


def test_resume_keeps_the_shapes_of_the_run(tmp_path):
    # a DQN train step is 256 environment steps: 2,560 steps are 10 train steps
    dqn = ["train", "dqn", "CartPole-v1", "--steps", "2560", "--width", "8", "--depth", "1"]
    _ok(
        realax(
            tmp_path,
            *dqn,
            "--ckpt-freq",
            "5",
            "--eval-episodes",
            "2",
            "--wandb",
            "off",
            "--out",
            "dqn",
        )
    )
    # the buffer size came from --steps; a longer run keeps it (it is in config.toml)
    _ok(realax(tmp_path, "resume", "dqn", "--steps", "5120"))
    summary = _summary(tmp_path / "dqn")
    assert summary["train_steps"] == 20 and summary["env_steps"] == 5120
    # settings that fix the checkpointed arrays cannot change on resume
    line = _error_line(realax(tmp_path, "resume", "dqn", "--buffer-size", "50"))
    assert "--buffer-size" in line and "--config dqn/config.toml" in line


def _start(tmp_path: Path, out: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [*COMMAND, *EVOLVE, "--generations", str(LONG), "--out", out],
        cwd=tmp_path,
        env=_env(tmp_path),
        stderr=subprocess.PIPE,
        text=True,
        **{"stdout": subprocess.PIPE, **popen},
    )


def _wait_for_checkpoint(proc: subprocess.Popen, run: Path) -> None:
    deadline = time.monotonic() + 600
    while not (run / "5").is_dir():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_kill_9_then_resume_is_byte_identical(tmp_path):
    _ok(realax(tmp_path, *EVOLVE, "--generations", str(LONG), "--out", "reference"))
    proc = _start(tmp_path, "killed")
    _wait_for_checkpoint(proc, tmp_path / "killed")
    proc.kill()
    proc.communicate(timeout=120)
    _ok(realax(tmp_path, "resume", "killed"))
    for name in ("metrics.jsonl", "policy.msgpack"):
        a = (tmp_path / "killed" / name).read_bytes()
        assert a == (tmp_path / "reference" / name).read_bytes(), name


def test_two_sigints_exit_130_cleanly_and_the_run_resumes(tmp_path):
    proc = _start(tmp_path, "twice")
    _wait_for_checkpoint(proc, tmp_path / "twice")
    proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-3000:]
    assert "Traceback" not in err and "Aborted" not in err and "core dumped" not in err
    assert rlog.all_steps(tmp_path / "twice")
    _ok(realax(tmp_path, "resume", "twice"))
    assert _summary(tmp_path / "twice")["generations"] == LONG


def test_ctrl_c_with_the_output_piped_behaves_like_on_a_terminal(tmp_path):
    # `realax evolve ... | cat` in its own session; Ctrl-C signals the whole process group
    args = [*COMMAND, *EVOLVE, "--generations", str(LONG), "--out", "piped"]
    script = 'trap : INT; "$@" | cat >/dev/null; echo "realax-status=${PIPESTATUS[0]}" >&2'
    shell = subprocess.Popen(
        ["bash", "-c", script, "pipeline", *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _wait_for_checkpoint(shell, tmp_path / "piped")
    os.killpg(shell.pid, signal.SIGINT)
    _, err = shell.communicate(timeout=300)
    assert "realax-status=130" in err, err[-3000:]
    assert "Traceback" not in err and "BrokenPipeError" not in err, err[-3000:]
    assert "realax resume piped" in err
    steps = rlog.all_steps(tmp_path / "piped")
    assert steps and max(steps) < LONG
    _ok(realax(tmp_path, "resume", "piped"))
    assert _summary(tmp_path / "piped")["generations"] == LONG
