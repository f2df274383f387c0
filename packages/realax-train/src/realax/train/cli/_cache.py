"""JAX's persistent compilation cache for the command line, on by default.

A command compiles its programs (initialisation, evaluation, rendering, the run itself); the
second run of the same configuration loads them from the cache instead of compiling them again.
Programs with host callbacks (the run's loop, which logs from compiled code) are never cached
by JAX, so the saving is the other programs' compile time.

Where the cache lives, first match wins:

- ``REALAX_COMPILE_CACHE=off``: no persistent cache; ``REALAX_COMPILE_CACHE=DIR``: in DIR;
- JAX's own setting (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``), left as it is;
- ``$XDG_CACHE_HOME/realax/jax``, else ``~/.cache/realax/jax``: at most 1 GiB when the
  ``filelock`` package is installed (JAX then evicts the least recently used entries beyond
  that, under a file lock), unbounded without it.

Example:
    >>> report({"programs": 3, "seconds": 2.0, "hits": 2, "dir": "/tmp/c"})
    '3 programs in 2.0 s, 2 of them loaded from the compilation cache (/tmp/c)'
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENV = "REALAX_COMPILE_CACHE"
MAX_BYTES = 1 << 30
_COMPILE = "/jax/core/compile/backend_compile_duration"
_HIT = "/jax/compilation_cache/cache_hits"
_counts = {"programs": 0, "seconds": 0.0, "hits": 0}
_state: dict[str, Any] = {"listening": False, "dir": None}


def default_dir() -> Path:
    """``$XDG_CACHE_HOME/realax/jax``, else ``~/.cache/realax/jax``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "realax" / "jax"


def _on_duration(event: str, duration_secs: float, **_: str | int) -> None:
    if event == _COMPILE:
        _counts["programs"] += 1
        _counts["seconds"] += duration_secs


def _on_event(event: str, **_: str | int) -> None:
    if event == _HIT:
        _counts["hits"] += 1


def _has_filelock() -> bool:
    import importlib.util

    return importlib.util.find_spec("filelock") is not None


def _jax_dir(jax: Any) -> str | None:
    return jax.config.jax_compilation_cache_dir  # JAX_COMPILATION_CACHE_DIR, or set in code


def enable() -> str | None:
    """Turn the cache on (unless switched off) and start counting this command's compiles.

    Returns the cache directory, or None when the cache is off. Takes effect when called before
    the process compiles its first program (as the command does).
    """
    import jax

    if not _state["listening"]:
        jax.monitoring.register_event_duration_secs_listener(_on_duration)
        jax.monitoring.register_event_listener(_on_event)
        _state["listening"] = True
    _counts.update(programs=0, seconds=0.0, hits=0)
    wanted = os.environ.get(ENV, "").strip()
    directory: str | None
    if wanted.lower() == "off":
        jax.config.update("jax_enable_compilation_cache", False)
        directory = None
    elif wanted or not _jax_dir(jax):
        directory = str(Path(wanted).expanduser() if wanted else default_dir())
        jax.config.update("jax_compilation_cache_dir", directory)
        if wanted:
            jax.config.update("jax_enable_compilation_cache", True)
        if "JAX_COMPILATION_CACHE_MAX_SIZE" not in os.environ and _has_filelock():
            # JAX's eviction locks the directory with filelock, and refuses to run without it
            jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    else:
        directory = _jax_dir(jax)
    if directory is not None and "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        # JAX's default (1 s) would skip nearly every program the command can cache
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    _state["dir"] = directory
    return directory


def enabled() -> bool:
    """Whether :func:`enable` ran in this process (its counts are then meaningful)."""
    return bool(_state["listening"])


def stats() -> dict[str, Any]:
    """Programs compiled (or loaded) since :func:`enable`, their seconds, the cache hits."""
    return {**_counts, "seconds": round(_counts["seconds"], 2), "dir": _state["dir"]}


def report(s: dict[str, Any]) -> str:
    """One line for the run's summary table, from :func:`stats`."""
    line = f"{s['programs']} programs in {s['seconds']:.1f} s"
    if s["dir"] is None:
        return f"{line} (compilation cache off)"
    return f"{line}, {s['hits']} of them loaded from the compilation cache ({s['dir']})"
