"""Live tqdm progress bar fed from inside compiled loops via ``jax.debug.callback``."""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

__all__ = ["ProgressBar"]


class ProgressBar:
    """Registry of open bars, keyed by an integer token (the trainer's ``id``).

    The compiled loop only carries the token as a Python constant; the bar object lives on the
    host and is looked up when the callback fires, so opening a new bar never recompiles.
    """

    _bars: dict[int, tuple[Any, int, str]] = {}
    _lock = threading.Lock()

    @classmethod
    @contextlib.contextmanager
    def maybe(
        cls, enabled: bool, token: int, total: int, start: int, metric: str = "value"
    ) -> Iterator[None]:
        if not enabled:
            yield
            return
        bar = tqdm(total=total, desc="training", unit="step", dynamic_ncols=True)
        with cls._lock:
            cls._bars[token] = (bar, start, metric)
        try:
            yield
        finally:
            with cls._lock:
                cls._bars.pop(token, None)
            bar.close()

    @classmethod
    def host_update(cls, token: int, step: Any, value: Any = None) -> None:
        """Advance the bar of ``token`` to absolute step ``step`` (host side)."""
        with cls._lock:
            entry = cls._bars.get(token)
        if entry is None:
            return
        bar, start, metric = entry
        step_arr = np.asarray(step)
        position = int(step_arr.max()) - start if step_arr.size else 0
        if value is not None:
            val = np.asarray(value, dtype=np.float64)
            shown = float(np.nanmean(val)) if val.size and np.isfinite(val).any() else math.nan
            bar.set_postfix_str(f"{metric}={shown:.5g}", refresh=False)
        if position > bar.n:
            bar.update(position - bar.n)

    @classmethod
    def report(cls, token: int, step: jax.Array, value: jax.Array | None) -> None:
        """Traced side: send ``step`` (and the metric ``value``) to the host bar."""

        def _cb(step, value=None):
            cls.host_update(token, step, value)

        if value is None:
            jax.debug.callback(_cb, step)
        else:
            jax.debug.callback(_cb, step, value)
