"""Running each variant in its own subprocess and describing the machine.

``run_variant`` runs one row to its end. ``run_interleaved`` runs a set of rows that are
compared with each other, each in its own process (so each keeps its own peak memory and its
own environment), and paces their warm calls round by round: each process compiles and makes
its cold call alone, then round r asks every process for one warm call (the order rotating
by one process per round) before round r + 1, so load from other jobs falls on all alike.
The paced processes are any variant whose timing goes through ``_common.measure``, peers in
their own environments included.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from benchmarks._common import READY_MARKER, RESULT_MARKER, SERVE_ENV, TIME_MARKER

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


def _command(row: dict[str, Any]) -> tuple[list[str] | None, str | None]:
    """The command line of ``row``'s process, or ``(None, why it cannot run)``."""
    if row.get("pending"):
        return None, row["pending"]
    if row.get("peer"):
        ok, python = peer_python(row["peer"])
        if not ok:
            return None, python
        script = PEERS / row["peer"] / row["script"]
        return [python, str(script), row["func"], json.dumps(row["cfg"])], None
    cmd = [sys.executable, "-m", "benchmarks._worker", row["module"], row["func"]]
    return [*cmd, json.dumps(row["cfg"])], None


def _environ(row: dict[str, Any], serve: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop(SERVE_ENV, None)
    if serve:
        env[SERVE_ENV] = "1"
    env.update(row.get("env") or {})
    return env


def _finish(row: dict[str, Any], proc: subprocess.Popen, stdout: str, stderr: str,
            usage: Any, timed_out: str | None, verbose: bool) -> None:  # fmt: skip
    """Fill ``row``'s result, ok, error and peak memory from its finished process."""
    row["peak_rss_mb"] = usage.ru_maxrss / 1024.0 if usage else None  # KiB on Linux
    # CPU seconds of the process (user + system): what a row costs whatever the load
    row["cpu_s"] = usage.ru_utime + usage.ru_stime if usage else None
    if verbose and stderr.strip():
        sys.stderr.write(stderr[-3000:])
    result = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER) :])
    if timed_out:
        row.update(ok=False, error=timed_out, result=result or {})
    elif proc.returncode or result is None:
        tail = "\n".join((stderr or stdout).strip().splitlines()[-15:])
        row.update(ok=False, error=f"exit {proc.returncode}: {tail}", result=result or {})
    else:
        row.update(ok=True, error=None, result=result)


def _reap(proc: subprocess.Popen, deadline: float | None) -> tuple[Any, bool]:
    """Wait for ``proc`` (killing it past ``deadline``): ``(rusage, killed)``."""
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            return usage, True
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage, False


def run_variant(row: dict[str, Any], timeout: float, verbose: bool = False) -> dict[str, Any]:
    """Run ``row`` (module, func, cfg, optional peer script / env vars) in a subprocess.

    Fills ``row["result"]``, ``row["ok"]``, ``row["error"]``, ``row["peak_rss_mb"]`` (the
    subprocess's maximum resident set size, from ``os.wait4``) and ``row["wall_s"]``.
    """
    cmd, why = _command(row)
    if cmd is None:
        row.update(ok=False, error=why, result={}, peak_rss_mb=None, wall_s=0.0)
        return row
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=_environ(row), cwd=ROOT)
        usage, killed = _reap(proc, t0 + timeout)
        row["wall_s"] = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    why = f"timed out after {timeout:.0f}s" if killed else None
    _finish(row, proc, stdout, stderr, usage, why, verbose)
    return row


