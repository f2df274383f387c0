"""``realax evolve`` leaves rollout.gif and a wandb.Video; ``realax render RUN``; a renderer
that cannot work here stops the command before training."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

SCRIPT = Path(sys.executable).with_name("realax")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "realax.train.cli"]
TINY = ["--generations", "2", "--popsize", "8", "--width", "8", "--depth", "1"]


def _frames(path: Path) -> int:
    with Image.open(path) as image:
        return image.n_frames


@pytest.mark.slow
def test_evolve_leaves_rollout_gif_and_a_wandb_video(tmp_path, capsys):
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "MPLBACKEND": "Agg"}
    args = [*COMMAND, "evolve", "CartPole-v1", *TINY, "--eval-episodes", "2", "--out", "run"]
    proc = subprocess.run(
        args, cwd=tmp_path, capture_output=True, text=True, timeout=900, env={**_os_env(), **env}
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    run = tmp_path / "run"
    gif = run / "rollout.gif"
    assert _frames(gif) >= 2 and "rollout.gif" in proc.stdout
    # the same video is in the (one) offline wandb run
    (wandb_run,) = (run / "wandb").glob("offline-run-*")
    assert list((wandb_run / "files" / "media" / "videos").glob("rollout_*.gif"))
    assert "in the wandb run as 'rollout'" in proc.stdout

    from realax.train.cli import main

    out = tmp_path / "again.gif"
    assert main(["render", str(run), "--out", str(out), "--max-steps", "3"]) == 0
    assert 2 <= _frames(out) <= 4 and str(out) in capsys.readouterr().out


@pytest.mark.skipif(importlib.util.find_spec("pygame") is not None, reason="pygame installed")
def test_a_missing_renderer_stops_evolve_before_training(tmp_path, capsys):
    from realax.train.cli import main

    out = tmp_path / "acrobot"
    status = main(["evolve", "Acrobot-v1", *TINY, "--wandb", "off", "--out", str(out)])
    err = capsys.readouterr().err
    assert status == 1 and "realax-tasks[gymnax-render]" in err and "--no-render" in err
    assert not out.exists()  # nothing trained, no run folder


def _os_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
