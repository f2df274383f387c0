"""Strategy names: every evosax 0.3 algorithm, the pre-0.2 names as aliases, and the
restart strategies of ``_restarts.py``."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

from evosax.algorithms import algorithms as _EVOSAX_ALGORITHMS
from evosax.algorithms.population_based.base import PopulationBasedAlgorithm
from evosax.core import fitness_shaping as _fs
from evosax.core.fitness_shaping import identity_fitness_shaping_fn

from ._restarts import RESTART_STRATEGIES
from ._suggest import did_you_mean, normalise
from ._validate import check_positive_int

__all__ = [
    "STRATEGY_ALIASES",
    "available_strategies",
    "build_es_params",
    "build_strategy",
    "resolve_strategy",
]

#: pre-0.2 evosax names (as used by the original realax README) -> evosax 0.3 names.
#: Names that did not change ("CMA_ES", "SimpleGA", "PGPE", "SNES", "xNES", "ARS", "Sep_CMA_ES",
#: "DES" (Discovered ES in both), "PSO", "MA_ES", ...) resolve directly.
STRATEGY_ALIASES: dict[str, str] = {
    "OpenES": "Open_ES",
    "DE": "DifferentialEvolution",
    "RmES": "Rm_ES",
    "GLD": "GradientlessDescent",
    "SimAnneal": "SimulatedAnnealing",
    "HillClimber": "HillClimbing",
    "Full_iAMaLGaM": "iAMaLGaM_Full",
    "Indep_iAMaLGaM": "iAMaLGaM_Univariate",
    "SV_OpenES": "SV_Open_ES",
    "DiscoveredES": "DES",
    "LearnedES": "LES",
    "LearnedGA": "LGA",
}

#: pre-0.2 names with no evosax 0.3 counterpart, and what to use instead.
_REMOVED: dict[str, str] = {
    "PBT": "population based training was removed in evosax 0.2; use e.g. 'SimpleGA'",
}

#: evosax shaping functions that only transform fitness values (safe to replace by identity
#: when the user asks realax's FitnessShaper for a value transform).
_VALUE_SHAPERS = (
    _fs.centered_rank_fitness_shaping_fn,
    _fs.standardize_fitness_shaping_fn,
    _fs.normalize_fitness_shaping_fn,
)


def available_strategies() -> list[str]:
    """All accepted strategy names: evosax 0.3's algorithm names, the pre-0.2 aliases and
    realax's restart strategies (``IPOP_CMA_ES``, ``BIPOP_CMA_ES``)."""
    return sorted({*_EVOSAX_ALGORITHMS, *STRATEGY_ALIASES, *RESTART_STRATEGIES}, key=str.lower)


def resolve_strategy(name: str) -> tuple[str, type]:
    """Map a strategy name (evosax 0.3 or pre-0.2 alias) to ``(evosax_name, class)``.

    Raises:
        ValueError: unknown name, listing close matches.

    Example:
        >>> from realax.train import resolve_strategy
        >>> resolve_strategy("openes")[0], resolve_strategy("DE")[0]
        ('Open_ES', 'DifferentialEvolution')
    """
    if not isinstance(name, str):
        raise TypeError(f"strategy must be a str or an evosax algorithm (got {name!r})")
    if name in _EVOSAX_ALGORITHMS:
        return name, _EVOSAX_ALGORITHMS[name]
    if name in RESTART_STRATEGIES:
        return name, RESTART_STRATEGIES[name]
    if name in STRATEGY_ALIASES:
        target = STRATEGY_ALIASES[name]
        return target, _EVOSAX_ALGORITHMS[target]
    if name in _REMOVED:
        raise ValueError(f"strategy {name!r} does not exist in evosax 0.3: {_REMOVED[name]}.")
    # case / underscore insensitive match ("openes", "cma-es", "open_es")
    by_norm: dict[str, str] = {}
    for candidate in available_strategies():
        by_norm.setdefault(normalise(candidate), candidate)
    if normalise(name) in by_norm:
        return resolve_strategy(by_norm[normalise(name)])
    hint = did_you_mean(name, available_strategies(), key=str)
    raise ValueError(
        f"unknown strategy {name!r}.{hint} Pass one of realax.train.available_strategies() "
        "or an evosax algorithm instance."
    )


def default_shaping_fn(cls: type) -> Any:
    """The ``fitness_shaping_fn`` default of an evosax algorithm class (None if it has none)."""
    try:
        param = inspect.signature(cls).parameters.get("fitness_shaping_fn")
    except (TypeError, ValueError):  # pragma: no cover
        return None
    return None if param is None else param.default


