"""The ES algorithm: ``init`` and ``step`` of one evosax 0.3 strategy against a task."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from ._algorithm import Algorithm
from ._es_metrics import FITNESS_METRICS, METRIC_NAMES, finish_metrics, generation_metrics
from ._es_state_hparams import STATE_NAMES, apply_state_hparams
from ._hparams import initial_hparams, read
from ._mesh import AXIS, replicated
from ._protocols import Task
from ._shaping import FitnessShaper
from ._step_data import EVAL_DATA, METRICS
from ._validate import as_typed_key, call_with_data, check_pair_output, strong_types

__all__ = ["EvoAlgorithm", "EvoState"]


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
        hparams: traced hyperparameters (``trainer.traced(names)``), float32 scalars by
            name; empty for an untraced run.
    """

    es_state: Any
    step: jax.Array
    key: jax.Array
    best_params: Any
    best_fitness: jax.Array
    data: Any = None
    unravel_fn: Callable | None = struct.field(pytree_node=False, default=None)
    hparams: dict = struct.field(default_factory=dict)

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
        hparams: dict | None = None,
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
            hparams=dict(hparams or {}),
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


def check_task_output(out: Any) -> None:
    check_pair_output(
        out,
        "task",
        "(fitness, info)",
        "(fitness, {}) with a scalar fitness",
        "e.g. jnp.mean(...) or jnp.sum(...)",
        shapes=((), (1,)),
    )


