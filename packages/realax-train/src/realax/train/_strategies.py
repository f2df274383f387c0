"""Strategy names: every evosax 0.3 algorithm, the pre-0.2 names as aliases, and the
restart strategies of ``_restarts.py``."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import jax
import jax.numpy as jnp
from evosax.algorithms import algorithms as _EVOSAX_ALGORITHMS
from evosax.algorithms.distribution_based.sv.base import SV_ES
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


def _instantiate(name: str, cls: type, popsize: int | None, solution: Any, kws: dict, es_kws: dict):
    size = {} if popsize is None else {"population_size": popsize}  # SV: set by _legacy_kws
    try:
        return cls(solution=solution, **size, **kws)
    except AssertionError as e:
        if "even" in str(e) and popsize is not None:
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


def _uniform_sampler(solution: Any, low: float, high: float) -> Any:
    """evosax < 0.2's RandomSearch sampling: uniform in ``[low, high)``, shaped like solution."""
    leaves, treedef = jax.tree.flatten(solution)

    def sample(key: jax.Array) -> Any:
        keys = jax.random.split(key, len(leaves))
        return jax.tree.unflatten(
            treedef,
            [
                jax.random.uniform(k, jnp.shape(x), jnp.result_type(x), low, high)
                for k, x in zip(keys, leaves, strict=True)
            ],
        )

    return sample


#: evosax < 0.2 constructor arguments of the Stein variational strategies -> the new call.
_SV_OLD = ("npop", "subpopsize", "sigma_init", "elite_ratio", "num_dims", "pholder_params")


def _legacy_kws(name: str, cls: type, popsize: int, solution: Any, kws: dict) -> dict:
    """Translate or refuse evosax < 0.2 arguments of RandomSearch and the SV strategies."""
    if name == "RandomSearch" and "sampling_fn" not in kws:
        low, high = kws.pop("range_min", 0.0), kws.pop("range_max", 1.0)
        kws["sampling_fn"] = _uniform_sampler(solution, float(low), float(high))
    if not issubclass(cls, SV_ES):
        return kws
    old = [k for k in _SV_OLD if k in kws]
    if old:
        npop = kws.get("npop", kws.get("num_populations", 4))
        sub = kws.get("subpopsize", max(1, popsize // int(npop)))
        extra = ""
        if "sigma_init" in kws:
            extra = f", es_params={{'std_init': {kws['sigma_init']!r}}}"
        raise ValueError(
            f"{name} no longer takes {old} (evosax < 0.2 arguments): popsize is now the "
            f"total population and es_kws['num_populations'] the number of particles; pass "
            f"popsize={int(npop) * int(sub)}, es_kws={{'num_populations': {int(npop)}}}{extra}"
            + (" (elite_ratio is fixed in evosax 0.3)" if "elite_ratio" in kws else "")
            + "."
        )
    n = kws.pop("num_populations", None)
    if n is None or popsize % int(n):
        raise ValueError(
            f"{name} needs es_kws={{'num_populations': k}} with popsize={popsize} divisible "
            f"by k (got num_populations={n!r}); e.g. popsize={4 * max(1, popsize // 4)}, "
            "es_kws={'num_populations': 4}."
        )
    kws["num_populations"] = int(n)
    kws["population_size"] = popsize // int(n)
    return kws


class SteinVariational:
    """An evosax 0.3 Stein variational strategy (``SV_CMA_ES``, ``SV_Open_ES``) as a trainer
    sees any strategy: ``population_size`` is the total population (all particles), ``init``
    takes one mean and starts particle ``i`` at ``mean + init_spread * N(0, I)`` (identical
    particles would get identical updates forever: SVGD's repulsion between equal points is
    zero); the state's ``mean`` has one row per particle."""

    def __init__(self, sv: Any, init_spread: float = 1.0):
        self.sv, self.solution, self.num_dims = sv, sv.solution, sv.num_dims
        self.init_spread = float(init_spread)
        self.population_size = int(sv.total_population_size)
        self.num_populations = int(sv.num_populations)

    @property
    def default_params(self) -> Any:
        return self.sv.default_params

    def init(self, key: jax.Array, mean: Any, params: Any) -> Any:
        k_spread, k_init = jax.random.split(key)
        leaves, treedef = jax.tree.flatten(mean)
        keys = jax.random.split(k_spread, len(leaves))
        shape = (self.num_populations,)
        means = [
            x + self.init_spread * jax.random.normal(k, shape + jnp.shape(x), jnp.result_type(x))
            for k, x in zip(keys, leaves, strict=True)
        ]
        return self.sv.init(k_init, jax.tree.unflatten(treedef, means), params)

    def ask(self, key: jax.Array, state: Any, params: Any) -> Any:
        return self.sv.ask(key, state, params)

    def tell(self, key: jax.Array, population: Any, fitness: Any, state: Any, params: Any):
        return self.sv.tell(key, population, fitness, state, params)


def _check_instance(strategy: Any, popsize: int | None, es_kws: dict) -> tuple[str, Any]:
    if isinstance(strategy, SV_ES):
        strategy = SteinVariational(strategy)
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
    name = type(strategy.sv if isinstance(strategy, SteinVariational) else strategy).__name__
    return name, strategy


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
        kws = _legacy_kws(name, cls, popsize, solution, dict(es_kws))
        if identity_shaping and "fitness_shaping_fn" not in kws and replaces_value_shaping(cls):
            kws["fitness_shaping_fn"] = identity_fitness_shaping_fn
        if issubclass(cls, SV_ES):
            spread = kws.pop("init_spread", 1.0)
            sv = _instantiate(name, cls, None, solution, kws, es_kws)
            return name, SteinVariational(sv, spread)
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
        ranges = {k: es_params[k] for k in ("range_min", "range_max") if k in es_params}
        if name == "RandomSearch" and ranges:
            raise ValueError(
                f"RandomSearch's sampling range is no longer a param (evosax < 0.3 had "
                f"{sorted(ranges)} in its params); pass es_kws={ranges} instead of es_params."
            )
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
