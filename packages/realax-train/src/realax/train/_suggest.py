"""Close-match suggestions for unknown names ("Did you mean ...?")."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable

__all__ = ["did_you_mean", "normalise"]


def normalise(name: str) -> str:
    """``name`` lower-cased without ``_`` and ``-`` ("Open_ES" and "openes" match)."""
    return name.replace("_", "").replace("-", "").lower()


def did_you_mean(
    name: str,
    candidates: Iterable[str],
    *,
    key: Callable[[str], str] = str.lower,
    n: int = 5,
    cutoff: float = 0.5,
) -> str:
    """``" Did you mean 'a', 'b'?"`` for the candidates close to ``name`` (compared through
    ``key``), or ``""`` when none is close.

    >>> did_you_mean("adma", ["adam", "adamw", "sgd"])
    " Did you mean 'adam', 'adamw'?"
    """
    by_key: dict[str, str] = {}
    for candidate in candidates:
        by_key.setdefault(key(candidate), candidate)
    close = difflib.get_close_matches(key(name), list(by_key), n=n, cutoff=cutoff)
    if not close:
        return ""
    return f" Did you mean {', '.join(repr(by_key[c]) for c in close)}?"