class EvoAlgorithm:
    """The validated configuration of an ES run and its pure functions (built by
    :class:`EvosaxTrainer`; compared by identity, so it is a static jit argument)."""

    def __init__(
        self,
        *,
        strategy: Any,
        es_params: Any,
        task: Task,
        nargs: int | None,
        shaper: FitnessShaper,
        eval_reps: int,
        init_mean: Any,
        init_std: float,
        population_based: bool,
        mesh: Mesh | None,
        init_data: Callable | None,
        update_data: Callable | None,
        step_data: Callable | None = None,
        hparams: dict | None = None,
        metrics: tuple[str, ...] = METRIC_NAMES,
    ):
        self.strategy, self.es_params, self.task, self.nargs = strategy, es_params, task, nargs
        self.shaper, self.eval_reps, self.init_mean = shaper, eval_reps, init_mean
        self.init_std, self.population_based, self.mesh = init_std, population_based, mesh
        self.init_data, self.update_data = init_data, update_data
        #: per-step data reducer ``fn(fitness, info)`` (``_step_data``), None when off
        self.step_data = step_data
        self.popsize = int(strategy.population_size)
        flat, self.unravel = ravel_pytree(init_mean)
        self.num_dims = int(flat.size)
        #: traced hyperparameters and their starting values (``EvosaxTrainer.traced``)
        self.hparams = dict(hparams or {})
        #: the metrics a generation reports (``check_metrics``)
        self.metrics = tuple(metrics)
        #: the step returns the raw fitness; the statistics are computed after the loop
        self.defer = False
        self._deferred: tuple[EvoAlgorithm, EvoAlgorithm] | None = None

    def es_params_of(self, hparams: dict) -> Any:
        """The strategy's params with the traced fields of ``hparams`` replaced (``init_std``
        and the state-held ``sigma`` / ``learning_rate`` are not params fields)."""
        fields = {k: v for k, v in hparams.items() if k != "init_std" and k not in STATE_NAMES}
        return self.es_params.replace(**fields) if fields else self.es_params

    def algorithm(self) -> Algorithm:
        return Algorithm(self.init, self.step, self.generation_keys, "best_fitness")

    # -- metrics -------------------------------------------------------------------------

    @property
    def defers(self) -> bool:
        """Whether a deferred run would save work: some fitness statistic is requested."""
        return any(n in FITNESS_METRICS for n in self.metrics)

    def deferred_algorithm(self) -> Algorithm:
        """The same algorithm whose step stores the raw fitness instead of its statistics
        (one copy per configuration, so its loops compile once)."""
        if self._deferred is None or self._deferred[0] is not self:
            twin = copy.copy(self)
            twin.defer, twin._deferred = True, None
            self._deferred = (self, twin)
        return self._deferred[1].algorithm()

    def generation_metrics(self, step: jax.Array, raw: jax.Array, best: jax.Array) -> dict:
        """A generation's metrics, the requested ones only (XLA drops the rest)."""
        return generation_metrics(self.metrics, self.defer, step, raw, best)

    def finish_metrics(self, metrics: dict) -> dict:
        """The metrics of a deferred scan (:func:`finish_metrics`)."""
        return finish_metrics(self.metrics, metrics)

    # -- evaluation ----------------------------------------------------------------------

    def call_task(self, params: Any, key: jax.Array, data: Any) -> Any:
        return call_with_data(self.task, self.nargs, params, key, data)

    def evaluate(self, population: Any, keys: jax.Array, data: Any) -> tuple[jax.Array, Any]:
        """Fitness ``(popsize, eval_reps)`` and infos of a population (compiled)."""

        def one(params, key, data):
            fitness, info = self.call_task(params, key, data)
            return jnp.asarray(fitness, jnp.float32).reshape(()), info

        fn = jax.vmap(jax.vmap(one, in_axes=(None, 0, None)), in_axes=(0, 0, None))
        if self.mesh is None:
            return fn(population, keys, data)

        def sharded(population, keys, data):
            # Each device evaluates its slice of the population; the results are gathered
            # (an exact copy, no arithmetic) so everything after the evaluation runs
            # replicated and does not depend on how the devices are spread over hosts.
            out = fn(population, keys, data)
            return jax.tree.map(lambda x: jax.lax.all_gather(x, AXIS, tiled=True), out)

        return jax.shard_map(
            sharded,
            mesh=self.mesh,
            in_specs=(P(AXIS), P(AXIS), P()),
            out_specs=P(),
            check_vma=False,
        )(population, keys, data)

    def python_evaluate(self, population: Any, keys: Any, data: Any) -> tuple[Any, Any]:
        """Fitness and infos of a population, evaluated member by member in plain Python."""
        population = jax.device_get(population)
        fits, infos = [], []
        for i in range(self.popsize):
            params = jax.tree.map(lambda x, i=i: x[i], population)
            for r in range(self.eval_reps):
                out = self.call_task(params, keys[i, r], data)
                check_task_output(out)
                fits.append(np.asarray(out[0], dtype=np.float32).reshape(()))
                infos.append(jax.device_get(out[1]))
        fitness = np.stack(fits).reshape(self.popsize, self.eval_reps)
        info = jax.tree.map(
            lambda *xs: np.stack(xs).reshape(self.popsize, self.eval_reps, *np.shape(xs[0])),
            *infos,
        )
        return fitness, info

    # -- init ----------------------------------------------------------------------------

    def init_sample(self, key: jax.Array, data: Any, hparams: Any = None) -> tuple:
        k_init, k_pop, k_eval, k_data, k_run = jax.random.split(key, 5)
        hparams = initial_hparams(list(self.hparams), self.hparams) if hparams is None else hparams
        if self.init_data is not None:
            data = self.init_data(k_data)
        flat_mean, _ = ravel_pytree(self.init_mean)
        noise = jax.random.normal(k_pop, (self.popsize, self.num_dims), flat_mean.dtype)
        init_std = read(hparams, "init_std", self.init_std)
        population = jax.vmap(self.unravel)(flat_mean + init_std * noise)
        eval_keys = jax.random.split(k_eval, (self.popsize, self.eval_reps))
        return (k_init, k_run, hparams), data, population, eval_keys

    def init_finish(self, keys, data, population, fitness_reps) -> EvoState:
        k_init, k_run, hparams = keys
        es_params = self.es_params_of(hparams)
        worst = jnp.asarray(self.shaper.worst_value, jnp.float32)
        if not self.population_based:
            es_state = self.strategy.init(k_init, self.init_mean, es_params)
            return EvoState.create(
                es_state=es_state,
                key=k_run,
                best_params=self.init_mean,
                best_fitness=worst,
                data=data,
                unravel_fn=self.unravel,
                hparams=hparams,
            )
        raw = self.raw_fitness(fitness_reps)
        shaped = self.shape(population, raw)
        es_state = self.strategy.init(k_init, population, shaped, es_params)
        best_params, best_fitness = self.update_best(self.init_mean, worst, population, raw)
        es_state, best_params = replicated((es_state, best_params), self.mesh)
        return EvoState.create(
            es_state=es_state,
            key=k_run,
            best_params=best_params,
            best_fitness=best_fitness,
            data=data,
            unravel_fn=self.unravel,
            hparams=hparams,
        )

    def init(self, key: jax.Array, data: Any, hparams: dict | None = None) -> EvoState:
        """The initial state; ``hparams``: the traced values (default: the trainer's)."""
        keys, data, population, eval_keys = self.init_sample(key, data, hparams)
        fitness = None
        if self.population_based:
            fitness, _ = self.evaluate(population, eval_keys, data)
        return self.init_finish(keys, data, population, fitness)

    # -- one generation ------------------------------------------------------------------

    def update_best(self, best_params, best_fitness, population, raw):
        finite = jnp.isfinite(raw)
        objective = jnp.where(finite, -raw if self.shaper.maximize else raw, jnp.inf)
        idx = jnp.argmin(objective)
        candidate = raw[idx]
        better = finite[idx] & self.shaper.is_better(candidate, best_fitness)
        best_fitness = jnp.where(better, candidate, best_fitness)
        best_params = jax.tree.map(
            lambda b, p: jnp.where(better, p[idx], b), best_params, population
        )
        return best_params, best_fitness

    @staticmethod
    def generation_keys(key: jax.Array) -> jax.Array:
        """A generation's keys (ask, evaluation, tell) from ``fold_in(state.key, step)``."""
        return jax.random.split(key, 3)

    def raw_fitness(self, fitness_reps: Any) -> jax.Array:
        """Each member's fitness: the mean over its ``eval_reps`` evaluations."""
        fitness_reps = jnp.asarray(fitness_reps, jnp.float32)
        if self.eval_reps == 1:
            return fitness_reps[:, 0]  # the mean of one value, without the division
        return jnp.mean(fitness_reps, axis=1)

    def shape(self, population: Any, raw: jax.Array) -> jax.Array:
        """The shaped objective; the flat population is only built for ``w_decay``."""
        flat = None
        if self.shaper.w_decay > 0.0:
            flat = jax.vmap(lambda p: ravel_pytree(p)[0])(population)
        return self.shaper.apply(flat, raw)

    def ask(self, state: EvoState, keys: Any = None) -> tuple:
        if keys is None:
            keys = self.generation_keys(jax.random.fold_in(state.key, state.step))
        k_ask, k_eval, k_tell = keys
        es_params = self.es_params_of(state.hparams)
        es_state = state.es_state
        if any(name in state.hparams for name in STATE_NAMES):
            es_state = apply_state_hparams(self.strategy, es_state, state.hparams)
        population, es_state = self.strategy.ask(k_ask, es_state, es_params)
        eval_keys = jax.random.split(k_eval, (self.popsize, self.eval_reps))
        return population, es_state, eval_keys, k_tell

    def tell(self, state, population, es_state, fitness_reps, infos, data, k_tell):
        raw = self.raw_fitness(fitness_reps)
        shaped = self.shape(population, raw)
        es_params = self.es_params_of(state.hparams)
        es_state, _ = self.strategy.tell(k_tell, population, shaped, es_state, es_params)
        es_state = strong_types(es_state)  # one carry type: train(state) twice compiles once
        best_params, best_fitness = self.update_best(
            state.best_params, state.best_fitness, population, raw
        )
        es_state, best_params = replicated((es_state, best_params), self.mesh)
        if self.update_data is not None:
            state = state.replace(data=self.update_data(data, infos))
        step = state.step + 1
        state = state.replace(es_state=es_state, step=step, best_params=best_params)
        state = state.replace(best_fitness=best_fitness)
        metrics = self.generation_metrics(step, raw, best_fitness)
        if self.step_data is not None:
            # the original's data["metrics"]["fitness"] / data["eval_data"] (opt in)
            metrics[METRICS] = {"fitness": raw}
            metrics[EVAL_DATA] = self.step_data(raw, infos)
        return state, metrics

    def step(self, state: EvoState, data: Any, consts: Any, keys: Any) -> tuple[EvoState, dict]:
        del consts
        data = state.data if data is None else data
        population, es_state, eval_keys, k_tell = self.ask(state, keys)
        if self.mesh is not None:
            # Only the evaluation is split over devices: keep the population replicated so
            # that ask and tell (whose reductions over the population would otherwise be
            # partitioned, changing the summation order) compute what they do on one device.
            population, eval_keys = replicated((population, eval_keys), self.mesh)
        fitness, infos = self.evaluate(population, eval_keys, data)
        return self.tell(state, population, es_state, fitness, infos, data, k_tell)
