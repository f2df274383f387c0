"""Running observation statistics (count, mean, M2) with Welford/Chan merges."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

Array = jax.Array


class RunningStats(struct.PyTreeNode):
    """Count, mean and sum of squared deviations (M2) of the observations seen so far.

    The variance is ``m2 / count`` (population variance, numpy's ``var`` with ``ddof=0``).
    Statistics from separate batches combine exactly with :meth:`merge` (Chan et al.'s
    parallel update), so per-rollout statistics computed inside a vmapped population can be
    folded into the running ones after each generation.

    Attributes:
        count: float32 scalar, number of observations.
        mean: per-feature mean, shaped like one observation.
        m2: per-feature sum of squared deviations from the mean.

    >>> s = RunningStats.create(shape=(2,)).add(jnp.array([1.0, 2.0])).add(jnp.array([3.0, 2.0]))
    >>> s.mean.tolist(), s.var.tolist()
    ([2.0, 2.0], [1.0, 0.0])
    """

    count: Array
    mean: Array
    m2: Array

    @classmethod
    def create(cls, *, shape: tuple[int, ...]) -> RunningStats:
        """Empty statistics for observations of ``shape``."""
        return cls(
            count=jnp.zeros((), jnp.float32),
            mean=jnp.zeros(shape, jnp.float32),
            m2=jnp.zeros(shape, jnp.float32),
        )

    @property
    def var(self) -> Array:
        """Population variance (0 where nothing was seen)."""
        return self.m2 / jnp.maximum(self.count, 1.0)

    def add(self, x: Array, weight: Array | float = 1.0) -> RunningStats:
        """Welford update with one observation (``weight`` 0 leaves the stats unchanged)."""
        x = jnp.asarray(x, jnp.float32)
        w = jnp.asarray(weight, jnp.float32)
        count = self.count + w
        delta = x - self.mean
        mean = self.mean + jnp.where(count > 0, w / jnp.maximum(count, 1e-12), 0.0) * delta
        m2 = self.m2 + w * delta * (x - mean)
        return RunningStats(count=count, mean=mean, m2=m2)

    @classmethod
    def from_batch(cls, xs: Array, mask: Array | None = None) -> RunningStats:
        """Statistics of ``xs`` (leading axis = samples), counting only rows where ``mask``."""
        xs = jnp.asarray(xs, jnp.float32)
        if mask is None:
            mask = jnp.ones(xs.shape[:1], bool)
        w = mask.astype(jnp.float32).reshape(mask.shape + (1,) * (xs.ndim - 1))
        count = jnp.sum(mask.astype(jnp.float32))
        mean = jnp.sum(w * xs, axis=0) / jnp.maximum(count, 1.0)
        m2 = jnp.sum(w * jnp.square(xs - mean), axis=0)
        return cls(count=count, mean=mean, m2=m2)

    def merge(self, other: RunningStats) -> RunningStats:
        """Statistics of the union of both samples."""
        return merge_stats(jax.tree.map(lambda a, b: jnp.stack([a, b]), self, other))

    def normalize(self, obs: Array, *, clip: float = 10.0, eps: float = 1e-8) -> Array:
        """``(obs - mean) / sqrt(var + eps)`` clipped to ``[-clip, clip]``; the identity until
        at least two observations were seen."""
        obs = jnp.asarray(obs, jnp.float32)
        z = jnp.clip((obs - self.mean) / jnp.sqrt(self.var + eps), -clip, clip)
        return jnp.where(self.count > 1, z, obs)


def merge_stats(stats: RunningStats) -> RunningStats:
    """Merges a batch of statistics (any number of leading axes) into one.

    ``stats.count`` has the leading (batch) axes; ``mean``/``m2`` the same leading axes
    followed by the observation shape.
    """
    lead = stats.count.ndim
    count = stats.count.reshape(-1)
    feat = stats.mean.shape[lead:]
    mean = stats.mean.reshape((-1,) + feat)
    m2 = stats.m2.reshape((-1,) + feat)
    w = count.reshape((-1,) + (1,) * len(feat))
    total = jnp.sum(count)
    grand = jnp.sum(w * mean, axis=0) / jnp.maximum(total, 1.0)
    m2_total = jnp.sum(m2, axis=0) + jnp.sum(w * jnp.square(mean - grand), axis=0)
    return RunningStats(count=total, mean=grand, m2=m2_total)
