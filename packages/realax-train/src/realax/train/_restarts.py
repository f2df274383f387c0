"""IPOP / BIPOP CMA-ES with fixed array shapes, for compiled loops.

evosax 0.3 ships the restart machinery (``evosax.core.restart``): stop criteria
(``spread_cond``, ``cma_cond``), restart states and parameters (``IPOPRestartState``,
``BIPOPRestartState``, ``IPOPRestartParams``, ``BIPOPRestartParams``) and controllers whose
``restart`` rebuilds a new Python strategy object with a larger population. That rebuild
changes array shapes and reads traced values with ``int()`` / ``float()``, so it runs on the
host between compiled calls, not inside a ``lax.scan``.

:class:`RestartCMA_ES` keeps evosax's criteria, states and parameters and traces the restart
itself. It allocates the largest population once (``population_size``, the
``max_population_size`` it was built with) and runs one ``evosax.algorithms.CMA_ES`` of that
size whose recombination weights are computed for the *active* population size ``n`` (a
traced int): weights beyond ``n`` are zero, so members ``n ..`` take no part in the update.
``ask`` fills the allocated rows with copies of the ``n`` active samples (row ``i`` is sample
``i % n``), so everything a trainer evaluates is a genuine candidate; the copies cost compute
but are not counted as evaluations (``state.evaluations`` counts active members only).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from evosax.algorithms.distribution_based import cma_es as _cma
from evosax.core import restart as _rs
from flax import struct
from jax.flatten_util import ravel_pytree

__all__ = [
    "BIPOP_CMA_ES",
    "IPOP_CMA_ES",
    "RESTART_STRATEGIES",
    "RestartCMA_ES",
    "RestartParams",
    "RestartState",
]

_MODES = ("ipop", "bipop")


class RestartParams(struct.PyTreeNode):
    """Parameters of :class:`RestartCMA_ES` (all may be traced).

    ``std_init`` / ``std_min`` / ``std_max`` are CMA-ES's; the rest are evosax's
    ``IPOPRestartParams`` / ``BIPOPRestartParams`` fields with their defaults.
    """

    std_init: float = 1.0
    std_min: float = 0.0
    std_max: float = 1e8
    min_num_gens: int = 50
    min_fitness_spread: float = 1e-12
    tol_x: float = 1e-12
    tol_x_up: float = 1e4
    tol_condition_C: float = 1e14
    copy_mean: bool = False
    population_size_multiplier: int = 2


class RestartState(struct.PyTreeNode):
    """State of :class:`RestartCMA_ES`: the CMA-ES state of the current run, evosax's
    restart state, the initial mean (restarts start there unless ``copy_mean``), the
    current run's ``std_init`` and the number of evaluations of active members so far."""

    cma: Any
    restart: Any
    init_mean: jax.Array
    std_init: jax.Array
    evaluations: jax.Array

    @property
    def mean(self) -> jax.Array:
        return self.cma.mean

    @property
    def best_solution(self) -> jax.Array:
        return self.cma.best_solution

    @property
    def best_fitness(self) -> jax.Array:
        return self.cma.best_fitness

    @property
    def generation_counter(self) -> jax.Array:
        return self.cma.generation_counter


