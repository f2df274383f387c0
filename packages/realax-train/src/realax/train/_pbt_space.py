"""PBT's hyperparameter space: what each hyperparameter starts at and is resampled from.

A space entry is either a distribution ``("uniform" | "log_uniform", low, high)`` (members
start at independent draws; perturbed values are clipped to ``[low, high]``) or a list of
values (member ``i`` starts at ``values[i % len(values)]``; a resample draws one of them;
perturbed values are not clipped).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

__all__ = ["DISTRIBUTIONS", "Space", "check_space"]

DISTRIBUTIONS = ("uniform", "log_uniform")


def _number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(float(x))


def _check_entry(name: str, spec: Any) -> tuple[str, tuple[float, ...]]:
    example = f'e.g. hparams={{"{name}": ("log_uniform", 1e-4, 1e-1)}} or [1e-3, 1e-2]'
    if _number(spec):
        spec = [spec]
    if isinstance(spec, tuple) and spec and isinstance(spec[0], str):
        kind, *bounds = spec
        if kind not in DISTRIBUTIONS:
            raise ValueError(
                f"hparams[{name!r}]: unknown distribution {kind!r}; use one of {DISTRIBUTIONS},"
                f" {example}."
            )
        if len(bounds) != 2 or not all(_number(b) for b in bounds) or bounds[0] >= bounds[1]:
            raise ValueError(
                f"hparams[{name!r}] = {spec!r} needs two finite bounds low < high; {example}."
            )
        if kind == "log_uniform" and bounds[0] <= 0:
            raise ValueError(
                f"hparams[{name!r}]: log_uniform needs low > 0 (got {bounds[0]}); {example}."
            )
        return kind, (float(bounds[0]), float(bounds[1]))
    if isinstance(spec, Sequence) and not isinstance(spec, str) and spec:
        if not all(_number(v) for v in spec):
            raise ValueError(
                f"hparams[{name!r}] must hold finite numbers (got {list(spec)!r}); {example}."
            )
        return "choice", tuple(float(v) for v in spec)
    raise ValueError(
        f"hparams[{name!r}] must be a distribution (kind, low, high) or a non-empty list of "
        f"values (got {spec!r}); {example}."
    )


def check_space(hparams: Any) -> dict[str, tuple[str, tuple[float, ...]]]:
    """The checked space ``{name: (kind, numbers)}`` of ``PBT(hparams=...)``."""
    if not isinstance(hparams, Mapping) or not hparams:
        raise ValueError(
            f"hparams must be a non-empty dict of name -> distribution or values (got "
            f'{hparams!r}); e.g. hparams={{"learning_rate": ("log_uniform", 1e-4, 1e-1)}}.'
        )
    return {str(k): _check_entry(str(k), v) for k, v in hparams.items()}


class Space(struct.PyTreeNode):
    """A checked space as a static value (hashable, so the PBT step can close over it)."""

    entries: tuple = struct.field(pytree_node=False)  # ((name, kind, numbers), ...)

    @classmethod
    def create(cls, *, space: Mapping[str, tuple[str, tuple[float, ...]]]) -> Space:
        return cls(entries=tuple((k, kind, nums) for k, (kind, nums) in space.items()))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.entries)

    def draw(self, u: jax.Array) -> dict[str, jax.Array]:
        """Draws of every hyperparameter from uniforms ``u`` in ``[0, 1)``, one row per entry
        (``u[i]`` -> entry ``i``, float32, by inverse CDF: one PRNG call serves them all)."""
        out = {}
        for i, (name, kind, nums) in enumerate(self.entries):
            if kind == "choice":
                pick = jnp.minimum((u[i] * len(nums)).astype(jnp.int32), len(nums) - 1)
                out[name] = jnp.asarray(nums, jnp.float32)[pick]
            elif kind == "log_uniform":
                lo, hi = math.log(nums[0]), math.log(nums[1])
                out[name] = jnp.exp(lo + u[i] * (hi - lo))
            else:
                out[name] = nums[0] + u[i] * (nums[1] - nums[0])
        return self.clip(out)  # float32 rounding could step past a bound

    def sample(self, key: jax.Array, n: int) -> dict[str, jax.Array]:
        """``n`` independent draws of every hyperparameter (float32, shape ``(n,)``)."""
        return self.draw(jax.random.uniform(key, (len(self.entries), n), jnp.float32))

    def initial(self, key: jax.Array, n: int) -> dict[str, jax.Array]:
        """The population's starting values: lists cycled over the members, distributions
        drawn."""
        drawn = self.sample(key, n)
        out = {}
        for name, kind, nums in self.entries:
            if kind == "choice":
                out[name] = jnp.asarray([nums[i % len(nums)] for i in range(n)], jnp.float32)
            else:
                out[name] = drawn[name]
        return out

    def clip(self, values: dict[str, jax.Array]) -> dict[str, jax.Array]:
        """Distribution entries clipped to their bounds (lists are left as they are)."""
        out = dict(values)
        for name, kind, nums in self.entries:
            if kind != "choice":
                out[name] = jnp.clip(values[name], nums[0], nums[1])
        return out
