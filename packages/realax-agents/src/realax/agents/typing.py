"""Type aliases with jaxrl_m's names (``jaxrl_m.typing``), for annotations moved from jaxrl_m.

``from jaxrl_m.typing import Batch, PRNGKey, Params, InfoDict`` becomes
``from realax.agents.typing import Batch, PRNGKey, Params, InfoDict``. The aliases are for
annotations only; nothing checks them at run time.

Example:
    >>> import jax, jax.numpy as jnp
    >>> from realax.agents.typing import Batch, InfoDict, PRNGKey
    >>> def update(batch: Batch, key: PRNGKey) -> InfoDict:
    ...     return {"mean_reward": jnp.mean(batch["rewards"])}
    >>> float(update({"rewards": jnp.ones(3)}, jax.random.key(0))["mean_reward"])
    1.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import jax
import numpy as np

__all__ = [
    "Array",
    "Batch",
    "Data",
    "Dtype",
    "InfoDict",
    "ModuleMethod",
    "PRNGKey",
    "Params",
    "PyTree",
    "Shape",
]

#: a jax PRNG key: a typed key (``jax.random.key``) or a raw uint32 one (``PRNGKey``)
PRNGKey: TypeAlias = jax.Array
#: a flax ``"params"`` collection (a dict in flax >= 0.8, a ``FrozenDict`` before)
Params: TypeAlias = Mapping[str, Any]
#: any pytree (agents, `TrainState`, batches)
PyTree: TypeAlias = Any
Shape: TypeAlias = Sequence[int]
Dtype: TypeAlias = Any
#: an ``update``'s metrics: name -> scalar (jax scalars inside ``jit``)
InfoDict: TypeAlias = dict[str, Any]
Array: TypeAlias = np.ndarray | jax.Array
#: an array or a nested dict of arrays (e.g. ``{"image": ..., "state": ...}`` observations)
Data: TypeAlias = "Array | dict[str, Data]"
#: a batch read by key: a dict of arrays, or a `realax.agents.Dataset` (a Mapping). Values
#: are ``Any`` (jaxrl_m's were ``Data``) so that ``jnp.mean(batch["rewards"])`` type-checks
Batch: TypeAlias = Mapping[str, Any]
#: what `TrainState.__call__`'s ``method=`` takes: a method name, a callable or None
ModuleMethod: TypeAlias = str | Callable[..., Any] | None
