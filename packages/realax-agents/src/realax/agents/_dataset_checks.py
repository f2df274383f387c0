"""Host-side checks of a dataset (`check_dataset`) and the derivation of ``dones``.

Both work on any mapping of arrays, so `realax.agents.Dataset` and other code (the offline
trainer) share them; `check_dataset` is re-exported by ``realax.agents._dataset``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["check_dataset", "derive_dones"]


def derive_dones(arrays: Mapping[str, jax.Array]) -> jax.Array | None:
    """``dones`` from ``masks`` and observation jumps (None without either)."""
    n = int(jax.tree.leaves(dict(arrays))[0].shape[0])
    dones = jnp.zeros(n, bool)
    found = False
    if "masks" in arrays:
        dones = dones | (jnp.reshape(arrays["masks"], (n, -1))[:, 0] == 0)
        found = True
    if "observations" in arrays and "next_observations" in arrays:
        obs = jnp.reshape(arrays["observations"], (n, -1)).astype(jnp.float32)
        nxt = jnp.reshape(arrays["next_observations"], (n, -1)).astype(jnp.float32)
        if obs.shape == nxt.shape and n > 1:
            jump = jnp.linalg.norm(obs[1:] - nxt[:-1], axis=-1) > 1e-6
            dones = dones | jnp.concatenate([jump, jnp.zeros(1, bool)])
        found = True
    if not found:
        return None
    return dones.at[-1].set(True) if n else dones


def _rows(mask: np.ndarray, limit: int = 5) -> str:
    rows = np.nonzero(mask)[0]
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row(s) {shown}{more}"


def _check_shape(data: Mapping[str, Any], key: str, shape: Any, owner: str) -> None:
    if shape is None or key not in data:
        return
    got = tuple(np.shape(data[key])[1:])
    if got != tuple(shape):
        raise ValueError(
            f"{owner}: dataset {key!r} has rows of shape {got}, expected {tuple(shape)} "
            "(the environment's); collect the dataset from the same environment"
        )


def check_dataset(
    data: Mapping[str, Any],
    required_keys: Sequence[str] = (),
    *,
    owner: str,
    batch_size: int | None = None,
    observation_shape: Sequence[int] | None = None,
    action_shape: Sequence[int] | None = None,
) -> None:
    """Check a dataset on the host before anything is compiled; raise a `ValueError` that
    names ``owner``, what was expected, what it got and the fix.

    Checks: ``data`` is a mapping of arrays with a leading axis of one common length;
    every key of ``required_keys`` is present (naming the missing ones); ``rewards`` (when
    present) are finite (naming the rows); optionally ``batch_size <= size`` and the per-row
    shapes of ``observations`` / ``next_observations`` and ``actions``.

    Args:
        data: a `Dataset` or any mapping of arrays.
        required_keys: the keys the consumer reads (e.g. ``TRANSITION_KEYS``).
        owner: who checks, put at the front of the message (``"OfflineTrainer(IQL)"``).
        batch_size: minibatch size the consumer will draw, or None.
        observation_shape: expected shape of one observation row, or None.
        action_shape: expected shape of one action row (``()`` for discrete), or None.

    Example:
        >>> import numpy as np
        >>> data = {"observations": np.zeros((4, 3)), "rewards": np.array([0, 1, np.nan, 1])}
        >>> try:
        ...     check_dataset(data, ["observations", "actions"], owner="IQL")
        ... except ValueError as e:
        ...     print(str(e)[:39])
        IQL: the dataset has no 'actions' (need
        >>> try:
        ...     check_dataset(data, ["observations"], owner="IQL")
        ... except ValueError as e:
        ...     print(str(e)[:57])
        IQL: dataset 'rewards' are NaN or infinite at row(s) 2 (o
    """
    if not isinstance(data, Mapping):
        raise ValueError(
            f"{owner}: expected a realax.agents.Dataset (or a mapping of arrays), got "
            f"{type(data).__name__}; build one with Dataset.create(**arrays)"
        )
    missing = [k for k in required_keys if k not in data]
    if missing:
        names = ", ".join(repr(k) for k in missing)
        raise ValueError(
            f"{owner}: the dataset has no {names} (needed: {list(required_keys)}); "
            f"it has {sorted(data)}"
        )
    lengths = {k: (np.shape(v)[0] if np.ndim(v) else None) for k, v in data.items()}
    if len(set(lengths.values())) > 1 or None in lengths.values():
        raise ValueError(
            f"{owner}: every dataset array needs the same leading length (one row per "
            f"transition); got {lengths}"
        )
    size = next(iter(lengths.values()), 0) or 0
    if size == 0:
        raise ValueError(f"{owner}: the dataset is empty (0 rows); it needs transitions")
    if "rewards" in data:
        rewards = np.asarray(data["rewards"]).reshape(size, -1)
        bad = ~np.isfinite(rewards).all(axis=1)
        if bad.any():
            raise ValueError(
                f"{owner}: dataset 'rewards' are NaN or infinite at {_rows(bad)} (of {size}); "
                "drop those rows (dataset.subset(mask)) or fix the data"
            )
    if batch_size is not None and batch_size > size:
        raise ValueError(
            f"{owner}: batch_size={batch_size} is larger than the dataset ({size} rows); "
            f"use batch_size <= {size} or a larger dataset"
        )
    _check_shape(data, "observations", observation_shape, owner)
    _check_shape(data, "next_observations", observation_shape, owner)
    _check_shape(data, "actions", action_shape, owner)
