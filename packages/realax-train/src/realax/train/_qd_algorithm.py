"""The QD algorithm: ``init`` and ``step`` of MAP-Elites style search on a qdax repertoire."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from ._algorithm import Algorithm
from ._mesh import AXIS, replicated
from ._validate import as_typed_key, call_with_data, strong_types

__all__ = ["QDAlgorithm", "QDState", "check_qd_output"]


class QDState(struct.PyTreeNode):
    """State of a :class:`~realax.train.QDTrainer` run.

    Attributes:
        repertoire: the qdax ``MapElitesRepertoire``: flat genotypes ``(num_centroids,
            num_dims)``, fitnesses ``(num_centroids, 1)`` (``-inf``: empty cell), descriptors
            and centroids ``(num_centroids, num_descriptors)``.
        emitter_state: the qdax emitter's state (None for MAP-Elites' mixing emitter).
        step: number of completed iterations (int32 scalar).
        key: typed PRNG key; iteration ``t`` uses ``jax.random.fold_in(key, t)``.
        data: the task's data (``task.init_data`` / ``task.update_data``) or user data, or None.
    """

    repertoire: Any
    emitter_state: Any
    step: jax.Array
    key: jax.Array
    data: Any = None
    unravel_fn: Callable | None = struct.field(pytree_node=False, default=None)

    @classmethod
    def create(
        cls,
        *,
        repertoire: Any,
        emitter_state: Any,
        key: jax.Array,
        data: Any = None,
        unravel_fn: Callable | None = None,
        step: int = 0,
    ) -> QDState:
        """Build a state (keyword-only)."""
        return cls(
            repertoire=repertoire,
            emitter_state=strong_types(emitter_state),
            step=jnp.asarray(step, dtype=jnp.int32),
            key=as_typed_key(key),
            data=data,
            unravel_fn=unravel_fn,
        )

    @property
    def best_params(self) -> Any:
        """The elite of highest fitness, shaped like ``params_like`` (per seed if batched)."""
        genotypes = self.repertoire.genotypes
        fitnesses = self.repertoire.fitnesses[..., 0]
        best = jnp.take_along_axis(genotypes, jnp.argmax(fitnesses, -1)[..., None, None], -2)
        flat = best[..., 0, :]
        if self.unravel_fn is None:
            return flat
        return jax.vmap(self.unravel_fn)(flat) if flat.ndim > 1 else self.unravel_fn(flat)


def check_qd_output(out: Any, num_descriptors: int | None = None) -> None:
    """Raise unless ``out`` is ``(fitness, descriptor, info)``: scalar fitness, 1-D descriptor
    (of ``num_descriptors`` entries when given)."""
    if not isinstance(out, tuple | list) or len(out) != 3:
        got = f"a tuple of {len(out)}" if isinstance(out, tuple | list) else type(out).__name__
        raise TypeError(
            f"task must return a tuple (fitness, descriptor, info) (got {got}); return e.g. "
            "(jnp.sum(x), jnp.stack([x[0], x[1]]), {})."
        )
    fitness, descriptor = out[0], out[1]
    shape = tuple(getattr(fitness, "shape", ()))
    if shape not in ((), (1,)):
        raise ValueError(
            f"task must return a scalar fitness (got fitness with shape {shape}); reduce it, "
            "e.g. jnp.sum(...)."
        )
    dshape = tuple(getattr(descriptor, "shape", ()))
    if len(dshape) != 1:
        raise ValueError(
            f"task must return a 1-D descriptor of shape (num_descriptors,) (got descriptor "
            f"with shape {dshape}); return e.g. jnp.stack([x_final, y_final])."
        )
    if num_descriptors is not None and dshape[0] != num_descriptors:
        raise ValueError(
            f"the task's descriptor has {dshape[0]} entries but the repertoire's centroids have "
            f"{num_descriptors} (from descriptor_bounds, grid_shape or centroids); make them "
            f"agree, e.g. give descriptor_bounds with {dshape[0]} values on each side."
        )


class QDAlgorithm:
    """The validated configuration of a QD run and its pure functions (built by
    :class:`~realax.train.QDTrainer`; compared by identity, so it is a static jit argument).

    Genotypes are flat float vectors (``ravel_pytree`` of ``params_like``); the task sees
    them unravelled. ``emitter`` is any qdax ``Emitter``; ``repertoire_cls`` a qdax
    repertoire class with ``init(genotypes, fitnesses, descriptors, centroids)`` and ``add``.
    """

    def __init__(
        self,
        *,
        task: Callable,
        nargs: int | None,
        params_like: Any,
        emitter: Any,
        repertoire_cls: Any,
        centroids: jax.Array,
        init_batch_size: int,
        init_bounds: tuple[float, float] | None,
        init_std: float,
        qd_offset: float,
        mesh: Mesh | None,
        init_data: Callable | None,
        update_data: Callable | None,
    ):
        self.task, self.nargs, self.emitter = task, nargs, emitter
        self.repertoire_cls, self.centroids = repertoire_cls, centroids
        self.init_batch_size, self.init_bounds = init_batch_size, init_bounds
        self.init_std, self.qd_offset, self.mesh = init_std, qd_offset, mesh
        self.init_data, self.update_data = init_data, update_data
        flat, self.unravel = ravel_pytree(params_like)
        self.flat_init = jnp.asarray(flat, jnp.float32)
        self.num_dims = int(flat.size)
        self.batch_size = int(emitter.batch_size)

    def algorithm(self) -> Algorithm:
        return Algorithm(self.init, self.step, self.iteration_keys, "qd_score")

    # -- evaluation ----------------------------------------------------------------------

    def call_task(self, params: Any, key: jax.Array, data: Any) -> Any:
        return call_with_data(self.task, self.nargs, params, key, data)

    def _one(self, genotype: jax.Array, key: jax.Array, data: Any) -> tuple:
        fitness, descriptor, info = self.call_task(self.unravel(genotype), key, data)
        fitness = jnp.asarray(fitness, jnp.float32).reshape(())
        return fitness, jnp.asarray(descriptor, jnp.float32), info

    def evaluate(self, genotypes: jax.Array, keys: jax.Array, data: Any) -> tuple:
        """Fitness ``(n,)``, descriptors ``(n, d)`` and infos of flat genotypes ``(n, dims)``;
        a member with a non-finite fitness or descriptor gets fitness ``-inf`` (never kept).
        """
        fn = jax.vmap(self._one, in_axes=(0, 0, None))
        if self.mesh is None:
            fitness, descriptors, infos = fn(genotypes, keys, data)
        else:

            def sharded(genotypes, keys, data):
                # each device evaluates its slice; the results are gathered (an exact copy)
                out = fn(genotypes, keys, data)
                return jax.tree.map(lambda x: jax.lax.all_gather(x, AXIS, tiled=True), out)

            genotypes, keys = replicated((genotypes, keys), self.mesh)
            fitness, descriptors, infos = jax.shard_map(
                sharded,
                mesh=self.mesh,
                in_specs=(P(AXIS), P(AXIS), P()),
                out_specs=P(),
                check_vma=False,
            )(genotypes, keys, data)
        ok = jnp.isfinite(fitness) & jnp.all(jnp.isfinite(descriptors), axis=-1)
        fitness = jnp.where(ok, fitness, -jnp.inf)
        descriptors = jnp.where(ok[:, None], descriptors, 0.0)
        return fitness, descriptors, infos

    def metrics(self, repertoire: Any, fitness: jax.Array) -> dict:
        """Coverage (percent of cells filled), QD score (sum of ``fitness + qd_offset`` over
        the filled cells) and max fitness (``-inf`` while empty), qdax's definitions."""
        filled = repertoire.fitnesses[:, 0] > -jnp.inf
        fits = repertoire.fitnesses[:, 0]
        qd_score = jnp.sum(jnp.where(filled, fits + self.qd_offset, 0.0))
        return {
            "coverage": 100.0 * jnp.mean(filled.astype(jnp.float32)),
            "qd_score": qd_score,
            "max_fitness": jnp.max(fits),
            "n_filled": jnp.sum(filled, dtype=jnp.int32),
            "batch_max_fitness": jnp.max(fitness),
        }

    # -- init ----------------------------------------------------------------------------

    def initial_genotypes(self, key: jax.Array) -> jax.Array:
        shape = (self.init_batch_size, self.num_dims)
        if self.init_bounds is not None:
            lo, hi = self.init_bounds
            return jax.random.uniform(key, shape, jnp.float32, lo, hi)
        return self.flat_init + self.init_std * jax.random.normal(key, shape, jnp.float32)

    def init(self, key: jax.Array, data: Any) -> QDState:
        k_pop, k_eval, k_emit, k_data, k_run = jax.random.split(key, 5)
        if self.init_data is not None:
            data = self.init_data(k_data)
        genotypes = self.initial_genotypes(k_pop)
        keys = jax.random.split(k_eval, self.init_batch_size)
        fitness, descriptors, infos = self.evaluate(genotypes, keys, data)
        repertoire = self.repertoire_cls.init(
            genotypes, fitness, descriptors, jnp.asarray(self.centroids)
        )
        emitter_state = self.emitter.init(
            key=k_emit,
            repertoire=repertoire,
            genotypes=genotypes,
            fitnesses=fitness,
            descriptors=descriptors,
            extra_scores={},
        )
        if self.update_data is not None:
            data = self.update_data(data, infos)
        repertoire, emitter_state = replicated((repertoire, emitter_state), self.mesh)
        return QDState.create(
            repertoire=repertoire,
            emitter_state=emitter_state,
            key=k_run,
            data=data,
            unravel_fn=self.unravel,
        )

    # -- one iteration -------------------------------------------------------------------

    @staticmethod
    def iteration_keys(key: jax.Array) -> jax.Array:
        """An iteration's keys (emit, evaluation) from ``fold_in(state.key, step)``."""
        return jax.random.split(key, 2)

    def step(self, state: QDState, data: Any, consts: Any, keys: Any) -> tuple[QDState, dict]:
        del consts
        data = state.data if data is None else data
        if keys is None:
            keys = self.iteration_keys(jax.random.fold_in(state.key, state.step))
        k_emit, k_eval = keys[0], keys[1]
        genotypes, extra_info = self.emitter.emit(state.repertoire, state.emitter_state, k_emit)
        eval_keys = jax.random.split(k_eval, self.batch_size)
        fitness, descriptors, infos = self.evaluate(genotypes, eval_keys, data)
        repertoire = state.repertoire.add(genotypes, descriptors, fitness, {})
        emitter_state = self.emitter.state_update(
            emitter_state=state.emitter_state,
            repertoire=repertoire,
            genotypes=genotypes,
            fitnesses=fitness,
            descriptors=descriptors,
            extra_scores=dict(extra_info or {}),
        )
        emitter_state = strong_types(emitter_state)  # one carry type across runs
        repertoire, emitter_state = replicated((repertoire, emitter_state), self.mesh)
        if self.update_data is not None:
            state = state.replace(data=self.update_data(data, infos))
        step = state.step + 1
        state = state.replace(repertoire=repertoire, emitter_state=emitter_state, step=step)
        return state, {"generation": step, **self.metrics(repertoire, fitness)}
