"""Silences the few known messages the suites print when imported or built, and only those.

- mujoco-mjx prints ``Failed to import warp: ...`` / ``Failed to import mujoco_warp: ...`` on
  stdout (Python ``print``) when the optional ``warp`` package is absent;
- brax warns (``UserWarning``) that it is "not actively being maintained" on every model load;
- mujoco's compiler writes ``WARNING: compiler attribute 'settotalmass' is deprecated ...``
  to the C-level stderr (file descriptor 2) when brax loads ``half_cheetah.xml``.

Everything else written meanwhile is passed on unchanged, after the block ends.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

_STDOUT_NOISE = re.compile(r"^Failed to import (warp|mujoco_warp):")
_STDERR_NOISE = re.compile(r"^WARNING: compiler attribute 'settotalmass' is deprecated")
_BRAX_UNMAINTAINED = r"Brax System, piplines and environments are not actively being maintained"


def _drop(text: str, noise: re.Pattern[str]) -> str:
    """``text`` without the lines matching ``noise`` (and the blank line mujoco adds after)."""
    kept: list[str] = []
    skip_blank = False
    for line in text.splitlines(keepends=True):
        if noise.match(line):
            skip_blank = True
            continue
        if skip_blank and not line.strip():
            skip_blank = False
            continue
        skip_blank = False
        kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def _python_stdout() -> Iterator[None]:
    out = sys.stdout
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        out.write(_drop(buffer.getvalue(), _STDOUT_NOISE))


@contextlib.contextmanager
def _fd_stderr() -> Iterator[None]:
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable file descriptor 2 (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = _drop(tmp.read().decode(errors="replace"), _STDERR_NOISE)
            if kept:
                os.write(2, kept.encode())


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Runs a block with the suites' known import and build messages removed.

    >>> with quiet():
    ...     print("Failed to import warp: No module named 'warp'")
    ...     print("kept")
    kept
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_BRAX_UNMAINTAINED, category=UserWarning)
        with _fd_stderr(), _python_stdout():
            yield
