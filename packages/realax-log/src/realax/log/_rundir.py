"""The run directory: refusing to overwrite a run, and tidying one up before it is resumed.

A resumed run must end exactly like an uninterrupted one, metrics file included, so before a
Logger with ``resume=True`` starts writing, :func:`prepare_dir` removes what a killed attempt
left behind: half-written checkpoints (``<step>.realax-tmp-*`` folders, and the
``<step>.orbax-checkpoint-tmp-*`` ones of orbax-written checkpoints) and
the metrics rows logged after the newest complete checkpoint (the resumed run logs them
again), including a last line cut short.
"""

from __future__ import annotations

import datetime
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from . import _hosts
from ._metrics_file import FILENAME, truncate_metrics

TMP_MARK = ".orbax-checkpoint-tmp"
#: the temporary folders of packed checkpoints (``_packed.write``)
PACKED_TMP_MARK = ".realax-tmp-"


def _is_tmp(name: str) -> bool:
    return TMP_MARK in name or PACKED_TMP_MARK in name


def finalized_steps(directory: Path) -> list[int]:
    """Steps of the complete checkpoints in ``directory`` (a step's temporary folder is
    renamed to ``<step>`` once it is whole), ascending; no orbax import."""
    if not directory.is_dir():
        return []
    return sorted(int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit())


def temporary_dirs(directory: Path) -> list[Path]:
    """Checkpoint folders not finished writing (a killed or hard-stopped save)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _is_tmp(p.name))


def default_log_dir(wandb_run: Any) -> Path:
    """Where a Logger without ``ckpt_dir`` or ``log_dir`` writes: beside the wandb run's
    files, else ``./realax_runs/<UTC time>-<id>``."""
    if wandb_run is not None:
        return Path(wandb_run.dir).parent
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    return Path("realax_runs", f"{stamp}-{uuid.uuid4().hex[:6]}").resolve()


def existing_run(directory: Path) -> list[str]:
    """What in ``directory`` shows that it already holds a run (empty if nothing)."""
    found = []
    steps = finalized_steps(directory)
    if steps:
        found.append(f"checkpoints at steps {steps}")
    partial = [p.name for p in temporary_dirs(directory)]
    if partial:
        found.append(f"unfinished checkpoint directories {partial}")
    metrics = directory / FILENAME
    if metrics.is_file() and metrics.stat().st_size > 0:
        found.append("a metrics.jsonl")
    return found


def _check_writable(directory: Path) -> None:
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


def prepare_dirs(
    ckpt_dir: Path | None, log_dir: Path | None, *, resume: bool, overwrite: bool
) -> None:
    """:func:`prepare_dir` for a Logger's checkpoint directory and its log directory."""
    for directory in (ckpt_dir, log_dir):
        if directory is not None:
            checkpoints = directory == ckpt_dir
            prepare_dir(directory, resume=resume, overwrite=overwrite, checkpoints=checkpoints)


def prepare_dir(directory: Path, *, resume: bool, overwrite: bool, checkpoints: bool) -> None:
    """Create ``directory``, check that it is writable, and resume or refuse an existing run.

    With ``resume`` (on process 0): half-written checkpoints are removed and, when the
    directory holds the run's checkpoints (``checkpoints``), the metrics rows after the newest
    complete one are dropped; otherwise only a last line cut short.

    Raises:
        FileExistsError: the directory already holds a run and neither ``resume`` nor
            ``overwrite`` was chosen.
        NotADirectoryError / PermissionError / OSError: the directory cannot be used.
    """
    _check_writable(directory)
    found = existing_run(directory)
    if not found:
        return
    if resume:
        if _hosts.is_primary():
            for p in temporary_dirs(directory):
                shutil.rmtree(p, ignore_errors=True)
            steps = finalized_steps(directory)
            last = (steps[-1] if steps else 0) if checkpoints else None
            truncate_metrics(directory / FILENAME, last)
        return
    if overwrite:
        if _hosts.is_primary():
            for p in directory.iterdir():
                if p.is_dir() and (p.name.isdigit() or _is_tmp(p.name)):
                    shutil.rmtree(p, ignore_errors=True)
            (directory / FILENAME).unlink(missing_ok=True)
        return
    raise FileExistsError(
        f"ckpt_dir {str(directory)!r} already holds a run ({'; '.join(found)}). realax never "
        "overwrites a run silently: pass resume=True to continue it (load the state with "
        "realax.log.restore(ckpt_dir, like=state) and call trainer.resume(state)), "
        "overwrite=True to delete its checkpoints and metrics and start afresh, or a new ckpt_dir."
    )
