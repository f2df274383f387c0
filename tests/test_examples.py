"""Every script in examples/ runs to completion in its small ``--quick`` configuration.

Each example checks its own result (it exits non-zero when, say, the loss did not decrease), so
a passing run means the example still works, not only that it imports. The scripts run in a
temporary folder with ``WANDB_MODE=offline``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_the_examples_of_the_original_readme_exist():
    names = {p.name for p in EXAMPLES}
    expected = {
        "quickstart.py",
        "es_rastrigin.py",
        "grad_rastrigin.py",
        "evolve_shorthand.py",
        "brax_es_logging.py",
    }
    assert expected <= names, sorted(expected - names)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_quick(script: Path, tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(WANDB_MODE="offline", WANDB_DIR=str(tmp_path), WANDB_SILENT="true", MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, str(script), "--quick"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"{script.name} --quick failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n"
        f"{proc.stderr[-5000:]}"
    )
    assert proc.stdout.strip(), f"{script.name} printed nothing"
