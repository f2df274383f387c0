"""FitnessShaper: evosax < 0.2 fitness shaping, producing a minimisation objective."""

from __future__ import annotations

import dataclasses
import numbers

import jax
import jax.numpy as jnp

__all__ = ["FitnessShaper"]


@dataclasses.dataclass(frozen=True)
class FitnessShaper:
    """Turn raw task fitness into the objective an evosax 0.3 algorithm minimises.

    The semantics of ``evosax.FitnessShaper`` from evosax < 0.2 (removed in 0.2), re-implemented:
    by default the raw fitness is minimised; ``maximize=True`` maximises it. Optionally an L2
    penalty ``w_decay * mean(x**2)`` on each member's flat parameters is added (subtracted when
    maximising), then ``centered_rank`` (ranks scaled to ``[-0.5, 0.5]``), ``z_score``
    (standardise) and ``norm_range`` (rescale to ``[-1, 1]``) are applied in that order. The
    result is always "lower is better".

    Non-finite fitness (NaN, +-inf) always ranks worst: it gets the worst rank under
    ``centered_rank``, otherwise the worst value among the finite members (0 if none is
    finite); statistics (z-score, range) are computed over finite members only.

    Args:
        maximize: True if higher raw fitness is better.
        centered_rank: replace fitness by centered ranks in ``[-0.5, 0.5]``.
        z_score: standardise fitness to zero mean and unit variance.
        norm_range: rescale fitness to ``[-1, 1]``.
        w_decay: weight of the L2 penalty on the parameters (>= 0).

    Example:
        >>> import jax.numpy as jnp
        >>> from realax.train import FitnessShaper
        >>> shaper = FitnessShaper(maximize=True, centered_rank=True)
        >>> shaper.apply(jnp.zeros((3, 2)), jnp.array([1.0, 3.0, 2.0])).tolist()
        [0.5, -0.5, 0.0]
    """

    maximize: bool = False
    centered_rank: bool = False
    z_score: bool = False
    norm_range: bool = False
    w_decay: float = 0.0

    def __post_init__(self):
        for name in ("maximize", "centered_rank", "z_score", "norm_range"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"FitnessShaper {name} must be True or False (got {value!r})")
        w = self.w_decay
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not w >= 0:
            raise ValueError(
                f"FitnessShaper w_decay must be a float >= 0 (got w_decay={w!r}); use e.g. "
                "w_decay=0.01, or 0.0 for no penalty."
            )

    @property
    def transforms_values(self) -> bool:
        """True if the shaper replaces fitness values (rank, z-score or range normalisation)."""
        return self.centered_rank or self.z_score or self.norm_range

    def apply(self, x: jax.Array | None, fitness: jax.Array) -> jax.Array:
        """Shape a population's fitness.

        Args:
            x: flat parameters of the population, shape ``(popsize, num_dims)``; only read by
                ``w_decay`` (may be None when ``w_decay=0``).
            fitness: raw fitness, shape ``(popsize,)``.

        Returns:
            The shaped objective, shape ``(popsize,)``, lower is better, always finite.
        """
        fitness = jnp.asarray(fitness, dtype=jnp.float32)
        finite = jnp.isfinite(fitness)
        # a minimisation objective from here on
        obj = -fitness if self.maximize else fitness
        if self.w_decay > 0.0:
            if x is None:
                raise ValueError(
                    "FitnessShaper(w_decay>0).apply needs the population's flat parameters "
                    "(got x=None); pass x with shape (popsize, num_dims)."
                )
            obj = obj + self.w_decay * jnp.mean(jnp.square(x), axis=-1).astype(obj.dtype)
            finite = finite & jnp.isfinite(obj)
        if self.centered_rank:
            obj = _centered_rank(jnp.where(finite, obj, jnp.inf))
        if self.z_score:
            obj = _z_score(obj, finite)
        if self.norm_range:
            obj = _norm_range(obj, finite)
        # non-finite members: the worst finite value (ranks already placed them last)
        worst = jnp.max(jnp.where(finite, obj, -jnp.inf))
        worst = jnp.where(jnp.isfinite(worst), worst, 0.0)
        if self.centered_rank and not (self.z_score or self.norm_range):
            return obj
        return jnp.where(finite, obj, worst)

    def is_better(self, a: jax.Array, b: jax.Array) -> jax.Array:
        """True where raw fitness ``a`` is strictly better than ``b`` (NaN is never better)."""
        return a > b if self.maximize else a < b

    @property
    def worst_value(self) -> float:
        """The raw fitness every finite value beats (``-inf`` when maximising, else ``+inf``)."""
        return -float("inf") if self.maximize else float("inf")


def _centered_rank(obj: jax.Array) -> jax.Array:
    n = obj.shape[-1]
    ranks = jnp.argsort(jnp.argsort(obj, axis=-1, stable=True), axis=-1).astype(jnp.float32)
    if n == 1:
        return jnp.zeros_like(ranks)
    return ranks / (n - 1) - 0.5


def _z_score(obj: jax.Array, finite: jax.Array) -> jax.Array:
    count = jnp.maximum(jnp.sum(finite), 1)
    mean = jnp.sum(jnp.where(finite, obj, 0.0)) / count
    var = jnp.sum(jnp.where(finite, jnp.square(obj - mean), 0.0)) / count
    return (obj - mean) / (jnp.sqrt(var) + 1e-10)


def _norm_range(obj: jax.Array, finite: jax.Array) -> jax.Array:
    lo = jnp.min(jnp.where(finite, obj, jnp.inf))
    hi = jnp.max(jnp.where(finite, obj, -jnp.inf))
    span = hi - lo
    scaled = 2.0 * (obj - lo) / jnp.where(span > 0, span, 1.0) - 1.0
    return jnp.where(span > 0, scaled, jnp.zeros_like(obj))
