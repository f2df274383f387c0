"""``realax sweep`` and ``realax report``: bad input (exit 2 before anything compiles), an
in-process evolve sweep and its redrawn report, one tiny PPO sweep as a subprocess."""

from __future__ import annotations

import csv
import json

import pytest
from realax.train.cli import main
from test_cli import _ok, realax

TINY_ES = ["--strategy", "SNES", "--generations", "3", "--popsize", "8", "--wandb", "off"]


def _error(capsys, *args: str) -> str:
    assert main(list(args)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("realax: error: "), err
    return err[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "sweep needs at least one --set NAME=V1,V2"),
        (["--set", "learning_rate="], "--set learning_rate= has no values"),
        (["--set", "learning_rate=fast"], "--set learning_rate: 'fast' is not a number"),
        (["--set", "1e-4,3e-4"], "expected NAME=V1,V2"),
        (["--set", "discount=0.9", "--set", "discount=0.99"], "--set discount is given twice"),
        (["--set", "discount=0.9", "--seeds", "0"], "--seeds must be an integer >= 1"),
    ],
    ids=["no-set", "empty", "not-a-number", "no-name", "twice", "seeds"],
)
def test_bad_values_exit_2_before_jax(capsys, tmp_path, args, expected):
    line = _error(capsys, "sweep", "ppo", "CartPole-v1", *args, "--out", str(tmp_path / "s"))
    assert expected in line, line
    assert not (tmp_path / "s").exists()


def test_unknown_and_shape_changing_names(capsys, tmp_path):
    out = ["--out", str(tmp_path / "s"), "--wandb", "off"]
    line = _error(capsys, "sweep", "ppo", "CartPole-v1", "--set", "learning_rat=1e-3", *out)
    assert "no setting 'learning_rat'" in line and "Did you mean 'learning_rate'?" in line
    assert "discount" in line and "num_envs" in line  # the settings that can be swept
    line = _error(capsys, "sweep", "ppo", "CartPole-v1", "--set", "num_envs=4,8", *out)
    assert "shape-changing" in line and "(e.g. --num-envs ...)" in line
    line = _error(capsys, "sweep", "evolve", "CartPole-v1", "--set", "std_int=0.1", *TINY_ES, *out)
    assert "Did you mean 'std_init'" in line
    assert not (tmp_path / "s").exists()


def test_report_of_a_folder_that_is_not_a_sweep(capsys, tmp_path):
    assert "is not a sweep's run folder" in _error(capsys, "report", str(tmp_path))


@pytest.mark.slow
def test_evolve_sweep_report_and_resume(capsys, tmp_path):
    run = tmp_path / "sw"
    args = ["sweep", "evolve", "CartPole-v1", "--set", "std_init=0.05,0.2", "--seeds", "2"]
    assert main([*args, *TINY_ES, "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "2 configurations x 2 seeds = 4 runs in one program" in out
    assert "#1 std_init=" in out and "#2 std_init=" in out
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {(r["config"], r["seed"]) for r in rows} == {(c, s) for c in (0, 1) for s in (0, 1)}
    meta = json.loads((run / "sweep.json").read_text())
    assert meta["configs"] == [{"std_init": 0.05}, {"std_init": 0.2}]
    assert meta["metric"] == "best_fitness" and meta["of"] == "evolve"
    with (run / "report.csv").open() as f:
        table = list(csv.DictReader(f))
    assert sorted(r["rank"] for r in table) == ["1", "2"]
    first = (run / "report.json").read_text()
    (run / "report.png").unlink()
    assert main(["report", str(run)]) == 0  # redrawn from metrics.jsonl: the same report
    assert (run / "report.json").read_text() == first and (run / "report.png").is_file()
    # a folder holding a sweep is never overwritten
    line = _error(capsys, *args, *TINY_ES, "--out", str(run))
    assert "already holds a run" in line or "holds" in line
    # `realax resume` continues a sweep from its newest checkpoint: the metrics file then
    # equals, byte for byte, that of a sweep run to the end at once
    assert main(["resume", str(run), "--generations", "5"]) == 0
    assert "(sweep) from step 3" in capsys.readouterr().err
    assert main([*args, *TINY_ES, "--generations", "5", "--out", str(tmp_path / "at_once")]) == 0
    at_once = (tmp_path / "at_once" / "metrics.jsonl").read_bytes()
    assert (run / "metrics.jsonl").read_bytes() == at_once


@pytest.mark.slow
def test_evolve_sweep_of_open_es_sigma_and_learning_rate(capsys, tmp_path):
    # Open_ES, realax evolve's default: its std schedule and Adam's rate are traced
    run = tmp_path / "open_es"
    tiny = ["--generations", "3", "--popsize", "8", "--wandb", "off", "--out", str(run)]
    sets = ["--set", "sigma=0.02,0.3", "--set", "learning_rate=0.01,0.1"]
    assert main(["sweep", "evolve", "CartPole-v1", *sets, "--seeds", "1", *tiny]) == 0
    assert "4 configurations x 1 seeds = 4 runs in one program" in capsys.readouterr().out
    meta = json.loads((run / "sweep.json").read_text())
    assert meta["configs"][1] == {"sigma": 0.02, "learning_rate": 0.1}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last = {r["config"]: r["fitness_mean"] for r in rows if r["step"] == 3}
    assert len(set(last.values())) == 4  # each configuration evolved with its own numbers


@pytest.mark.slow
def test_ppo_sweep_command(tmp_path):
    """The command as a user types it (a subprocess, wandb offline), at a tiny size."""
    proc = _ok(
        realax(
            tmp_path, "sweep", "ppo", "CartPole-v1", "--set", "learning_rate=1e-3,1e-6",
            "--seeds", "2", "--steps", "1024", "--num-envs", "4", "--out", "sw",
        )
    )  # fmt: skip
    assert "learning_rate is swept, so PPO's rate is constant" in proc.stdout
    run = tmp_path / "sw"
    assert {"report.csv", "report_runs.csv", "report.json", "report.png"} <= {
        p.name for p in run.iterdir()
    }
    runs = sorted(p.name for p in (run / "wandb").iterdir() if "run-" in p.name)
    assert len(runs) == 2  # one offline wandb run per configuration
    doc = json.loads((run / "report.json").read_text())
    assert doc["metric"] == "episode_return" and len(doc["runs"]) == 4
