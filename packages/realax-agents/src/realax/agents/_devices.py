"""Moving pytrees onto several local devices for `jax.pmap` (or `jax.shard_map`) updates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = ["replicate", "shard_batch", "unreplicate"]

PyTree = Any


def _leading_sharding(devices: Sequence[jax.Device]) -> NamedSharding:
    mesh = Mesh(np.asarray(devices), ("devices",))
    return NamedSharding(mesh, PartitionSpec("devices"))


def replicate(tree: PyTree, devices: Sequence[jax.Device] | None = None) -> PyTree:
    """Copy every leaf onto each device, adding a leading device axis.

    The result is what `jax.pmap` expects for arguments that are the same on every device
    (an agent, a `TrainState`). Typed PRNG keys are replicated like any other leaf.

    Args:
        tree: any pytree of arrays (numpy arrays and Python scalars are converted).
        devices: devices to replicate onto; default `jax.local_devices()`.

    Returns:
        The pytree with leaves of shape ``(len(devices), *leaf.shape)``, sharded over devices.

    Example:
        >>> tree = {"w": jnp.ones(3)}
        >>> replicate(tree)["w"].shape == (jax.local_device_count(), 3)
        True
    """
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must be a non-empty sequence of jax devices (got [])")
    sharding = _leading_sharding(devices)
    n = len(devices)

    def _rep(x: Any) -> jax.Array:
        x = jnp.asarray(x)
        return jax.device_put(jnp.broadcast_to(x[None], (n, *x.shape)), sharding)

    return jax.tree.map(_rep, tree)


def unreplicate(tree: PyTree) -> PyTree:
    """Take the first device's copy of every leaf (inverse of `replicate`).

    Example:
        >>> tree = {"w": jnp.arange(3.0)}
        >>> unreplicate(replicate(tree))["w"].tolist()
        [0.0, 1.0, 2.0]
    """
    return jax.tree.map(lambda x: x[0], tree)


def shard_batch(batch: PyTree, n_devices: int | None = None) -> PyTree:
    """Split every leaf's leading (batch) axis evenly over devices.

    A leaf of shape ``(B, ...)`` becomes ``(n_devices, B // n_devices, ...)``; device ``i``
    gets rows ``i * B // n_devices`` to ``(i + 1) * B // n_devices``. Numpy leaves stay numpy
    (``jax.pmap`` transfers them); jax leaves are reshaped with ``jnp.reshape``. A
    `realax.agents.Dataset` (or a `Transition`) is a pytree: ``shard_batch(dataset)`` returns
    a `Dataset` whose arrays are ``(n_devices, size // n_devices, ...)``.

    Args:
        batch: pytree of arrays sharing a leading batch axis.
        n_devices: number of shards; default `jax.local_device_count()`.

    Returns:
        The reshaped pytree.

    Raises:
        ValueError: if a leaf has no leading axis or its size does not divide by
            ``n_devices``.

    Example:
        >>> batch = {"observations": jnp.zeros((8, 4))}
        >>> shard_batch(batch, n_devices=2)["observations"].shape
        (2, 4, 4)
    """
    if n_devices is None:
        n_devices = jax.local_device_count()
    if isinstance(n_devices, bool) or not isinstance(n_devices, int | np.integer) or n_devices < 1:
        raise ValueError(f"n_devices must be a positive integer (got n_devices={n_devices!r})")
    n_devices = int(n_devices)
    leaves_with_path = jax.tree_util.tree_leaves_with_path(batch)
    for path, leaf in leaves_with_path:
        shape = np.shape(leaf)
        where = jax.tree_util.keystr(path) or "batch"
        if len(shape) == 0:
            raise ValueError(
                f"shard_batch needs a leading batch axis on every leaf, but {where} is a scalar"
            )
        if shape[0] % n_devices != 0:
            size = shape[0]
            fix = (size // n_devices + 1) * n_devices
            raise ValueError(
                f"batch size must be divisible by n_devices (got leading size {size} for "
                f"{where}, n_devices={n_devices}); use a batch size of "
                f"{max(n_devices, size - size % n_devices)} or {fix}"
            )

    def _split(x: Any) -> Any:
        new_shape = (n_devices, np.shape(x)[0] // n_devices, *np.shape(x)[1:])
        if isinstance(x, np.ndarray):
            return x.reshape(new_shape)
        return jnp.reshape(x, new_shape)

    return jax.tree.map(_split, batch)
