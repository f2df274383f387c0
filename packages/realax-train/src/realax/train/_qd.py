"""QDTrainer: quality-diversity (MAP-Elites, CMA-ME on qdax 0.5) in one compiled loop."""

from __future__ import annotations

import numbers
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ._base import BaseTrainer
from ._es import _init_data, _update_data
from ._mesh import make_mesh
from ._qd_algorithm import QDAlgorithm, QDState, check_qd_output
from ._qd_emitters import EMITTERS, build_centroids, build_emitter, check_bounds, import_qdax
from ._validate import (
    call_with_data,
    check_bool,
    check_divisible,
    check_logger,
    check_n_devices,
    check_params_like,
    check_positive_int,
    example_data,
    n_positional,
    shape_str,
    traces,
)

__all__ = ["EMITTERS", "QDState", "QDTask", "QDTrainer"]


class QDTask(Protocol):
    """A QD task: ``task(params, key[, data]) -> (fitness, descriptor, info)``.

    ``params`` is one member shaped like ``params_like``; ``fitness`` a scalar, higher is
    better; ``descriptor`` a float vector ``(num_descriptors,)`` placing the member in the
    repertoire; ``info`` any pytree (given to ``update_data``). A task may take only
    ``(params, key)``, and may carry ``descriptor_bounds = (minval, maxval)``.
    """

    def __call__(self, params: Any, key: jax.Array, data: Any = None, /) -> tuple: ...


def _check_float(value: Any, name: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value) > low:
        raise ValueError(f"{name} must be a float > {low:g} (got {name}={value!r})")
    return float(value)


def _genotype_bounds(bounds: Any) -> tuple[float, float] | None:
    if bounds is None:
        return None
    ok = isinstance(bounds, tuple | list) and len(bounds) == 2
    if not ok or not all(isinstance(b, numbers.Real) and np.isfinite(float(b)) for b in bounds):
        raise TypeError(
            f"genotype_bounds must be None or a pair of floats (minval, maxval) (got "
            f"{bounds!r}); pass e.g. genotype_bounds=(-1.0, 1.0)."
        )
    if not bounds[0] < bounds[1]:
        raise ValueError(f"genotype_bounds needs minval < maxval (got {tuple(bounds)})")
    return float(bounds[0]), float(bounds[1])


