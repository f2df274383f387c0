"""A circular replay buffer held in JAX arrays (lives inside the compiled training loop)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

__all__ = ["ReplayBuffer"]


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
