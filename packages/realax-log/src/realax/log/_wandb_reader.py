"""Reading the history of a local (offline) wandb run from its ``.wandb`` transaction log.

A ``run-<id>.wandb`` file is a LevelDB-style log: a 7-byte file header (``:W&B``, magic
``0xBEE1``, version), then 32 KiB blocks of chunks, each chunk with a 7-byte header
(CRC32, little-endian length, type: 1 full, 2 first, 3 middle, 4 last). Reassembled chunks are
serialised ``wandb_internal_pb2.Record`` protobufs; history rows are their ``history`` field.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

_BLOCK = 32768
_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _records(data: bytes):
    if data[:4] != b":W&B":
        raise ValueError("not a wandb transaction log (missing ':W&B' header)")
    pos = _HEADER
    pending = b""
    while pos + _HEADER <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _HEADER:
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack_from("<IHB", data, pos)
        pos += _HEADER
        chunk = data[pos : pos + length]
        pos += length
        if kind == 0 and length == 0:
            pos += _BLOCK - pos % _BLOCK if pos % _BLOCK else 0
            continue
        if kind == _FULL:
            yield chunk
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            yield pending + chunk
            pending = b""


def is_complete(path: str | Path) -> bool:
    """Whether a ``.wandb`` file ends with the run's exit record (the run finished writing)."""
    from wandb.proto import wandb_internal_pb2 as pb

    try:
        data = Path(path).read_bytes()
        last = None
        for last in _records(data):  # noqa: B007
            pass
    except (OSError, ValueError, struct.error):
        return False
    if last is None:
        return False
    rec = pb.Record()  # type: ignore[attr-defined]
    try:
        rec.ParseFromString(last)
    except Exception:
        return False
    return rec.WhichOneof("record_type") == "exit"


def _item_value(item: Any) -> Any:
    if item.value_json:
        return json.loads(item.value_json)
    which = (
        item.WhichOneof("value") if "value" in [o.name for o in item.DESCRIPTOR.oneofs] else None
    )
    return getattr(item, which) if which else None


def find_wandb_file(run_dir: str | Path) -> Path:
    path = Path(run_dir).expanduser()
    if path.is_file():
        return path
    found = sorted(path.rglob("*.wandb"))
    if not found:
        raise FileNotFoundError(f"no .wandb file under {path}")
    if len(found) > 1:
        raise ValueError(
            f"{len(found)} .wandb files under {path}; pass one run directory "
            f"(e.g. {found[0].parent})"
        )
    return found[0]


def read_wandb_history(run: str | Path) -> list[dict[str, Any]]:
    """History rows of a local wandb run (offline, or online before upload), in logged order.

    Useful to inspect an offline run without ``wandb sync``, and to check what was logged.

    Args:
        run: the run directory (``.../wandb/offline-run-<time>-<id>``), a directory containing
            exactly one run, or the ``run-<id>.wandb`` file itself.

    Returns:
        One dict per ``run.log`` call with its keys plus ``_step`` (wandb's internal keys such
        as ``_runtime`` and ``_timestamp`` included).

    Example:
        >>> from realax.log import read_wandb_history
        >>> rows = read_wandb_history(run.dir + "/..")  # doctest: +SKIP
        >>> [r["_step"] for r in rows]  # doctest: +SKIP
        [1, 2, 3]
    """
    from wandb.proto import wandb_internal_pb2 as pb

    data = find_wandb_file(run).read_bytes()
    rows = []
    for raw in _records(data):
        rec = pb.Record()  # type: ignore[attr-defined]
        try:
            rec.ParseFromString(raw)
        except Exception:
            continue  # a record cut short while the run was still writing
        if rec.WhichOneof("record_type") != "history":
            continue
        row: dict[str, Any] = {}
        for item in rec.history.item:
            key = "/".join(item.nested_key) if item.nested_key else item.key
            row[key] = _item_value(item)
        if "_step" not in row and rec.history.HasField("step"):
            row["_step"] = rec.history.step.num
        rows.append(row)
    return rows


def read_wandb_config(run: str | Path) -> dict[str, Any]:
    """The config (hyperparameters) recorded in a local wandb run's ``.wandb`` file.

    Args:
        run: as for :func:`read_wandb_history`.

    Returns:
        The run's config dict, without wandb's internal ``_wandb`` entry.

    Example:
        >>> from realax.log import read_wandb_config
        >>> read_wandb_config("wandb/offline-run-20250101_000000-abc123")  # doctest: +SKIP
        {'lr': 0.1}
    """
    from wandb.proto import wandb_internal_pb2 as pb

    config: dict[str, Any] = {}
    for raw in _records(find_wandb_file(run).read_bytes()):
        rec = pb.Record()  # type: ignore[attr-defined]
        try:
            rec.ParseFromString(raw)
        except Exception:
            continue
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            record = rec.run.config  # the config given to wandb.init
        elif kind == "config":
            record = rec.config  # later run.config updates
        else:
            continue
        for item in record.update:
            key = "/".join(item.nested_key) if item.nested_key else item.key
            config[key] = json.loads(item.value_json)
        for item in record.remove:
            config.pop("/".join(item.nested_key) if item.nested_key else item.key, None)
    config.pop("_wandb", None)
    return config
