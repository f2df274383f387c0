"""``Algorithm``: what a trainer hands to the loops, a pair of pure functions (optax style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

__all__ = ["Algorithm"]


class Algorithm(NamedTuple):
    """A training algorithm as the loops of ``realax.train._loops`` run it.

    Every state has integer ``step`` and typed-key ``key`` fields; step ``t`` draws its
    randomness from ``jax.random.fold_in(state.key, t)``, so any state can be resumed
    bit-identically. An ``Algorithm`` is hashable (its functions compare by identity): the
    loops take it as a static argument of ``jax.jit``.

    Attributes:
        init: ``init(key, data) -> state``, pure and jittable.
        step: ``step(state, data, consts, keys) -> (state, metrics)``, pure and jittable.
            ``data`` overrides the state's data when not None; ``consts`` are large constants
            (a dataset) passed to the compiled program as arguments; ``keys`` are the step's
            keys derived by the loop with ``step_keys`` (None: the step derives its own from
            ``fold_in(state.key, state.step)``). ``metrics`` is a flat dict of arrays.
        step_keys: optional ``step_keys(fold_in(state.key, t)) -> keys``; given it, ``scan``
            derives every step's keys before the loop in one batched call (and ``fori`` in
            blocks), instead of one small hash per step (the same bits).
        progress_metric: the metric the progress bar shows.

    Example:
        >>> from typing import NamedTuple
        >>> import jax, jax.numpy as jnp
        >>> from realax.train import Algorithm
        >>> from realax.train._loops import run
        >>> class S(NamedTuple):
        ...     x: jax.Array
        ...     step: jax.Array
        ...     key: jax.Array
        >>> init = lambda key, data: S(jnp.ones(()), jnp.zeros((), jnp.int32), key)
        >>> def step(s, data, consts, keys):
        ...     s = S(s.x / 2, s.step + 1, s.key)
        ...     return s, {"x": s.x}
        >>> alg = Algorithm(init, step, progress_metric="x")
        >>> state, metrics = run(alg, alg.init(jax.random.key(0), None), n_steps=3)
        >>> metrics["x"].tolist()
        [0.5, 0.25, 0.125]
    """

    init: Callable[[jax.Array, Any], Any]
    step: Callable[[Any, Any, Any, Any], tuple[Any, dict]]
    step_keys: Callable[[jax.Array], Any] | None = None
    progress_metric: str = "loss"