class QDTrainer(BaseTrainer):
    """Illuminate a descriptor space with MAP-Elites or CMA-ME (qdax 0.5), in one compiled loop.

    Each iteration the emitter proposes ``batch_size`` members (flat float genotypes: the
    ravelled ``params_like``), ``task(params, key, data) -> (fitness, descriptor, info)``
    scores each (fitness higher is better; the descriptor picks the cell: the nearest
    centroid), and a member replaces the elite of its cell if it is fitter. A non-finite
    fitness or descriptor is never kept. The repertoire (qdax's ``MapElitesRepertoire``) is
    in the state, so it is checkpointed, resumed and vmapped over seeds like any state.

    Metrics per iteration: ``coverage`` (percent of cells filled), ``qd_score`` (sum over
    filled cells of ``fitness + qd_offset``), ``max_fitness``, ``n_filled``,
    ``batch_max_fitness`` (of this iteration's members) and ``generation``.

    Args:
        train_steps: iterations per ``train`` call.
        task: ``task(params, key[, data]) -> (fitness, descriptor, info)`` (:class:`QDTask`).
        params_like: pytree of float arrays with the parameters' structure; the initial
            population is ``params_like + init_std * N(0, I)`` (or uniform in
            ``genotype_bounds``).
        emitter: ``"map_elites"`` (iso+line variation), ``"cma_me"`` (CMA-ME improvement
            emitters), ``"cma_opt"``, ``"cma_rnd"``, or any qdax ``Emitter`` instance.
        batch_size: members evaluated per iteration.
        descriptor_bounds: ``(minval, maxval)``, a float or one per descriptor on each side
            (default: ``task.descriptor_bounds``); needed with ``grid_shape``/``num_centroids``.
        grid_shape: a Euclidean grid (an int per descriptor, or one int for all).
        num_centroids: that many CVT cells (k-means on ``cvt_samples`` uniform points,
            computed once at construction with ``centroid_seed``).
        centroids: explicit centroids ``(num_centroids, num_descriptors)``.
        init_batch_size: size of the random initial population (default ``batch_size``).
        genotype_bounds: ``(minval, maxval)`` for every gene: uniform initial population and
            clipped variation (default: none).
        iso_sigma, line_sigma, variation_percentage: MAP-Elites' iso+line variation
            (``variation_percentage`` of the batch; the rest is Gaussian mutation of
            ``iso_sigma``).
        sigma_g, num_emitters, min_count: CMA-ME's initial step size, number of CMA-ES states
            in the pool (one emits per iteration) and iterations before a restart may happen.
        qd_offset: added to every elite's fitness in ``qd_score`` (make it positive).
        logger, progress_bar, n_devices: as in :class:`EvosaxTrainer` (the batch is split
            over ``n_devices`` devices, results gathered).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.train import QDTrainer
        >>> def task(x, key):
        ...     return -jnp.sum((x - 0.5) ** 2), jnp.clip(x[:2], 0.0, 1.0), {}
        >>> trainer = QDTrainer(20, task, jnp.full(4, 0.5), grid_shape=(5, 5),
        ...                     descriptor_bounds=(0.0, 1.0), batch_size=32, init_std=0.3)
        >>> state, metrics = trainer.init_and_train(jax.random.key(0))
        >>> bool(metrics["coverage"][-1] > metrics["coverage"][0]), metrics["qd_score"].shape
        (True, (20,))
    """

    def __init__(
        self,
        train_steps: int,
        task: QDTask,
        params_like: Any,
        *,
        emitter: Any = "map_elites",
        batch_size: int = 64,
        descriptor_bounds: Any = None,
        grid_shape: Any = None,
        num_centroids: int | None = None,
        centroids: Any = None,
        cvt_samples: int | None = None,
        centroid_seed: int = 0,
        init_batch_size: int | None = None,
        genotype_bounds: tuple[float, float] | None = None,
        init_std: float = 1.0,
        iso_sigma: float = 0.005,
        line_sigma: float = 0.05,
        variation_percentage: float = 1.0,
        sigma_g: float = 0.5,
        num_emitters: int = 4,
        min_count: int = 1,
        qd_offset: float = 0.0,
        logger: Any = None,
        progress_bar: bool = False,
        n_devices: int = 1,
    ):
        import_qdax("core.containers.mapelites_repertoire")  # the extra, before anything else
        self.train_steps = check_positive_int(
            train_steps, "train_steps", "pass the number of iterations, e.g. train_steps=100"
        )
        if not callable(task):
            raise TypeError(
                f"task must be callable as task(params, key, data) -> (fitness, descriptor, "
                f"info) (got {type(task).__name__})"
            )
        self.task = task
        self.params_like = check_params_like(params_like)
        self.logger = check_logger(logger)
        self.progress_bar = check_bool(progress_bar, "progress_bar")
        self.n_devices = check_n_devices(n_devices)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.init_batch_size = check_positive_int(
            self.batch_size if init_batch_size is None else init_batch_size, "init_batch_size"
        )
        check_divisible(self.batch_size, "batch_size", self.n_devices)
        check_divisible(self.init_batch_size, "init_batch_size", self.n_devices)
        bounds = descriptor_bounds
        if bounds is None:
            bounds = getattr(task, "descriptor_bounds", None)
        self.descriptor_bounds = None if bounds is None else check_bounds(bounds)
        self.centroids = build_centroids(
            bounds=self.descriptor_bounds,
            grid_shape=grid_shape,
            num_centroids=num_centroids,
            centroids=centroids,
            cvt_samples=self._cvt_samples(cvt_samples, num_centroids),
            seed=int(centroid_seed),
            n_desc=self._descriptor_size(grid_shape),
        )
        self._check_descriptor_dims()
        self.genotype_bounds = _genotype_bounds(genotype_bounds)
        self.init_std = _check_float(init_std, "init_std")
        self.qd_offset = float(qd_offset)
        flat_init = jnp.asarray(ravel_pytree(self.params_like)[0], jnp.float32)
        options = {
            "iso_sigma": _check_float(iso_sigma, "iso_sigma"),
            "line_sigma": _check_float(line_sigma, "line_sigma", -1e-300),
            "variation_percentage": variation_percentage,
            "sigma_g": sigma_g,
            "num_emitters": check_positive_int(num_emitters, "num_emitters"),
            "min_count": check_positive_int(min_count, "min_count"),
        }
        self.emitter_name, self.emitter = build_emitter(
            emitter,
            batch_size=self.batch_size,
            num_dims=int(flat_init.size),
            centroids=self.centroids,
            genotype_bounds=self.genotype_bounds,
            options=options,
            mean=flat_init,
        )
        if int(self.emitter.batch_size) != self.batch_size:
            raise ValueError(
                f"the emitter's batch_size ({int(self.emitter.batch_size)}) differs from "
                f"batch_size={self.batch_size}; pass batch_size={int(self.emitter.batch_size)}."
            )
        mapelites = import_qdax("core.containers.mapelites_repertoire")
        self._alg = QDAlgorithm(
            task=task,
            nargs=n_positional(task),
            params_like=self.params_like,
            emitter=self.emitter,
            repertoire_cls=mapelites.MapElitesRepertoire,
            centroids=self.centroids,
            init_batch_size=self.init_batch_size,
            init_bounds=self.genotype_bounds,
            init_std=self.init_std,
            qd_offset=self.qd_offset,
            mesh=make_mesh(self.n_devices),
            init_data=_init_data(task),
            update_data=_update_data(task),
        )
        self.algorithm = self._alg.algorithm()
        self._task_checked = False
        self._check_task(None, construction=True)

    @property
    def num_dims(self) -> int:
        """Number of genes (the length of the flat genotype)."""
        return self._alg.num_dims

    @property
    def num_centroids(self) -> int:
        """Number of cells of the repertoire."""
        return int(self.centroids.shape[0])

    @staticmethod
    def _cvt_samples(cvt_samples: Any, num_centroids: Any) -> int:
        if cvt_samples is not None:
            return check_positive_int(cvt_samples, "cvt_samples")
        n = num_centroids if isinstance(num_centroids, numbers.Integral) else 0
        return max(10_000, 10 * int(n))

    def _descriptor_size(self, grid_shape: Any) -> int:
        """Descriptors per member: the grid's rank, the bounds' length, else the task's."""
        if isinstance(grid_shape, tuple | list):
            return len(grid_shape)
        if self.descriptor_bounds is not None and self.descriptor_bounds[0].size > 1:
            return int(self.descriptor_bounds[0].size)
        nargs = n_positional(self.task)
        try:
            out = jax.eval_shape(
                lambda p, k: call_with_data(self.task, nargs, p, k, None),
                self.params_like,
                jax.random.key(0),
            )
            return int(out[1].shape[0])
        except Exception:  # checked later, with the error the user needs
            return 1

    def _check_descriptor_dims(self) -> None:
        n_desc = int(self.centroids.shape[1])
        if self.descriptor_bounds is not None and self.descriptor_bounds[0].size == 1:
            lo, hi = self.descriptor_bounds
            self.descriptor_bounds = (np.full(n_desc, lo[0]), np.full(n_desc, hi[0]))
        if self.descriptor_bounds is not None and self.descriptor_bounds[0].size != n_desc:
            raise ValueError(
                f"descriptor_bounds has {self.descriptor_bounds[0].size} values per side but "
                f"the centroids have {n_desc} descriptors; give one bound per descriptor."
            )

    # -- task validation -------------------------------------------------------------------

    def _check_task(self, data: Any, construction: bool = False) -> None:
        if self._task_checked:
            return
        data = example_data(self._alg.init_data, data)
        n_desc = int(self.centroids.shape[1])
        self._task_checked = traces(
            self._alg.call_task,
            self.params_like,
            jax.random.key(0),
            data,
            failed="task(params, key, data) failed when traced on one member shaped like "
            f"params_like={shape_str(self.params_like)}",
            hint="Check that params_like has the structure the task expects and that it "
            "returns (fitness, descriptor, info).",
            check_output=lambda out: check_qd_output(out, n_desc),
            quiet=construction,
        )

    def _check_ready(self, data: Any) -> None:
        self._check_task(data)

    def repertoire_metrics(self, state: QDState) -> dict:
        """``coverage``, ``qd_score``, ``max_fitness`` and ``n_filled`` of a state's repertoire."""
        none = jnp.full((1,), -jnp.inf)
        out = self._alg.metrics(state.repertoire, none)
        del out["batch_max_fitness"]
        return out

    def initialize(self, key: jax.Array, data: Any = None) -> QDState:
        """Initial :class:`QDState`: the repertoire filled from a random first population.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from realax.train import QDTrainer
            >>> task = lambda x, key: (-jnp.sum(x**2), x, {})
            >>> t = QDTrainer(5, task, jnp.zeros(2), grid_shape=4, descriptor_bounds=(-1, 1))
            >>> t.initialize(jax.random.key(0)).repertoire.fitnesses.shape
            (16, 1)
        """
        self._check_task(data)
        return super().initialize(key, data)
