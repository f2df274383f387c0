"""MetaEvoTask: the fitness of an inner evolution-strategy run, as a task of outer params."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["MetaEvoTask", "generation_weights"]

_AGGREGATES = ("max", "mean")
_WEIGHTS = ("uniform", "linear", "exponential")
_OUTER = ("mean", "es_params")


def generation_weights(kind: str, n: int, decay: float = 0.9) -> jax.Array:
    """Weights over ``n`` inner generations, summing to 1.

    ``"uniform"``: all equal; ``"linear"``: proportional to ``1, 2, ..., n`` (later
    generations count more); ``"exponential"``: proportional to ``decay ** (n - 1 - t)``.

    >>> [round(w, 4) for w in generation_weights("linear", 3).tolist()]
    [0.1667, 0.3333, 0.5]
    """
    t = jnp.arange(n, dtype=jnp.float32)
    if kind == "uniform":
        w = jnp.ones(n, jnp.float32)
    elif kind == "linear":
        w = t + 1.0
    elif kind == "exponential":
        w = jnp.asarray(decay, jnp.float32) ** (n - 1 - t)
    else:
        raise ValueError(f"generation weights must be one of {_WEIGHTS} (got {kind!r})")
    return w / jnp.sum(w)


_generation_weights = generation_weights  # MetaEvoTask's argument of the same name shadows it


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"MetaEvoTask {name} must be an int >= 1 (got {name}={value!r})")
    return value


def _n_positional(fn: Callable) -> int | None:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params):
        return None
    return sum(p.kind in kinds for p in params)


class MetaEvoTask:
    """A task whose fitness is how well an inner evolution-strategy run does.

    Each call runs ``inner_steps`` generations of ``inner_strategy`` on ``inner_task`` (one
    ``lax.scan``; a trainer vmaps the call over its outer population, so the outer population's
    inner runs are one compiled program) and returns an aggregate of the inner per-generation
    fitness: over the inner population, ``population_aggregate="max"`` takes the best member
    (the highest fitness with ``inner_maximize=True``, the lowest otherwise) and ``"mean"``
    the average; over generations, ``generation_weights`` ``"uniform"``, ``"linear"`` or
    ``"exponential"`` (see :func:`generation_weights`) weigh the generations. The result is in
    the inner task's sense: maximise it when ``inner_maximize`` is True, else minimise it.

    The outer parameters set up the inner run (``outer``):

    - ``"mean"`` (default): the inner strategy's initial mean, a pytree like
      ``inner_params_like``;
    - ``"es_params"``: a dict of fields of ``inner_strategy.default_params`` to replace (e.g.
      ``{"std_init": x}`` for CMA-ES; the values are used as given, so keep them in range);
      the initial mean is ``inner_params_like``;
    - a function ``outer(params, default_es_params) -> (init_mean, es_params)``.

    The inner strategy is duck-typed, evosax 0.3's interface for distribution-based
    algorithms (realax-tasks does not import evosax): ``population_size``, ``default_params``,
    ``init(key, mean, es_params) -> state``, ``ask(key, state, es_params) -> (population,
    state)`` and ``tell(key, population, fitness, state, es_params) -> (state, metrics)``,
    minimising ``fitness``. Population-based algorithms (GAs, whose ``init`` takes a
    population and its fitness) are not supported.

    Args:
        inner_task: ``inner_task(params, key[, data]) -> (fitness, info)`` on one inner member.
        inner_params_like: a pytree shaped like the inner parameters.
        inner_steps: inner generations per call.
        inner_popsize: the inner population size (must equal the strategy's).
        inner_strategy: the inner algorithm (e.g. ``evosax.algorithms.CMA_ES(8, x0)``).
        inner_es_params: the inner strategy's params (default: its ``default_params``).
        population_aggregate: ``"max"`` or ``"mean"``.
        generation_weights: ``"uniform"``, ``"linear"`` or ``"exponential"``.
        decay: the base of the exponential weights (0 < decay <= 1).
        inner_maximize: True if higher inner fitness is better (the realax.tasks convention).
        outer: what the outer parameters are (see above).
        inner_data_fn: optional ``fn(key) -> data``: each call draws the inner task's data
            from it (e.g. one task of a family); otherwise the call's ``data`` is passed on.

    Returns (from a call): ``(fitness, info)`` with ``info["generation_fitness"]``, the
    population aggregate of every inner generation, shape ``(inner_steps,)``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from evosax.algorithms import CMA_ES
        >>> sphere = lambda x, key: (-jnp.sum(jnp.square(x - 1.0)), {})
        >>> meta = MetaEvoTask(sphere, jnp.zeros(2), 5, 8, CMA_ES(8, jnp.zeros(2)))
        >>> fitness, info = meta(jnp.ones(2), jax.random.key(0))
        >>> info["generation_fitness"].shape, bool(fitness <= 0)
        ((5,), True)
    """

    def __init__(
        self,
        inner_task: Callable,
        inner_params_like: Any,
        inner_steps: int,
        inner_popsize: int,
        inner_strategy: Any,
        *,
        inner_es_params: Any = None,
        population_aggregate: str = "max",
        generation_weights: str = "uniform",
        decay: float = 0.9,
        inner_maximize: bool = True,
        outer: str | Callable = "mean",
        inner_data_fn: Callable | None = None,
    ):
        if not callable(inner_task):
            raise TypeError(
                f"MetaEvoTask inner_task must be callable as inner_task(params, key[, data]) "
                f"-> (fitness, info) (got {type(inner_task).__name__})"
            )
        self.inner_steps = _positive_int(inner_steps, "inner_steps")
        self.inner_popsize = _positive_int(inner_popsize, "inner_popsize")
        missing = [
            m for m in ("init", "ask", "tell") if not callable(getattr(inner_strategy, m, None))
        ]
        if missing or not hasattr(inner_strategy, "default_params"):
            raise TypeError(
                f"MetaEvoTask inner_strategy must have evosax 0.3's init/ask/tell and "
                f"default_params (got {type(inner_strategy).__name__}, missing "
                f"{missing or ['default_params']}); pass e.g. "
                f"evosax.algorithms.CMA_ES({inner_popsize}, inner_params_like)."
            )
        size = getattr(inner_strategy, "population_size", inner_popsize)
        if int(size) != self.inner_popsize:
            raise ValueError(
                f"MetaEvoTask inner_popsize={inner_popsize} disagrees with the inner strategy's "
                f"population_size={size}; pass inner_popsize={size}."
            )
        if population_aggregate not in _AGGREGATES:
            raise ValueError(
                f"MetaEvoTask population_aggregate must be one of {_AGGREGATES} (got "
                f"{population_aggregate!r})"
            )
        if not (isinstance(decay, int | float) and 0 < decay <= 1):
            raise ValueError(f"MetaEvoTask decay must be in (0, 1] (got decay={decay!r})")
        self.weights = _generation_weights(generation_weights, self.inner_steps, decay)
        if not (callable(outer) or outer in _OUTER):
            raise ValueError(
                f"MetaEvoTask outer must be one of {_OUTER} or a function (params, "
                f"default_es_params) -> (init_mean, es_params) (got {outer!r})"
            )
        if inner_data_fn is not None and not callable(inner_data_fn):
            raise TypeError("MetaEvoTask inner_data_fn must be None or a function of a key")
        self.inner_task, self.inner_params_like = inner_task, inner_params_like
        self.inner_strategy, self.outer, self.inner_data_fn = inner_strategy, outer, inner_data_fn
        self.inner_es_params = (
            inner_strategy.default_params if inner_es_params is None else inner_es_params
        )
        self.population_aggregate, self.generation_weights = (
            population_aggregate,
            generation_weights,
        )
        self.inner_maximize = bool(inner_maximize)
        self._nargs = _n_positional(inner_task)

    def configure(self, params: Any) -> tuple[Any, Any]:
        """``(init_mean, es_params)`` of the inner run set up by outer ``params``."""
        if callable(self.outer):
            return self.outer(params, self.inner_es_params)
        if self.outer == "mean":
            return params, self.inner_es_params
        return self.inner_params_like, self.inner_es_params.replace(**params)

    def _inner(self, params: Any, key: jax.Array, data: Any) -> jax.Array:
        if self._nargs == 2:
            fitness, _ = self.inner_task(params, key)
        else:
            fitness, _ = self.inner_task(params, key, data)
        return jnp.asarray(fitness, jnp.float32).reshape(())

    def __call__(self, params: Any, key: jax.Array, data: Any = None) -> tuple[jax.Array, dict]:
        k_data, k_init, k_run = jax.random.split(key, 3)
        if self.inner_data_fn is not None:
            data = self.inner_data_fn(k_data)
        mean, es_params = self.configure(params)
        strategy = self.inner_strategy
        state = strategy.init(k_init, mean, es_params)
        evaluate = jax.vmap(self._inner, in_axes=(0, 0, None))

        def generation(state, k):
            k_ask, k_eval, k_tell = jax.random.split(k, 3)
            population, state = strategy.ask(k_ask, state, es_params)
            fitness = evaluate(population, jax.random.split(k_eval, self.inner_popsize), data)
            objective = -fitness if self.inner_maximize else fitness
            state, _ = strategy.tell(k_tell, population, objective, state, es_params)
            return state, fitness

        _, fitness = jax.lax.scan(generation, state, jax.random.split(k_run, self.inner_steps))
        if self.population_aggregate == "mean":
            per_generation = jnp.mean(fitness, axis=1)
        elif self.inner_maximize:
            per_generation = jnp.max(fitness, axis=1)
        else:
            per_generation = jnp.min(fitness, axis=1)
        return jnp.sum(self.weights * per_generation), {"generation_fitness": per_generation}
