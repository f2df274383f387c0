"""Writing checkpoints from a background thread, so a training loop never waits on disk."""

from __future__ import annotations

import collections
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from . import _packed, _rundir, _serialize
from ._console import say


class CheckpointWriter:
    """Saves checkpoints from a background thread so the training loop never waits on disk.

    :meth:`submit` only enqueues host copies of the packed arrays (one per dtype) and
    returns at once; this thread saves them, oldest first (:func:`realax.log._packed.write`:
    a temporary folder renamed when complete, so a checkpoint is either whole or invisible).

    If checkpoints are requested faster than they can be written, at most ``max_pending``
    of them (and ``max_pending_bytes`` of copies) wait; beyond that the oldest waiting one is
    dropped (never the newest, so the last checkpoint of a run is always written) and a
    ``RuntimeWarning`` is issued once. The steps dropped are in :attr:`skipped`.
    """

    max_pending = 16
    max_pending_bytes = 256 * 2**20

    def __init__(
        self,
        directory: str | Path,
        *,
        max_to_keep: int | None,
        verbose: bool = False,
        before_save: Any = None,
    ):
        self.directory = Path(directory).expanduser().resolve()
        self._before_save = before_save
        self.directory.mkdir(parents=True, exist_ok=True)
        self.verbose = verbose
        self.max_to_keep = max_to_keep
        self._cv = threading.Condition()
        self._pending: collections.deque = collections.deque()
        self._pending_bytes = 0
        self._busy = False
        self._closing = False
        self.skipped: list[int] = []
        #: steps handed to submit() (saved, being saved or waiting; minus the skipped ones)
        self.submitted: set[int] = set()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="realax-log-ckpt", daemon=True)
        self._thread.start()

    def submit(
        self,
        step: int,
        arrays: list[np.ndarray],
        records: list[dict],
        groups: list[str],
        seed_dims: int,
        *,
        supersede: bool = False,
    ) -> None:
        """Enqueue a checkpoint and return at once (never blocks on disk).

        With ``supersede`` the checkpoints still waiting (not the one being written) are
        dropped in favour of this one, e.g. for the checkpoint saved on an interrupt.
        """
        nbytes = sum(int(a.nbytes) for a in arrays)
        dropped = []
        with self._cv:
            if supersede:
                dropped += [item[0] for item in self._pending]
                self.submitted.difference_update(dropped)
                self._pending.clear()
                self._pending_bytes = 0
            self._pending.append((step, arrays, records, groups, seed_dims, nbytes))
            self.submitted.add(step)
            self._pending_bytes += nbytes
            while len(self._pending) > 1 and (
                len(self._pending) > self.max_pending
                or self._pending_bytes > self.max_pending_bytes
            ):
                old = self._pending.popleft()
                self._pending_bytes -= old[-1]
                dropped.append(old[0])
                self.submitted.discard(old[0])
                if len(self.skipped) == 0:
                    warnings.warn(
                        f"realax.log: checkpoints in {self.directory} are requested faster "
                        f"than they can be written; step {old[0]} is skipped in favour of "
                        f"newer ones (the newest is always saved). Pass a larger ckpt_freq to "
                        "keep every checkpoint.",
                        RuntimeWarning,
                        stacklevel=1,
                    )
                self.skipped.append(old[0])
            self._cv.notify_all()

    def wait(self) -> None:
        """Block until every submitted checkpoint is completely on disk."""
        with self._cv:
            self._cv.wait_for(lambda: not self._pending and not self._busy)

    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._pending or self._closing)
                if not self._pending:
                    return
                item = self._pending.popleft()
                self._pending_bytes -= item[-1]
                self._busy = True
            try:
                self._save(*item[:-1])
            except BaseException as e:  # surfaced in close(); training goes on
                if self._error is None:
                    warnings.warn(
                        f"realax.log: saving a checkpoint in {self.directory} failed: {e!r}",
                        RuntimeWarning,
                        stacklevel=1,
                    )
                self._error = e
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def _save(self, step, arrays, records, groups, seed_dims) -> None:
        if self._before_save is not None:
            # e.g. the Logger's metrics rows up to this step: on disk before the checkpoint,
            # so a run resumed from it has lost no row
            self._before_save()
        _packed.write(self.directory, step, arrays, records, groups, seed_dims)
        if self.max_to_keep is not None:
            steps = _rundir.finalized_steps(self.directory)
            _packed.remove_oldest(self.directory, self.max_to_keep, steps)
        if self.verbose:
            say(f"[realax.log] checkpoint step {step} -> {self.directory}")

    def close(self) -> None:
        """Wait for queued and in-flight checkpoints, then release the manager."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self._thread.join()
        if self._error is not None:
            raise RuntimeError(
                f"realax.log: at least one checkpoint in {self.directory} could not be saved"
            ) from self._error


class Checkpoints:
    """A Logger's checkpoints: the :class:`CheckpointWriter`, opened on first use, host-side
    saves, and which steps this Logger has saved (process 0 only)."""

    def __init__(
        self, directory: Path, max_to_keep: int | None, verbose: bool, before_save: Callable
    ):
        self.directory = directory
        self._max_to_keep, self._verbose, self._before_save = max_to_keep, verbose, before_save
        self._lock = threading.Lock()
        self._writer: CheckpointWriter | None = None

    @property
    def writer(self) -> CheckpointWriter:
        with self._lock:
            if self._writer is None:
                self._writer = CheckpointWriter(
                    self.directory,
                    max_to_keep=self._max_to_keep,
                    verbose=self._verbose,
                    before_save=self._before_save,
                )
            return self._writer

    def submit(self, step: np.ndarray, arrays: list, records, groups, seed_dims: int, **kw) -> None:
        """Enqueue host copies of the packed ``arrays`` under the largest of ``step`` (vmapped
        seeds)."""
        if seed_dims and np.unique(step).size > 1:
            warnings.warn(
                f"realax.log: vmapped seeds are at different steps {np.unique(step).tolist()}; "
                f"checkpoint saved under step {int(step.max())}",
                RuntimeWarning,
                stacklevel=2,
            )
        self.writer.submit(int(step.max()), arrays, records, groups, seed_dims, **kw)

    def save_tree(self, tree: Any, step: np.ndarray) -> None:
        """Save a pytree from the host (``step.ndim`` seed axes) and wait until it is on disk."""
        leaves, paths, impls = _serialize.split_keys(tree)
        leaves = [np.asarray(jax.device_get(x)) for x in leaves]
        records, groups = _serialize.manifest(leaves, paths, impls)
        arrays = [np.array(a, copy=True) for a in _serialize.pack(leaves, records, groups)]
        self.submit(step, arrays, records, groups, step.ndim)
        self.wait()

    def is_saved(self, step: int, *, logged: bool) -> bool:
        """Whether ``step`` was saved by this Logger or, when it logged nothing (the run
        resumed from that very checkpoint), is on disk."""
        if self._writer is not None and step in self._writer.submitted:
            return True
        return not logged and (self.directory / str(step)).is_dir()

    def wait(self) -> None:
        self.writer.wait()

    def close(self) -> None:
        """Wait for every checkpoint; raise ``RuntimeError`` if one could not be saved."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
