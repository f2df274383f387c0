"""EvosaxTrainer: compiled evolution strategies (evosax 0.3) against a task (front end)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from . import _loops
from ._base import BaseTrainer, train_from_key
from ._es_algorithm import EvoAlgorithm, EvoState, check_task_output
from ._es_algorithm import _fitness_stats as _fitness_stats  # (tests of the metrics)
from ._mesh import make_mesh
from ._protocols import InitsData, Logger, Task, UpdatesData
from ._shaping import FitnessShaper
from ._strategies import build_es_params, build_strategy, is_population_based
from ._validate import (
    as_typed_key,
    check_bool,
    check_logger,
    check_n_devices,
    check_positive_int,
    n_positional,
    shape_str,
    traces,
)

__all__ = ["EvoState", "EvosaxTrainer", "evolve"]


def _check_params_like(params_like: Any, name: str = "params_like") -> Any:
    leaves = jax.tree.leaves(params_like)
    if not leaves:
        raise ValueError(
            f"{name} must be a pytree of arrays with at least one leaf (got {params_like!r}); "
            "pass e.g. jnp.zeros((dims,))."
        )
    out = []
    for leaf in leaves:
        try:
            arr = jnp.asarray(leaf)
        except TypeError as e:
            raise TypeError(
                f"{name} leaves must be arrays (got a leaf of type {type(leaf).__name__}); "
                "pass a pytree of jnp arrays, e.g. the output of model.init(...)."
            ) from e
        if not jnp.issubdtype(arr.dtype, jnp.floating):
            raise TypeError(
                f"{name} leaves must be floating arrays (got dtype {arr.dtype}); cast them, "
                "e.g. jnp.asarray(x, jnp.float32)."
            )
        out.append(arr)
    return jax.tree.unflatten(jax.tree.structure(params_like), out)


def _check_init_mean(init_mean: Any, params_like: Any) -> Any:
    if init_mean is None:
        return params_like
    init_mean = _check_params_like(init_mean, "init_mean")
    want = jax.tree.map(lambda x: x.shape, params_like)
    got = jax.tree.map(lambda x: x.shape, init_mean)
    want_tree: Any = jax.tree.structure(params_like)  # (PyTreeDef has no typed __eq__)
    same_tree = want_tree == jax.tree.structure(init_mean)
    if not same_tree or want != got:
        raise ValueError(
            f"init_mean must have the structure and shapes of params_like (expected "
            f"{shape_str(params_like)}, got {shape_str(init_mean)})."
        )
    return jax.tree.map(lambda x, y: jnp.asarray(x, y.dtype), init_mean, params_like)


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


class EvosaxTrainer(BaseTrainer):
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
    ):
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
        solution = None if params_like is None else _check_params_like(params_like)
        self.strategy_name, self.strategy = build_strategy(
            strategy,
            solution,
            popsize,
            dict(es_kws or {}),
            self.fitness_shaper.transforms_values,
        )
        self.popsize = int(self.strategy.population_size)
        self.params_like = _check_params_like(
            self.strategy.solution if params_like is None else params_like
        )
        self._check_sizes()
        self.es_params = build_es_params(self.strategy, self.strategy_name, es_params)
        self.init_mean = _check_init_mean(init_mean, self.params_like)
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
        )
        self.algorithm = self._alg.algorithm()
        self._unravel = self._alg.unravel
        self._task_checked = False
        # Validate what can be validated now; failures to trace are re-raised before the first
        # compiled run (a task that cannot be traced may still be used with train_python).
        self._check_task(None, construction=True)

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

    # -- task validation -------------------------------------------------------------------

    def _check_task(self, data: Any, construction: bool = False) -> None:
        if self._task_checked:
            return
        init_data = self._alg.init_data
        if data is None and init_data is not None:
            try:
                data = jax.eval_shape(init_data, jax.random.key(0))
            except Exception as e:
                raise ValueError(
                    f"task.init_data(key) failed to trace: {type(e).__name__}: {e}"
                ) from e
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
        k_init, k_run, data, population, eval_keys = _PY_JIT["_init_sample"](
            alg, as_typed_key(key), data
        )
        fitness = None
        if self.population_based:
            fitness, _ = alg.python_evaluate(population, eval_keys, data)
        return _PY_JIT["_init_finish"](alg, k_init, k_run, data, population, fitness)


def evolve(
    prms: Any,
    fitness_fn: Task,
    key: jax.Array,
    popsize: int = 64,
    strategy: Any = "OpenES",
    steps: int = 1024,
    use_scan: bool = True,
    **kwargs: Any,
):
    """Evolve ``prms`` against ``fitness_fn`` in one call.

    Builds an :class:`EvosaxTrainer` (``kwargs`` go to it: ``fitness_shaper``, ``eval_reps``,
    ``es_kws``, ``logger``, ...) starting from ``prms`` and runs ``steps`` generations.

    Returns:
        ``(best_params, state, metrics)`` with ``use_scan=True``, ``(best_params, state)``
        otherwise (``fori_loop``, memory flat). ``best_params`` is the best member seen
        (``state.best_params``); the distribution mean is ``state.mean``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.train import evolve
        >>> f = lambda x, key=None, data=None: (jnp.sum(x**2), {})
        >>> params, state, metrics = evolve(jnp.ones(2), f, jax.random.key(0), popsize=16,
        ...                                 strategy="CMA_ES", steps=30)
        >>> bool(metrics["best_fitness"][-1] < 0.1)
        True
    """
    # EvosaxTrainer(train_steps, strategy, task, params_like, ...)
    trainer = EvosaxTrainer(steps, strategy, fitness_fn, prms, popsize=popsize, **kwargs)
    return train_from_key(trainer, key, use_scan, "best_params")
