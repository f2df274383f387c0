"""The real wandb package, offline: logged values read back from the run's files; fallback."""

import json
import socket
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest
import realax.log as rlog
import wandb


def _train(logger, toy, n=9, seeds=None):
    ToyState, _ = toy
    if seeds is None:
        return ToyState.train(logger, ToyState.create(key=jax.random.key(0)), n)
    return ToyState.train(logger, ToyState.seeds(seeds), n, seeds=True)


def _run_dir(offline_wandb: Path) -> Path:
    (run_dir,) = [p for p in (offline_wandb / "wandb").iterdir() if p.name.startswith("offline-")]
    return run_dir


def test_offline_run_holds_the_logged_values_in_order(tmp_path, toy, offline_wandb):
    logger = rlog.Logger(
        wandb_log=True, metrics_fn=rlog.default_grad_metrics, ckpt_dir=tmp_path / "ck"
    )
    logger.init(project="realax-log-test", config={"lr": 0.1, "depth": 2})
    assert logger.run.settings.mode == "offline"
    _train(logger, toy, n=9)
    logger.finish()

    run_dir = _run_dir(offline_wandb)
    history = rlog.read_wandb_history(run_dir)
    rows = rlog.read_metrics(tmp_path / "ck")
    assert [h["_step"] for h in history] == list(range(1, 10))
    assert [h["loss"] for h in history] == [r["loss"] for r in rows]
    assert [h["best_loss"] for h in history] == [r["best_loss"] for r in rows]
    assert json.loads((tmp_path / "ck" / "config.json").read_text()) == {"lr": 0.1, "depth": 2}
    assert rlog.read_wandb_config(run_dir) == {"lr": 0.1, "depth": 2}


def test_wandb_every_thins_the_wandb_rows_and_keeps_the_file_whole(tmp_path, toy, offline_wandb):
    logger = rlog.Logger(
        wandb_log=True, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path, wandb_every=3
    )
    logger.init(project="realax-log-test")
    _train(logger, toy, n=10)
    logger.finish()
    history = rlog.read_wandb_history(_run_dir(offline_wandb))
    rows = rlog.read_metrics(tmp_path)
    assert [r["step"] for r in rows] == list(range(1, 11))
    assert [h["_step"] for h in history] == [3, 6, 9]
    assert [h["loss"] for h in history] == [r["loss"] for r in rows if r["step"] % 3 == 0]
    with pytest.raises(ValueError, match="wandb_every must be a positive int"):
        rlog.Logger(wandb_log=True, metrics_fn=rlog.default_grad_metrics, wandb_every=0)


def test_vmapped_seeds_get_one_wandb_key_per_seed(tmp_path, toy, offline_wandb):
    logger = rlog.Logger(wandb_log=True, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path)
    logger.init(project="realax-log-test")
    _train(logger, toy, n=4, seeds=3)
    logger.finish()
    history = rlog.read_wandb_history(_run_dir(offline_wandb))
    rows = rlog.read_metrics(tmp_path)
    assert [h["_step"] for h in history] == [1, 2, 3, 4]
    for i in range(3):
        assert [h[f"seed{i}/loss"] for h in history] == [r["loss"] for r in rows if r["seed"] == i]


def _assert_no_wandb_run(logger, toy, tmp_path, offline_wandb):
    logger.init(project="realax-log-test")
    assert logger.run is None
    _train(logger, toy, n=3)
    logger.finish()
    assert [r["step"] for r in rlog.read_metrics(tmp_path)] == [1, 2, 3]
    assert not (offline_wandb / "wandb").exists()


