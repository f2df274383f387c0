"""Saving and loading a `Dataset`'s arrays: one numpy ``.npz`` file, atomic and checksummed.

The file is an ordinary ``.npz`` archive (``numpy.load`` reads it) with one array per
dataset key plus a JSON header stored under `HEADER_KEY`: the format version and, for every
key, its dtype, shape and the sha256 of its bytes (C order). `load_arrays` verifies all of
them and raises `DatasetFileError` naming the file when anything differs, so a truncated or
corrupted file never loads silently. Dtypes numpy cannot store natively (``bfloat16`` and the
other ``ml_dtypes``) are stored as raw bytes and restored from the header.

`save_arrays` writes to a temporary file in the destination folder, ``fsync`` s it and renames
it over ``path`` (then ``fsync`` s the folder), so a reader sees the old file or the new one,
never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["HEADER_KEY", "DatasetFileError", "load_arrays", "save_arrays"]

#: name of the JSON header array inside the ``.npz`` archive (reserved: not a dataset key)
HEADER_KEY = "__realax_dataset__"
FORMAT = "realax.agents.Dataset"
VERSION = 1


class DatasetFileError(ValueError):
    """A dataset file is missing, truncated, corrupted or not a realax dataset."""


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _native(dtype: np.dtype) -> bool:
    """Whether ``.npz`` stores ``dtype`` as itself (bool, ints, floats, complex)."""
    return dtype.kind in "biufc" and bool(dtype.isbuiltin)


def save_arrays(path: str | os.PathLike[str], arrays: Mapping[str, Any], *, compress: bool) -> Path:
    """Write ``arrays`` to ``path`` atomically, with a checksummed header.

    Args:
        path: destination file (the name is used as given; ``.npz`` is the usual suffix).
        arrays: name -> array (numpy or jax); names must not be `HEADER_KEY`.
        compress: deflate the archive (``numpy.savez_compressed``).

    Returns:
        The destination as a `pathlib.Path`.
    """
    path = Path(path)
    if HEADER_KEY in arrays:
        raise ValueError(f"Dataset.save: the key {HEADER_KEY!r} is reserved; rename it")
    host = {}
    for k, v in arrays.items():
        if jnp.issubdtype(getattr(v, "dtype", np.float32), jax.dtypes.prng_key):
            raise TypeError(
                f"Dataset.save: {k!r} holds typed PRNG keys, which cannot be stored; store "
                "jax.random.key_data(keys) and rebuild them with jax.random.wrap_key_data"
            )
        host[k] = np.asarray(v)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "arrays": {
            k: {"dtype": v.dtype.name, "shape": list(v.shape), "sha256": _digest(v)}
            for k, v in host.items()
        },
    }
    stored = {k: (v if _native(v.dtype) else v.reshape(-1).view(np.uint8)) for k, v in host.items()}
    stored[HEADER_KEY] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Dataset.save: folder {str(folder)!r} does not exist; create it first "
            "(e.g. Path(path).parent.mkdir(parents=True))"
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, **stored)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(folder)
    return path


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. platforms that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_header(archive: Any, where: str) -> dict[str, Any]:
    if HEADER_KEY not in archive.files:
        raise DatasetFileError(
            f"{where} is an .npz file without a realax dataset header ({HEADER_KEY!r}); "
            "write it with Dataset.save, or build the dataset with "
            "Dataset.create(**numpy.load(path))"
        )
    header = json.loads(archive[HEADER_KEY].tobytes().decode())
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise DatasetFileError(
            f"{where}: unsupported dataset format {header.get('format')!r} version "
            f"{header.get('version')!r} (expected {FORMAT!r} version {VERSION})"
        )
    return header


def _restore(name: str, raw: np.ndarray, meta: Mapping[str, Any], where: str) -> np.ndarray:
    dtype = np.dtype(jnp.dtype(meta["dtype"]))
    shape = tuple(meta["shape"])
    array = raw if _native(dtype) else raw.view(dtype).reshape(shape)
    if array.dtype != dtype or array.shape != shape:
        raise DatasetFileError(
            f"{where}: array {name!r} is {array.dtype}{list(array.shape)}, but the header "
            f"records {dtype}{list(shape)}; the file is corrupt, save the dataset again"
        )
    if _digest(array) != meta["sha256"]:
        raise DatasetFileError(
            f"{where}: array {name!r} does not match its recorded sha256 checksum; the file "
            "is corrupt or was modified, save the dataset again"
        )
    return array


def load_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read and verify a file written by `save_arrays`; returns name -> numpy array.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        DatasetFileError: if the file is truncated, corrupted, or not a realax dataset.
    """
    path = Path(path)
    where = f"Dataset.load({str(path)!r})"
    if not path.is_file():
        raise FileNotFoundError(f"{where}: no such file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            header = _read_header(archive, where)
            metas = header["arrays"]
            if set(metas) != set(archive.files) - {HEADER_KEY}:
                raise DatasetFileError(
                    f"{where}: the file holds arrays {sorted(set(archive.files) - {HEADER_KEY})} "
                    f"but its header lists {sorted(metas)}; the file is corrupt"
                )
            return {k: _restore(k, archive[k], metas[k], where) for k in metas}
    except DatasetFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetFileError(
            f"{where}: the file is truncated or corrupt ({type(e).__name__}: {e}); "
            "save the dataset again"
        ) from e
