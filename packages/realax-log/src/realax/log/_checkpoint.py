"""Checkpoints of whole training states: listing, and verified restore of both formats.

New checkpoints are packed (``realax-log/2``, :mod:`._packed`, no orbax); checkpoints that
realax-log 0.1 wrote with orbax (``realax-log/1``, one item per leaf) still restore: orbax is
imported only to read one of those.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _packed, _serialize
from ._hosts import process_index
from ._rundir import finalized_steps

if TYPE_CHECKING:
    import orbax.checkpoint as ocp

STATE = "state"
META = "meta"


def _handlers() -> dict[str, Any]:
    import orbax.checkpoint as ocp

    return {STATE: ocp.StandardCheckpointHandler(), META: ocp.JsonCheckpointHandler()}


def manager(directory: Path, *, max_to_keep: int | None) -> ocp.CheckpointManager:
    import orbax.checkpoint as ocp

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
    return finalized_steps(_check_dir(ckpt_dir))


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


def _read_orbax(mngr: ocp.CheckpointManager, step: int, leaves: list[dict]) -> list:
    """The leaves of a ``realax-log/1`` checkpoint (orbax, one item per leaf)."""
    import orbax.checkpoint as ocp

    target = {
        _serialize.leaf_name(i): np.zeros(leaf["shape"], np.dtype(leaf["dtype"]))
        for i, leaf in enumerate(leaves)
    }
    items = mngr.restore(
        step, args=ocp.args.Composite(**{STATE: ocp.args.StandardRestore(target)})
    )[STATE]
    arrays = [np.asarray(items[_serialize.leaf_name(i)]) for i in range(len(leaves))]
    for leaf, a in zip(leaves, arrays, strict=True):
        if list(a.shape) != list(leaf["shape"]) or _serialize.crc32(a) != leaf["crc32"]:
            raise _Corrupt(f"leaf {leaf['path']} does not match its recorded checksum")
    return arrays


class _Reader:
    """Reads checkpoints of either format from one folder (an orbax manager only if needed)."""

    def __init__(self, path: Path):
        self.path = path
        self._mngr: ocp.CheckpointManager | None = None

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._mngr is not None:
            self._mngr.close()

    def read(self, step: int) -> tuple[dict, list[np.ndarray]]:
        try:
            meta = _packed.read_meta(self.path / str(step))
            fmt = meta.get("format")
            if fmt == _serialize.PACKED:
                return meta, _packed.read(self.path / str(step), meta)
            if fmt != _serialize.FORMAT:
                raise _Corrupt(f"metadata is not a {_serialize.PACKED} record")
            if self._mngr is None:
                self._mngr = manager(self.path, max_to_keep=None)
            return meta, _read_orbax(self._mngr, step, meta["leaves"])
        except _Corrupt:
            raise
        except Exception as e:  # missing / damaged files, json or orbax errors
            raise _Corrupt(f"{type(e).__name__}: {e}") from e


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
    with _Reader(path) as reader:
        steps = sorted(finalized_steps(path), reverse=True)
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
                meta, arrays = reader.read(s)
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
            for want in expected:
                leaf, a = by_path[want["path"]]
                x = jnp.asarray(a)
                if leaf["key_impl"] is not None:
                    x = jax.random.wrap_key_data(x, impl=leaf["key_impl"])
                out.append(x)
            return jax.tree_util.tree_unflatten(treedef, out)
        raise FileNotFoundError(
            f"no readable checkpoint in {path}: steps {sorted(skipped)} are all damaged"
        )


def read_metadata(ckpt_dir: str | Path, step: int) -> dict:
    """The JSON description stored with checkpoint ``step`` (format, step, ``seed_dims``, and
    per leaf its path, shape, dtype and key implementation)."""
    return _packed.read_meta(_check_dir(ckpt_dir) / str(step))
