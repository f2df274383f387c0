"""Writes to stdout/stderr that never fail: a closed pipe (``... | head``) must not stop a run
or a checkpoint."""

from __future__ import annotations

import sys


def say(message: str, *, err: bool = False) -> None:
    """Print ``message`` (and flush) to stdout, or stderr with ``err``; ignore a broken stream."""
    stream = sys.stderr if err else sys.stdout
    try:
        if stream is not None:
            stream.write(message + "\n")
            stream.flush()
    except (OSError, ValueError):  # BrokenPipeError, a closed file, EIO on a lost terminal
        pass


def flush_all() -> None:
    """Flush stdout and stderr, ignoring broken streams (before ``os._exit``)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
