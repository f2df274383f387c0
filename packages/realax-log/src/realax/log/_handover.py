"""How a Logger's steps reach the host: the host callbacks of one step (``Logger.log``), of a
checkpoint, and of a block of steps (:mod:`._blocks`), and the traced ``open_block`` /
``log_to_block`` / ``close_block`` that the loops of realax.train call."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from . import _blocks, _hosts
from ._emit import call_metrics_fn
from ._interrupt import StopTraining


class HandOver:
    """Mixin of :class:`realax.log.Logger` (the attributes are the Logger's)."""

    metrics_fn: Any
    log_block: int | None
    checkpoint_on_interrupt: bool
    _block_emitter: _blocks.BlockEmitter
    _clock: _blocks.BlockClock
    _log_tree: Any
    _writer: Any
    _stop: Any
    _opened: bool
    _logged: bool
    _seed_dims: int | None
    _ckpt: Any

    def _traced_step(self, state: Any, data: Any) -> tuple[Any, bool]:
        raise NotImplementedError

    def _open(self) -> None:
        raise NotImplementedError

    def open_block(self, state: Any, data: Any) -> dict:
        """An empty block of rows for a loop to carry beside its state (traced, before the
        loop); ``data`` may be abstract (``jax.eval_shape`` of a step's metrics)."""

        def row(st, d):
            s = call_metrics_fn(self.metrics_fn, st, d)
            return s.log_data, s.step

        log_like, step_like = jax.eval_shape(row, state, data)
        size = _blocks.capacity(self.log_block, _blocks.row_bytes(log_like, step_like))
        auto = self.log_block is None and not _hosts.multi_process()
        self._log_tree = jax.tree_util.tree_structure(log_like)
        return _blocks.empty_block(step_like, log_like, size=size, limit=1 if auto else size)

    def log_to_block(self, block: dict, state: Any, data: Any) -> dict:
        """:meth:`log` for a loop carrying a block: the step's row goes into ``block`` (the
        new block is returned); a full block, or a checkpoint step, is handed over at once."""
        s, checkpoint = self._traced_step(state, data)
        answer = not _hosts.multi_process()
        return self._block_emitter.push(block, s, checkpoint=checkpoint, answer=answer)

    def close_block(self, block: dict) -> None:
        """Hand over the rows left in ``block`` (traced, after the loop)."""
        self._block_emitter.close(block, self._log_tree)

    def _on_rows(self, seed_dims, log_tree, capacity, count, steps, rows, answer=False):
        # a block of rows (``log_to_block``): copied, since the loop reuses its buffer
        n = int(count)
        if _hosts.is_primary() and n:
            if not self._opened:
                self._open()
            rows = [np.array(r, copy=True) for r in rows]
            self._writer.append_block(seed_dims, log_tree, n, np.array(steps, copy=True), rows)
            self._logged, self._seed_dims = True, seed_dims
        if answer:
            stop = self._stop.signal is not None and self.checkpoint_on_interrupt
            return np.array([self._clock.next(n, capacity), stop], np.int32)
        return None

    def _on_log(self, seed_dims, log_tree, step, leaves, answer=False):
        # Runs once per step on the thread executing the compiled loop: keep it minimal (the
        # rows are converted and written by the writer thread, in batches).
        if _hosts.is_primary():
            if not self._opened:
                self._open()
            self._writer.append(seed_dims, log_tree, step, leaves)
            self._logged, self._seed_dims = True, seed_dims
        if answer:
            # a stop signal (SIGINT/SIGTERM) arrived: checkpoint this step now
            return np.bool_(self._stop.signal is not None)
        return None

    def _on_ckpt(self, seed_dims, records, groups, step, packed) -> None:
        if not _hosts.is_primary() or self._ckpt is None:
            return
        stop_signal = self._stop.signal
        step = np.asarray(step)
        arrays = [np.array(x, copy=True) for x in packed]
        self._ckpt.submit(step, arrays, records, groups, seed_dims, supersede=bool(stop_signal))
        if stop_signal is not None:
            # SIGINT/SIGTERM: make this checkpoint (and the rows before it) durable, then
            # abort the compiled loop; save_on_interrupt turns this into the right exception.
            self._ckpt.wait()
            self._writer.drain()
            self._stop.step = int(step.max())
            raise StopTraining(f"realax.log: stopped by signal {stop_signal}")