def replaces_value_shaping(cls: type) -> bool:
    """True if the class's default shaping is a pure value transform (rank/standardise/...)."""
    return default_shaping_fn(cls) in _VALUE_SHAPERS


def is_population_based(strategy: Any) -> bool:
    return isinstance(strategy, PopulationBasedAlgorithm)


def _instantiate(name: str, cls: type, popsize: int, solution: Any, kws: dict, es_kws: dict):
    try:
        return cls(population_size=popsize, solution=solution, **kws)
    except AssertionError as e:
        if "even" in str(e):
            raise ValueError(
                f"{name} needs an even population size (got popsize={popsize}); use popsize="
                f"{popsize + 1} (its antithetic sampling draws members in +/- pairs, so the "
                "population must be even)."
            ) from None
        raise ValueError(
            f"strategy {name!r} rejected popsize={popsize} / es_kws={es_kws}: {e}"
        ) from e
    except TypeError as e:
        raise TypeError(
            f"es_kws={es_kws} do not fit the constructor of {name!r} ({e}); see "
            f"help(evosax.algorithms.{cls.__name__})."
        ) from e


def _check_instance(strategy: Any, popsize: int | None, es_kws: dict) -> tuple[str, Any]:
    if es_kws:
        raise ValueError(
            f"es_kws only apply when strategy is a name (got es_kws={es_kws} with an "
            f"{type(strategy).__name__} instance); pass them to its constructor instead."
        )
    size = getattr(strategy, "population_size", None)
    if size is None or not hasattr(strategy, "solution"):
        raise TypeError(
            f"strategy instance {type(strategy).__name__} lacks population_size/solution; "
            "pass an evosax 0.3 algorithm (e.g. evosax.algorithms.CMA_ES(...)) or a name."
        )
    if popsize is not None and popsize != size:
        raise ValueError(
            f"popsize={popsize} disagrees with the strategy instance's population_size="
            f"{size}; omit popsize or build the instance with population_size={popsize}."
        )
    return type(strategy).__name__, strategy


def build_strategy(
    strategy: Any, solution: Any, popsize: int | None, es_kws: dict, identity_shaping: bool
) -> tuple[str, Any]:
    """``(name, instance)`` of an evosax 0.3 algorithm from a name or an instance.

    ``solution`` is the checked ``params_like`` (None if not given); ``identity_shaping``
    replaces the algorithm's own value-transform shaping by identity (realax's shaper already
    transforms the values) unless ``es_kws`` sets ``fitness_shaping_fn``.
    """
    if isinstance(strategy, str):
        name, cls = resolve_strategy(strategy)
        if popsize is None:
            raise ValueError(
                f"popsize is required when strategy is a name (got strategy={strategy!r}, "
                "popsize=None); pass e.g. popsize=64."
            )
        popsize = check_positive_int(popsize, "popsize", "pass e.g. popsize=64")
        if solution is None:
            raise ValueError(
                f"params_like is required when strategy is a name (got strategy="
                f"{strategy!r}, params_like=None); pass a pytree shaped like the parameters, "
                "e.g. params_like=jnp.zeros((dims,))."
            )
        kws = dict(es_kws)
        if identity_shaping and "fitness_shaping_fn" not in kws and replaces_value_shaping(cls):
            kws["fitness_shaping_fn"] = identity_fitness_shaping_fn
        return name, _instantiate(name, cls, popsize, solution, kws, es_kws)
    if all(callable(getattr(strategy, m, None)) for m in ("init", "ask", "tell")):
        return _check_instance(strategy, popsize, es_kws)
    raise TypeError(
        f"strategy must be a name (str) or an evosax 0.3 algorithm instance (got "
        f"{type(strategy).__name__}); e.g. strategy='CMA_ES'."
    )


def build_es_params(strategy: Any, name: str, es_params: Any) -> Any:
    """The algorithm's params: its defaults, with a dict of fields replaced, or as given."""
    default = strategy.default_params
    if es_params is None:
        return default
    if isinstance(es_params, dict):
        fields = [f.name for f in dataclasses.fields(default)]
        unknown = sorted(set(es_params) - set(fields))
        if unknown:
            raise ValueError(
                f"es_params has fields {unknown} unknown to {name}; valid fields: {fields}."
            )
        return default.replace(**es_params)
    if type(es_params) is not type(default):
        raise TypeError(
            f"es_params must be a dict of overrides or a {type(default).__name__} (got "
            f"{type(es_params).__name__}); e.g. es_params={{...}} or "
            "trainer.strategy.default_params.replace(...)."
        )
    return es_params
