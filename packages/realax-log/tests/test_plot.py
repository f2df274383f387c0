"""Learning-curve plots from metrics.jsonl."""

import subprocess
import sys

import jax
import matplotlib.image
import pytest
import realax.log as rlog


def _log_run(tmp_path, toy, seeds=None):
    ToyState, _ = toy
    logger = rlog.Logger(wandb_log=False, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path)
    if seeds is None:
        ToyState.train(logger, ToyState.create(key=jax.random.key(0)), 20)
    else:
        ToyState.train(logger, ToyState.seeds(seeds), 20, seeds=True)
    logger.finish()


def test_plot_writes_a_png_with_one_panel_per_metric(tmp_path, toy):
    _log_run(tmp_path, toy)
    out = rlog.plot(tmp_path)
    assert out == tmp_path / "learning_curves.png"
    image = matplotlib.image.imread(out)
    # loss, best_loss: two panels side by side (4.2 in wide each at 100 dpi).
    assert image.shape[:2] == (300, 840)
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_plot_selected_metric_per_seed_to_a_chosen_path(tmp_path, toy):
    _log_run(tmp_path, toy, seeds=3)
    out = rlog.plot(tmp_path / "metrics.jsonl", metrics=["loss"], out=tmp_path / "p" / "c.png")
    assert matplotlib.image.imread(out).shape[:2] == (300, 420)
    with pytest.raises(ValueError, match=r"metrics \['nope'\] are not numeric scalars"):
        rlog.plot(tmp_path, metrics=["nope"])


def test_plot_without_matplotlib_names_the_extra(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import realax.log as rlog\n"
        "try:\n"
        f"    rlog.plot({str(tmp_path)!r})\n"
        "except ImportError as e:\n"
        "    print('IMPORT-ERROR:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'IMPORT-ERROR: realax.log.plot needs matplotlib: pip install "realax-log[plot]"' in (
        out.stdout
    )


def _write_rows(path, n_metrics, steps=60):
    """A metrics file like a DQN run's: `episode_return` only every 10th step (NaN between)."""
    import json

    lines = []
    for s in range(1, steps + 1):
        row = {"step": s, "episode_return": float(s) if s % 10 == 0 else None}
        row.update({f"m{i}": float(s * (i + 1)) for i in range(n_metrics - 1)})
        lines.append(json.dumps(row))
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def _ink(image):
    """How much of an image region is not white."""
    return float((image[..., :3] < 0.9).any(axis=-1).mean())


def test_metric_separated_by_nan_is_drawn_through_its_finite_points(tmp_path):
    _write_rows(tmp_path, 1)
    png = rlog.plot(tmp_path, metrics=["episode_return"], out=tmp_path / "a.png")
    (tmp_path / "blank").mkdir()
    (tmp_path / "blank" / "metrics.jsonl").write_text(
        "".join(f'{{"step": {s}, "episode_return": null}}\n' for s in range(1, 61))
    )
    blank = rlog.plot(tmp_path / "blank", metrics=["episode_return"], out=tmp_path / "b.png")
    image, empty = matplotlib.image.imread(png), matplotlib.image.imread(blank)
    # the same panel with and without the six finite points: they are drawn
    inner = (slice(60, 240), slice(80, 400))
    assert _ink(image[inner]) > _ink(empty[inner]) + 0.01


def test_title_labels_and_no_empty_grid_cell(tmp_path):
    _write_rows(tmp_path, 5)  # five panels: 3 on the first row, 2 widened on the second
    titled = matplotlib.image.imread(
        rlog.plot(tmp_path, out=tmp_path / "t.png", title="CartPole-v1, DQN")
    )
    assert titled.shape[:2] == (600, 1260)
    # the title is drawn centred above the panels, nothing else is up there
    assert _ink(titled[0:20, 540:720]) > 0.03 and _ink(titled[0:20, 100:300]) == 0.0
    bottom_right = titled[320:580, 900:1250]  # where an empty cell would be
    assert _ink(bottom_right) > 0.02
    four = matplotlib.image.imread(rlog.plot(tmp_path, metrics=["m0", "m1", "m2", "m3"]))
    assert four.shape[:2] == (600, 840)  # 2 x 2
