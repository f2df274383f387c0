"""The writer thread: buffered metrics rows to the sinks, off the training loop.

The per-step host callback only appends the raw payload to a buffer (:meth:`RowWriter.append`,
a few microseconds); a background thread converts the buffered steps and writes them to every
sink every ``interval`` seconds, in one batch. :meth:`drain` does the same at once (before
every checkpoint, in ``flush`` / ``finish``); :meth:`hard_flush` is the bounded version for a
process about to stop at once (a second Ctrl-C): durable sinks only.
"""

from __future__ import annotations

import collections
import threading
import warnings
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from ._blocks import split_block
from ._sinks import LoggedStep, Sink

#: seconds between two writes of the buffered rows
FLUSH_INTERVAL = 0.25


class RowWriter:
    """Buffers logged steps and writes them to ``sinks`` from a background thread.

    Args:
        sinks: where the steps go, in this order (a failing sink does not stop the others).
        transform: optional host-side function applied to each step's values dict.
        interval: seconds between two writes.
    """

    def __init__(
        self,
        sinks: list[Sink],
        transform: Callable[[dict], dict] | None = None,
        interval: float = FLUSH_INTERVAL,
        layout: Any = None,
    ):
        self.sinks = list(sinks)
        self.layout = layout  # a sweep's SweepLayout, or None
        self.transform = transform
        self.interval = interval
        self.errors: list[BaseException] = []
        # logged but not yet written: (seed_dims, log_tree, step, leaves, count), count=None
        # for one step, else a block of `count` steps (leading axis after the seed axes)
        self._rows: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def append(self, seed_dims: int, log_tree: Any, step: Any, leaves: list) -> None:
        """Buffer one step (from the host callback: nothing else happens here)."""
        self._rows.append((seed_dims, log_tree, step, leaves, None))
        if self._thread is None:
            self.start()

    def append_block(
        self, seed_dims: int, log_tree: Any, count: int, steps: Any, rows: list
    ) -> None:
        """Buffer the first ``count`` steps of a block (``_blocks``; arrays copied by the
        caller); the writer thread splits it into the same rows as ``count`` appends."""
        self._rows.append((seed_dims, log_tree, steps, rows, count))
        if self._thread is None:
            self.start()

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(
                target=self._loop, name="realax-log-writer", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while not self._stopping:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.drain()

    def _take(self) -> list[LoggedStep]:
        batch = []
        while self._rows:
            seed_dims, log_tree, step, leaves, count = self._rows.popleft()
            if count is None:
                steps = [(step, leaves)]
            else:
                steps = split_block(seed_dims, count, step, leaves)
            for step, leaves in steps:
                values = jax.tree_util.tree_unflatten(log_tree, [np.asarray(x) for x in leaves])
                if self.transform is not None:
                    values = dict(self.transform(dict(values)))
                batch.append(LoggedStep(np.asarray(step), seed_dims, values, self.layout))
        return batch

    def _write(self, batch: list[LoggedStep], sinks: list[Sink]) -> None:
        for sink in sinks:
            try:
                sink.write(batch)
            except BaseException as e:  # noqa: BLE001 - reported once, raised by finish()
                self._write_error(e)

    def drain(self) -> None:
        """Write every buffered step to every sink, in logging order; thread-safe."""
        with self._lock:
            try:
                batch = self._take()
            except BaseException as e:  # noqa: BLE001 - e.g. a failing host_log_transform
                batch = []
                self._write_error(e)
            if batch:
                self._write(batch, self.sinks)

    def _write_error(self, e: BaseException) -> None:
        """Warn about the first failure; ``finish()`` raises them all."""
        if not self.errors:
            warnings.warn(
                f"realax.log: writing logged metrics failed: {e!r}", RuntimeWarning, stacklevel=1
            )
        self.errors.append(e)

    def hard_flush(self, timeout: float = 2.0) -> None:
        """Write the buffered steps to the durable sinks only, waiting at most ``timeout`` s
        for a write in progress (the process is about to end at once)."""
        if not self._lock.acquire(timeout=timeout):
            return
        try:
            self._write(self._take(), [s for s in self.sinks if s.durable])
        finally:
            self._lock.release()

    def stop(self) -> None:
        """Write what is buffered and end the thread (it restarts on the next append)."""
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join()
            self._thread = None
        self.drain()

    def close(self) -> None:
        """:meth:`stop`, then close every sink."""
        self.stop()
        for sink in self.sinks:
            try:
                sink.close()
            except BaseException as e:  # noqa: BLE001 - raised by finish()
                self.errors.append(e)
