"""A sweep's logging: the config column, sweep.json, wandb per configuration or one table."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import pytest
import realax.log as rlog
from jax import lax

CONFIGS = [{"learning_rate": 0.1}, {"learning_rate": 0.3}]


def _nested(logger, toy, n=4):
    """2 configurations x 3 seeds as two nested vmaps."""
    ToyState, toy_step = toy

    def run(state):
        def body(state, _):
            state, metrics = toy_step(state)
            logger.log(state, metrics)
            return state, None

        return lax.scan(body, state, None, length=n)[0]

    states = jax.vmap(lambda _: ToyState.seeds(3))(jax.numpy.arange(2))
    return jax.jit(jax.vmap(jax.vmap(run)))(states)


def test_flat_members_get_config_and_seed_columns(tmp_path, toy):
    ToyState, _ = toy
    logger = rlog.Logger(
        wandb_log=False, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path,
        sweep_configs=CONFIGS,
    )  # fmt: skip
    ToyState.train(logger, ToyState.seeds(6), 3, seeds=True)  # members config-major
    logger.finish()
    rows = rlog.read_metrics(tmp_path)
    # read back sorted by (config, seed, step)
    assert [(r["config"], r["seed"], r["step"]) for r in rows[:7]] == [
        (0, 0, 1), (0, 0, 2), (0, 0, 3), (0, 1, 1), (0, 1, 2), (0, 1, 3), (0, 2, 1)
    ]  # fmt: skip
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["config"] for line in lines[:6]] == [0, 0, 0, 1, 1, 1]
    assert len(rows) == 18
    assert json.loads((tmp_path / "sweep.json").read_text()) == {"configs": CONFIGS}
    sweep = rlog.read_sweep(tmp_path, "loss")
    assert sweep["curves"].shape == (2, 3, 3) and sweep["configs"] == CONFIGS
    assert sweep["curves"][1, 2, 0] == rows[-3]["loss"]
    rep = rlog.report(tmp_path, metric="loss", higher_is_better=False, reps=100, plot=False)
    assert (tmp_path / "report.csv").exists() and len(rep.runs) == 6


def test_nested_vmaps_and_wandb_run_per_config(tmp_path, toy, offline_wandb):
    logger = rlog.Logger(
        wandb_log=True, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path,
        sweep_configs=CONFIGS, sweep_wandb="per_config",
    )  # fmt: skip
    logger.init(project="realax-log-test", config={"env": "toy"}, name="lrsweep")
    assert len(logger.runs) == 2 and logger.run is logger.runs[0]
    run_dirs = [run.settings.sync_dir for run in logger.runs]
    groups = [run.group for run in logger.runs]
    _nested(logger, toy)
    logger.finish()
    rows = rlog.read_metrics(tmp_path)
    assert {(r["config"], r["seed"]) for r in rows} == {(c, s) for c in (0, 1) for s in range(3)}
    assert groups == ["lrsweep", "lrsweep"]
    for c, run_dir in enumerate(run_dirs):
        assert rlog.read_wandb_config(run_dir) == {"env": "toy", **CONFIGS[c], "sweep_config": c}
        history = rlog.read_wandb_history(run_dir)
        assert [h["_step"] for h in history] == [1, 2, 3, 4]
        for s in range(3):
            mine = [r["loss"] for r in rows if r["config"] == c and r["seed"] == s]
            assert [h[f"seed{s}/loss"] for h in history] == mine


def test_one_wandb_run_with_a_table(tmp_path, toy, offline_wandb):
    ToyState, _ = toy
    logger = rlog.Logger(
        wandb_log=True, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path,
        sweep_configs=CONFIGS, sweep_wandb="table",
    )  # fmt: skip
    logger.init(project="realax-log-test")
    (run,) = logger.runs
    run_dir = run.settings.sync_dir
    files_dir = run.settings.files_dir
    ToyState.train(logger, ToyState.seeds(6), 3, seeds=True)
    logger.finish()
    rows = rlog.read_metrics(tmp_path)
    history = rlog.read_wandb_history(run_dir)
    steps = [h for h in history if "config1/seed2/loss" in h]
    assert [h["config1/seed2/loss"] for h in steps] == [
        r["loss"] for r in rows if (r["config"], r["seed"]) == (1, 2)
    ]
    (table_file,) = list((Path(files_dir) / "media" / "table").glob("*.json"))
    table = json.loads(table_file.read_text())
    assert table["columns"][:3] == ["config", "seed", "learning_rate"]
    last = {(r["config"], str(r["seed"])): r for r in rows if r["step"] == 3}
    assert len(table["data"]) == 6
    for row in table["data"]:
        record = dict(zip(table["columns"], row, strict=True))
        assert record["loss"] == last[(record["config"], record["seed"])]["loss"]
        assert record["learning_rate"] == CONFIGS[record["config"]]["learning_rate"]


def test_bad_sweep_arguments_and_shapes(tmp_path, toy):
    ToyState, _ = toy
    fn = rlog.default_grad_metrics
    with pytest.raises(ValueError, match=r"sweep_wandb must be one of \('per_config', 'table'\)"):
        rlog.Logger(wandb_log=False, metrics_fn=fn, log_dir=tmp_path, sweep_configs=CONFIGS,
                    sweep_wandb="runs")  # fmt: skip
    with pytest.raises(ValueError, match=r"sweep_configs must be a non-empty list"):
        rlog.Logger(wandb_log=False, metrics_fn=fn, log_dir=tmp_path, sweep_configs=[])
    with pytest.raises(TypeError, match=r"sweep_configs\[1\] must be a dict"):
        rlog.Logger(wandb_log=False, metrics_fn=fn, log_dir=tmp_path, sweep_configs=[{}, 0.1])
    assert not list(tmp_path.iterdir())  # nothing written before the errors
    logger = rlog.Logger(wandb_log=False, metrics_fn=fn, log_dir=tmp_path, sweep_configs=CONFIGS)
    ToyState.train(logger, ToyState.seeds(5), 2, seeds=True)  # 5 members, 2 configurations
    with pytest.raises(RuntimeError, match="error"):
        logger.finish()
