"""``realax envs`` reads the suites from realax.tasks' suite table: the grid-world suites are
listed with their dimensions, a suite that is not installed is named with its extra, an
unknown ``--suite`` is refused. In-process (``main(argv)``), on the cheap Craftax listing."""

import sys

import pytest
import realax.tasks as rt
from realax.train.cli import main


def test_envs_lists_every_suite_of_the_table_and_the_missing_ones(capsys, monkeypatch):
    assert {"gymnax", "brax", "jumanji", "craftax", "xminigrid", "navix"} <= set(rt.suites())
    assert main(["envs", "--suite", "craftax"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()}
    assert rows["Craftax-Classic-Symbolic-v1"] == ["craftax", "1345", "17", "discrete"]
    assert rows["Craftax-Symbolic-v1"][:1] == ["craftax"]

    monkeypatch.setitem(sys.modules, "navix", None)  # as if navix were not installed
    assert main(["envs", "--suite", "navix"]) == 0
    err = capsys.readouterr().err
    assert '(navix is not installed: pip install "realax-tasks[navix]")' in err

    assert main(["envs", "--suite", "gym"]) == 2
    err = capsys.readouterr().err
    assert "--suite must be one of" in err and "(got --suite gym)" in err
    assert all(s in err for s in ("gymnax", "jumanji", "craftax", "xminigrid", "navix"))


@pytest.mark.slow
def test_evolve_runs_on_a_grid_suite_name_and_leaves_its_gif(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["evolve", "MiniGrid-Empty-5x5", "--generations", "2", "--popsize", "4"]
    argv += ["--width", "8", "--depth", "1", "--max-steps", "6", "--eval-episodes", "2"]
    assert main([*argv, "--wandb", "off", "--out", str(out)]) == 0, capsys.readouterr().err
    assert (out / "rollout.gif").stat().st_size > 0 and (out / "summary.json").exists()
