"""Datasets of the gradient trainer: checks, the split over processes, exact minibatches."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ._mesh import AXIS

__all__ = [
    "DATASET_SHARDINGS",
    "check_dataset",
    "check_dataset_sharding",
    "global_examples",
    "shard_dataset",
    "take",
]

DATASET_SHARDINGS = ("replicated", "process_local")


def _to_bits(x: jax.Array) -> jax.Array:
    """``x`` as uint32 words (a trailing axis is added for 8-byte dtypes)."""
    if x.dtype == jnp.bool_:
        return x.astype(jnp.uint32)
    size = x.dtype.itemsize
    if size >= 4:
        return jax.lax.bitcast_convert_type(x, jnp.uint32)
    narrow = {1: jnp.uint8, 2: jnp.uint16}[size]
    return jax.lax.bitcast_convert_type(x, narrow).astype(jnp.uint32)


def _from_bits(bits: jax.Array, dtype: Any) -> jax.Array:
    dtype = jnp.dtype(dtype)
    if dtype == jnp.bool_:
        return bits.astype(jnp.bool_)
    if dtype.itemsize >= 4:
        return jax.lax.bitcast_convert_type(bits, dtype)
    narrow = {1: jnp.uint8, 2: jnp.uint16}[dtype.itemsize]
    return jax.lax.bitcast_convert_type(bits.astype(narrow), dtype)


def _exact_take(dataset: Any, idx: jax.Array, rows: int) -> Any:
    """Rows ``idx`` of a dataset whose examples are split over the mesh axis (in shard_map).

    ``rows`` is the number of examples each device holds. Every device picks the requested
    rows it holds and zeros elsewhere, and a sum over the devices assembles them. The sum runs
    on the bits (as unsigned integers), so it is exact and independent of the summation order:
    each row comes out bit for bit as stored, whichever device (or process) held it.
    """
    local = idx - jax.lax.axis_index(AXIS) * rows
    mine = (local >= 0) & (local < rows)
    local = jnp.clip(local, 0, rows - 1)

    def take(x):
        bits = _to_bits(jnp.take(x, local, axis=0))
        mask = mine.reshape(mine.shape + (1,) * (bits.ndim - 1))
        bits = jnp.where(mask, bits, jnp.uint32(0))
        # each device keeps its own slice of the minibatch (tiled reduce-scatter)
        bits = jax.lax.psum_scatter(bits, AXIS, scatter_dimension=0, tiled=True)
        return _from_bits(bits, x.dtype)

    return jax.tree.map(take, dataset)


def check_dataset(dataset: Any) -> tuple[Any, int]:
    """``(dataset as arrays, number of examples)``, or ``(None, 0)``."""
    if dataset is None:
        return None, 0
    leaves = jax.tree.leaves(dataset)
    if not leaves:
        raise ValueError("dataset must be a pytree of arrays with at least one leaf.")
    leaves = [jnp.asarray(x) for x in leaves]
    sizes = {int(x.shape[0]) if x.ndim else -1 for x in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(
            f"every dataset leaf needs the same leading axis of examples (got leaf shapes "
            f"{[tuple(x.shape) for x in leaves]}); stack examples along axis 0."
        )
    return jax.tree.unflatten(jax.tree.structure(dataset), leaves), sizes.pop()


def check_dataset_sharding(dataset_sharding: Any, dataset: Any, n_devices: int) -> str:
    if dataset_sharding not in DATASET_SHARDINGS:
        raise ValueError(
            f"dataset_sharding must be one of {DATASET_SHARDINGS} (got "
            f"dataset_sharding={dataset_sharding!r}); use 'process_local' when each process "
            "passes only its own part of the dataset."
        )
    if dataset_sharding == "process_local":
        if dataset is None:
            raise ValueError(
                "dataset_sharding='process_local' needs a dataset (got dataset=None); pass "
                "this process's examples as dataset=... or drop dataset_sharding."
            )
        if jax.process_count() > 1 and n_devices != jax.device_count():
            raise ValueError(
                f"dataset_sharding='process_local' in a run of {jax.process_count()} "
                f"processes needs n_devices=jax.device_count() (={jax.device_count()}, got "
                f"n_devices={n_devices}): the examples are split over every device of "
                "every process."
            )
    for leaf in jax.tree.leaves(dataset):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            raise ValueError(
                "dataset leaves must be arrays this process holds (got a jax.Array spread "
                f"over several processes, sharding {leaf.sharding}); pass each process's "
                "own examples (numpy or local arrays) with dataset_sharding='process_local'."
            )
    return dataset_sharding


def global_examples(n_local: int, n_devices: int) -> int:
    """Examples over all processes (each must hold the same number, split evenly).

    The counts are exchanged first, so every process sees the same counts and raises the
    same error (a process raising alone would leave the others waiting).
    """
    counts = [n_local]
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        gathered = multihost_utils.process_allgather(np.int64(n_local))
        counts = np.asarray(gathered).ravel().tolist()
    n_local_devices = n_devices // len(counts)
    for proc, count in enumerate(counts):
        if count % n_local_devices:
            ok = -(-count // n_local_devices) * n_local_devices
            raise ValueError(
                f"with dataset_sharding='process_local' each process's dataset must split "
                f"evenly over its {n_local_devices} device(s) (got {count} examples on "
                f"process {proc}); pass a multiple of {n_local_devices} examples per "
                f"process, e.g. {ok} or {count - count % n_local_devices}."
            )
    if len(set(counts)) != 1:
        raise ValueError(
            "with dataset_sharding='process_local' every process must pass the same "
            f"number of examples (got {counts} for processes 0..{len(counts) - 1}); split "
            "the dataset into equal parts, dropping the remainder."
        )
    return int(sum(counts))


def shard_dataset(dataset: Any, mesh: Mesh) -> Any:
    """One global array per leaf, examples split over the mesh in process order."""
    owners = [d.process_index for d in mesh.devices.ravel()]
    if owners != sorted(owners):  # pragma: no cover - jax.devices() is process-ordered
        raise ValueError(
            f"the devices of n_devices={mesh.size} are not grouped by process "
            f"(process indices {owners}); dataset_sharding='process_local' needs them in "
            "process order."
        )
    sharding = NamedSharding(mesh, P(AXIS))
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), dataset
    )


def take(dataset: Any, batch_idx: jax.Array, mesh: Mesh | None, n_examples: int) -> Any:
    """The minibatch ``batch_idx`` (global example indices) of the dataset; with ``mesh``, of a
    dataset split over it (``shard_dataset``), assembled exactly."""
    if mesh is None:
        return jax.tree.map(lambda x: x[batch_idx], dataset)
    rows = n_examples // mesh.size
    return jax.shard_map(
        lambda d, i: _exact_take(d, i, rows),
        mesh=mesh,
        in_specs=(P(AXIS), P()),
        out_specs=P(AXIS),
        check_vma=False,
    )(dataset, batch_idx)
