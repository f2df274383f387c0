"""Population-based training: a population of one trainer's runs with traced hyperparameters,
trained together; every ``interval`` steps, inside the compiled loop, the worst members copy
the state of the best and perturb or resample their hyperparameters."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import lax
from jax.sharding import PartitionSpec as P

from ._algorithm import Algorithm
from ._base import BaseTrainer
from ._hparams import set_hparams
from ._mesh import AXIS, make_mesh
from ._pbt_space import Space, check_space
from ._protocols import Logger
from ._validate import (
    check_bool,
    check_logger,
    check_n_devices,
    check_positive_int,
)

__all__ = ["PBT", "Lineage", "PBTState", "member_values"]


class Lineage(struct.PyTreeNode):
    """Who copied whom at each exploit event, and every member's hyperparameters over time.

    Row ``e`` is the ``e``-th event (after step ``(e + 1) * interval``); rows of events that
    have not happened yet hold ``step = -1``.

    Attributes:
        step: ``(n_events,)`` int32, the step after which the event happened.
        parent: ``(n_events, population)`` int32, the member whose state member ``i`` holds
            after the event (``i`` itself for a member that was not replaced).
        score: ``(n_events, population)`` float32, the metric averaged over the interval
            before the event (its finite values; NaN if none, ranked worst), what the ranking
            used.
        hparams: ``{name: (n_events, population)}`` float32, the values after the event.
        initial: ``{name: (population,)}``, the values the members started with.
    """

    step: jax.Array
    parent: jax.Array
    score: jax.Array
    hparams: dict
    initial: dict

    @classmethod
    def create(cls, *, n_events: int, initial: dict) -> Lineage:
        n = next(iter(initial.values())).shape[0]
        return cls(
            step=jnp.full((n_events,), -1, jnp.int32),
            parent=jnp.zeros((n_events, n), jnp.int32),
            score=jnp.full((n_events, n), jnp.nan, jnp.float32),
            hparams={k: jnp.full((n_events, n), jnp.nan, jnp.float32) for k in initial},
            initial=dict(initial),
        )


class PBTState(struct.PyTreeNode):
    """State of a :class:`PBT` run.

    Attributes:
        members: the trainer's state with a leading member axis (every leaf ``(population,
            ...)``); ``members.hparams`` holds the current hyperparameters.
        score: ``(population,)`` sum of the finite values of the metric since the last
            exploit event (an RL step without a finished episode reports NaN).
        count: ``(population,)`` how many values ``score`` sums.
        lineage: the :class:`Lineage` so far.
        step: completed steps (int32).
        key: typed PRNG key; the event after step ``t`` draws from ``fold_in(key, t)``.
        data: always None (the members carry their own data).
    """

    members: Any
    score: jax.Array
    count: jax.Array
    lineage: Lineage
    step: jax.Array
    key: jax.Array
    data: Any = None


def _check_fraction(fraction: Any, population: int) -> int:
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, numbers.Real)
        or not 0 < float(fraction) <= 0.5
    ):
        raise ValueError(
            f"fraction must be in (0, 0.5] (got fraction={fraction!r}): the worst fraction of "
            "the population copies the best fraction; e.g. fraction=0.25."
        )
    n = int(float(fraction) * population)
    if n < 1:
        raise ValueError(
            f"fraction={fraction} of population={population} replaces no member; use "
            f"fraction>={1 / population:.3g} or a larger population."
        )
    return n


def _check_interval(interval: Any, train_steps: int) -> int:
    interval = check_positive_int(interval, "interval", "e.g. interval=10")
    if interval >= train_steps or train_steps % interval:
        divisors = [d for d in range(1, train_steps) if train_steps % d == 0]
        close = sorted(divisors, key=lambda d: abs(d - interval))[:3]
        raise ValueError(
            f"interval must divide the trainer's train_steps and be smaller (got interval="
            f"{interval}, train_steps={train_steps}): an exploit every interval steps, none "
            f"at the end; use interval in {sorted(close)}."
        )
    return interval


def _check_perturb(perturb: Any) -> tuple[float, ...]:
    def factor(f: Any) -> bool:
        return isinstance(f, numbers.Real) and not isinstance(f, bool) and float(f) > 0

    if not (isinstance(perturb, tuple | list) and perturb and all(map(factor, perturb))):
        raise ValueError(
            f"perturb must be a non-empty tuple of factors > 0 (got perturb={perturb!r}); a "
            "copied hyperparameter is multiplied by one of them, e.g. perturb=(0.8, 1.2)."
        )
    return tuple(float(f) for f in perturb)


def _check_prob(p: Any) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= float(p) <= 1:
        raise ValueError(f"resample_prob must be in [0, 1] (got resample_prob={p!r})")
    return float(p)


def _check_mode(mode: Any, metric: str, trainer: Any) -> str:
    if mode is None:
        maximize = getattr(getattr(trainer, "fitness_shaper", None), "maximize", None)
        if maximize is not None and "fitness" in metric:  # EvosaxTrainer: its shaper decides
            return "max" if maximize else "min"
        return "min" if ("loss" in metric or "error" in metric) else "max"
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min', 'max' or None (got mode={mode!r})")
    return str(mode)


def _check_trainer(trainer: Any) -> None:
    if not isinstance(trainer, BaseTrainer) or not callable(getattr(trainer, "traced", None)):
        raise TypeError(
            f"PBT needs a trainer with traced hyperparameters (OptaxTrainer, the RL trainers; "
            f"got {type(trainer).__name__}); e.g. PBT(OptaxTrainer(...), population=8, ...)."
        )


class PBT(BaseTrainer):
    """Population-based training of ``trainer``'s runs, in one compiled program.

    ``population`` runs of ``trainer`` train side by side (a vmapped member axis), each with
    its own hyperparameters (``trainer.traced(names)``: ``state.members.hparams``). After
    every ``interval`` steps (not after the last), inside the compiled loop, the members are
    ranked on ``metric`` averaged over the interval; each of the worst ``fraction`` copies the
    whole state (parameters, optimiser state, RL buffers, ...; it keeps its own PRNG key) of a
    member drawn from the best ``fraction``, then each copied hyperparameter is resampled
    from ``hparams`` with probability ``resample_prob``, else multiplied by a factor drawn
    from ``perturb``. A PBT is a trainer: every run method (``init_and_train``, ``train_``,
    ``resume``, seeds, a ``logger``) works as for ``trainer``.

    Args:
        trainer: a trainer with traced hyperparameters (``OptaxTrainer``, ``EvosaxTrainer``,
            the RL trainers); its ``train_steps`` is the run's length.
        population: number of members (>= 2).
        hparams: ``{name: ("log_uniform" | "uniform", low, high)}`` (members start at
            independent draws; perturbed values are clipped to the bounds) or ``{name:
            [values]}`` (member ``i`` starts at ``values[i % len(values)]``). Names from
            ``trainer.sweepable()``.
        interval: steps between exploit events; divides ``train_steps``.
        fraction: share of the population replaced at an event, in ``(0, 0.5]``.
        perturb: the factors a copied hyperparameter is multiplied by (one drawn uniformly).
        resample_prob: probability that a copied hyperparameter is drawn afresh instead.
        metric: the member metric ranked on (default: the trainer's progress metric).
        mode: ``"max"`` or ``"min"``; default: for an ``EvosaxTrainer``'s fitness metrics
            its ``fitness_shaper.maximize``, else ``"min"`` for a metric whose name holds
            ``loss`` or ``error`` and ``"max"`` otherwise (RL: ``episode_return``).
        n_devices: split the members over this many devices (``population`` divisible by it;
            the trainer itself on one device); the exploit gathers across them.
        logger, progress_bar: as for every trainer; the logger gets the :class:`PBTState`.

    Metrics of a step: ``step``; ``<metric>`` (the best member's value this step); per member
    ``i``: ``<metric>/<i>``, ``hparams/<name>/<i>`` (the values the step used) and
    ``parent/<i>`` (the member it copied at this step's event, else ``i``), scalars that any
    logger writes (``member_values(metrics, name)`` stacks them). ``state.lineage`` holds the
    events (:class:`Lineage`), ``state.members`` every member's final state.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.train import PBT, OptaxTrainer
        >>> loss = lambda p, key: (jnp.sum((p - 3.0) ** 2), {})
        >>> inner = OptaxTrainer(40, "sgd", lambda key: jnp.zeros(2), loss, 0.01)
        >>> pbt = PBT(inner, population=4, hparams={"learning_rate": [1e-3, 1e-2, 0.1, 0.3]},
        ...           interval=10)
        >>> state, metrics = pbt.init_and_train(jax.random.key(0))
        >>> state.lineage.parent.shape, bool(metrics["loss"][-1] < 1e-3)
        ((3, 4), True)
    """

    def __init__(
        self,
        trainer: Any,
        *,
        population: int,
        hparams: Mapping[str, Any],
        interval: int,
        fraction: float = 0.25,
        perturb: tuple[float, ...] = (0.8, 1.2),
        resample_prob: float = 0.25,
        metric: str | None = None,
        mode: str | None = None,
        n_devices: int = 1,
        logger: Logger | None = None,
        progress_bar: bool = False,
    ):
        _check_trainer(trainer)
        self.population = check_positive_int(population, "population", "e.g. population=8")
        if self.population < 2:
            raise ValueError(f"population must be >= 2 (got population={population})")
        self.space = Space.create(space=check_space(hparams))
        self.trainer = trainer.traced(self.space.names)  # unknown names raise here
        self.train_steps = trainer.train_steps
        self.interval = _check_interval(interval, self.train_steps)
        self.n_events = self.train_steps // self.interval - 1
        self.n_replaced = _check_fraction(fraction, self.population)
        self.fraction = float(fraction)
        self.perturb = _check_perturb(perturb)
        self.resample_prob = _check_prob(resample_prob)
        if metric is not None and not isinstance(metric, str):
            raise TypeError(f"metric must be a metric name or None (got {metric!r})")
        self.metric = trainer.algorithm.progress_metric if metric is None else metric
        self.mode = _check_mode(mode, self.metric, trainer)
        self.n_devices = check_n_devices(n_devices)
        if self.n_devices > 1:
            if self.population % self.n_devices:
                raise ValueError(
                    f"population must be divisible by n_devices (got population="
                    f"{self.population}, n_devices={self.n_devices}); use population="
                    f"{-(-self.population // self.n_devices) * self.n_devices}."
                )
            if getattr(trainer, "n_devices", 1) != 1:
                raise ValueError(
                    f"PBT(n_devices={self.n_devices}) splits the members over devices; build "
                    f"the trainer with n_devices=1 (got {trainer.n_devices})."
                )
        self.mesh = make_mesh(self.n_devices)
        self.logger = check_logger(logger)
        self.progress_bar = check_bool(progress_bar, "progress_bar")
        self._checked = False
        self.algorithm = Algorithm(self._init, self._step, None, self.metric)

    @property
    def consts(self) -> Any:  # type: ignore[override]
        """The trainer's constants (its dataset), shared by every member."""
        return self.trainer.consts

    # -- checks ------------------------------------------------------------------------------

    def _check_ready(self, data: Any) -> None:
        self.trainer._check_ready(data)
        if self._checked:
            return
        alg = self.trainer.algorithm
        like = jax.eval_shape(alg.init, jax.random.key(0), data)
        _, metrics = jax.eval_shape(lambda s: alg.step(s, None, self.consts, None), like)
        scalars = sorted(k for k, v in metrics.items() if getattr(v, "shape", None) == ())
        if self.metric not in scalars:
            raise ValueError(
                f"metric={self.metric!r} is not a scalar metric of {type(self.trainer).__name__}"
                f" (its scalar metrics: {scalars}); pass metric=<one of them>."
            )
        self._checked = True

    # -- the algorithm -----------------------------------------------------------------------

    def _init(self, key: jax.Array, data: Any) -> PBTState:
        k_members, k_hp, k_run = jax.random.split(key, 3)
        alg = self.trainer.algorithm
        members = lax.map(lambda k: alg.init(k, data), jax.random.split(k_members, self.population))
        initial = self.space.initial(k_hp, self.population)
        members = set_hparams(members, initial)
        return PBTState(
            members=members,
            score=jnp.zeros((self.population,), jnp.float32),
            count=jnp.zeros((self.population,), jnp.int32),
            lineage=Lineage.create(n_events=self.n_events, initial=initial),
            step=jnp.zeros((), jnp.int32),
            key=k_run,
        )

    def _members_step(self, members: Any, data: Any, consts: Any) -> tuple[Any, jax.Array]:
        alg = self.trainer.algorithm

        def one(m):
            m, metrics = alg.step(m, data, consts, None)
            return m, jnp.asarray(metrics[self.metric], jnp.float32)

        fn = jax.vmap(one)
        if self.mesh is None:
            return fn(members)
        return jax.shard_map(
            fn, mesh=self.mesh, in_specs=P(AXIS), out_specs=(P(AXIS), P(AXIS)), check_vma=False
        )(members)

    def _step(self, state: PBTState, data: Any, consts: Any, keys: Any) -> tuple[PBTState, dict]:
        del keys
        used = dict(state.members.hparams)
        members, value = self._members_step(state.members, data, consts)
        step = state.step + 1
        finite = jnp.isfinite(value)
        score = state.score + jnp.where(finite, value, 0.0)
        count = state.count + finite.astype(jnp.int32)
        state = state.replace(members=members, score=score, count=count, step=step)
        event = (step % self.interval == 0) & (step < self.train_steps)
        parent = jnp.arange(self.population, dtype=jnp.int32)
        state, parent = lax.cond(event, self._exploit, lambda s: (s, parent), state)
        best = jnp.nanmin(value) if self.mode == "min" else jnp.nanmax(value)
        metrics: dict[str, Any] = {"step": step, self.metric: best}
        for i in range(self.population):
            metrics[f"{self.metric}/{i}"] = value[i]
        for name, v in used.items():
            for i in range(self.population):
                metrics[f"hparams/{name}/{i}"] = v[i]
        for i in range(self.population):
            metrics[f"parent/{i}"] = parent[i]
        return state, metrics

    def _exploit(self, state: PBTState) -> tuple[PBTState, jax.Array]:
        """Rank, copy the best into the worst, explore their hyperparameters, record."""
        n, k, h = self.population, self.n_replaced, len(self.space.names)
        mean = jnp.where(state.count > 0, state.score / jnp.maximum(state.count, 1), jnp.nan)
        signed = mean if self.mode == "max" else -mean
        order = jnp.argsort(-jnp.where(jnp.isnan(signed), -jnp.inf, signed), stable=True)
        # every random number of the event from one PRNG call: a row of source picks, then
        # n_hparams rows each of "resample?", perturb factors and fresh draws
        u = jax.random.uniform(jax.random.fold_in(state.key, state.step), (1 + 3 * h, n))
        pick = jnp.minimum((u[0, :k] * k).astype(jnp.int32), k - 1)
        src = order[:k][pick]
        parent = jnp.arange(n, dtype=jnp.int32).at[order[n - k :]].set(src.astype(jnp.int32))
        own_keys = state.members.key
        members = jax.tree.map(lambda x: x[parent], state.members).replace(key=own_keys)
        replaced = parent != jnp.arange(n)
        hp = self._explore(members.hparams, replaced, u[1:].reshape(3, h, n))
        members = set_hparams(members, hp)
        e = state.step // self.interval - 1
        lin = state.lineage
        lin = lin.replace(
            step=lin.step.at[e].set(state.step, mode="drop"),
            parent=lin.parent.at[e].set(parent, mode="drop"),
            score=lin.score.at[e].set(mean, mode="drop"),
            hparams={m: lin.hparams[m].at[e].set(hp[m], mode="drop") for m in lin.hparams},
        )
        zero = jnp.zeros_like
        state = state.replace(
            members=members, score=zero(state.score), count=zero(state.count), lineage=lin
        )
        return state, parent

    def _explore(self, hp: dict, replaced: jax.Array, u: jax.Array) -> dict:
        """Perturb (a factor of ``perturb``) or resample (``resample_prob``) the replaced
        members' values; ``u``: uniforms ``(3, n_hparams, population)``."""
        factors = jnp.asarray(self.perturb, jnp.float32)
        n_f = len(self.perturb)
        drawn = self.space.draw(u[2])
        out = {}
        for j, name in enumerate(self.space.names):
            factor = factors[jnp.minimum((u[1, j] * n_f).astype(jnp.int32), n_f - 1)]
            out[name] = jnp.where(
                u[0, j] < self.resample_prob,
                drawn[name],
                jnp.asarray(hp[name], jnp.float32) * factor,
            )
        out = self.space.clip(out)
        return {k: jnp.where(replaced, out[k], hp[k]) for k in out}


def member_values(metrics: Mapping[str, Any], name: str) -> np.ndarray:
    """Per-member metrics ``name/0``, ``name/1``, ... stacked on a last member axis, e.g.
    ``member_values(metrics, "hparams/learning_rate")`` -> ``(steps, population)``.

    Example:
        >>> member_values({"loss/0": [1.0, 0.5], "loss/1": [2.0, 1.5]}, "loss").tolist()
        [[1.0, 2.0], [0.5, 1.5]]
    """
    cols: list[np.ndarray] = []
    while f"{name}/{len(cols)}" in metrics:
        cols.append(np.asarray(metrics[f"{name}/{len(cols)}"]))
    if not cols:
        raise KeyError(f"no per-member metrics {name}/0, {name}/1, ... in the metrics")
    return np.stack(cols, axis=-1)
