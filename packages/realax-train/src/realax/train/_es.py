"""EvosaxTrainer: compiled evolution strategies (evosax 0.3) against a task (front end)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from . import _es_metrics, _loops
from ._base import BaseTrainer, train_from_key
from ._es_algorithm import EvoAlgorithm, EvoState, check_task_output
from ._es_metrics import _fitness_stats as _fitness_stats  # (tests of the metrics)
from ._es_metrics import check_metrics
from ._es_state_hparams import state_sweepable
from ._hparams import Traceable, scalar_floats
from ._mesh import make_mesh
from ._protocols import InitsData, Logger, Task, UpdatesData
from ._shaping import FitnessShaper
from ._step_data import check_step_data
from ._strategies import build_es_params, build_strategy, is_population_based
from ._validate import (
    as_typed_key,
    check_bool,
    check_init_mean,
    check_logger,
    check_n_devices,
    check_params_like,
    check_positive_int,
    example_data,
    n_positional,
    shape_str,
    traces,
)

__all__ = ["EvoState", "EvosaxTrainer", "evolve"]


def _init_data(task: Any) -> Callable | None:
    """The task's optional ``init_data`` (the `InitsData` Protocol), or None."""
    return task.init_data if isinstance(task, InitsData) and callable(task.init_data) else None


def _update_data(task: Any) -> Callable | None:
    """The task's optional ``update_data`` (the `UpdatesData` Protocol), or None."""
    ok = isinstance(task, UpdatesData) and callable(task.update_data)
    return task.update_data if ok else None


def _num_dims(params_like: Any) -> int:
    return int(sum(jnp.size(x) for x in jax.tree.leaves(params_like)))


def _check_shaper(fitness_shaper: Any) -> FitnessShaper:
    if fitness_shaper is None:
        return FitnessShaper()
    if not isinstance(fitness_shaper, FitnessShaper):
        raise TypeError(
            f"fitness_shaper must be a realax.train.FitnessShaper (got "
            f"{type(fitness_shaper).__name__}); evosax.FitnessShaper is gone since evosax "
            "0.2, use realax.train.FitnessShaper(maximize=...) instead."
        )
    return fitness_shaper


# the Python-driven loop: jitted halves around a plain-Python evaluation
def _ask(alg: EvoAlgorithm, state: EvoState):
    return alg.ask(state)


def _tell(alg: EvoAlgorithm, *args: Any):
    return alg.tell(*args)


def _init_sample(alg: EvoAlgorithm, key: jax.Array, data: Any):
    return alg.init_sample(key, data)


def _init_finish(alg: EvoAlgorithm, *args: Any):
    return alg.init_finish(*args)


_PY_JIT = {
    f.__name__: jax.jit(f, static_argnums=0) for f in (_ask, _tell, _init_sample, _init_finish)
}


