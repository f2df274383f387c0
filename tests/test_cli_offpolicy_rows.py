"""``realax train dqn`` writes one metrics row per logging interval (an update phase of 256
environment steps), not one per environment step, and ``--help`` says so."""

from __future__ import annotations

import realax.log as rlog
from realax.train.cli import main
from realax.train.cli._rl import dqn_settings


def test_train_help_shows_the_logging_interval(capsys):
    try:
        main(["train", "--help"])
    except SystemExit as e:
        assert e.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "one row per train step (logging interval)" in text
    assert f"dqn and c51 every num_envs x {dqn_settings(1)['train_freq']}" in text


def test_train_dqn_writes_one_metrics_row_per_interval(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    interval = dqn_settings(1)["train_freq"]  # env steps per train step with one env
    steps = 4 * interval
    out = tmp_path / "run"
    args = ["train", "dqn", "CartPole-v1", "--steps", str(steps), "--wandb", "off",
            "--no-render", "--eval-episodes", "2", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    rows = rlog.read_metrics(out)
    assert len(rows) == steps // interval
    assert [r["env_steps"] for r in rows] == [interval * (i + 1) for i in range(len(rows))]
