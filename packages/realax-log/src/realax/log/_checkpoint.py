"""Orbax checkpoints of whole training states: asynchronous saving and verified restore."""

from __future__ import annotations

import collections
import os
import shutil
import threading
import uuid
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from . import _serialize

_STATE = "state"
_META = "meta"


def _handlers() -> dict[str, Any]:
    return {_STATE: ocp.StandardCheckpointHandler(), _META: ocp.JsonCheckpointHandler()}


def process_index() -> int:
    """This process's index under ``jax.distributed`` (0 when it is not initialised).

    Does not initialise a JAX backend when ``jax.distributed`` is not initialised, so a
    Logger may be built before ``jax.distributed.initialize``.
    """
    if not jax.distributed.is_initialized():
        return 0
    return jax.process_index()


def is_primary() -> bool:
    """True on the process that writes metrics, wandb and checkpoints (process 0)."""
    return process_index() == 0


def _manager(directory: Path, *, max_to_keep: int | None) -> ocp.CheckpointManager:
    # Checkpoints hold host-side numpy copies of a state that is identical on every process,
    # so one process writes them (process 0) and each process reads them on its own: no
    # cross-process barrier is ever needed (a barrier would hang, since only process 0 gets
    # the host callbacks of a multi-process program).
    me = process_index()
    multiprocessing = ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me})
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        create=False,  # the directory is created by the writer (orbax refuses with
        # active_processes)
        # Saves already run on the CheckpointWriter's own thread, off the training loop;
        # orbax's asynchronous mode would only add its commit threads (and, with several
        # managers saving at once in one process, finalisation errors were seen under load).
        enable_async_checkpointing=False,
        multiprocessing_options=multiprocessing,
    )
    return ocp.CheckpointManager(directory, options=options, item_handlers=_handlers())


_TMP_MARK = ".orbax-checkpoint-tmp"


def existing_run(directory: Path) -> list[str]:
    """What in ``directory`` shows that it already holds a run (empty if nothing)."""
    if not directory.is_dir():
        return []
    found = []
    steps = sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())
    if steps:
        found.append(f"checkpoints at steps {steps}")
    partial = sorted(p.name for p in directory.iterdir() if _TMP_MARK in p.name)
    if partial:
        found.append(f"unfinished checkpoint directories {partial}")
    metrics = directory / "metrics.jsonl"
    if metrics.is_file() and metrics.stat().st_size > 0:
        found.append("a metrics.jsonl")
    return found