def test_disabled_mode_writes_only_the_metrics_file(tmp_path, toy, offline_wandb):
    logger = rlog.Logger(
        wandb_log=True, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path, mode="disabled"
    )
    _assert_no_wandb_run(logger, toy, tmp_path, offline_wandb)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_falls_back_to_offline_with_one_warning(
    tmp_path, toy, offline_wandb, monkeypatch
):
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    logger = rlog.Logger(wandb_log=True, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path)
    with pytest.warns(RuntimeWarning, match="continuing with an OFFLINE run") as record:
        logger.init(project="realax-log-test", mode="online", settings={"init_timeout": 3.0})
    assert sum("OFFLINE" in str(w.message) for w in record) == 1
    assert logger.run.settings.mode == "offline"
    _train(logger, toy, n=5)
    logger.finish()
    history = rlog.read_wandb_history(_run_dir(offline_wandb))
    assert [h["_step"] for h in history] == [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(
        [h["loss"] for h in history], [r["loss"] for r in rlog.read_metrics(tmp_path)]
    )


def test_setup_wandb_formats_the_name_and_records_hyperparameters(offline_wandb):
    cfg = rlog.default_wandb_config()
    cfg.update(project="realax-log-test", name="lr{lr}_s{seed}", group="g{seed}", offline=True)
    run = rlog.setup_wandb({"lr": 0.5, "seed": 3}, **cfg)
    try:
        assert run.name.startswith("lr0.5_s3_")
        assert run.group == "g3"
        assert run.config["lr"] == 0.5
        assert run.settings.mode == "offline"
    finally:
        run.finish()
    with pytest.raises(ValueError, match="format field 'missing' is not a key of hyperparams"):
        rlog.setup_wandb({"lr": 1}, name="{missing}", offline=True)
    assert isinstance(wandb.Settings(), wandb.Settings)


def test_wandb_mode_env_disabled_needs_no_argument(tmp_path, toy, offline_wandb, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    logger = rlog.Logger(wandb_log=True, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path)
    _assert_no_wandb_run(logger, toy, tmp_path, offline_wandb)


def test_mode_argument_wins_over_wandb_mode_and_offline_never_dials_out(
    tmp_path, toy, offline_wandb, monkeypatch
):
    # WANDB_MODE says online and the server is unreachable, but mode="offline" is asked for:
    # an offline run starts directly, without trying the server (so no fallback warning).
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    logger = rlog.Logger(
        wandb_log=True, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path, mode="offline"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        logger.init(project="realax-log-test")
    assert logger.run.settings.mode == "offline"
    _train(logger, toy, n=3)
    logger.finish()
    history = rlog.read_wandb_history(_run_dir(offline_wandb))
    assert [h["_step"] for h in history] == [1, 2, 3]


def test_bad_wandb_mode_env_is_named(tmp_path, offline_wandb, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "cloud")
    logger = rlog.Logger(wandb_log=True, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path)
    with pytest.raises(ValueError, match=r"WANDB_MODE must be one of .*got 'cloud'"):
        logger.init(project="realax-log-test")


def test_setup_wandb_online_from_env_falls_back_offline_without_hanging(offline_wandb, monkeypatch):
    # online because of WANDB_MODE (no argument), server unreachable, short init timeout
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("WANDB_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    t0 = time.monotonic()
    with pytest.warns(RuntimeWarning, match="continuing with an OFFLINE run") as record:
        run = rlog.setup_wandb(
            {"lr": 0.1}, project="realax-log-test", name="fallback", settings={"init_timeout": 3.0}
        )
    try:
        assert run.settings.mode == "offline"
        assert run.config["lr"] == 0.1
        run.log({"loss": 1.0}, step=1)
    finally:
        run.finish()
    assert time.monotonic() - t0 < 60
    assert sum("OFFLINE" in str(w.message) for w in record) == 1
    (run_dir,) = [p for p in (offline_wandb / "wandb").iterdir() if p.name.startswith("offline-")]
    # wandb's service finishes writing the run file shortly after run.finish() returns
    deadline = time.monotonic() + 30
    while not rlog.read_wandb_history(run_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [h["loss"] for h in rlog.read_wandb_history(run_dir)] == [1.0]
