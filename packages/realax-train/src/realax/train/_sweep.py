"""``realax.train.sweep``: hyperparameter configurations x seeds as one compiled program.

Every member (a configuration with a seed) is a state of the trainer's traced version
(``trainer.traced(names)``) whose ``state.hparams`` hold the configuration's values; members
are initialised one after another (``lax.map``, as the seeds loop) and trained together
(``vmap``), split over ``n_devices`` with ``shard_map``. Shape-changing settings give one
program per shape, each with its own rebuilt trainer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import PartitionSpec as P

from . import _loops
from ._hparams import DTYPE
from ._mesh import AXIS, make_mesh
from ._sweep_result import SweepResult
from ._sweep_space import check_space, configurations, group_by_shape
from ._validate import as_typed_key, check_bool, check_logger, check_positive_int, strong_types

__all__ = ["SweepResult", "sweep", "sweep_init"]


def _members(alg, keys, hparams, data):
    return lax.map(lambda kh: alg.init(kh[0], data, kh[1]), (keys, hparams))


def _train(alg, logger, progress, n_steps, states, consts, token):
    def one(s):
        return _loops._scan_loop(alg, logger, progress, n_steps, s, None, consts, token)

    return jax.vmap(one)(states)


def _split(fn, n_devices, n_split):
    """``fn`` with its first ``n_split`` arguments split over ``n_devices`` (members)."""
    if n_devices <= 1:
        return fn

    def wrapped(*args):
        specs = (P(AXIS),) * n_split + (P(),) * (len(args) - n_split)
        return jax.shard_map(
            fn, mesh=make_mesh(n_devices), in_specs=specs, out_specs=P(AXIS), check_vma=False
        )(*args)

    return wrapped


def _sweep_loop(alg, logger, progress, n_steps, n_devices, keys, hparams, data, consts, token):
    def local(keys, hparams, data, consts, token):
        states = _members(alg, keys, hparams, data)
        return _train(alg, logger, progress, n_steps, states, consts, token)

    return _split(local, n_devices, 2)(keys, hparams, data, consts, token)


def _resume_loop(alg, logger, progress, n_steps, n_devices, states, consts, token):
    def local(states, consts, token):
        return _train(alg, logger, progress, n_steps, states, consts, token)

    return _split(local, n_devices, 1)(states, consts, token)


def _init_loop(alg, n_devices, keys, hparams, data):
    return _split(lambda k, h, d: _members(alg, k, h, d), n_devices, 2)(keys, hparams, data)


_SWEEP_JIT = jax.jit(_sweep_loop, static_argnums=(0, 1, 2, 3, 4))
_RESUME_JIT = jax.jit(_resume_loop, static_argnums=(0, 1, 2, 3, 4))
_INIT_JIT = jax.jit(_init_loop, static_argnums=(0, 1))


class _Plan:
    """The checked sweep: configurations, shape groups and their traced trainers."""

    def __init__(self, trainer, space, key, seeds, method, num_samples, n_devices):
        for method_name in ("sweepable", "shape_settings", "traced"):
            if not callable(getattr(trainer, method_name, None)):
                raise TypeError(
                    f"sweep: the trainer must support traced hyperparameters (sweepable(), "
                    f"shape_settings(), traced(names)); {type(trainer).__name__} does not"
                )
        if method not in ("grid", "random"):
            raise ValueError(f"sweep: method must be 'grid' or 'random' (got {method!r})")
        self.seeds = check_positive_int(seeds, "seeds", "e.g. seeds=4")
        self.n_devices = 1 if n_devices is None else check_positive_int(n_devices, "n_devices")
        if self.n_devices > len(jax.devices()):
            raise ValueError(
                f"sweep: n_devices={self.n_devices} but only {len(jax.devices())} devices exist"
            )
        if self.n_devices > 1 and getattr(trainer, "n_devices", 1) != 1:
            raise ValueError(
                f"sweep: n_devices={self.n_devices} splits the members over devices; the "
                f"trainer's own n_devices must then be 1 (got {trainer.n_devices})"
            )
        self.key = as_typed_key(key)
        self.space = check_space(space, trainer.sweepable(), trainer.shape_settings(), method)
        seed = int(np.asarray(jax.random.key_data(self.key)).ravel()[-1])
        self.configs = configurations(self.space, method, num_samples, seed)
        self.groups = group_by_shape(self.configs, self.space.shape)
        self.trainers = []
        for shape_key, indices in self.groups.items():
            base = trainer.rebuild(**dict(shape_key)) if shape_key else trainer
            members = len(indices) * self.seeds
            if members % self.n_devices:
                raise ValueError(
                    f"sweep: {members} members ({len(indices)} configurations x {self.seeds} "
                    f"seeds) must be divisible by n_devices={self.n_devices}; change seeds "
                    "or n_devices"
                )
            self.trainers.append(base.traced(self.space.traced))
        if len(self.groups) > 1:
            names = ", ".join(self.space.shape)
            print(
                f"sweep: {len(self.groups)} shapes of {names}: one compiled program per shape "
                f"({', '.join(str(dict(k)) for k in self.groups)})"
            )

    def member_inputs(self, indices: list[int]) -> tuple[jax.Array, dict]:
        keys = jax.random.split(self.key, self.seeds)
        member_keys = jnp.concatenate([keys] * len(indices))
        hparams = {
            name: jnp.asarray(
                np.repeat([self.configs[i][name] for i in indices], self.seeds), DTYPE
            )
            for name in self.space.traced
        }
        return member_keys, hparams


def sweep_init(
    trainer: Any,
    space: Mapping[str, Any],
    key: Any,
    *,
    seeds: int = 1,
    method: str = "grid",
    num_samples: int | None = None,
    n_devices: int | None = None,
) -> Any:
    """The member-stacked initial states of ``sweep(trainer, space, key, ...)`` (one shape
    group only): the ``like`` of ``realax.log.restore`` when resuming a sweep."""
    plan = _Plan(trainer, space, key, seeds, method, num_samples, n_devices)
    if len(plan.groups) != 1:
        raise ValueError("sweep_init: the space has several shapes; give one shape per sweep")
    (indices,) = plan.groups.values()
    keys, hparams = plan.member_inputs(indices)
    return _INIT_JIT(plan.trainers[0].algorithm, plan.n_devices, keys, hparams, None)


def sweep(
    trainer: Any,
    space: Mapping[str, Any],
    key: Any,
    *,
    seeds: int = 1,
    method: str = "grid",
    num_samples: int | None = None,
    n_devices: int | None = None,
    logger: Any = None,
    progress_bar: bool = False,
    resume: Any = None,
) -> SweepResult:
    """Train every configuration of ``space`` with ``seeds`` seeds in one compiled program.

    Args:
        trainer: a trainer with traced hyperparameters (EvosaxTrainer, OnPolicyTrainer, ...).
        space: ``{name: [values]}`` (grid; random search picks among them) or, for
            ``method="random"``, ``{name: ("log_uniform", low, high)}``, ``("uniform", low,
            high)`` or ``("choice", [values])``. Names are the trainer's ``sweepable()``
            (traced: members of one program) or ``shape_settings()`` (one program per value,
            the trainer rebuilt with it; a message says so).
        key: the sweep's key; seed ``j`` of every configuration uses
            ``jax.random.split(key, seeds)[j]``, so configuration ``c`` seed ``j`` equals
            ``trainer`` built with ``c`` and trained from that key alone.
        seeds: seeds per configuration.
        method: ``"grid"`` (every combination) or ``"random"`` (``num_samples`` draws).
        num_samples: number of random configurations.
        n_devices: split the members (configurations x seeds) over this many devices.
        logger: ``log(state, metrics)`` under ``vmap`` (a ``realax.log.Logger`` writes one
            row per member, its ``seed`` field being the member index ``config * seeds +
            seed``, and checkpoints the member-stacked state). One shape group only.
        progress_bar: a live bar of the progress metric.
        resume: member-stacked states to continue (e.g. ``realax.log.restore(ckpt_dir,
            like=sweep_init(...))``); runs the remaining steps. One shape group only.

    Returns:
        a :class:`SweepResult`.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.train import EvosaxTrainer, sweep
        >>> f = lambda x, key, data=None: (jnp.sum(x**2), {})
        >>> t = EvosaxTrainer(20, "SNES", f, params_like=jnp.ones(2), popsize=8)
        >>> result = sweep(t, {"std_init": [0.1, 1.0]}, jax.random.key(0), seeds=2)
        >>> result.curves["best_fitness"].shape
        (2, 2, 20)
        >>> len(result.table())
        4
    """
    plan = _Plan(trainer, space, key, seeds, method, num_samples, n_devices)
    logger = check_logger(logger)
    progress = check_bool(progress_bar, "progress_bar")
    if (logger is not None or resume is not None) and len(plan.groups) > 1:
        raise ValueError(
            f"sweep: a logger or resume= follows one program, but the space has "
            f"{len(plan.groups)} shapes of {plan.space.shape}; sweep one shape at a time"
        )
    states, metrics = [], []
    for t, indices in zip(plan.trainers, plan.groups.values(), strict=True):
        t._check_ready(None)
        static = (t.algorithm, _loops._Static(logger), progress)
        if resume is None:
            keys, hparams = plan.member_inputs(indices)
            n_steps, start = t.train_steps, 0
            args: tuple = (*static, n_steps, plan.n_devices, keys, hparams, None, t.consts)
            fn = _SWEEP_JIT
        else:
            start = int(np.max(np.asarray(resume.step)))
            n_steps = max(t.train_steps - start, 0)
            resume = strong_types(resume)
            args, fn = (*static, n_steps, plan.n_devices, resume, t.consts), _RESUME_JIT
        prepared = _loops.Prepared(
            fn=fn, args=args, logger=logger, progress=progress, total=t.train_steps,
            start=start, metric=t.algorithm.progress_metric, n_static=5, with_metrics=True,
        )  # fmt: skip
        state, m = prepared()
        states.append(state)
        metrics.append(m)
    return SweepResult.build(plan, states, metrics)
