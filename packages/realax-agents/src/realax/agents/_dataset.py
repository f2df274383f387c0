"""`Dataset`: a fixed set of transitions for offline RL, read like a dict of arrays.

The keys follow jaxrl_m's: ``observations``, ``actions``, ``rewards``, ``masks`` (1.0 where
the next state's value is bootstrapped, 0.0 at a termination), ``dones`` (True where an
episode ended, terminated or truncated) and ``next_observations``; any other key is kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ._batches import Transition

__all__ = ["Dataset"]

#: the keys an offline agent reads (`Dataset.to_transition` needs them)
TRANSITION_KEYS = ("observations", "actions", "rewards", "masks", "next_observations")


class Dataset(struct.PyTreeNode, Mapping):
    """A mapping of arrays sharing a leading transition axis; a pytree, so it passes
    through ``jit``, ``vmap`` and ``shard_map``.

    ``data["observations"]`` reads an array; `sample` draws a minibatch (a `Dataset` of
    ``batch_size`` rows) inside compiled code. An agent's ``update`` takes a `Dataset`
    batch directly (a mapping with the keys above), or a `Transition` from `to_transition`.

    Attributes:
        arrays: dict of arrays ``(size, ...)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> ds = Dataset.create(observations=jnp.zeros((5, 3)), actions=jnp.zeros(5, jnp.int32),
        ...                     rewards=jnp.ones(5), masks=jnp.ones(5),
        ...                     dones=jnp.array([0, 0, 1, 0, 1], bool),
        ...                     next_observations=jnp.zeros((5, 3)))
        >>> ds.size, ds["observations"].shape
        (5, (5, 3))
        >>> ds.sample(jax.random.key(0), 8)["rewards"].shape
        (8,)
        >>> ds.episode_returns().tolist()
        [3.0, 2.0]
    """

    arrays: dict[str, Any]

    @classmethod
    def create(cls, **arrays: Any) -> Dataset:
        """A dataset of the given arrays (numpy or jax; converted to jax arrays).

        Raises:
            ValueError: without arrays, for a scalar array, or if the leading axes differ.
        """
        if not arrays:
            raise ValueError(
                "Dataset.create needs at least one array, e.g. Dataset.create(observations=..., "
                "actions=..., rewards=..., masks=..., dones=..., next_observations=...)"
            )
        converted = {k: jnp.asarray(v) for k, v in arrays.items()}
        lengths = {}
        for k, v in converted.items():
            if v.ndim == 0:
                raise ValueError(
                    f"Dataset.create: {k!r} is a scalar; every array needs a leading "
                    "transition axis"
                )
            lengths[k] = int(v.shape[0])
        if len(set(lengths.values())) > 1:
            raise ValueError(
                "Dataset.create: arrays have different lengths "
                f"{lengths}; every array needs one row per transition"
            )
        return cls(arrays=converted)

    # ------------------------------------------------------------------ mapping
    def __getitem__(self, key: str) -> Any:
        try:
            return self.arrays[key]
        except KeyError:
            raise KeyError(
                f"Dataset has no key {key!r}; its keys are {sorted(self.arrays)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.arrays)

    def __len__(self) -> int:
        return len(self.arrays)

    def __hash__(self) -> int:  # Mapping sets __hash__ = None; keep identity hashing
        return id(self)

    @property
    def size(self) -> int:
        """Number of transitions (static: the arrays' leading axis)."""
        return int(jax.tree.leaves(self.arrays)[0].shape[0])

    # ------------------------------------------------------------------ selecting rows
    def subset(self, indices: Any) -> Dataset:
        """The rows at ``indices`` (an int array or a boolean mask, numpy or jax)."""
        idx = jnp.asarray(indices)
        if idx.dtype == jnp.bool_:
            idx = jnp.nonzero(idx)[0]
        return Dataset(arrays={k: v[idx] for k, v in self.arrays.items()})

    def sample(self, key: jax.Array, batch_size: int) -> Dataset:
        """``batch_size`` rows drawn uniformly with replacement (jit-able)."""
        idx = jax.random.randint(key, (batch_size,), 0, self.size)
        return self.subset(idx)

    def to_transition(self) -> Transition:
        """The rows as a `realax.agents.Transition` (needs the keys of `TRANSITION_KEYS`)."""
        missing = [k for k in TRANSITION_KEYS if k not in self.arrays]
        if missing:
            raise KeyError(
                f"Dataset.to_transition: missing key(s) {missing}; it has {sorted(self.arrays)}"
            )
        a = self.arrays
        return Transition(
            obs=a["observations"],
            actions=a["actions"],
            rewards=a["rewards"],
            next_obs=a["next_observations"],
            terminated=1.0 - jnp.asarray(a["masks"], jnp.float32),
        )

    # ------------------------------------------------------------------ episodes
    def episode_ends(self) -> np.ndarray:
        """Indices of the last transition of each episode (host-side numpy).

        An episode ends where ``dones`` is true (or, without ``dones``, where ``masks`` is
        0); the last row always closes an episode.
        """
        if "dones" in self.arrays:
            ends = np.asarray(self.arrays["dones"]).astype(bool).copy()
        elif "masks" in self.arrays:
            ends = np.asarray(self.arrays["masks"]) == 0
        else:
            raise KeyError(
                f"Dataset.episode_ends needs 'dones' (or 'masks'); it has {sorted(self.arrays)}"
            )
        ends = ends.reshape(self.size)
        ends[-1] = True
        return np.nonzero(ends)[0]

    def episode_starts(self) -> np.ndarray:
        """Indices of the first transition of each episode (host-side numpy)."""
        ends = self.episode_ends()
        return np.concatenate([[0], ends[:-1] + 1]).astype(ends.dtype)

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of each episode, in order (host-side numpy)."""
        rewards = np.asarray(self.arrays["rewards"], np.float64).reshape(self.size)
        ends = self.episode_ends()
        cumulative = np.concatenate([[0.0], np.cumsum(rewards)])
        starts = self.episode_starts()
        return (cumulative[ends + 1] - cumulative[starts]).astype(np.float32)


def as_mapping(data: Mapping[str, Any] | Dataset) -> Mapping[str, Any]:
    """``data``'s arrays as a plain mapping (a `Dataset` or any mapping)."""
    return data.arrays if isinstance(data, Dataset) else data
