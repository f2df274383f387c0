"""Running each variant in its own subprocess and describing the machine."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import RESULT_MARKER

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "benchmarks" / "peers"
_peer_ready: dict[str, tuple[bool, str]] = {}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    import importlib.metadata as md

    versions = {}
    for dist in ("jax", "jaxlib", "evosax", "gymnax", "brax", "flax", "optax"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    import jax

    devices = jax.devices()
    mem_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "platform": devices[0].platform,
        "device_kind": devices[0].device_kind,
        "python": platform.python_version(),
        "versions": versions,
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "loadavg_start": os.getloadavg(),
    }


def machine_slug(info: dict[str, Any]) -> str:
    cpu = "".join(c if c.isalnum() else "-" for c in info["cpu"].lower()).strip("-")
    while "--" in cpu:
        cpu = cpu.replace("--", "-")
    return f"{cpu}-{info['cores']}core-{info['platform']}"


def peer_python(peer: str) -> tuple[bool, str]:
    """Sync a peer's own environment (``benchmarks/peers/<peer>``, pinned by its uv.lock) and
    return ``(ok, python path or error)``."""
    if peer not in _peer_ready:
        project = PEERS / peer
        proc = subprocess.run(
            ["uv", "sync", "--locked", "--quiet", "--project", str(project)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        if proc.returncode:
            _peer_ready[peer] = (
                False,
                f"uv sync of benchmarks/peers/{peer} failed: "
                + (proc.stderr or proc.stdout)[-2000:],
            )
        else:
            _peer_ready[peer] = (True, str(project / ".venv" / "bin" / "python"))
    return _peer_ready[peer]


def run_variant(row: dict[str, Any], timeout: float, verbose: bool = False) -> dict[str, Any]:
    """Run ``row`` (module, func, cfg, optional peer script / env vars) in a subprocess.

    Fills ``row["result"]``, ``row["ok"]``, ``row["error"]``, ``row["peak_rss_mb"]`` (the
    subprocess's maximum resident set size, from ``os.wait4``) and ``row["wall_s"]``.
    """
    cfg = json.dumps(row["cfg"])
    if row.get("pending"):
        row.update(ok=False, error=row["pending"], result={}, peak_rss_mb=None, wall_s=0.0)
        return row
    if row.get("peer"):
        ok, python = peer_python(row["peer"])
        if not ok:
            row.update(ok=False, error=python, result={})
            return row
        script = PEERS / row["peer"] / row["script"]
        cmd = [python, str(script), row["func"], cfg]
    else:
        cmd = [sys.executable, "-m", "benchmarks._worker", row["module"], row["func"], cfg]
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(row.get("env") or {})
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        status, usage, timed_out = None, None, False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - t0 > timeout:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                timed_out = True
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        row["wall_s"] = time.perf_counter() - t0
        row["peak_rss_mb"] = usage.ru_maxrss / 1024.0  # KiB on Linux
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if verbose and stderr.strip():
        sys.stderr.write(stderr[-3000:])
    result = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER) :])
    if timed_out:
        row.update(ok=False, error=f"timed out after {timeout:.0f}s", result=result or {})
    elif proc.returncode or result is None:
        tail = "\n".join((stderr or stdout).strip().splitlines()[-15:])
        row.update(ok=False, error=f"exit {proc.returncode}: {tail}", result=result or {})
    else:
        row.update(ok=True, error=None, result=result)
    return row
