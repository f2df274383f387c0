"""The device mesh of a trainer split over ``n_devices`` (one axis, ``"devices"``)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = ["AXIS", "make_mesh", "replicated"]

#: name of the mesh axis the trainers split work over
AXIS = "devices"


def make_mesh(n_devices: int) -> Mesh | None:
    """A 1-D mesh of the first ``n_devices`` devices (process order), or None for one device."""
    if n_devices <= 1:
        return None
    return Mesh(np.asarray(jax.devices()[:n_devices]), (AXIS,))


def replicated(tree: Any, mesh: Mesh | None) -> Any:
    """``tree`` pinned to every device of ``mesh`` inside a traced program (no-op without one).

    Without it XLA's sharding propagation may split replicated state over the mesh (it sees
    sharded inputs next to it), turning reductions into all-reduces whose summation order
    depends on the topology.
    """
    if mesh is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh, P()))
