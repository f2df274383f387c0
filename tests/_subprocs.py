"""Helpers shared by the tests that drive training scripts in subprocesses (multi-host runs,
kill and resume). ``tests/`` is on ``sys.path`` (``pythonpath`` in the pytest configuration),
so test modules import this as ``_subprocs``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for ``jax.distributed``'s coordinator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def collect(procs: list[subprocess.Popen], timeout: float = 400) -> list[dict]:
    """Wait for every process; each must exit 0 and print a ``RESULT <json>`` line. Returns the
    parsed results in process order; kills whatever is still running on failure."""
    deadline = time.monotonic() + timeout
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert p.returncode == 0, err[-4000:]
            line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")][-1]
            results.append(json.loads(line[len("RESULT ") :]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return results


def start(script: Path, *args: object) -> subprocess.Popen:
    """Run ``python script args...`` on the CPU platform, unbuffered, capturing its output."""
    return subprocess.Popen(
        [sys.executable, str(script), *(str(a) for a in args)],
        env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    """``(returncode, stdout, stderr)`` once ``proc`` has ended."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def steps_on_disk(ckpt_dir: Path) -> list[int]:
    """Finalised checkpoint directories (orbax renames a step's tmp dir when it is whole)."""
    if not ckpt_dir.is_dir():
        return []
    return sorted(int(p.name) for p in ckpt_dir.iterdir() if p.name.isdigit())


def load_arrays(path: Path) -> list[np.ndarray]:
    """The arrays a worker saved with ``np.savez(path, *arrays)``, in order."""
    with np.load(path) as f:
        return [f[f"arr_{i}"] for i in range(len(f.files))]
