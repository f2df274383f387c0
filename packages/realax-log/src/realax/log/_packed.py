"""Checkpoints of packed leaves on disk (format ``realax-log/2``), written atomically.

A checkpoint of step ``s`` is the folder ``<ckpt_dir>/<s>/`` holding

- ``state/packed.bin``: the state's leaves packed into one array per dtype
  (:func:`realax.log._serialize.pack`), the arrays one after another, raw little-endian bytes;
- ``meta/metadata``: JSON: ``format``, ``step``, ``seed_dims``, ``groups`` (per dtype: byte
  offset, byte count, element count, CRC32) and ``leaves`` (per leaf: key path, shape, dtype,
  typed-key implementation, element offset in its dtype's array).

It is written into ``<s>.realax-tmp-<id>/``, each file flushed to disk, then renamed to
``<s>``: a checkpoint is whole or invisible. No orbax: one save is two small files (the
orbax layout of ``realax-log/1``, one item per leaf, cost ~15-25 ms of CPU per save).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import zlib
from pathlib import Path

import numpy as np

from . import _serialize
from ._rundir import PACKED_TMP_MARK as TMP_MARK

STATE_FILE = Path("state", "packed.bin")
META_FILE = Path("meta", "metadata")


def _fsynced(path: Path, data: bytes | list) -> None:
    with open(path, "wb") as f:
        for chunk in data if isinstance(data, list) else [data]:
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())


def write(
    directory: Path,
    step: int,
    arrays: list[np.ndarray],
    records: list[dict],
    groups: list[str],
    seed_dims: int,
) -> None:
    """Write checkpoint ``step`` (replacing one already there) atomically."""
    tmp = directory / f"{step}{TMP_MARK}{uuid.uuid4().hex[:12]}"
    (tmp / STATE_FILE.parent).mkdir(parents=True)
    (tmp / META_FILE.parent).mkdir()
    chunks, entries, offset = [], [], 0
    for g, a in zip(groups, arrays, strict=True):
        b = np.ascontiguousarray(a).tobytes()
        entries.append(
            {"dtype": g, "offset": offset, "nbytes": len(b), "size": int(a.size),
             "crc32": zlib.crc32(b)}
        )  # fmt: skip
        chunks.append(b)
        offset += len(b)
    _fsynced(tmp / STATE_FILE, chunks)
    meta = {
        "format": _serialize.PACKED,
        "step": int(step),
        "seed_dims": int(seed_dims),
        "groups": entries,
        "leaves": records,
    }
    _fsynced(tmp / META_FILE, json.dumps(meta).encode())
    final = directory / str(step)
    if final.exists():  # a resumed run re-reaching a step an earlier attempt saved
        old = directory / f"{step}{TMP_MARK}old-{uuid.uuid4().hex[:12]}"
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_meta(step_dir: Path) -> dict:
    """The JSON record of a checkpoint folder (either format keeps it in ``meta/metadata``)."""
    meta = json.loads((step_dir / META_FILE).read_text())
    if not isinstance(meta, dict):
        raise ValueError("metadata is not a JSON object")
    return meta


def read(step_dir: Path, meta: dict) -> list[np.ndarray]:
    """The leaves of a ``realax-log/2`` checkpoint, checked against their CRC32s."""
    import jax.numpy as jnp  # dtype names such as bfloat16

    data = (step_dir / STATE_FILE).read_bytes()
    arrays = []
    for g in meta["groups"]:
        b = data[g["offset"] : g["offset"] + g["nbytes"]]
        if len(b) != g["nbytes"] or zlib.crc32(b) != g["crc32"]:
            raise ValueError(f"the packed {g['dtype']} array does not match its recorded checksum")
        arrays.append(np.frombuffer(b, dtype=jnp.dtype(g["dtype"]), count=g["size"]))
    return _serialize.unpack(arrays, meta["leaves"], [g["dtype"] for g in meta["groups"]])


def remove_oldest(directory: Path, keep: int, steps: list[int]) -> None:
    """Delete the complete checkpoints beyond the newest ``keep`` of ``steps``."""
    for s in steps[:-keep] if keep else steps:
        shutil.rmtree(directory / str(s), ignore_errors=True)