def prepare_dir(directory: Path, *, resume: bool, overwrite: bool) -> None:
    """Create ``directory``, check that it is writable, and resume or refuse an existing run.

    Raises:
        FileExistsError: the directory already holds a run and neither ``resume`` nor
            ``overwrite`` was chosen.
        NotADirectoryError / PermissionError / OSError: the directory cannot be used.
    """
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(
            f"ckpt_dir {str(directory)!r} exists and is not a directory; pass the path of a "
            "(new or existing) directory for checkpoints."
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".realax-write-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        kind = PermissionError if isinstance(e, PermissionError) else type(e)
        raise kind(
            f"ckpt_dir {str(directory)!r} is not a writable directory ({e.strerror or e}); "
            "pass a directory you can write to, e.g. ckpt_dir='runs/my_run'."
        ) from e
    found = existing_run(directory)
    if not found:
        return
    if resume:
        return
    if overwrite:
        if is_primary():
            for p in directory.iterdir():
                if p.is_dir() and (p.name.isdigit() or _TMP_MARK in p.name):
                    shutil.rmtree(p, ignore_errors=True)
            (directory / "metrics.jsonl").unlink(missing_ok=True)
        return
    raise FileExistsError(
        f"ckpt_dir {str(directory)!r} already holds a run ({'; '.join(found)}). realax never "
        "overwrites a run silently: pass resume=True to continue it (load the state with "
        "realax.log.restore(ckpt_dir, like=state) and call trainer.resume(state)), "
        "overwrite=True to delete its checkpoints and metrics and start afresh, or a new ckpt_dir."
    )


class CheckpointWriter:
    """Saves checkpoints from a background thread so the training loop never waits on disk.

    :meth:`submit` only enqueues host copies of the arrays and returns at once; this thread
    saves them, oldest first, with an orbax ``CheckpointManager`` (orbax writes into a
    temporary directory and renames it when complete, so a checkpoint is either whole or
    invisible).

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
        self._manager = _manager(self.directory, max_to_keep=max_to_keep)
        self._cv = threading.Condition()
        self._pending: collections.deque = collections.deque()
        self._pending_bytes = 0
        self._busy = False
        self._closing = False
        self.skipped: list[int] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="realax-log-ckpt", daemon=True)
        self._thread.start()

    def submit(
        self,
        step: int,
        arrays: list[np.ndarray],
        paths,
        impls,
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
                self._pending.clear()
                self._pending_bytes = 0
            self._pending.append((step, arrays, paths, impls, seed_dims, nbytes))
            self._pending_bytes += nbytes
            while len(self._pending) > 1 and (
                len(self._pending) > self.max_pending
                or self._pending_bytes > self.max_pending_bytes
            ):
                old = self._pending.popleft()
                self._pending_bytes -= old[-1]
                dropped.append(old[0])
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
        self._manager.wait_until_finished()

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

    def _save(self, step, arrays, paths, impls, seed_dims) -> None:
        if self._before_save is not None:
            # e.g. the Logger's metrics rows up to this step: on disk before the checkpoint,
            # so a run resumed from it has lost no row
            self._before_save()
        meta = {
            "format": _serialize.FORMAT,
            "step": int(step),
            "seed_dims": int(seed_dims),
            "leaves": _serialize.describe(arrays, paths, impls),
        }
        items = {_serialize.leaf_name(i): a for i, a in enumerate(arrays)}
        if step in self._manager.all_steps():
            # A resumed run re-reaching a step that an earlier attempt saved: overwrite it.
            self._manager.wait_until_finished()
            self._manager.delete(step)
        self._manager.save(
            step,
            args=ocp.args.Composite(
                **{_STATE: ocp.args.StandardSave(items), _META: ocp.args.JsonSave(meta)}
            ),
        )
        if self.verbose:
            print(f"[realax.log] checkpoint step {step} -> {self.directory}")

    def close(self) -> None:
        """Wait for queued and in-flight checkpoints, then release the manager."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self._thread.join()
        self._manager.wait_until_finished()
        self._manager.close()
        if self._error is not None:
            raise RuntimeError(
                f"realax.log: at least one checkpoint in {self.directory} could not be saved"
            ) from self._error


def _check_dir(ckpt_dir: str | Path) -> Path:
    path = Path(ckpt_dir).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(
            f"ckpt_dir {str(ckpt_dir)!r} is not a directory; pass the ckpt_dir given to Logger"
        )
    return path


def all_steps(ckpt_dir: str | Path) -> list[int]:
    """Steps of the complete (finalised) checkpoints in ``ckpt_dir``, ascending.

    Example:
        >>> all_steps("runs/es")  # doctest: +SKIP
        [100, 200, 300]
    """
    path = _check_dir(ckpt_dir)
    with _manager(path, max_to_keep=None) as mngr:
        return sorted(int(s) for s in mngr.all_steps())


def latest_step(ckpt_dir: str | Path) -> int | None:
    """Step of the newest complete checkpoint in ``ckpt_dir``, or ``None`` if there is none.

    Example:
        >>> from realax.log import latest_step
        >>> latest_step("runs/es")  # doctest: +SKIP
        300
    """
    steps = all_steps(ckpt_dir)
    return steps[-1] if steps else None


def _mismatches(stored: list[dict], expected: list[dict]) -> list[str]:
    problems = []
    s_by_path = {leaf["path"]: leaf for leaf in stored}
    e_by_path = {leaf["path"]: leaf for leaf in expected}
    for p in e_by_path:
        if p not in s_by_path:
            problems.append(f"leaf {p or '<root>'} of `like` is missing from the checkpoint")
    for p in s_by_path:
        if p not in e_by_path:
            problems.append(f"leaf {p or '<root>'} of the checkpoint is not in `like`")
    for p, e in e_by_path.items():
        s = s_by_path.get(p)
        if s is None:
            continue
        if e["is_key"] != (s["key_impl"] is not None):
            kind = lambda is_key: "a typed PRNG key" if is_key else "a plain array"
            problems.append(
                f"leaf {p} is {kind(s['key_impl'] is not None)} in the checkpoint "
                f"but {kind(e['is_key'])} in `like`"
            )
        elif e["is_key"] and e["key_impl"] and s["key_impl"] != e["key_impl"]:
            problems.append(
                f"leaf {p} holds {s['key_impl']} keys in the checkpoint but {e['key_impl']} "
                "keys in `like`"
            )
        if list(s["shape"]) != list(e["shape"]) or s["dtype"] != e["dtype"]:
            problems.append(
                f"leaf {p} is {s['dtype']}{tuple(s['shape'])} in the checkpoint but "
                f"{e['dtype']}{tuple(e['shape'])} in `like`"
            )
    return problems


class _Corrupt(Exception):
    pass


def _read(mngr: ocp.CheckpointManager, step: int) -> tuple[dict, list[np.ndarray]]:
    try:
        meta = mngr.restore(step, args=ocp.args.Composite(**{_META: ocp.args.JsonRestore()}))[_META]
        if not isinstance(meta, dict) or meta.get("format") != _serialize.FORMAT:
            raise _Corrupt(f"metadata is not a {_serialize.FORMAT} record")
        leaves = meta["leaves"]
        target = {
            _serialize.leaf_name(i): np.zeros(leaf["shape"], np.dtype(leaf["dtype"]))
            for i, leaf in enumerate(leaves)
        }
        items = mngr.restore(
            step, args=ocp.args.Composite(**{_STATE: ocp.args.StandardRestore(target)})
        )[_STATE]
        arrays = [np.asarray(items[_serialize.leaf_name(i)]) for i in range(len(leaves))]
    except _Corrupt:
        raise
    except Exception as e:  # orbax / tensorstore / json errors on damaged files
        raise _Corrupt(f"{type(e).__name__}: {e}") from e
    for leaf, a in zip(leaves, arrays, strict=True):
        if list(a.shape) != list(leaf["shape"]) or _serialize.crc32(a) != leaf["crc32"]:
            raise _Corrupt(f"leaf {leaf['path']} does not match its recorded checksum")
    return meta, arrays


def restore(ckpt_dir: str | Path, like: Any, *, step: int | None = None) -> Any:
    """Load the newest complete checkpoint in ``ckpt_dir`` into the structure of ``like``.

    Checkpoints that cannot be read back intact (half-written, truncated or corrupted files,
    checksum mismatch) are skipped with a warning in favour of the previous one.

    Args:
        ckpt_dir: directory given to ``Logger(ckpt_dir=...)``.
        like: a pytree with the structure, shapes and dtypes of the saved state, e.g. the
            initial state of the same trainer (``trainer.init(key)``) or its
            ``jax.eval_shape``. Typed PRNG keys in ``like`` are restored as typed keys.
        step: restore exactly this step instead of the newest one (no fallback).

    Returns:
        A pytree like ``like`` holding the checkpointed arrays (bit-identical to the saved
        ones).

    Raises:
        FileNotFoundError: no readable checkpoint in ``ckpt_dir``.
        ValueError: the checkpoint does not match ``like`` (names the mismatching leaves).

    Example:
        >>> import realax.log as rlog
        >>> state = rlog.restore("runs/es", like=trainer.init(key))  # doctest: +SKIP
        >>> state = trainer.resume(state)  # doctest: +SKIP
    """
    path = _check_dir(ckpt_dir)
    expected, treedef = _serialize.expected_leaves(like)
    with _manager(path, max_to_keep=None) as mngr:
        steps = sorted((int(s) for s in mngr.all_steps()), reverse=True)
        if step is not None:
            if step not in steps:
                raise FileNotFoundError(
                    f"no complete checkpoint for step={step} in {path}; available steps: "
                    f"{sorted(steps)}"
                )
            steps = [step]
        if not steps:
            raise FileNotFoundError(f"no complete checkpoint in {path}")
        skipped = []
        for s in steps:
            try:
                meta, arrays = _read(mngr, s)
            except _Corrupt as e:
                if step is not None:
                    raise FileNotFoundError(f"checkpoint step {s} in {path} is damaged: {e}") from e
                warnings.warn(
                    f"realax.log.restore: checkpoint step {s} in {path} is incomplete or "
                    f"corrupted ({e}); falling back to the previous checkpoint",
                    RuntimeWarning,
                    stacklevel=2,
                )
                skipped.append(s)
                continue
            problems = _mismatches(meta["leaves"], expected)
            if problems:
                listed = "; ".join(problems[:10])
                more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
                raise ValueError(
                    f"checkpoint step {s} in {path} does not match `like`: {listed}{more}. "
                    "Pass a `like` built with the same model and trainer configuration as "
                    "the run that wrote the checkpoint."
                )
            out = []
            pairs = zip(meta["leaves"], arrays, strict=True)
            by_path = {leaf["path"]: (leaf, a) for leaf, a in pairs}
            for e in expected:
                leaf, a = by_path[e["path"]]
                x = jnp.asarray(a)
                if leaf["key_impl"] is not None:
                    x = jax.random.wrap_key_data(x, impl=leaf["key_impl"])
                out.append(x)
            return jax.tree_util.tree_unflatten(treedef, out)
        raise FileNotFoundError(
            f"no readable checkpoint in {path}: steps {sorted(skipped)} are all damaged"
        )


def read_metadata(ckpt_dir: str | Path, step: int) -> dict:
    """The JSON description stored with checkpoint ``step`` (paths, shapes, dtypes, checksums)."""
    path = _check_dir(ckpt_dir)
    with _manager(path, max_to_keep=None) as mngr:
        return mngr.restore(step, args=ocp.args.Composite(**{_META: ocp.args.JsonRestore()}))[_META]
