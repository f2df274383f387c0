"""An on-disk cache of what each suite registers, per suite and suite version.

One JSON file per suite version, ``<cache>/realax/tasks-v<FORMAT>-<suite>-<version>.json``
(``<cache>`` is ``$XDG_CACHE_HOME``, else ``~/.cache``), holding ``{"names": [...],
"envs": {name: {...}}}``. Writes are atomic (a temporary file in the same folder, then
``os.replace``) under an exclusive ``flock`` of a lock file beside it, so two processes
filling the cache at once never leave a torn file nor drop each other's entries; readers
need no lock. A cache that cannot be written (read-only home) only costs speed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: atomic replace only
    fcntl = None  # type: ignore[assignment]

#: Bumped whenever what is stored (or how observations are flattened) changes.
FORMAT = 1


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/realax`` (default ``~/.cache/realax``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "realax"


def cache_path(suite: str, version: str) -> Path:
    """The cache file of one suite version."""
    return cache_dir() / f"tasks-v{FORMAT}-{suite}-{version}.json"


def read(path: Path) -> dict[str, Any]:
    """The cached data, or ``{}`` when the file is missing or unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path.with_suffix(".lock"), "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def update(path: Path, names: list[str] | None = None, env: tuple[str, Any] | None = None):
    """Stores the suite's ``names`` and/or one ``(name, entry)`` of ``envs``, atomically."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path):
            data = read(path)
            if names is not None:
                data["names"] = list(names)
            if env is not None:
                data.setdefault("envs", {})[env[0]] = env[1]
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, sort_keys=True)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
    except OSError:
        pass
