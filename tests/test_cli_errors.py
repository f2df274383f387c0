"""Bad input: one line in the command's own words, exit status 2, no traceback."""

from __future__ import annotations

import pytest
from test_cli import _error_line, _ok, realax


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["evolve", "CartPole-v1", "--popsize", "7"],
            "Open_ES needs an even population size; use --popsize 8",
        ),
        (["train", "sac", "CartPole-v1"], "SAC needs continuous actions"),
        (["train", "dqn", "Pendulum-v1"], "DQN needs discrete actions"),
        (["train", "ppo2", "CartPole-v1"], "ALGO must be one of ppo, dqn, sac"),
        (["evolve", "CartPol-v1"], "realax envs"),
        (["train", "ppo", "NoSuchEnv-v0"], "realax envs"),
    ],
    ids=["odd-popsize", "sac-discrete", "dqn-continuous", "algo", "env", "train-env"],
)
def test_errors_name_the_fix(tmp_path, args, expected):
    line = _error_line(realax(tmp_path, *args, "--wandb", "off"))
    assert expected in line, line
    assert "--algo" not in line
    assert not (tmp_path / "runs").exists()


def test_sac_on_discrete_actions_names_the_discrete_algorithms(tmp_path):
    line = _error_line(realax(tmp_path, "train", "sac", "CartPole-v1", "--wandb", "off"))
    assert "realax train dqn CartPole-v1" in line and "realax train ppo CartPole-v1" in line


def test_envs_reasons_are_not_cut_mid_word(tmp_path):
    out = _ok(realax(tmp_path, "envs")).stdout
    for line in out.splitlines():
        if "unavailable: " in line:
            reason = line.split("unavailable: ", 1)[1]
            # either the whole first sentence, or cut at a word boundary with " ..."
            assert reason.endswith(" ...") or len(reason) <= 90, line
            words = reason.removesuffix(" ...").split()
            assert words and all(w.strip() for w in words), line
