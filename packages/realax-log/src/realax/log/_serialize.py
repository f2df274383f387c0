"""Flattening a training state into plain arrays for checkpoints, and back.

A checkpoint item is a flat dict ``{"leaf_00000": array, ...}`` of numpy arrays plus a JSON
record describing each leaf: its key path in the original pytree (``jax.tree_util.keystr``),
shape, dtype, CRC32 of its bytes and, for typed PRNG keys, the key implementation. Typed keys
(``jax.random.key``) are stored as their raw ``uint32`` key data
(``jax.random.key_data``) and rebuilt with ``jax.random.wrap_key_data``; the pytree structure
itself (flax struct dataclasses, evosax states, dicts, ...) is not stored: it comes from the
``like`` argument of :func:`realax.log.restore`, and the recorded key paths let a mismatch be
reported leaf by leaf.
"""

from __future__ import annotations

import zlib
from typing import Any

import jax
import numpy as np

#: checkpoints written by orbax, one item per leaf (realax-log 0.1; read only)
FORMAT = "realax-log/1"
#: checkpoints of packed leaves: one array per dtype plus a manifest (``_packed``)
PACKED = "realax-log/2"


def is_key(x: Any) -> bool:
    """Whether ``x`` (array or abstract value) holds typed PRNG keys."""
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def key_impl_name(x: Any) -> str | None:
    """Name of the PRNG implementation of a typed key array (``"threefry2x32"``, ...)."""
    try:
        return str(jax.random.key_impl(x))
    except (TypeError, ValueError, AttributeError):
        return None


def leaf_name(i: int) -> str:
    return f"leaf_{i:05d}"


def split_keys(tree: Any) -> tuple[list[Any], list[str], list[str | None]]:
    """Flatten ``tree``; typed keys become their uint32 data (traceable).

    Returns:
        (leaves, paths, key_impls): arrays to store, key path of each leaf, and the key
        implementation name for leaves that were typed keys (``None`` otherwise).
    """
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    leaves, paths, impls = [], [], []
    for path, leaf in flat:
        paths.append(jax.tree_util.keystr(path))
        if is_key(leaf):
            impls.append(key_impl_name(leaf))
            leaves.append(jax.random.key_data(leaf))
        else:
            impls.append(None)
            leaves.append(leaf)
    return leaves, paths, impls


def manifest(
    leaves: list[Any], paths: list[str] | None = None, impls: list[str | None] | None = None
) -> tuple[list[dict], list[str]]:
    """Where each leaf goes in the packed arrays: ``(records, groups)``.

    ``records``: per leaf its ``path``, ``shape``, ``dtype``, ``key_impl`` and ``offset`` (in
    elements) within the array of its dtype; ``groups``: the dtypes, in order of first use.
    ``leaves`` may be traced or abstract (only shapes and dtypes are read).
    """
    n = len(leaves)
    paths = [""] * n if paths is None else paths
    impls = [None] * n if impls is None else impls
    sizes: dict[str, int] = {}
    records = []
    for x, p, k in zip(leaves, paths, impls, strict=True):
        dtype = np.dtype(x.dtype).name
        shape = [int(d) for d in np.shape(x)]
        offset = sizes.get(dtype, 0)
        records.append({"path": p, "shape": shape, "dtype": dtype, "key_impl": k, "offset": offset})
        sizes[dtype] = offset + int(np.prod(shape, dtype=np.int64))
    return records, list(sizes)


def pack(leaves: list[Any], records: list[dict], groups: list[str], xp: Any = np) -> list[Any]:
    """The leaves flattened and joined into one 1-D array per dtype of ``groups`` (``xp``:
    ``numpy`` on the host, ``jax.numpy`` inside a traced program)."""
    parts: dict[str, list] = {g: [] for g in groups}
    for x, r in zip(leaves, records, strict=True):
        parts[r["dtype"]].append(xp.ravel(x))
    return [xp.concatenate(parts[g]) if len(parts[g]) > 1 else parts[g][0] for g in groups]


def unpack(arrays: list[np.ndarray], records: list[dict], groups: list[str]) -> list[np.ndarray]:
    """Inverse of :func:`pack`: the leaves, shaped, in the order of ``records``."""
    by_dtype = dict(zip(groups, arrays, strict=True))
    out = []
    for r in records:
        size = int(np.prod(r["shape"], dtype=np.int64))
        flat = by_dtype[r["dtype"]][r["offset"] : r["offset"] + size]
        if flat.size != size:
            raise ValueError(f"leaf {r['path']} lies outside the packed {r['dtype']} array")
        out.append(flat.reshape(r["shape"]))
    return out


def crc32(a: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(a).tobytes())


def describe(arrays: list[np.ndarray], paths: list[str], impls: list[str | None]) -> list[dict]:
    """JSON-able description of stored leaves."""
    return [
        {
            "path": p,
            "shape": list(a.shape),
            "dtype": a.dtype.name,
            "key_impl": k,
            "crc32": crc32(a),
        }
        for a, p, k in zip(arrays, paths, impls, strict=True)
    ]


def expected_leaves(like: Any) -> tuple[list[dict], Any]:
    """What a checkpoint of ``like`` must hold: per-leaf path/shape/dtype/key flag, and treedef."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(like)
    out = []
    for path, leaf in flat:
        if not hasattr(leaf, "shape") or not hasattr(leaf, "dtype"):
            leaf = np.asarray(leaf)
        if is_key(leaf):
            data_shape = jax.eval_shape(jax.random.key_data, leaf).shape
            out.append(
                {
                    "path": jax.tree_util.keystr(path),
                    "shape": list(data_shape),
                    "dtype": "uint32",
                    "is_key": True,
                    "key_impl": key_impl_name(leaf),
                }
            )
        else:
            out.append(
                {
                    "path": jax.tree_util.keystr(path),
                    "shape": list(leaf.shape),
                    "dtype": np.dtype(leaf.dtype).name,
                    "is_key": False,
                    "key_impl": None,
                }
            )
    return out, treedef
