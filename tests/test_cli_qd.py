"""``realax qd``: QD runs from the command line (maze and an environment), driven as a real
command in subprocesses; the run folder gets the repertoire heat map."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import matplotlib.image
import pytest
import realax.log as rlog
from test_cli import _error_line, _ok, realax

pytest.importorskip("qdax")

SMALL = ["--batch-size", "32", "--grid", "8", "--wandb", "off", "--ckpt-freq", "5"]


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


@pytest.mark.slow
def test_qd_maze_run_folder_resume_and_eval(tmp_path):
    proc = _ok(realax(tmp_path, "qd", "--iterations", "20", *SMALL, "--out", "maze"))
    run = tmp_path / "maze"
    assert "realax qd: done" in proc.stdout and "repertoire" in proc.stdout
    png = matplotlib.image.imread(run / "repertoire.png")
    assert png[..., :3].std() > 0.05  # a heat map, not a blank canvas
    assert (run / "learning_curves.png").is_file() and (run / "policy.msgpack").is_file()
    summary = _summary(run)
    assert summary["command"] == "qd" and summary["train_steps"] == 20
    assert summary["num_cells"] == 64 and 0 < summary["coverage"] <= 100
    config = tomllib.loads((run / "config.toml").read_text())
    assert config["command"] == "qd" and config["env"] == "maze"
    rows = rlog.read_metrics(run)
    assert [r["step"] for r in rows] == list(range(1, 21))
    assert rows[-1]["coverage"] == pytest.approx(summary["coverage"])
    # the best elite is -distance to the goal; eval says so
    out = _ok(realax(tmp_path, "eval", "maze")).stdout
    assert "best elite fitness" in out and f"{summary['eval_return_mean']:.4f}" in out
    # finished: resume changes nothing; a longer run continues from the last checkpoint
    assert "is finished" in _ok(realax(tmp_path, "resume", "maze")).stdout
    longer = _ok(realax(tmp_path, "resume", "maze", "--iterations", "30"))
    assert "from iteration 20/30" in longer.stderr
    assert [r["step"] for r in rlog.read_metrics(run)] == list(range(1, 31))
    assert _summary(run)["coverage"] >= summary["coverage"]


@pytest.mark.slow
def test_qd_cma_me_on_cartpole(tmp_path):
    args = ["qd", "CartPole-v1", "--emitter", "cma_me", "--iterations", "6", "--max-steps", "50"]
    proc = _ok(realax(tmp_path, *args, "--width", "4", *SMALL))
    run = tmp_path / "runs" / "CartPole-v1-cma_me-s0"
    assert "CartPole-v1 (gymnax" in proc.stdout and "cma_me" in proc.stdout
    assert matplotlib.image.imread(run / "repertoire.png")[..., :3].std() > 0.05
    assert _summary(run)["eval_episodes"] == 32  # the best elite's return over fresh episodes


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["qd", "Acrobot-v1"], "needs its descriptor: --obs-indices"),
        (["qd", "--emitter", "cma"], "--emitter must be one of"),
        (["qd", "--bounds", "a:b", "CartPole-v1"], "--bounds must be comma-separated numbers"),
        (["qd", "--batch-size", "0"], "--batch-size must be an integer >= 1"),
    ],
)
def test_qd_bad_input_is_one_line(tmp_path, args, expected):
    line = _error_line(realax(tmp_path, *args, "--wandb", "off"))
    assert expected in line, line
