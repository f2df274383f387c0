"""Strategy names: every evosax 0.3 algorithm, plus the pre-0.2 names as aliases."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from evosax.algorithms import algorithms as _EVOSAX_ALGORITHMS
from evosax.algorithms.population_based.base import PopulationBasedAlgorithm
from evosax.core import fitness_shaping as _fs

__all__ = ["STRATEGY_ALIASES", "available_strategies", "resolve_strategy"]

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
    "IPOP_CMA_ES": "evosax 0.3 has no restart wrappers in its algorithm list; use 'CMA_ES'",
    "BIPOP_CMA_ES": "evosax 0.3 has no restart wrappers in its algorithm list; use 'CMA_ES'",
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
    """All accepted strategy names: evosax 0.3's algorithm names and the pre-0.2 aliases."""
    return sorted({*_EVOSAX_ALGORITHMS, *STRATEGY_ALIASES}, key=str.lower)


def _normalise(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


def resolve_strategy(name: str) -> tuple[str, type]:
    """Map a strategy name (evosax 0.3 or pre-0.2 alias) to ``(evosax_name, class)``.

    Raises:
        ValueError: unknown name, listing close matches.
    """
    if not isinstance(name, str):
        raise TypeError(f"strategy must be a str or an evosax algorithm (got {name!r})")
    if name in _EVOSAX_ALGORITHMS:
        return name, _EVOSAX_ALGORITHMS[name]
    if name in STRATEGY_ALIASES:
        target = STRATEGY_ALIASES[name]
        return target, _EVOSAX_ALGORITHMS[target]
    if name in _REMOVED:
        raise ValueError(f"strategy {name!r} does not exist in evosax 0.3: {_REMOVED[name]}.")
    # case / underscore insensitive match ("openes", "cma-es", "open_es")
    by_norm: dict[str, str] = {}
    for candidate in available_strategies():
        by_norm.setdefault(_normalise(candidate), candidate)
    if _normalise(name) in by_norm:
        return resolve_strategy(by_norm[_normalise(name)])
    close = difflib.get_close_matches(name, available_strategies(), n=5, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"unknown strategy {name!r}.{hint} Pass one of realax.train.available_strategies() "
        "or an evosax algorithm instance."
    )


def default_shaping_fn(cls: type) -> Any:
    """The ``fitness_shaping_fn`` default of an evosax algorithm class (None if it has none)."""
    try:
        param = inspect.signature(cls.__init__).parameters.get("fitness_shaping_fn")
    except (TypeError, ValueError):  # pragma: no cover
        return None
    return None if param is None else param.default


def replaces_value_shaping(cls: type) -> bool:
    """True if the class's default shaping is a pure value transform (rank/standardise/...)."""
    return default_shaping_fn(cls) in _VALUE_SHAPERS


def is_population_based(strategy: Any) -> bool:
    return isinstance(strategy, PopulationBasedAlgorithm)
