"""The default budgets of ``realax train`` learn their textbook tasks (slow: minutes each)."""

from __future__ import annotations

import pytest
from test_cli import _ok, _summary, realax


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algo", "env", "threshold"),
    [("dqn", "CartPole-v1", 475.0), ("ppo", "CartPole-v1", 475.0), ("sac", "Pendulum-v1", -250.0)],
    ids=["dqn-cartpole", "ppo-cartpole", "sac-pendulum"],
)
def test_default_budget_solves_the_task(tmp_path, algo, env, threshold):
    proc = _ok(realax(tmp_path, "train", algo, env, "--wandb", "off", timeout=3600))
    summary = _summary(tmp_path / "runs" / f"{env}-{algo}-s0")
    print(f"`realax train {algo} {env}`: {summary}")
    assert summary["eval_return_mean"] >= threshold, (summary, proc.stdout[-2000:])
    # the saved policy evaluates alike from the command line, with the run's episodes
    out = _ok(realax(tmp_path, "eval", f"runs/{env}-{algo}-s0", timeout=1200)).stdout
    assert f"over {summary['eval_episodes']} episodes" in out
