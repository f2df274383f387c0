"""A circular replay buffer held in JAX arrays (lives inside the compiled training loop)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from realax.agents import Dataset, Transition

__all__ = ["ReplayBuffer", "dataset_transitions"]


def dataset_transitions(dataset: Any) -> Transition:
    """A dataset's rows as replay rows: a `Transition`, float32 observations and rewards,
    ``terminated = masks == 0``."""
    ds = dataset if isinstance(dataset, Dataset) else Dataset.create(**dict(dataset))
    rows = ds.to_transition()
    return rows.replace(
        obs=jnp.asarray(rows.obs, jnp.float32),
        rewards=jnp.asarray(rows.rewards, jnp.float32),
        next_obs=jnp.asarray(rows.next_obs, jnp.float32),
        terminated=jnp.asarray(rows.terminated) > 0.5,
    )


class ReplayBuffer(struct.PyTreeNode):
    """Fixed-capacity FIFO of transitions, sampled uniformly with replacement.

    Every leaf of ``data`` has a leading axis of ``capacity`` rows. ``add`` writes a batch of
    rows at ``pos`` (wrapping around and overwriting the oldest rows); ``sample`` draws rows
    among the ``size`` filled ones. The buffer is a pytree of arrays, so it is jitted, vmapped
    over seeds, sharded over devices (split along the capacity axis) and checkpointed with the
    rest of a trainer state.

    Attributes:
        data: a pytree of arrays ``(capacity, ...)``: the off-policy trainer stores a
            `realax.agents.Transition`, and `sample` returns one.
        pos: int32 row where the next transition is written.
        size: int32 number of filled rows (at most ``capacity``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> buf = ReplayBuffer.create({"obs": jnp.zeros(3), "reward": jnp.zeros(())}, capacity=4)
        >>> buf = buf.add({"obs": jnp.ones((3, 3)), "reward": jnp.arange(3.0)})
        >>> int(buf.size), int(buf.pos)
        (3, 3)
        >>> buf.sample(jax.random.key(0), 5)["obs"].shape
        (5, 3)
    """

    data: Any
    pos: jax.Array
    size: jax.Array

    @classmethod
    def create(cls, example: Any, *, capacity: int) -> ReplayBuffer:
        """An empty buffer whose rows look like ``example`` (one transition, no batch axis).

        Args:
            example: a pytree of arrays of one transition (e.g. a `realax.agents.Transition`
                or a dict; shapes and dtypes are kept).
            capacity: number of rows.
        """
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int (got capacity={capacity!r})")
        data = jax.tree.map(
            lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example
        )
        zero = jnp.zeros((), jnp.int32)
        return cls(data=data, pos=zero, size=zero)

    @classmethod
    def from_dataset(cls, dataset: Any, *, capacity: int | None = None) -> ReplayBuffer:
        """A buffer of `realax.agents.Transition` rows holding ``dataset`` (offline-to-online).

        The dataset's rows fill the first ``dataset.size`` rows (``terminated`` is ``masks ==
        0``); online transitions added later go after them and, once the buffer is full,
        overwrite the oldest rows, the dataset's first.

        Args:
            dataset: a `realax.agents.Dataset` (or a mapping) with ``observations``,
                ``actions``, ``rewards``, ``masks`` and ``next_observations``.
            capacity: number of rows, at least ``dataset.size`` (default: ``dataset.size``).

        Example:
            >>> import jax.numpy as jnp
            >>> from realax.agents import Dataset
            >>> ds = Dataset.create(observations=jnp.zeros((3, 2)), actions=jnp.zeros(3, jnp.int32),
            ...                     rewards=jnp.ones(3), masks=jnp.array([1.0, 1.0, 0.0]),
            ...                     next_observations=jnp.zeros((3, 2)))
            >>> buf = ReplayBuffer.from_dataset(ds, capacity=8)
            >>> int(buf.size), int(buf.pos), buf.data.terminated.tolist()[:3]
            (3, 3, [False, False, True])
        """
        rows = dataset_transitions(dataset)
        size = int(rows.rewards.shape[0])
        capacity = size if capacity is None else capacity
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < size:
            raise ValueError(
                f"capacity must be an int of at least the dataset's {size} transitions (got "
                f"capacity={capacity!r}); use capacity>={size}"
            )
        example = jax.tree.map(lambda x: x[0], rows)
        return cls.create(example, capacity=capacity).add(rows)

    @property
    def capacity(self) -> int:
        """Number of rows (static: read from the arrays' leading axis)."""
        return int(jax.tree.leaves(self.data)[0].shape[0])

    def add(self, batch: Any) -> ReplayBuffer:
        """Append ``n`` transitions (leading axis ``n <= capacity``), overwriting the oldest."""
        n = int(jax.tree.leaves(batch)[0].shape[0])
        cap = self.capacity
        if n > cap:
            raise ValueError(
                f"ReplayBuffer.add got {n} transitions at once but the capacity is {cap}; "
                "use a buffer at least as large as the number of environments"
            )
        idx = (self.pos + jnp.arange(n, dtype=jnp.int32)) % cap
        data = jax.tree.map(lambda d, b: d.at[idx].set(b.astype(d.dtype)), self.data, batch)
        return self.replace(
            data=data,
            pos=(self.pos + n) % cap,
            size=jnp.minimum(self.size + n, cap).astype(jnp.int32),
        )

    def sample(self, key: jax.Array, batch_size: int) -> Any:
        """``batch_size`` rows drawn uniformly (with replacement) from the filled ones."""
        idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(self.size, 1))
        return jax.tree.map(lambda d: d[idx], self.data)