class EvosaxTrainer(Traceable, BaseTrainer):
    """Evolve parameters against a task with an evosax 0.3 algorithm, in one compiled loop.

    Each generation asks the algorithm for ``popsize`` members, evaluates
    ``task(params, key, data) -> (fitness, info)`` on every member ``eval_reps`` times (fresh
    keys, fitness averaged), shapes the fitness with ``fitness_shaper`` and tells the algorithm.

    Fitness shaping composes in two stages. realax's :class:`FitnessShaper` always runs first
    and turns the raw fitness into a finite "lower is better" objective (sign for
    ``maximize``, ``w_decay``, and the optional rank / z-score / range transforms; non-finite
    fitness ranks worst). The evosax algorithm then applies its own ``fitness_shaping_fn`` to
    that objective. When ``strategy`` is a name, realax keeps the algorithm's default shaping,
    except that if the shaper asks for a value transform (``centered_rank``, ``z_score`` or
    ``norm_range``) and the algorithm's default is itself a value transform (Open_ES, PGPE and
    SV_Open_ES default to centered ranks), the algorithm's shaping is set to identity so the
    requested transform is what the update sees. Rank-to-weight defaults (CMA_ES, SNES, xNES,
    Sep_CMA_ES, DES, ...) are part of those algorithms' updates and are kept; they depend only
    on the ranking, which realax's shaper determines. A ``fitness_shaping_fn`` in ``es_kws``
    always wins, and an algorithm instance is used exactly as given.

    The search starts at ``params_like``'s value (the original realax started at zero);
    ``init_mean`` overrides it. Population-based algorithms start from
    ``init_mean + init_std * N(0, I)``, evaluated once during ``initialize``.

    Args:
        train_steps: number of generations per ``train`` call.
        strategy: an evosax 0.3 algorithm instance, or a name: any key of
            ``evosax.algorithms.algorithms`` or a pre-0.2 alias (see
            ``realax.train.STRATEGY_ALIASES``); case and underscores are ignored.
        task: ``task(params, key, data=None) -> (fitness, info)``, scalar fitness.
        params_like: pytree with the parameters' structure and starting value (optional for an
            instance: defaults to its ``solution``).
        popsize: population size (required with a name; defaults to the instance's).
        fitness_shaper: a :class:`FitnessShaper`; default minimises the raw fitness.
        es_kws: keyword arguments of the algorithm's constructor (names only).
        es_params: the algorithm's params, or a dict of fields replacing its ``default_params``.
        eval_reps: evaluations per member (fitness is their mean).
        logger: object with ``log(state, metrics)``, called every generation.
        progress_bar: show a live tqdm bar (best fitness so far).
        n_devices: split the population over this many devices (``jax.shard_map``); each
            device evaluates its slice and the fitness is gathered. Under ``jax.distributed``
            ``n_devices=jax.device_count()`` spans every device of every process, and every
            process gets the same state and metrics.
        init_mean: starting point overriding ``params_like``'s value.
        init_std: spread of the initial population of population-based algorithms.
        step_data: per-generation data, off by default (keyword only). ``True``: the
            metrics of ``train`` also hold ``metrics["metrics"]["fitness"]`` (every member's
            fitness, ``(steps, popsize)``, next to the scalar metrics, which are also at the
            top level) and ``metrics["eval_data"]`` (the task's ``info``, leaves
            ``(steps, popsize, eval_reps, ...)``). A callable ``fn(fitness, info) -> pytree``
            runs inside the compiled step and its output is stored as ``eval_data`` instead
            (keep memory flat: e.g. one array per generation). Memory: ``steps * popsize * 4``
            bytes plus the stored ``eval_data``. ``fori`` runs (``train_``) return no metrics:
            ``logger.log(state, metrics)`` receives the generation's entries.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.train import EvosaxTrainer
        >>> sphere = lambda x, key, data=None: (jnp.sum(x**2), {})
        >>> trainer = EvosaxTrainer(50, "SNES", sphere, params_like=jnp.ones(3), popsize=16)
        >>> state, metrics = trainer.init_and_train(jax.random.key(0))
        >>> bool(state.best_fitness < 3.0), metrics["best_fitness"].shape
        (True, (50,))
    """

    def __init__(
        self,
        train_steps: int,
        strategy: Any,
        task: Task,
        params_like: Any = None,
        popsize: int | None = None,
        fitness_shaper: FitnessShaper | None = None,
        es_kws: dict | None = None,
        es_params: Any = None,
        eval_reps: int = 1,
        logger: Logger | None = None,
        progress_bar: bool = False,
        n_devices: int = 1,
        init_mean: Any = None,
        init_std: float = 1.0,
        *,
        step_data: bool | Callable = False,
        metrics: str | tuple[str, ...] = "all",
    ):
        self._args = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.train_steps = check_positive_int(
            train_steps, "train_steps", "pass the number of generations, e.g. train_steps=100"
        )
        if not callable(task):
            raise TypeError(
                f"task must be callable as task(params, key, data) -> (fitness, info) "
                f"(got {type(task).__name__})"
            )
        self.task = task
        self.fitness_shaper = _check_shaper(fitness_shaper)
        if es_kws is not None and not isinstance(es_kws, dict):
            raise TypeError(f"es_kws must be a dict or None (got {type(es_kws).__name__})")
        self.eval_reps = check_positive_int(eval_reps, "eval_reps")
        self.logger = check_logger(logger)
        self.progress_bar = check_bool(progress_bar, "progress_bar")
        self.n_devices = check_n_devices(n_devices)
        if isinstance(init_std, bool) or not isinstance(init_std, int | float) or init_std <= 0:
            raise ValueError(f"init_std must be a float > 0 (got init_std={init_std!r})")
        self.init_std = float(init_std)
        self.step_data = check_step_data(step_data, "EvosaxTrainer", "fn(fitness, info)")
        self.metrics = check_metrics(metrics)
        solution = None if params_like is None else check_params_like(params_like)
        self.strategy_name, self.strategy = build_strategy(
            strategy,
            solution,
            popsize,
            dict(es_kws or {}),
            self.fitness_shaper.transforms_values,
        )
        self.popsize = int(self.strategy.population_size)
        self.params_like = check_params_like(
            self.strategy.solution if params_like is None else params_like
        )
        self._check_sizes()
        self.es_params = build_es_params(self.strategy, self.strategy_name, es_params)
        self.init_mean = check_init_mean(init_mean, self.params_like)
        self.population_based = is_population_based(self.strategy)
        self._alg = EvoAlgorithm(
            strategy=self.strategy,
            es_params=self.es_params,
            task=task,
            nargs=n_positional(task),
            shaper=self.fitness_shaper,
            eval_reps=self.eval_reps,
            init_mean=self.init_mean,
            init_std=self.init_std,
            population_based=self.population_based,
            mesh=make_mesh(self.n_devices),
            init_data=_init_data(task),
            update_data=_update_data(task),
            step_data=self.step_data,
            metrics=self.metrics,
        )
        self.algorithm = self._alg.algorithm()
        self._unravel = self._alg.unravel
        self._task_checked = False
        # Validate what can be validated now; failures to trace are re-raised before the first
        # compiled run (a task that cannot be traced may still be used with train_python).
        self._check_task(None, construction=True)

    # -- traced hyperparameters (``realax.train.sweep``, PBT) -----------------------------

    def sweepable(self) -> dict[str, float]:
        """What ``traced(names)`` can carry: ``es_params`` floats (``std_init``, ...), ``sigma``
        and ``learning_rate`` where the strategy has them (``_es_state_hparams``), and
        ``init_std`` for population-based strategies.

        Example:
            >>> import jax.numpy as jnp
            >>> from realax.train import EvosaxTrainer
            >>> f = lambda x, key, data=None: (jnp.sum(x**2), {})
            >>> t = EvosaxTrainer(5, "SNES", f, params_like=jnp.ones(2), popsize=8)
            >>> sorted(t.sweepable())
            ['lr_std_init', 'std_init']
        """
        fields = [f.name for f in dataclasses.fields(self.es_params)]
        out = scalar_floats(self.es_params, fields)
        out.update(state_sweepable(self.strategy, self.num_dims))
        if self.population_based:
            out["init_std"] = self.init_std
        return out

    def shape_settings(self) -> dict[str, Any]:
        """Settings that change array shapes: ``popsize``, ``eval_reps``, ``n_devices``."""
        return {"popsize": self.popsize, "eval_reps": self.eval_reps, "n_devices": self.n_devices}

    def _trace(self, values: dict[str, float]) -> None:
        self._alg = copy.copy(self._alg)
        self._alg.hparams = values
        self.algorithm = self._alg.algorithm()

    @property
    def num_dims(self) -> int:
        """Number of parameters (the length of the flat search vector)."""
        return self._alg.num_dims

    def _check_sizes(self) -> None:
        num_dims = _num_dims(self.params_like)
        if int(self.strategy.num_dims) != num_dims:
            raise ValueError(
                f"params_like has {num_dims} parameters but the strategy instance was built "
                f"for {int(self.strategy.num_dims)} (solution={shape_str(self.strategy.solution)})"
                "; pass params_like with the same structure as the instance's solution."
            )
        if self.popsize % self.n_devices:
            ok = -(-self.popsize // self.n_devices) * self.n_devices
            raise ValueError(
                f"popsize must be divisible by n_devices (got popsize={self.popsize}, "
                f"n_devices={self.n_devices}); choose popsize={ok}."
            )

    # -- deferred fitness statistics -------------------------------------------------------

    def _run_loop(self, state: Any, data: Any, n_steps: int, scan: bool, logger, progress_bar):
        """A scan without a logger computes the fitness statistics after the loop."""
        opts = self._options(logger, progress_bar)
        deferred = scan and opts["logger"] is None and self.step_data is None and self._alg.defers
        if not (deferred and n_steps * self.popsize <= _es_metrics.DEFER_LIMIT):
            return super()._run_loop(state, data, n_steps, scan, logger, progress_bar)
        self._check_ready(state.data if data is None else data)
        alg = self._alg.deferred_algorithm()
        state, metrics = _loops.run(alg, state, n_steps=n_steps, data=data, scan=True, **opts)
        return state, self._alg.finish_metrics(metrics)

    # -- task validation -------------------------------------------------------------------

    def _check_task(self, data: Any, construction: bool = False) -> None:
        if self._task_checked:
            return
        data = example_data(self._alg.init_data, data)
        self._task_checked = traces(
            self._alg.call_task,
            self.params_like,
            jax.random.key(0),
            data,
            failed="task(params, key, data) failed when traced on one member shaped like "
            f"params_like={shape_str(self.params_like)}",
            hint="Check that params_like has the structure the task expects; a task that "
            "cannot be jitted can run with trainer.init_and_train_python(key).",
            check_output=check_task_output,
            quiet=construction,
        )

    def _check_ready(self, data: Any) -> None:
        self._check_task(data)

    def initialize(self, key: jax.Array, data: Any = None) -> EvoState:
        """Initial :class:`EvoState` from ``key`` (``state.data`` from ``task.init_data`` if
        the task has it, else ``data``).

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from realax.train import EvosaxTrainer
            >>> f = lambda x, key, data=None: (jnp.sum(x**2), {})
            >>> t = EvosaxTrainer(10, "CMA_ES", f, params_like=jnp.ones(2), popsize=8)
            >>> t.initialize(jax.random.key(0)).mean.tolist()
            [1.0, 1.0]
        """
        key = as_typed_key(key)
        if self.population_based:
            self._check_task(data)
        return _loops.init(self.algorithm, key, data)

    # -- Python-driven loop ------------------------------------------------------------------

    def _python_step(self, state: EvoState, data: Any) -> tuple[EvoState, dict]:
        alg = self._alg
        data = state.data if data is None else data
        population, es_state, eval_keys, k_tell = _PY_JIT["_ask"](alg, state)
        fitness, infos = alg.python_evaluate(population, eval_keys, data)
        return _PY_JIT["_tell"](alg, state, population, es_state, fitness, infos, data, k_tell)

    def initialize_python(self, key: jax.Array, data: Any = None) -> EvoState:
        """Like :meth:`initialize`, evaluating a population-based algorithm's first population
        in plain Python (for tasks that cannot be jitted); ``init_and_train_python`` starts
        from it and runs jitted ask and tell around a plain Python evaluation of each member.

        Example:
            >>> import jax, numpy as np
            >>> from realax.train import EvosaxTrainer
            >>> f = lambda x, key: (float(np.sum(np.asarray(x) ** 2)), {})
            >>> t = EvosaxTrainer(5, "SNES", f, params_like=np.ones(2, np.float32), popsize=4)
            >>> state, metrics = t.init_and_train_python(jax.random.key(0))
            >>> metrics["best_fitness"].shape
            (5,)
        """
        alg = self._alg
        keys, data, population, eval_keys = _PY_JIT["_init_sample"](alg, as_typed_key(key), data)
        fitness = None
        if self.population_based:
            fitness, _ = alg.python_evaluate(population, eval_keys, data)
        return _PY_JIT["_init_finish"](alg, keys, data, population, fitness)


def evolve(
    prms: Any,
    fitness_fn: Task,
    key: jax.Array,
    popsize: int = 64,
    strategy: Any = "OpenES",
    steps: int = 1024,
    use_scan: bool = True,
    *,
    return_best: bool = False,
    **kwargs: Any,
):
    """Evolve ``prms`` against ``fitness_fn`` in one call.

    Builds an :class:`EvosaxTrainer` (``kwargs`` go to it: ``fitness_shaper``, ``eval_reps``,
    ``es_kws``, ``logger``, ``step_data``, ...) starting from ``prms`` and runs ``steps``
    generations.

    Returns:
        ``(params, state, metrics)`` with ``use_scan=True``, ``(params, state)`` otherwise
        (``fori_loop``, memory flat). ``params`` is, as in the original realax and the
        command line, the search distribution's mean (``state.mean``) for distribution-based
        strategies (CMA-ES, SNES, Open-ES, DES, ...): the best single evaluation is noisy, the
        mean is what the strategy learned. Population-based strategies (GAs, PSO, DE, ...)
        have no distribution and return the best member seen. ``return_best=True`` returns
        the best member seen (``state.best_params``) for every strategy.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.train import evolve
        >>> f = lambda x, key=None, data=None: (jnp.sum(x**2), {})
        >>> params, state, metrics = evolve(jnp.ones(2), f, jax.random.key(0), popsize=16,
        ...                                 strategy="CMA_ES", steps=30)
        >>> bool(metrics["best_fitness"][-1] < 0.1), bool(f(params)[0] < 0.1)
        (True, True)
        >>> best, state = evolve(jnp.ones(2), f, jax.random.key(0), popsize=16,
        ...                      strategy="CMA_ES", steps=30, use_scan=False, return_best=True)
        >>> bool(f(best)[0] == state.best_fitness)
        True
    """
    return_best = check_bool(return_best, "return_best")
    # EvosaxTrainer(train_steps, strategy, task, params_like, ...)
    trainer = EvosaxTrainer(steps, strategy, fitness_fn, prms, popsize=popsize, **kwargs)
    best = return_best or trainer.population_based
    return train_from_key(trainer, key, use_scan, "best_params" if best else "mean")
