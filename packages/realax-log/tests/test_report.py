"""realax.log.report: the tables and the picture of a sweep, from arrays and from a run folder."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import realax.log as rlog
from realax.log import stats

CONFIGS = [{"learning_rate": lr} for lr in (1e-4, 3e-4, 1e-3, 1e-6)]
STEPS = np.arange(0, 5000, 100)


def _curves(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    speed = np.array([0.5, 1.0, 1.6, 0.01])[:, None, None]
    clean = 500 * (1 - np.exp(-speed * STEPS[None, None, :] / 1500))
    return clean + rng.normal(0, 20, (4, 6, len(STEPS)))


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    curves = _curves()
    curves[..., 1::5] = np.nan  # steps where the metric was not measured
    rep = rlog.report(curves, out, configs=CONFIGS, metric="episode_return", steps=STEPS, reps=400)
    return out, curves, rep


def test_files_and_ranking(made):
    out, _, rep = made
    assert {p.name for p in rep.files.values()} == {
        "report.csv", "report_runs.csv", "report.json", "report.png"
    }  # fmt: skip
    assert rep.files["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rep.best == 2 and rep.configs[rep.best] == {"learning_rate": 1e-3}
    assert [row["rank"] for row in rep.table] == [3, 2, 1, 4]  # the bad rate 1e-6 last
    assert rep.table[3]["p_best_better"] == 1.0 and rep.table[2]["p_best_better"] == 0.5


def test_table_statistics_are_those_of_realax_log_stats(made):
    _, curves, rep = made
    final = rlog._report.forward_fill(curves)[:, :, -1]
    for c, row in enumerate(rep.table):
        assert row["final_iqm"] == stats.iqm(final[c])
        assert row["final_median"] == stats.median(final[c])
        assert row["final_mean"] == stats.mean(final[c])
        assert row["best_iqm"] == stats.iqm(np.nanmax(curves[c], axis=-1))
        for name in ("mean", "median", "iqm"):
            assert row[f"final_{name}_lo"] <= row[f"final_{name}"] <= row[f"final_{name}_hi"]
        assert row["learning_rate"] == CONFIGS[c]["learning_rate"]
        assert row["n_seeds"] == 6


def test_csv_and_json_hold_the_same_tables(made):
    out, _, rep = made
    with (out / "report.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [float(r["final_iqm"]) for r in rows] == [r["final_iqm"] for r in rep.table]
    assert rows[0]["label"] == "learning_rate=0.0001"
    with (out / "report_runs.csv").open() as f:
        runs = list(csv.DictReader(f))
    assert len(runs) == 4 * 6 and runs[7]["config"] == "1" and runs[7]["seed"] == "1"
    doc = json.loads((out / "report.json").read_text())
    assert doc["metric"] == "episode_return" and doc["best"] == 2
    assert doc["table"] == json.loads(json.dumps(rep.table))
    assert doc["configs"] == CONFIGS and len(doc["runs"]) == 24


def test_same_inputs_same_report(made, tmp_path):
    _, curves, rep = made
    again = rlog.report(curves, tmp_path, configs=CONFIGS, steps=STEPS, reps=400, plot=False)
    assert again.table == rep.table and "png" not in again.files


def test_lower_is_better_reverses_the_ranking(tmp_path):
    rep = rlog.report(_curves(), tmp_path, higher_is_better=False, reps=100, plot=False)
    assert rep.best == 3 and rep.configs[0] == {"config": 0}


def test_forward_fill():
    a = np.array([[np.nan, 1.0, np.nan, 3.0, np.nan]])
    np.testing.assert_array_equal(rlog._report.forward_fill(a), [[np.nan, 1.0, 1.0, 3.0, 3.0]])


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"curves must be a non-empty \(n_configs"):
        rlog.report(np.zeros((2,)), tmp_path)
    with pytest.raises(ValueError, match=r"configs has 1 entries, the curves 4"):
        rlog.report(_curves(), tmp_path, configs=CONFIGS[:1])
    with pytest.raises(ValueError, match=r"out must name the report's folder"):
        rlog.report(_curves())
    with pytest.raises(FileNotFoundError, match=r"not a sweep's run folder"):
        rlog.report(tmp_path)


def test_a_sweep_result_like_object(tmp_path):
    class Result:  # the attributes of realax.train.SweepResult that report reads
        configs = CONFIGS
        metric = "loss"
        maximize = False
        curves = {"loss": _curves(), "other": np.zeros((4, 6, len(STEPS)))}

    rep = rlog.report(Result(), tmp_path, reps=100, plot=False)
    assert rep.metric == "loss" and rep.best == 3 and rep.configs == CONFIGS
