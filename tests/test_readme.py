"""Every ```python block of the root README and of each package README runs as written.

Each README is executed block by block, in order, in one fresh interpreter (later blocks of a
README may use names defined by earlier ones), so the documentation cannot drift from the code.
A block that is not meant to run on its own is written as ```text or ```bash instead.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", *sorted(ROOT.glob("packages/*/README.md"))]
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)


def python_blocks(readme: Path) -> list[str]:
    return BLOCK.findall(readme.read_text())


def test_readme_blocks_are_found():
    # The root README has a runnable example; if the pattern broke, every test below would
    # silently check nothing.
    assert python_blocks(ROOT / "README.md"), "no ```python block found in README.md"


@pytest.mark.parametrize("readme", READMES, ids=lambda p: str(p.relative_to(ROOT)))
def test_readme_python_blocks_run(readme: Path, tmp_path: Path):
    blocks = python_blocks(readme)
    assert blocks, f"{readme.relative_to(ROOT)} has no ```python example"
    script = "\n\n".join(
        f"# --- block {i + 1} of {readme.name}\n{block}" for i, block in enumerate(blocks)
    )
    path = tmp_path / "readme_blocks.py"
    path.write_text(script)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (
        f"a python block of {readme.relative_to(ROOT)} failed:\n{proc.stdout[-3000:]}\n"
        f"{proc.stderr[-5000:]}"
    )
