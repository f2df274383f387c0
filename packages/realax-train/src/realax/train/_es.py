"""EvosaxTrainer: compiled evolution strategies (evosax 0.3) against a task."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from evosax.core.fitness_shaping import identity_fitness_shaping_fn
from flax import struct
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ._base import (
    BaseTrainer,
    as_typed_key,
    call_with_data,
    check_bool,
    check_logger,
    check_n_devices,
    check_positive_int,
    n_positional,
    shape_str,
)
from ._shaping import FitnessShaper
from ._strategies import is_population_based, replaces_value_shaping, resolve_strategy

__all__ = ["EvoState", "EvosaxTrainer", "evolve"]

_AXIS = "devices"


def strong_types(tree: Any) -> Any:
    """``tree`` with weakly typed leaves (from Python scalars in evosax states) made strong.

    A weak-typed leaf in a state makes a second ``train(state)`` on the returned state (whose
    leaves are strong) compile again; fixing the types once keeps one compiled program.
    """

    def fix(x: Any) -> Any:
        return jnp.asarray(x, dtype=x.dtype) if getattr(x, "weak_type", False) else x

    return jax.tree.map(fix, tree)


class EvoState(struct.PyTreeNode):
    """State of an :class:`EvosaxTrainer` run.

    Attributes:
        es_state: the evosax 0.3 algorithm state.
        step: number of completed generations (int32 scalar).
        key: typed PRNG key; generation ``t`` uses ``jax.random.fold_in(key, t)``.
        best_params: best member seen so far, a pytree shaped like ``params_like``.
        best_fitness: its raw task fitness (mean over ``eval_reps``), best in the user's sense
            (lowest when minimising, highest with ``FitnessShaper(maximize=True)``).
        data: the task's data (``task.init_data`` / ``task.update_data``) or user data, or None.
    """

    es_state: Any
    step: jax.Array
    key: jax.Array
    best_params: Any
    best_fitness: jax.Array
    data: Any = None
    unravel_fn: Callable | None = struct.field(pytree_node=False, default=None)

    @classmethod
    def create(
        cls,
        *,
        es_state: Any,
        key: jax.Array,
        best_params: Any,
        best_fitness: Any,
        data: Any = None,
        unravel_fn: Callable | None = None,
        step: int = 0,
    ) -> EvoState:
        """Build a state (keyword-only)."""
        return cls(
            es_state=strong_types(es_state),
            step=jnp.asarray(step, dtype=jnp.int32),
            key=as_typed_key(key),
            best_params=best_params,
            best_fitness=jnp.asarray(best_fitness, dtype=jnp.float32),
            data=data,
            unravel_fn=unravel_fn,
        )

    @property
    def mean(self) -> Any:
        """Search distribution mean as a pytree shaped like ``params_like``.

        For population-based algorithms (GAs, PSO, DE, ...) it is the population average.
        """
        if hasattr(self.es_state, "mean"):
            flat = self.es_state.mean
        else:
            flat = jnp.mean(self.es_state.population, axis=-2)
        if self.unravel_fn is None:
            return flat
        if flat.ndim > 1:  # several seeds
            return jax.vmap(self.unravel_fn)(flat)
        return self.unravel_fn(flat)


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

    _progress_metric = "best_fitness"

    def __init__(
        self,
        train_steps: int,
        strategy: Any,
        task: Callable,
        params_like: Any = None,
        popsize: int | None = None,
        fitness_shaper: FitnessShaper | None = None,
        es_kws: dict | None = None,
        es_params: Any = None,
        eval_reps: int = 1,
        logger: Any = None,
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
        if fitness_shaper is None:
            fitness_shaper = FitnessShaper()
        if not isinstance(fitness_shaper, FitnessShaper):
            raise TypeError(
                f"fitness_shaper must be a realax.train.FitnessShaper (got "
                f"{type(fitness_shaper).__name__}); evosax.FitnessShaper is gone since evosax "
                "0.2, use realax.train.FitnessShaper(maximize=...) instead."
            )
        self.fitness_shaper = fitness_shaper
        if es_kws is not None and not isinstance(es_kws, dict):
            raise TypeError(f"es_kws must be a dict or None (got {type(es_kws).__name__})")
        es_kws = dict(es_kws or {})
        self.eval_reps = check_positive_int(eval_reps, "eval_reps")
        self.logger = check_logger(logger)
        self.progress_bar = check_bool(progress_bar, "progress_bar")
        self.n_devices = check_n_devices(n_devices)
        if isinstance(init_std, bool) or not isinstance(init_std, int | float) or init_std <= 0:
            raise ValueError(f"init_std must be a float > 0 (got init_std={init_std!r})")
        self.init_std = float(init_std)

        self.strategy_name, self.strategy = self._build_strategy(
            strategy, params_like, popsize, es_kws
        )
        self.popsize = int(self.strategy.population_size)
        if params_like is None:
            params_like = self.strategy.solution
        self.params_like = _check_params_like(params_like)
        flat, self._unravel = ravel_pytree(self.params_like)
        self.num_dims = int(flat.size)
        if int(self.strategy.num_dims) != self.num_dims:
            raise ValueError(
                f"params_like has {self.num_dims} parameters but the strategy instance was built "
                f"for {int(self.strategy.num_dims)} (solution={shape_str(self.strategy.solution)})"
                "; pass params_like with the same structure as the instance's solution."
            )
        if self.popsize % self.n_devices:
            ok = -(-self.popsize // self.n_devices) * self.n_devices
            raise ValueError(
                f"popsize must be divisible by n_devices (got popsize={self.popsize}, "
                f"n_devices={self.n_devices}); choose popsize={ok}."
            )
        self.es_params = self._build_es_params(es_params)
        self.init_mean = self._check_init_mean(init_mean)
        self.population_based = is_population_based(self.strategy)

        self._nargs = n_positional(task)
        self._init_data = getattr(task, "init_data", None)
        self._update_data = getattr(task, "update_data", None)
        if self._init_data is not None and not callable(self._init_data):
            self._init_data = None
        if self._update_data is not None and not callable(self._update_data):
            self._update_data = None
        self._mesh = (
            Mesh(np.asarray(jax.devices()[: self.n_devices]), (_AXIS,))
            if self.n_devices > 1
            else None
        )
        self._task_checked = False
        self._task_error: Exception | None = None
        # Validate what can be validated now; failures to trace are re-raised before the first
        # compiled run (a task that cannot be traced may still be used with train_python).
        self._check_task(None, construction=True)

    # -- construction helpers -------------------------------------------------------------

    def _build_strategy(self, strategy, params_like, popsize, es_kws):
        if isinstance(strategy, str):
            name, cls = resolve_strategy(strategy)
            if popsize is None:
                raise ValueError(
                    f"popsize is required when strategy is a name (got strategy={strategy!r}, "
                    "popsize=None); pass e.g. popsize=64."
                )
            popsize = check_positive_int(popsize, "popsize", "pass e.g. popsize=64")
            if params_like is None:
                raise ValueError(
                    f"params_like is required when strategy is a name (got strategy="
                    f"{strategy!r}, params_like=None); pass a pytree shaped like the parameters, "
                    "e.g. params_like=jnp.zeros((dims,))."
                )
            solution = _check_params_like(params_like)
            kws = dict(es_kws)
            if (
                self.fitness_shaper.transforms_values
                and "fitness_shaping_fn" not in kws
                and replaces_value_shaping(cls)
            ):
                kws["fitness_shaping_fn"] = identity_fitness_shaping_fn
            try:
                instance = cls(population_size=popsize, solution=solution, **kws)
            except AssertionError as e:
                raise ValueError(
                    f"strategy {name!r} rejected popsize={popsize} / es_kws={es_kws}: {e}"
                    + (" Choose an even popsize." if "even" in str(e) else "")
                ) from e
            except TypeError as e:
                raise TypeError(
                    f"es_kws={es_kws} do not fit the constructor of {name!r} ({e}); see "
                    f"help(evosax.algorithms.{cls.__name__})."
                ) from e
            return name, instance
        if all(callable(getattr(strategy, m, None)) for m in ("init", "ask", "tell")):
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
        raise TypeError(
            f"strategy must be a name (str) or an evosax 0.3 algorithm instance (got "
            f"{type(strategy).__name__}); e.g. strategy='CMA_ES'."
        )

    def _build_es_params(self, es_params):
        default = self.strategy.default_params
        if es_params is None:
            return default
        if isinstance(es_params, dict):
            fields = [f.name for f in dataclasses.fields(default)]
            unknown = sorted(set(es_params) - set(fields))
            if unknown:
                raise ValueError(
                    f"es_params has fields {unknown} unknown to {self.strategy_name}; "
                    f"valid fields: {fields}."
                )
            return default.replace(**es_params)
        if type(es_params) is not type(default):
            raise TypeError(
                f"es_params must be a dict of overrides or a {type(default).__name__} (got "
                f"{type(es_params).__name__}); e.g. es_params={{...}} or "
                "trainer.strategy.default_params.replace(...)."
            )
        return es_params

    def _check_init_mean(self, init_mean):
        if init_mean is None:
            return self.params_like
        init_mean = _check_params_like(init_mean, "init_mean")
        want = jax.tree.map(lambda x: x.shape, self.params_like)
        got = jax.tree.map(lambda x: x.shape, init_mean)
        if jax.tree.structure(self.params_like) != jax.tree.structure(init_mean) or want != got:
            raise ValueError(
                f"init_mean must have the structure and shapes of params_like (expected "
                f"{shape_str(self.params_like)}, got {shape_str(init_mean)})."
            )
        return jax.tree.map(lambda x, y: jnp.asarray(x, y.dtype), init_mean, self.params_like)

    # -- task validation -------------------------------------------------------------------

    def _call_task(self, params, key, data):
        out = call_with_data(self.task, self._nargs, params, key, data)
        return out

    def _check_task(self, data, construction=False):
        if self._task_checked:
            return
        if data is None and self._init_data is not None:
            try:
                data = jax.eval_shape(self._init_data, jax.random.key(0))
            except Exception as e:
                raise ValueError(
                    f"task.init_data(key) failed to trace: {type(e).__name__}: {e}"
                ) from e
        try:
            out = jax.eval_shape(self._call_task, self.params_like, jax.random.key(0), data)
        except Exception as e:  # the user's task failed to trace
            if construction:
                self._task_error = e
                return
            raise ValueError(
                "task(params, key, data) failed when traced on one member shaped like "
                f"params_like={shape_str(self.params_like)}: {type(e).__name__}: {e}. Check that "
                "params_like has the structure the task expects; a task that cannot be jitted "
                "can run with trainer.init_and_train_python(key)."
            ) from e
        _check_task_output(out)
        self._task_checked = True

    def _check_compiled(self, data):
        self._check_task(data)

    # -- the algorithm ---------------------------------------------------------------------

    def _evaluate(self, population, keys, data):
        """Fitness ``(popsize, eval_reps)`` and infos of a population (compiled)."""

        def one(params, key, data):
            fitness, info = self._call_task(params, key, data)
            return jnp.asarray(fitness, jnp.float32).reshape(()), info

        fn = jax.vmap(jax.vmap(one, in_axes=(None, 0, None)), in_axes=(0, 0, None))
        if self._mesh is None:
            return fn(population, keys, data)

        def sharded(population, keys, data):
            # Each device evaluates its slice of the population; the results are gathered
            # (an exact copy, no arithmetic) so everything after the evaluation runs
            # replicated and does not depend on how the devices are spread over hosts.
            out = fn(population, keys, data)
            return jax.tree.map(lambda x: jax.lax.all_gather(x, _AXIS, tiled=True), out)

        return jax.shard_map(
            sharded,
            mesh=self._mesh,
            in_specs=(P(_AXIS), P(_AXIS), P()),
            out_specs=P(),
            check_vma=False,
        )(population, keys, data)

    def _python_evaluate(self, population, keys, data):
        """Fitness and infos of a population, evaluated member by member in plain Python."""
        population = jax.device_get(population)
        fits, infos = [], []
        for i in range(self.popsize):
            params = jax.tree.map(lambda x, i=i: x[i], population)
            for r in range(self.eval_reps):
                out = self._call_task(params, keys[i, r], data)
                _check_task_output(out)
                fits.append(np.asarray(out[0], dtype=np.float32).reshape(()))
                infos.append(jax.device_get(out[1]))
        fitness = np.stack(fits).reshape(self.popsize, self.eval_reps)
        info = jax.tree.map(
            lambda *xs: np.stack(xs).reshape(self.popsize, self.eval_reps, *np.shape(xs[0])),
            *infos,
        )
        return fitness, info

    def _initial_data(self, key, data):
        if self._init_data is not None:
            return self._init_data(key)
        return data

    def _init_sample(self, key, data):
        k_init, k_pop, k_eval, k_data, k_run = jax.random.split(key, 5)
        data = self._initial_data(k_data, data)
        flat_mean, _ = ravel_pytree(self.init_mean)
        noise = jax.random.normal(k_pop, (self.popsize, self.num_dims), flat_mean.dtype)
        population = jax.vmap(self._unravel)(flat_mean + self.init_std * noise)
        eval_keys = jax.random.split(k_eval, (self.popsize, self.eval_reps))
        return k_init, k_run, data, population, eval_keys

    def _replicated(self, tree):
        """``tree`` pinned to every device (no-op without a mesh).

        Without this, XLA's sharding propagation may split the algorithm's arrays over the
        population axis (it sees the evaluation's sharded inputs): the state then comes out
        sharded, and reductions over it (``state.mean`` of a GA, a gather in ``ask``) become
        all-reduces whose summation order depends on how devices are spread over processes.
        Replicated, everything but the evaluation runs as on one device, in every topology.
        """
        if self._mesh is None:
            return tree
        return jax.lax.with_sharding_constraint(tree, NamedSharding(self._mesh, P()))

    def _init_finish(self, k_init, k_run, data, population, fitness_reps):
        worst = jnp.asarray(self.fitness_shaper.worst_value, jnp.float32)
        if not self.population_based:
            es_state = self.strategy.init(k_init, self.init_mean, self.es_params)
            return EvoState.create(
                es_state=es_state, key=k_run, best_params=self.init_mean, best_fitness=worst,
                data=data, unravel_fn=self._unravel,
            )
        raw = self._raw_fitness(fitness_reps)
        shaped = self._shape(population, raw)
        es_state = self.strategy.init(k_init, population, shaped, self.es_params)
        best_params, best_fitness = self._update_best(
            self.init_mean, worst, population, raw
        )
        es_state, best_params = self._replicated((es_state, best_params))
        return EvoState.create(
            es_state=es_state, key=k_run, best_params=best_params, best_fitness=best_fitness,
            data=data, unravel_fn=self._unravel,
        )

    def _initialize(self, key, data):
        k_init, k_run, data, population, eval_keys = self._init_sample(key, data)
        fitness = None
        if self.population_based:
            fitness, _ = self._evaluate(population, eval_keys, data)
        return self._init_finish(k_init, k_run, data, population, fitness)

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
        return self._jitted["init"](key, data)

    def _update_best(self, best_params, best_fitness, population, raw):
        maximize = self.fitness_shaper.maximize
        finite = jnp.isfinite(raw)
        objective = jnp.where(finite, -raw if maximize else raw, jnp.inf)
        idx = jnp.argmin(objective)
        candidate = raw[idx]
        better = finite[idx] & self.fitness_shaper.is_better(candidate, best_fitness)
        best_fitness = jnp.where(better, candidate, best_fitness)
        best_params = jax.tree.map(
            lambda b, p: jnp.where(better, p[idx], b), best_params, population
        )
        return best_params, best_fitness

    def _generation_keys(self, key):
        """A generation's keys (ask, evaluation, tell) from ``fold_in(state.key, step)``."""
        return jax.random.split(key, 3)

    # the loops derive the keys of many generations at once (BaseTrainer._step_keys)
    _step_keys = _generation_keys

    def _raw_fitness(self, fitness_reps):
        """Each member's fitness: the mean over its ``eval_reps`` evaluations."""
        fitness_reps = jnp.asarray(fitness_reps, jnp.float32)
        if self.eval_reps == 1:
            return fitness_reps[:, 0]  # the mean of one value, without the division
        return jnp.mean(fitness_reps, axis=1)

    def _shape(self, population, raw):
        """The shaped objective; the flat population is only built for ``w_decay``."""
        flat = None
        if self.fitness_shaper.w_decay > 0.0:
            flat = jax.vmap(lambda p: ravel_pytree(p)[0])(population)
        return self.fitness_shaper.apply(flat, raw)

    def _ask(self, state, keys=None):
        if keys is None:
            keys = self._generation_keys(jax.random.fold_in(state.key, state.step))
        k_ask, k_eval, k_tell = keys
        population, es_state = self.strategy.ask(k_ask, state.es_state, self.es_params)
        eval_keys = jax.random.split(k_eval, (self.popsize, self.eval_reps))
        return population, es_state, eval_keys, k_tell

    def _tell(self, state, population, es_state, fitness_reps, infos, data, k_tell):
        raw = self._raw_fitness(fitness_reps)
        finite = jnp.isfinite(raw)
        shaped = self._shape(population, raw)
        es_state, _ = self.strategy.tell(k_tell, population, shaped, es_state, self.es_params)
        es_state = strong_types(es_state)  # one carry type: train(state) twice compiles once
        best_params, best_fitness = self._update_best(
            state.best_params, state.best_fitness, population, raw
        )
        es_state, best_params = self._replicated((es_state, best_params))
        new_data = state.data
        if self._update_data is not None:
            new_data = self._update_data(data, infos)
        step = state.step + 1
        state = state.replace(
            es_state=es_state,
            step=step,
            best_params=best_params,
            best_fitness=best_fitness,
            data=new_data,
        )
        metrics = {"generation": step, **_fitness_stats(raw, finite), "best_fitness": best_fitness}
        return state, metrics

    def _step(self, state, data, consts, keys=None):
        del consts
        data = state.data if data is None else data
        population, es_state, eval_keys, k_tell = self._ask(state, keys)
        if self._mesh is not None:
            # Only the evaluation is split over devices: keep the population replicated so
            # that ask and tell (whose reductions over the population would otherwise be
            # partitioned, changing the summation order) compute what they do on one device.
            population, eval_keys = self._replicated((population, eval_keys))
        fitness, infos = self._evaluate(population, eval_keys, data)
        return self._tell(state, population, es_state, fitness, infos, data, k_tell)

    # -- Python-driven loop ------------------------------------------------------------------

    @property
    def _python_jits(self) -> dict:
        cache = self.__dict__.get("_py_jit_cache")
        if cache is None:
            cache = {
                "ask": jax.jit(self._ask),
                "tell": jax.jit(self._tell),
                "init_sample": jax.jit(self._init_sample),
                "init_finish": jax.jit(self._init_finish),
            }
            self.__dict__["_py_jit_cache"] = cache
        return cache

    def _python_step(self, state, data):
        jits = self._python_jits
        data = state.data if data is None else data
        population, es_state, eval_keys, k_tell = jits["ask"](state)
        fitness, infos = self._python_evaluate(population, eval_keys, data)
        return jits["tell"](state, population, es_state, fitness, infos, data, k_tell)

    def initialize_python(self, key: jax.Array, data: Any = None) -> EvoState:
        """Like :meth:`initialize`, evaluating a population-based algorithm's first population
        in plain Python (for tasks that cannot be jitted)."""
        key = as_typed_key(key)
        jits = self._python_jits
        k_init, k_run, data, population, eval_keys = jits["init_sample"](key, data)
        fitness = None
        if self.population_based:
            fitness, _ = self._python_evaluate(population, eval_keys, data)
        return jits["init_finish"](k_init, k_run, data, population, fitness)

    def init_and_train_python(self, key: Any, data: Any = None):
        """Initialise and train with a Python-driven loop: jitted ask and tell around a plain
        Python evaluation of each member, for tasks that cannot be jitted (numpy, simulators).

        Returns:
            ``(state, metrics)``, metrics stacked over generations as numpy arrays.

        Example:
            >>> import jax, numpy as np
            >>> from realax.train import EvosaxTrainer
            >>> f = lambda x, key: (float(np.sum(np.asarray(x) ** 2)), {})
            >>> t = EvosaxTrainer(5, "SNES", f, params_like=np.ones(2, np.float32), popsize=4)
            >>> state, metrics = t.init_and_train_python(jax.random.key(0))
            >>> metrics["best_fitness"].shape
            (5,)
        """
        return self.train_python(self.initialize_python(key, data), data)


def _fitness_stats(raw: jax.Array, finite: jax.Array) -> dict:
    """Min, mean, max and std of the finite fitness values (NaN if none), and the count of
    non-finite ones: the values of ``jnp.nanmin`` ... ``jnp.nanstd`` on the fitness with
    non-finite entries set to NaN, bit for bit, from one mask and one count.
    """
    count = jnp.sum(finite, dtype=jnp.int32)
    some = count > 0
    norm = count.astype(jnp.float32)
    mean = jnp.sum(jnp.where(finite, raw, 0.0)) / norm
    centered = jnp.where(finite, raw - mean, 0.0)
    var = jnp.sum(jnp.square(centered)) / jnp.where(some, norm, 1.0)
    nan = jnp.float32(jnp.nan)
    return {
        "fitness_min": jnp.where(some, jnp.min(jnp.where(finite, raw, jnp.inf)), nan),
        "fitness_mean": mean,
        "fitness_max": jnp.where(some, jnp.max(jnp.where(finite, raw, -jnp.inf)), nan),
        "fitness_std": jnp.sqrt(jnp.where(some, var, nan)),
        "n_nonfinite": raw.shape[0] - count,
    }


def _check_task_output(out: Any) -> None:
    if not isinstance(out, tuple | list) or len(out) != 2:
        got = type(out).__name__ if not hasattr(out, "shape") else f"an array {out.shape}"
        raise TypeError(
            f"task must return a tuple (fitness, info) (got {got}); return e.g. "
            "(fitness, {}) with a scalar fitness."
        )
    fitness = out[0]
    shape = tuple(getattr(fitness, "shape", np.shape(fitness)))
    if shape not in ((), (1,)):
        raise ValueError(
            f"task must return a scalar fitness (got fitness with shape {shape}); reduce it, "
            "e.g. jnp.mean(...) or jnp.sum(...)."
        )


def evolve(
    prms: Any,
    fitness_fn: Callable,
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
    trainer = EvosaxTrainer(
        train_steps=steps, strategy=strategy, task=fitness_fn, params_like=prms,
        popsize=popsize, **kwargs,
    )
    if use_scan:
        state, metrics = trainer.init_and_train(key)
        return state.best_params, state, metrics
    state = trainer.init_and_train_(key)
    return state.best_params, state
