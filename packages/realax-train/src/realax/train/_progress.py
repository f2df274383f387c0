"""Live tqdm progress bar fed from inside compiled loops via ``jax.debug.callback``.

Until the first compiled step reports, the bar says ``compiling`` with the elapsed time (a
small thread redraws it); the step counter, rate and ETA start with that first step, so the
compilation never enters the rate.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from collections.abc import Iterator
from typing import IO, Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

__all__ = ["ProgressBar"]

_COMPILING = "{desc}: compiling ({elapsed})"


class _Bar:
    """One open bar: a "compiling" tqdm, replaced by the counting one at the first report."""

    def __init__(self, total: int, start: int, metric: str, file: IO[str] | None):
        self.total, self.start, self.metric, self.file = total, start, metric, file
        self.lock = threading.Lock()
        self.counting = False
        self.bar = self._tqdm(bar_format=_COMPILING, leave=False)
        self.stop = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True)
        self.ticker.start()

    def _tqdm(self, **kw: Any) -> Any:
        return tqdm(
            total=self.total,
            desc="training",
            unit="step",
            dynamic_ncols=True,
            file=self.file,
            **kw,
        )

    def _tick(self) -> None:
        while not self.stop.wait(0.5):
            with self.lock:
                if self.counting:
                    return
                self.bar.refresh()

    def update(self, step: Any, value: Any) -> None:
        step_arr = np.asarray(step)
        position = int(step_arr.max()) - self.start if step_arr.size else 0
        with self.lock:
            if not self.counting:
                # the first step: from here on count steps, rate and ETA after this one
                self.counting = True
                self.bar.close()
                self.bar = self._tqdm(initial=max(position, 0))
            if value is not None:
                val = np.asarray(value, dtype=np.float64)
                finite = val.size and np.isfinite(val).any()
                shown = float(np.nanmean(val)) if finite else math.nan
                self.bar.set_postfix_str(f"{self.metric}={shown:.5g}", refresh=False)
            if position > self.bar.n:
                self.bar.update(position - self.bar.n)
            else:
                self.bar.refresh()

    def close(self) -> None:
        self.stop.set()
        self.ticker.join()
        with self.lock:
            self.bar.close()


class ProgressBar:
    """Registry of open bars, keyed by an integer token.

    A compiled loop receives the token as an argument (an int32 scalar, not a constant of the
    program), so opening a new bar never recompiles; the callback looks the bar up on the host.
    """

    _bars: dict[int, _Bar] = {}
    _lock = threading.Lock()
    _tokens = itertools.count(1)

    @classmethod
    @contextlib.contextmanager
    def maybe(
        cls,
        enabled: bool,
        total: int,
        start: int,
        metric: str = "value",
        file: IO[str] | None = None,
    ) -> Iterator[int]:
        """Open a bar (if ``enabled``) for steps ``start`` .. ``start + total``; yields its token
        (0 when disabled). ``file`` is where tqdm writes (default stderr)."""
        if not enabled:
            yield 0
            return
        token = next(cls._tokens) % (2**31 - 1)
        bar = _Bar(total, start, metric, file)
        with cls._lock:
            cls._bars[token] = bar
        try:
            yield token
        finally:
            with cls._lock:
                cls._bars.pop(token, None)
            bar.close()

    @classmethod
    def host_update(cls, token: Any, step: Any, value: Any = None) -> None:
        """Advance the bar of ``token`` to absolute step ``step`` (host side)."""
        with cls._lock:
            bar = cls._bars.get(int(np.asarray(token).ravel()[0]))
        if bar is not None:
            bar.update(step, value)

    @classmethod
    def report(cls, token: jax.Array, step: jax.Array, value: jax.Array | None) -> None:
        """Traced side: send ``step`` (and the metric ``value``) to the host bar ``token``."""

        def _cb(token, step, value=None):
            cls.host_update(token, step, value)

        if value is None:
            jax.debug.callback(_cb, token, step)
        else:
            jax.debug.callback(_cb, token, step, value)

    @staticmethod
    def token_array(token: int) -> jax.Array:
        """The token as the int32 scalar a compiled loop takes."""
        return jnp.asarray(token, jnp.int32)