class _Paced:
    """One row's process whose ``measure`` is paced through its standard input."""

    def __init__(self, row: dict[str, Any], cmd: list[str]):
        self.row, self.t0 = row, time.perf_counter()
        self.err: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in finish)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, env=_environ(row, serve=True), cwd=ROOT,
                                     text=True, bufsize=1)  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stdout: list[str] = []
        self.live = True  # still waiting for "run" / "stop"
        self.eof = False  # its standard output has ended
        self.timed_out: str | None = None
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, marker: str, timeout: float) -> bool:
        """Read lines until one starts with ``marker`` (True) or the process ends (False)."""
        deadline = time.perf_counter() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.perf_counter(), 0.01))
            except queue.Empty:
                self.timed_out = f"timed out after {timeout:.0f}s waiting for {marker.strip()}"
                self.proc.kill()
                self.live = False
                return False
            if line is None:
                self.live, self.eof = False, True
                return False
            self.stdout.append(line)
            if line.startswith(marker):
                return True

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.live = False

    def finish(self, timeout: float, verbose: bool) -> None:
        if self.live:
            self.send("stop")
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        usage, killed = _reap(self.proc, time.perf_counter() + timeout)
        if killed and not self.timed_out:
            self.timed_out = f"timed out after {timeout:.0f}s finishing"
        while not self.eof and (line := self.lines.get()) is not None:
            self.stdout.append(line)
        self.row["wall_s"] = time.perf_counter() - self.t0
        self.err.seek(0)
        _finish(self.row, self.proc, "".join(self.stdout), self.err.read(), usage,
                self.timed_out, verbose)  # fmt: skip
        self.err.close()


def rounds_of(row: dict[str, Any]) -> int:
    """Warm calls the parent asks of ``row`` (``row["rounds"]``, else ``cfg["repeats"]``)."""
    return int(row.get("rounds", row.get("cfg", {}).get("repeats", 1)))


def run_interleaved(rows: list[dict[str, Any]], timeout: float, verbose: bool = False) -> None:
    """Run ``rows`` (variants compared with each other), each in its own process, with their
    warm calls interleaved round by round (see the module docstring).

    Each process makes its cold call alone, one after another in ``rows`` order; then round r
    asks every row that wants more than r warm calls (``rounds_of``) for one, the order
    rotating by one row per round. ``timeout`` bounds each wait (the cold call, one warm call,
    the end). A row whose variant does not go through ``measure`` simply runs to its end.
    Fills every row as ``run_variant`` does; ``row["result"]["run_times_s"]`` is in round
    order, so ``_common.ratio_stats`` of two rows compares calls made one after the other.
    """
    paced: list[_Paced] = []
    for row in rows:
        cmd, why = _command(row)
        if cmd is None:
            row.update(ok=False, error=why, result={}, peak_rss_mb=None, wall_s=0.0)
            continue
        p = _Paced(row, cmd)
        p.wait_for(READY_MARKER, timeout)
        paced.append(p)
    for r in range(max((rounds_of(p.row) for p in paced), default=0)):
        k = r % len(paced)
        for p in paced[k:] + paced[:k]:
            if p.live and rounds_of(p.row) > r:
                p.send("run")
                p.wait_for(TIME_MARKER, timeout)
    for p in paced:
        p.finish(timeout, verbose)


def run_batch(rows: list[dict[str, Any]], timeout: float, verbose: bool = False) -> None:
    """Run ``rows`` (workspace variants with the same ``env``, no peers) one after another in
    ONE process (``_worker --batch``): one JAX import for all, for ``--quick`` smoke runs whose
    timings mean nothing. Each row gets its own result; ``peak_rss_mb``, ``cpu_s`` and
    ``wall_s`` are the whole process's, and ``batched`` is set. ``timeout`` is per row."""
    items = [[r["module"], r["func"], r["cfg"]] for r in rows]
    proxy = {"env": rows[0].get("env"), "module": "", "func": "", "cfg": None}
    cmd = [sys.executable, "-m", "benchmarks._worker", "--batch", json.dumps(items)]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=_environ(proxy), cwd=ROOT)
        usage, killed = _reap(proc, t0 + timeout * len(rows))
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if verbose and stderr.strip():
        sys.stderr.write(stderr[-3000:])
    results = {}
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            res = json.loads(line[len(RESULT_MARKER) :])
            results[res.pop("_index")] = res
    tail = "\n".join((stderr or stdout).strip().splitlines()[-15:])
    for i, row in enumerate(rows):
        row.update(wall_s=wall, peak_rss_mb=usage.ru_maxrss / 1024.0, batched=True,
                   cpu_s=usage.ru_utime + usage.ru_stime)  # fmt: skip
        res = results.get(i)
        if res is None:
            why = f"timed out after {timeout * len(rows):.0f}s" if killed else "no result"
            row.update(ok=False, error=f"{why} (exit {proc.returncode}): {tail}", result={})
        elif "_error" in res:
            row.update(ok=False, error=res["_error"], result={})
        else:
            row.update(ok=True, error=None, result=res)
