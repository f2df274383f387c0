"""Building a QD run's centroids and qdax emitter from names and numbers (checked first)."""

from __future__ import annotations

import functools
import importlib
import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._suggest import did_you_mean, normalise

__all__ = ["EMITTERS", "build_centroids", "build_emitter", "check_bounds", "import_qdax"]

#: emitter names QDTrainer knows -> what they are
EMITTERS = {
    "map_elites": "MAP-Elites: qdax MixingEmitter (iso+line variation, Gaussian mutation)",
    "cma_me": "CMA-ME: a pool of qdax CMAImprovementEmitter states",
    "cma_opt": "CMA-ME, optimizing variant: a pool of qdax CMAOptimizingEmitter states",
    "cma_rnd": "CMA-ME, random-direction variant: a pool of qdax CMARndEmitter states",
}


def import_qdax(module: str) -> Any:
    """``qdax.<module>``, or an ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(f"qdax.{module}")
    except ImportError as e:
        raise ImportError(
            'QDTrainer needs qdax: pip install "realax-train[qd]" (or pip install qdax>=0.5).'
        ) from e


def _floats(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be numbers (got {value!r})") from e
    if arr.ndim > 1 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite numbers, one per descriptor (got {value!r})")
    return np.atleast_1d(arr)


def check_bounds(bounds: Any, name: str = "descriptor_bounds") -> tuple[np.ndarray, np.ndarray]:
    """``(minval, maxval)`` as equal-length float arrays with ``minval < maxval``."""
    if not isinstance(bounds, tuple | list) or len(bounds) != 2:
        raise TypeError(
            f"{name} must be a pair (minval, maxval) (got {bounds!r}); pass e.g. "
            f"{name}=([0.0, 0.0], [1.0, 1.0]) for a 2-D descriptor in the unit square."
        )
    lo, hi = _floats(bounds[0], f"{name}[0]"), _floats(bounds[1], f"{name}[1]")
    if lo.size == 1 and hi.size > 1:
        lo = np.full_like(hi, lo[0])
    if hi.size == 1 and lo.size > 1:
        hi = np.full_like(lo, hi[0])
    if lo.shape != hi.shape:
        raise ValueError(
            f"{name} sides differ in length (expected equal, got {lo.size} minima and "
            f"{hi.size} maxima); give one value per descriptor on each side."
        )
    if not np.all(lo < hi):
        raise ValueError(
            f"{name} needs minval < maxval for every descriptor (got minval={lo.tolist()}, "
            f"maxval={hi.tolist()}); swap or widen them."
        )
    return lo, hi


def _check_grid(grid_shape: Any, n_desc: int) -> tuple[int, ...]:
    shape = (grid_shape,) * n_desc if isinstance(grid_shape, numbers.Integral) else grid_shape
    ok = isinstance(shape, tuple | list) and all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and int(n) > 0 for n in shape
    )
    if not ok or len(shape) != n_desc:
        raise ValueError(
            f"grid_shape must be a positive int or one positive int per descriptor (expected "
            f"{n_desc} entries, got grid_shape={grid_shape!r}); pass e.g. "
            f"grid_shape={(10,) * n_desc}."
        )
    return tuple(int(n) for n in shape)


def build_centroids(
    *,
    bounds: tuple[np.ndarray, np.ndarray] | None,
    grid_shape: Any,
    num_centroids: Any,
    centroids: Any,
    cvt_samples: int,
    seed: int,
    n_desc: int,
) -> jax.Array:
    """The tessellation: explicit ``centroids``, a Euclidean grid of ``grid_shape`` or
    ``num_centroids`` CVT centroids (k-means, computed once, on the host) in ``bounds``
    (a single bound on each side is broadcast to ``n_desc`` descriptors)."""
    given = [n for n, v in (("centroids", centroids), ("grid_shape", grid_shape),
                            ("num_centroids", num_centroids)) if v is not None]  # fmt: skip
    if len(given) != 1:
        raise ValueError(
            f"give exactly one of centroids, grid_shape, num_centroids (got {given or 'none'}); "
            "e.g. grid_shape=(10, 10) for a 10x10 grid or num_centroids=1024 for CVT cells."
        )
    if centroids is not None:
        arr = np.asarray(centroids, np.float32)
        if arr.ndim != 2 or arr.shape[0] < 1 or not np.all(np.isfinite(arr)):
            raise ValueError(
                f"centroids must be a finite array (num_centroids, num_descriptors) (got shape "
                f"{arr.shape}); build one with qdax's compute_cvt_centroids."
            )
        return jnp.asarray(arr)
    if bounds is None:
        raise ValueError(
            "descriptor_bounds is required with grid_shape or num_centroids (the task has no "
            "descriptor_bounds attribute); pass descriptor_bounds=(minval, maxval)."
        )
    lo, hi = bounds
    if lo.size == 1 and n_desc > 1:  # one bound for every descriptor
        lo, hi = np.full(n_desc, lo[0]), np.full(n_desc, hi[0])
    mapelites = import_qdax("core.containers.mapelites_repertoire")
    if grid_shape is not None:
        shape = _check_grid(grid_shape, lo.size)
        return mapelites.compute_euclidean_centroids(shape, lo.tolist(), hi.tolist())
    if isinstance(num_centroids, bool) or not isinstance(num_centroids, numbers.Integral):
        raise TypeError(f"num_centroids must be an int (got {num_centroids!r})")
    if not 1 <= int(num_centroids) <= cvt_samples:
        raise ValueError(
            f"num_centroids must be in [1, cvt_samples] (got num_centroids={num_centroids}, "
            f"cvt_samples={cvt_samples}); raise cvt_samples or lower num_centroids."
        )
    return mapelites.compute_cvt_centroids(
        lo.size, cvt_samples, int(num_centroids), lo.tolist(), hi.tolist(), jax.random.key(seed)
    )


def _gaussian_mutation(x: jax.Array, key: jax.Array, sigma: float, lo: Any, hi: Any):
    x = x + sigma * jax.random.normal(key, x.shape, x.dtype)
    return x if lo is None else jnp.clip(x, lo, hi)


def resolve_emitter(name: str) -> str:
    by_norm = {normalise(k): k for k in EMITTERS}
    by_norm.update({"mapelites": "map_elites", "me": "map_elites", "cmame": "cma_me"})
    if not isinstance(name, str) or normalise(name) not in by_norm:
        hint = did_you_mean(str(name), EMITTERS, key=normalise)
        raise ValueError(
            f"unknown emitter {name!r} (expected one of {sorted(EMITTERS)} or a qdax Emitter "
            f"instance).{hint}"
        )
    return by_norm[normalise(name)]


def build_emitter(
    emitter: Any,
    *,
    batch_size: int,
    num_dims: int,
    centroids: jax.Array,
    genotype_bounds: tuple[float, float] | None,
    options: dict[str, Any],
    mean: jax.Array | None = None,
) -> tuple[str, Any]:
    """``(name, qdax Emitter)`` for a name of :data:`EMITTERS`, or a given qdax Emitter.

    ``options`` (checked): ``iso_sigma``, ``line_sigma``, ``variation_percentage`` for
    ``map_elites``; ``sigma_g``, ``num_emitters``, ``min_count`` for the CMA emitters, whose
    search distributions start at ``mean`` (qdax's default: zeros).
    """
    if not isinstance(emitter, str):
        if not all(hasattr(emitter, m) for m in ("init", "emit", "state_update", "batch_size")):
            raise TypeError(
                f"emitter must be a name ({sorted(EMITTERS)}) or a qdax Emitter with init, "
                f"emit, state_update and batch_size (got {type(emitter).__name__})."
            )
        return type(emitter).__name__, emitter
    name = resolve_emitter(emitter)
    lo, hi = (None, None) if genotype_bounds is None else genotype_bounds
    if name == "map_elites":
        ops = import_qdax("core.emitters.mutation_operators")
        standard = import_qdax("core.emitters.standard_emitters")
        pct = float(options["variation_percentage"])
        if not 0.0 <= pct <= 1.0:
            raise ValueError(f"variation_percentage must be in [0, 1] (got {pct})")
        variation = functools.partial(
            ops.isoline_variation,
            iso_sigma=float(options["iso_sigma"]),
            line_sigma=float(options["line_sigma"]),
            minval=lo,
            maxval=hi,
        )
        mutation = functools.partial(
            _gaussian_mutation, sigma=float(options["iso_sigma"]), lo=lo, hi=hi
        )
        return name, standard.MixingEmitter(
            mutation_fn=mutation,
            variation_fn=variation,
            variation_percentage=pct,
            batch_size=batch_size,
        )
    module, cls = {
        "cma_me": ("cma_improvement_emitter", "CMAImprovementEmitter"),
        "cma_opt": ("cma_opt_emitter", "CMAOptimizingEmitter"),
        "cma_rnd": ("cma_rnd_emitter", "CMARndEmitter"),
    }[name]
    sigma_g = float(options["sigma_g"])
    if not (sigma_g > 0 and math.isfinite(sigma_g)):
        raise ValueError(f"sigma_g must be a float > 0 (got sigma_g={options['sigma_g']!r})")
    single = getattr(import_qdax(f"core.emitters.{module}"), cls)(
        batch_size=batch_size,
        genotype_dim=num_dims,
        centroids=centroids,
        sigma_g=sigma_g,
        min_count=int(options["min_count"]),
        max_count=None,
    )
    if mean is not None:  # qdax starts CMA-ES at zeros; start at params_like instead
        initial = single._cma_initial_state
        single._cma_initial_state = initial.replace(mean=jnp.asarray(mean, initial.mean.dtype))
    pool = import_qdax("core.emitters.cma_pool_emitter")
    return name, pool.CMAPoolEmitter(num_states=int(options["num_emitters"]), emitter=single)