def cma_params(n: jax.Array, size: int, num_dims: int, std_init, std_min, std_max) -> _cma.Params:
    """CMA-ES parameters (Hansen's tutorial, eqs. 48-58) for ``n`` active members out of
    ``size`` allocated ones; the weights of members ``n ..`` are 0. Equals
    ``CMA_ES(n, ...).default_params`` with its weights zero-padded to ``size``."""
    n = jnp.asarray(n, jnp.int32)
    i = jnp.arange(size)
    mu = jnp.maximum(1, n // 2)  # CMA_ES's elite_ratio 0.5
    nf = n.astype(jnp.float32)
    w = jnp.log((nf + 1) / 2) - jnp.log(i + 1.0)
    pos, neg = i < mu, (i >= mu) & (i < n)

    def eff(mask):
        s, s2 = jnp.sum(jnp.where(mask, w, 0.0)), jnp.sum(jnp.where(mask, w * w, 0.0))
        return s * s / jnp.where(s2 > 0, s2, 1.0)

    mu_eff, mu_eff_minus = eff(pos), eff(neg)
    d = float(num_dims)
    d_sq = float(min(num_dims, math.isqrt(2**31 - 1)))  # evosax: no int32 overflow
    c_c = (4 + mu_eff / d) / (d + 4 + 2 * mu_eff / d)
    c_1 = 2 / ((d_sq + 1.3) ** 2 + mu_eff)
    c_mu = jnp.minimum(1 - c_1 - 1e-8, 2 * (mu_eff + 1 / mu_eff - 2) / ((d_sq + 2) ** 2 + mu_eff))
    min_alpha = jnp.minimum(1 + c_1 / c_mu, 1 + 2 * mu_eff_minus / (mu_eff + 2))
    min_alpha = jnp.minimum(min_alpha, (1 - c_1 - c_mu) / (d * c_mu))
    pos_sum = jnp.sum(jnp.where((i < n) & (w > 0), w, 0.0))
    neg_sum = jnp.sum(jnp.where((i < n) & (w < 0), -w, 0.0))
    weights = jnp.where(w >= 0, w / pos_sum, min_alpha * w / jnp.where(neg_sum > 0, neg_sum, 1.0))
    weights = jnp.where(i < n, weights, 0.0)
    c_std = (mu_eff + 2) / (d + mu_eff + 5)
    d_std = 1 + 2 * jnp.maximum(0, jnp.sqrt((mu_eff - 1) / (d + 1)) - 1) + c_std
    chi_n = jnp.sqrt(d) * (1.0 - 1.0 / (4.0 * d) + 1.0 / (21.0 * d_sq**2))
    return _cma.Params(
        std_init=jnp.asarray(std_init, jnp.float32),
        std_min=std_min,
        std_max=std_max,
        weights=weights,
        mu_eff=mu_eff,
        c_mean=1.0,
        c_std=c_std,
        d_std=d_std,
        c_c=c_c,
        c_1=c_1,
        c_mu=c_mu,
        chi_n=chi_n,
    )


def _where(cond, a, b):
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


class RestartCMA_ES:
    """CMA-ES with IPOP or BIPOP restarts inside one compiled program (evosax 0.3 API).

    Args:
        population_size: the initial population size (>= 2).
        solution: a pytree shaped like the parameters.
        mode: ``"ipop"`` (every restart multiplies the population by
            ``population_size_multiplier``) or ``"bipop"`` (restarts alternate between large
            populations and small ones with a random size and ``std_init``, by evaluation
            budget, as ``evosax.core.restart.BIPOPRestart``).
        max_population_size: rows allocated and evaluated every generation (default
            ``8 * population_size``: three doublings); larger populations are capped at it.

    A run restarts when evosax's ``spread_cond`` or ``cma_cond`` holds after at least
    ``min_num_gens`` generations of the current run; the restarted CMA-ES starts from the
    initial mean (the current mean with ``copy_mean=True``) and keeps the best solution.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> es = RestartCMA_ES(4, jnp.zeros(2), max_population_size=16)
        >>> state = es.init(jax.random.key(0), jnp.zeros(2), es.default_params)
        >>> pop, state = es.ask(jax.random.key(1), state, es.default_params)
        >>> pop.shape, int(state.restart.active_population_size)
        ((16, 2), 4)
    """

    def __init__(
        self,
        population_size: int,
        solution: Any,
        mode: str = "ipop",
        max_population_size: int | None = None,
    ):
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES} (got mode={mode!r})")
        if not isinstance(population_size, int) or population_size < 2:
            raise ValueError(
                f"{mode.upper()}-CMA-ES needs popsize >= 2 (got {population_size!r}); pass e.g. "
                "popsize=8."
            )
        size = 8 * population_size if max_population_size is None else max_population_size
        if not isinstance(size, int) or size < population_size:
            raise ValueError(
                f"max_population_size must be an int >= popsize={population_size} (got "
                f"{max_population_size!r}); e.g. es_kws={{'max_population_size': "
                f"{8 * population_size}}}."
            )
        self.mode, self.initial_population_size = mode, population_size
        self.population_size = size
        self.solution = solution
        self.cma = _cma.CMA_ES(size, solution)
        self.num_dims = self.cma.num_dims
        self._unravel = ravel_pytree(solution)[1]

    @property
    def default_params(self) -> RestartParams:
        return RestartParams()

    def _params(self, n, std_init, params: RestartParams) -> _cma.Params:
        return cma_params(
            n, self.population_size, self.num_dims, std_init, params.std_min, params.std_max
        )

    def _restart_params(self, params: RestartParams) -> Any:
        cls = _rs.IPOPRestartParams if self.mode == "ipop" else _rs.BIPOPRestartParams
        names = cls.__dataclass_fields__
        return cls(**{k: getattr(params, k) for k in names if hasattr(params, k)})

    def init(self, key: jax.Array, mean: Any, params: RestartParams) -> RestartState:
        flat = ravel_pytree(mean)[0]
        n = jnp.int32(self.initial_population_size)
        std = jnp.asarray(params.std_init, jnp.float32)
        cma = self.cma.init(key, mean, self._params(n, std, params))
        if self.mode == "ipop":
            restart = _rs.IPOPRestartState(
                restart_counter=jnp.int32(0), restart_next=jnp.bool_(False),
                active_population_size=n,
            )  # fmt: skip
        else:
            zero = jnp.int32(0)
            restart = _rs.BIPOPRestartState(
                restart_counter=zero, restart_next=jnp.bool_(False), active_population_size=n,
                restart_large_counter=zero, large_eval_budget=zero, small_eval_budget=zero,
                small_pop_active=jnp.bool_(True), initial_std=std,
            )  # fmt: skip
        return RestartState(cma, restart, flat, std, jnp.int32(0))

    def ask(self, key: jax.Array, state: RestartState, params: RestartParams) -> tuple:
        n = state.restart.active_population_size
        cma_p = self._params(n, state.std_init, params)
        population, cma = self.cma.ask(key, state.cma, cma_p)
        rows = jnp.arange(self.population_size) % n
        population = jax.tree.map(lambda x: x[rows], population)
        return population, state.replace(cma=cma)

    def tell(
        self, key: jax.Array, population: Any, fitness: jax.Array, state: RestartState,
        params: RestartParams,
    ) -> tuple[RestartState, dict]:  # fmt: skip
        n = state.restart.active_population_size
        active = jnp.arange(self.population_size) < n
        fitness = jnp.asarray(fitness, jnp.float32)
        cma_p = self._params(n, state.std_init, params)
        k_tell, k_restart = jax.random.split(key)
        masked = jnp.where(active, fitness, jnp.inf)  # inactive rows rank last: weight 0
        cma, metrics = self.cma.tell(k_tell, population, masked, state.cma, cma_p)
        state = state.replace(cma=cma, evaluations=state.evaluations + n)
        flat = jax.vmap(lambda p: ravel_pytree(p)[0])(population)
        spread_fitness = jnp.where(active, fitness, fitness[0])
        controller = _rs.RestartController(
            (_rs.spread_cond, _rs.cma_cond), self._restart_params(params)
        )
        stop = controller.should_restart(flat, spread_fitness, cma, cma_p, state.restart)
        restarted = self._restart(k_restart, state, params)
        return _where(stop, restarted, state), metrics

    # -- restart -------------------------------------------------------------------------

    def _restart(self, key: jax.Array, state: RestartState, params: RestartParams):
        k_size, k_std, k_init = jax.random.split(key, 3)
        if self.mode == "ipop":
            restart = state.restart
            n = restart.active_population_size * params.population_size_multiplier
            std = state.std_init
        else:
            restart, n, std = self._bipop_next(k_size, k_std, state, params)
        n = jnp.minimum(jnp.asarray(n, jnp.int32), self.population_size)
        restart = restart.replace(
            restart_counter=state.restart.restart_counter + 1, active_population_size=n
        )
        mean = jnp.where(params.copy_mean, state.cma.mean, state.init_mean)
        cma = self.cma.init(k_init, self._unravel(mean), self._params(n, std, params))
        cma = cma.replace(
            best_solution=state.cma.best_solution, best_fitness=state.cma.best_fitness
        )
        return state.replace(cma=cma, restart=restart, std_init=std)

    def _bipop_next(self, k_size, k_std, state: RestartState, params: RestartParams):
        r = state.restart
        used = r.active_population_size * state.cma.generation_counter
        first = r.restart_counter == 0  # as evosax: the first run counts in neither budget
        small_b = r.small_eval_budget + jnp.where(first | ~r.small_pop_active, 0, used)
        large_b = r.large_eval_budget + jnp.where(first | r.small_pop_active, 0, used)
        use_small = small_b < large_b
        mult = params.population_size_multiplier
        init = self.initial_population_size
        large_n = init * mult ** (r.restart_large_counter + 1)
        exponent = jax.random.uniform(k_size) ** 2
        small_mult = 0.5 * jnp.asarray(mult, jnp.float32) ** r.restart_large_counter
        small_n = jnp.maximum(2, jnp.floor(init * small_mult**exponent)).astype(jnp.int32)
        n = jnp.where(use_small, small_n, large_n)
        std = jnp.where(
            use_small, r.initial_std * 10 ** (-2 * jax.random.uniform(k_std)), r.initial_std
        )
        restart = r.replace(
            restart_large_counter=r.restart_large_counter + jnp.where(use_small, 0, 1),
            large_eval_budget=large_b,
            small_eval_budget=small_b,
            small_pop_active=use_small,
        )
        return restart, n, std


class IPOP_CMA_ES(RestartCMA_ES):
    """:class:`RestartCMA_ES` with ``mode="ipop"`` (the strategy name ``"IPOP_CMA_ES"``)."""

    def __init__(self, population_size: int, solution: Any, max_population_size: int | None = None):
        super().__init__(population_size, solution, "ipop", max_population_size)


class BIPOP_CMA_ES(RestartCMA_ES):
    """:class:`RestartCMA_ES` with ``mode="bipop"`` (the strategy name ``"BIPOP_CMA_ES"``)."""

    def __init__(self, population_size: int, solution: Any, max_population_size: int | None = None):
        super().__init__(population_size, solution, "bipop", max_population_size)


#: the restart strategies by name
RESTART_STRATEGIES: dict[str, type] = {"IPOP_CMA_ES": IPOP_CMA_ES, "BIPOP_CMA_ES": BIPOP_CMA_ES}
