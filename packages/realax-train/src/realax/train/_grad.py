"""OptaxTrainer: compiled gradient descent (optax) on a differentiable loss."""

from __future__ import annotations

import difflib
import inspect
import numbers
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ._base import (
    BaseTrainer,
    as_typed_key,
    check_bool,
    check_logger,
    check_n_devices,
    check_positive_int,
    n_positional,
    shape_str,
)

__all__ = ["GradState", "OptaxTrainer", "optimize", "available_optimizers"]

_AXIS = "devices"
_DATASET_SHARDINGS = ("replicated", "process_local")


def _to_bits(x: jax.Array) -> jax.Array:
    """``x`` as uint32 words (a trailing axis is added for 8-byte dtypes)."""
    if x.dtype == jnp.bool_:
        return x.astype(jnp.uint32)
    size = x.dtype.itemsize
    if size >= 4:
        return jax.lax.bitcast_convert_type(x, jnp.uint32)
    narrow = {1: jnp.uint8, 2: jnp.uint16}[size]
    return jax.lax.bitcast_convert_type(x, narrow).astype(jnp.uint32)


def _from_bits(bits: jax.Array, dtype: Any) -> jax.Array:
    dtype = jnp.dtype(dtype)
    if dtype == jnp.bool_:
        return bits.astype(jnp.bool_)
    if dtype.itemsize >= 4:
        return jax.lax.bitcast_convert_type(bits, dtype)
    narrow = {1: jnp.uint8, 2: jnp.uint16}[dtype.itemsize]
    return jax.lax.bitcast_convert_type(bits.astype(narrow), dtype)


def _exact_take(dataset: Any, idx: jax.Array, rows: int) -> Any:
    """Rows ``idx`` of a dataset whose examples are split over the mesh axis (in shard_map).

    ``rows`` is the number of examples each device holds. Every device picks the requested
    rows it holds and zeros elsewhere, and a sum over the devices assembles them. The sum runs
    on the bits (as unsigned integers), so it is exact and independent of the summation order:
    each row comes out bit for bit as stored, whichever device (or process) held it.
    """
    local = idx - jax.lax.axis_index(_AXIS) * rows
    mine = (local >= 0) & (local < rows)
    local = jnp.clip(local, 0, rows - 1)

    def take(x):
        bits = _to_bits(jnp.take(x, local, axis=0))
        mask = mine.reshape(mine.shape + (1,) * (bits.ndim - 1))
        bits = jnp.where(mask, bits, jnp.uint32(0))
        # each device keeps its own slice of the minibatch (tiled reduce-scatter)
        bits = jax.lax.psum_scatter(bits, _AXIS, scatter_dimension=0, tiled=True)
        return _from_bits(bits, x.dtype)

    return jax.tree.map(take, dataset)


class GradState(struct.PyTreeNode):
    """State of an :class:`OptaxTrainer` run.

    Attributes:
        params: current parameters.
        opt_state: the optax optimiser state.
        step: number of completed epochs (int32 scalar).
        key: typed PRNG key; epoch ``t`` uses ``jax.random.fold_in(key, t)``.
        best_loss: lowest epoch loss seen so far.
        best_params: the parameters at the start of that epoch.
        data: user data passed to the loss when no dataset is configured, or None.
    """

    params: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array
    best_loss: jax.Array
    best_params: Any
    data: Any = None

    @classmethod
    def create(
        cls, *, params: Any, opt_state: Any, key: jax.Array, data: Any = None, step: int = 0
    ) -> GradState:
        """Build a fresh state (keyword-only)."""
        return cls(
            params=params,
            opt_state=opt_state,
            step=jnp.asarray(step, jnp.int32),
            key=as_typed_key(key),
            best_loss=jnp.asarray(jnp.inf, jnp.float32),
            best_params=params,
            data=data,
        )


def available_optimizers() -> list[str]:
    """Names of optax aliases accepted as ``optimizer`` (functions taking ``learning_rate``)."""
    names = []
    for name in dir(optax):
        if name.startswith("_"):
            continue
        fn = getattr(optax, name)
        if not inspect.isfunction(fn):
            continue
        try:
            params = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):  # pragma: no cover
            continue
        if params and params[0] == "learning_rate":
            names.append(name)
    return sorted(names)


def _build_optimizer(optimizer, learning_rate, opt_kws):
    if isinstance(optimizer, str):
        names = available_optimizers()
        if optimizer not in names:
            by_lower = {n.lower(): n for n in names}
            close = [
                by_lower[c]
                for c in difflib.get_close_matches(optimizer.lower(), by_lower, n=5, cutoff=0.5)
            ]
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"unknown optimizer {optimizer!r}.{hint} Pass an optax alias name (see "
                "realax.train.available_optimizers()) or an optax.GradientTransformation."
            )
        try:
            return getattr(optax, optimizer)(learning_rate=learning_rate, **opt_kws)
        except TypeError as e:
            raise TypeError(
                f"opt_kws={opt_kws} do not fit optax.{optimizer} ({e}); see help(optax."
                f"{optimizer})."
            ) from e
    if callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None)):
        if opt_kws:
            raise ValueError(
                f"opt_kws only apply when optimizer is a name (got opt_kws={opt_kws} with an "
                "optax transformation); pass them when building the transformation instead."
            )
        return optimizer
    raise TypeError(
        f"optimizer must be an optax alias name or an optax.GradientTransformation (got "
        f"{type(optimizer).__name__}); e.g. optimizer='adamw'."
    )


def _check_loss_output(out: Any) -> None:
    if not isinstance(out, tuple | list) or len(out) != 2:
        got = type(out).__name__ if not hasattr(out, "shape") else f"an array {out.shape}"
        raise TypeError(
            f"loss_fn must return a tuple (loss, aux) (got {got}); return e.g. (loss, {{}})."
        )
    shape = tuple(getattr(out[0], "shape", np.shape(out[0])))
    if shape != ():
        raise ValueError(
            f"loss_fn must return a scalar loss (got loss with shape {shape}); reduce it, "
            "e.g. jnp.mean(...)."
        )


class OptaxTrainer(BaseTrainer):
    """Minimise ``loss_fn`` with an optax optimiser, in one compiled loop.

    One training step is one *epoch*. Without a dataset an epoch is one gradient update on
    ``loss_fn(params, key)`` (or ``loss_fn(params, key, data)`` when data is given). With a
    ``dataset`` (a pytree of arrays sharing a leading axis of examples) an epoch shuffles the
    examples (a permutation drawn from the epoch's key) and makes one update per minibatch of
    ``batch_size`` examples (the last incomplete minibatch is dropped), calling
    ``loss_fn(params, key, batch)``; the epoch's loss is the mean minibatch loss.

    With ``n_devices > 1`` each minibatch is split over devices (``jax.shard_map``) and the
    gradients (and losses) averaged across them, so the update equals the one-device update up
    to floating point reassociation (every device sees the same key). The per-device gradients
    are gathered and averaged in device order, so the result does not depend on how the
    devices are spread over processes: under ``jax.distributed``, ``n_devices=
    jax.device_count()`` uses every device of every process with the same bits as one process
    holding all the devices. By default each process passes the same full ``dataset``; with
    ``dataset_sharding="process_local"`` each passes only its own equal part (process 0 the
    first examples, and so on), the parts stay on their process's devices, and each minibatch
    of the global shuffle is assembled exactly from the devices holding its examples.

    Args:
        epochs: number of epochs per ``train`` call.
        optimizer: an optax alias name (``"adamw"``, ``"sgd"``, ...) or a
            ``GradientTransformation``.
        initializer: ``initializer(key) -> params``.
        loss_fn: ``loss_fn(params, key[, batch]) -> (loss, aux)``, scalar loss.
        learning_rate: float or optax schedule (used with an alias name only).
        opt_kws: extra keyword arguments of the optax alias.
        logger: object with ``log(state, metrics)``, called every epoch.
        progress_bar: show a live tqdm bar (current loss).
        n_devices: split each minibatch over this many devices.
        dataset: optional pytree of arrays, leading axis = examples.
        batch_size: minibatch size (default: the whole dataset, over all processes).
        dataset_sharding: ``"replicated"`` (every process passes the whole dataset) or
            ``"process_local"`` (each process passes its own part: equal sizes, divisible by
            its device count; needs ``n_devices=jax.device_count()`` in a multi-process run).
            ``n_examples`` then counts the examples of every process.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.train import OptaxTrainer
        >>> loss = lambda p, key: (jnp.sum((p - 3.0) ** 2), {})
        >>> trainer = OptaxTrainer(200, "adam", lambda key: jnp.zeros(2), loss, 0.1)
        >>> state, metrics = trainer.init_and_train(jax.random.key(0))
        >>> [round(float(v), 2) for v in state.params]
        [3.0, 3.0]
    """

    _progress_metric = "loss"

    def __init__(
        self,
        epochs: int,
        optimizer: Any,
        initializer: Callable,
        loss_fn: Callable,
        learning_rate: Any = 1e-3,
        opt_kws: dict | None = None,
        logger: Any = None,
        progress_bar: bool = False,
        n_devices: int = 1,
        dataset: Any = None,
        batch_size: int | None = None,
        dataset_sharding: str = "replicated",
    ):
        self.train_steps = check_positive_int(
            epochs, "epochs", "pass the number of epochs, e.g. epochs=100"
        )
        self.epochs = self.train_steps
        if callable(learning_rate):
            pass
        elif (
            isinstance(learning_rate, bool)
            or not isinstance(learning_rate, numbers.Real)
            or not learning_rate > 0
        ):
            raise ValueError(
                f"learning_rate must be a float > 0 or an optax schedule (got "
                f"learning_rate={learning_rate!r}); e.g. learning_rate=1e-3."
            )
        self.learning_rate = learning_rate
        if opt_kws is not None and not isinstance(opt_kws, dict):
            raise TypeError(f"opt_kws must be a dict or None (got {type(opt_kws).__name__})")
        self.optimizer = _build_optimizer(optimizer, learning_rate, dict(opt_kws or {}))
        if not callable(initializer):
            raise TypeError(
                f"initializer must be callable as initializer(key) -> params (got "
                f"{type(initializer).__name__}); e.g. initializer=lambda key: jnp.zeros(3)."
            )
        if not callable(loss_fn):
            raise TypeError(
                f"loss_fn must be callable as loss_fn(params, key[, batch]) -> (loss, aux) "
                f"(got {type(loss_fn).__name__})."
            )
        self.initializer = initializer
        self.loss_fn = loss_fn
        self._nargs = n_positional(loss_fn)
        self.logger = check_logger(logger)
        self.progress_bar = check_bool(progress_bar, "progress_bar")
        self.n_devices = check_n_devices(n_devices)
        self.dataset_sharding = self._check_dataset_sharding(dataset_sharding, dataset)
        self.dataset, self.n_examples = self._check_dataset(dataset)
        if self.dataset_sharding == "process_local":
            # from here on n_examples counts the examples of every process
            self.n_examples = self._global_examples(self.n_examples)
        if batch_size is not None:
            if self.dataset is None:
                raise ValueError(
                    f"batch_size={batch_size} needs a dataset to batch; pass dataset=... or "
                    "drop batch_size."
                )
            batch_size = check_positive_int(batch_size, "batch_size", "e.g. batch_size=32")
            if batch_size > self.n_examples:
                raise ValueError(
                    f"batch_size must be <= the number of examples (got batch_size={batch_size},"
                    f" dataset has {self.n_examples} examples); use batch_size<="
                    f"{self.n_examples}."
                )
        elif self.dataset is not None:
            batch_size = self.n_examples
        self.batch_size = batch_size
        if self.n_devices > 1:
            if self.dataset is None:
                raise ValueError(
                    f"n_devices={self.n_devices} splits minibatches over devices and needs a "
                    "dataset; pass dataset=... (and batch_size) or use n_devices=1."
                )
            if self.batch_size % self.n_devices:
                ok = -(-self.batch_size // self.n_devices) * self.n_devices
                raise ValueError(
                    f"batch_size must be divisible by n_devices (got batch_size="
                    f"{self.batch_size}, n_devices={self.n_devices}); choose batch_size={ok}."
                )
        self.n_batches = 1 if self.dataset is None else self.n_examples // self.batch_size
        self._mesh = (
            Mesh(np.asarray(jax.devices()[: self.n_devices]), (_AXIS,))
            if self.n_devices > 1
            else None
        )
        self._sharded_dataset = self.dataset_sharding == "process_local" and self._mesh is not None
        if self._sharded_dataset:
            self.dataset = self._shard_dataset(self.dataset)
        self._checked = False
        self._params_spec = self._check_initializer()
        self._check_loss(None, construction=True)

    # -- validation ------------------------------------------------------------------------

    @staticmethod
    def _check_dataset(dataset):
        if dataset is None:
            return None, 0
        leaves = jax.tree.leaves(dataset)
        if not leaves:
            raise ValueError("dataset must be a pytree of arrays with at least one leaf.")
        leaves = [jnp.asarray(x) for x in leaves]
        sizes = {int(x.shape[0]) if x.ndim else -1 for x in leaves}
        if len(sizes) != 1 or -1 in sizes:
            raise ValueError(
                f"every dataset leaf needs the same leading axis of examples (got leaf shapes "
                f"{[tuple(x.shape) for x in leaves]}); stack examples along axis 0."
            )
        return jax.tree.unflatten(jax.tree.structure(dataset), leaves), sizes.pop()

    def _check_dataset_sharding(self, dataset_sharding, dataset):
        if dataset_sharding not in _DATASET_SHARDINGS:
            raise ValueError(
                f"dataset_sharding must be one of {_DATASET_SHARDINGS} (got "
                f"dataset_sharding={dataset_sharding!r}); use 'process_local' when each process "
                "passes only its own part of the dataset."
            )
        if dataset_sharding == "process_local":
            if dataset is None:
                raise ValueError(
                    "dataset_sharding='process_local' needs a dataset (got dataset=None); pass "
                    "this process's examples as dataset=... or drop dataset_sharding."
                )
            if jax.process_count() > 1 and self.n_devices != jax.device_count():
                raise ValueError(
                    f"dataset_sharding='process_local' in a run of {jax.process_count()} "
                    f"processes needs n_devices=jax.device_count() (={jax.device_count()}, got "
                    f"n_devices={self.n_devices}): the examples are split over every device of "
                    "every process."
                )
        for leaf in jax.tree.leaves(dataset):
            if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
                raise ValueError(
                    "dataset leaves must be arrays this process holds (got a jax.Array spread "
                    f"over several processes, sharding {leaf.sharding}); pass each process's "
                    "own examples (numpy or local arrays) with dataset_sharding='process_local'."
                )
        return dataset_sharding

    def _global_examples(self, n_local):
        """Examples over all processes (each must hold the same number, split evenly).

        The counts are exchanged first, so every process sees the same counts and raises the
        same error (a process raising alone would leave the others waiting).
        """
        counts = [n_local]
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            gathered = multihost_utils.process_allgather(np.int64(n_local))
            counts = np.asarray(gathered).ravel().tolist()
        n_local_devices = self.n_devices // len(counts)
        for proc, count in enumerate(counts):
            if count % n_local_devices:
                ok = -(-count // n_local_devices) * n_local_devices
                raise ValueError(
                    f"with dataset_sharding='process_local' each process's dataset must split "
                    f"evenly over its {n_local_devices} device(s) (got {count} examples on "
                    f"process {proc}); pass a multiple of {n_local_devices} examples per "
                    f"process, e.g. {ok} or {count - count % n_local_devices}."
                )
        if len(set(counts)) != 1:
            raise ValueError(
                "with dataset_sharding='process_local' every process must pass the same "
                f"number of examples (got {counts} for processes 0..{len(counts) - 1}); split "
                "the dataset into equal parts, dropping the remainder."
            )
        return int(sum(counts))

    def _shard_dataset(self, dataset):
        """One global array per leaf, examples split over the mesh in process order."""
        owners = [d.process_index for d in self._mesh.devices.ravel()]
        if owners != sorted(owners):  # pragma: no cover - jax.devices() is process-ordered
            raise ValueError(
                f"the devices of n_devices={self.n_devices} are not grouped by process "
                f"(process indices {owners}); dataset_sharding='process_local' needs them in "
                "process order."
            )
        sharding = NamedSharding(self._mesh, P(_AXIS))
        return jax.tree.map(
            lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), dataset
        )

    def _take(self, dataset, batch_idx):
        """The minibatch ``batch_idx`` (global example indices) of the dataset."""
        if not self._sharded_dataset:
            return jax.tree.map(lambda x: x[batch_idx], dataset)
        rows = self.n_examples // self.n_devices
        return jax.shard_map(
            lambda d, i: _exact_take(d, i, rows),
            mesh=self._mesh,
            in_specs=(P(_AXIS), P()),
            out_specs=P(_AXIS),
            check_vma=False,
        )(dataset, batch_idx)

    def _check_initializer(self):
        try:
            return jax.eval_shape(self.initializer, jax.random.key(0))
        except Exception as e:
            raise ValueError(
                f"initializer(key) failed when traced: {type(e).__name__}: {e}. It must be a "
                "jittable function of a PRNG key returning the parameters."
            ) from e

    def _batch_spec(self, data):
        if self.dataset is not None:
            return jax.tree.map(
                lambda x: jax.ShapeDtypeStruct((self.batch_size, *x.shape[1:]), x.dtype),
                self.dataset,
            )
        return data

    def _check_loss(self, data, construction=False):
        if self._checked:
            return
        batch = self._batch_spec(data)
        try:
            out = jax.eval_shape(self._call_loss, self._params_spec, jax.random.key(0), batch)
        except Exception as e:
            if construction and self.dataset is None:
                return  # may need data given later; re-checked before compiling
            raise ValueError(
                f"loss_fn failed when traced with params {shape_str(self._params_spec)} and "
                f"batch {shape_str(batch)}: {type(e).__name__}: {e}. Check that initializer's "
                "output and the dataset have the structure loss_fn expects."
            ) from e
        _check_loss_output(out)
        self._checked = True

    def _check_compiled(self, data):
        self._check_loss(data)

    def _call_loss(self, params, key, batch):
        if batch is None and self._nargs is not None and self._nargs < 3:
            return self.loss_fn(params, key)
        return self.loss_fn(params, key, batch)

    # -- algorithm -------------------------------------------------------------------------

    def _initialize(self, key, data):
        k_init, k_run = jax.random.split(key)
        params = self.initializer(k_init)
        return GradState.create(
            params=params, opt_state=self.optimizer.init(params), key=k_run, data=data
        )

    def initialize(self, key: jax.Array, data: Any = None) -> GradState:
        """Initial :class:`GradState`: ``params = initializer(key')``.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from realax.train import OptaxTrainer
            >>> t = OptaxTrainer(10, "sgd", lambda k: jnp.ones(2), lambda p, k: (p.sum(), {}))
            >>> t.initialize(jax.random.key(0)).params.tolist()
            [1.0, 1.0]
        """
        return self._jitted["init"](as_typed_key(key), data)

    def _consts(self):
        return self.dataset

    def _grads(self, params, key, batch):
        def lossf(p, k, b):
            loss, aux = self._call_loss(p, k, b)
            return jnp.asarray(loss, jnp.float32), aux

        grad_fn = jax.value_and_grad(lossf, has_aux=True)
        if self._mesh is None:
            (loss, _), grads = grad_fn(params, key, batch)
            return loss, grads

        def sharded(p, k, b):
            # Gather every device's loss and gradients and average them in device order:
            # an exact, topology-independent reduction (the same bits whether the devices sit
            # in one process or in several), at the cost of n_devices copies of the gradients.
            (loss, _), grads = grad_fn(p, k, b)
            gathered = jax.lax.all_gather((loss, grads), _AXIS)
            return jax.tree.map(lambda x: jnp.mean(x, axis=0), gathered)

        fn = jax.shard_map(
            sharded, mesh=self._mesh, in_specs=(P(), P(), P(_AXIS)), out_specs=P(),
            check_vma=False,
        )
        return fn(params, key, batch)

    def _update(self, params, opt_state, key, batch):
        loss, grads = self._grads(params, key, batch)
        extra = {}
        if isinstance(self.optimizer, optax.GradientTransformationExtraArgs):
            # line-search optimisers (optax.lbfgs, ...) need the loss value and a loss function
            extra = {
                "value": loss,
                "grad": grads,
                "value_fn": lambda p: jnp.asarray(self._call_loss(p, key, batch)[0], jnp.float32),
            }
        updates, opt_state = self.optimizer.update(grads, opt_state, params, **extra)
        params = optax.apply_updates(params, updates)
        return params, opt_state, loss, optax.global_norm(grads)

    def _step(self, state, data, consts):
        dataset = consts
        key = jax.random.fold_in(state.key, state.step)
        start_params = state.params
        if dataset is None:
            batch = state.data if data is None else data
            params, opt_state, loss, gnorm = self._update(
                state.params, state.opt_state, key, batch
            )
        else:
            k_perm, k_batches = jax.random.split(key)
            perm = jax.random.permutation(k_perm, self.n_examples)
            idx = perm[: self.n_batches * self.batch_size].reshape(
                self.n_batches, self.batch_size
            )

            def body(carry, xs):
                params, opt_state = carry
                i, batch_idx = xs
                batch = self._take(dataset, batch_idx)
                params, opt_state, loss, gnorm = self._update(
                    params, opt_state, jax.random.fold_in(k_batches, i), batch
                )
                return (params, opt_state), (loss, gnorm)

            (params, opt_state), (losses, gnorms) = jax.lax.scan(
                body, (state.params, state.opt_state), (jnp.arange(self.n_batches), idx)
            )
            loss, gnorm = jnp.mean(losses), jnp.mean(gnorms)
        better = loss < state.best_loss
        best_loss = jnp.where(better, loss, state.best_loss)
        best_params = jax.tree.map(
            lambda new, old: jnp.where(better, new, old), start_params, state.best_params
        )
        step = state.step + 1
        state = state.replace(
            params=params, opt_state=opt_state, step=step, best_loss=best_loss,
            best_params=best_params,
        )
        metrics = {"step": step, "loss": loss, "best_loss": best_loss, "grad_norm": gnorm}
        return state, metrics


def optimize(
    prms: Any,
    loss_fn: Callable,
    key: jax.Array,
    optimizer: Any = "adamw",
    steps: int = 1024,
    learning_rate: Any = 1e-3,
    use_scan: bool = True,
    **kwargs: Any,
):
    """Optimise ``prms`` against ``loss_fn`` in one call.

    Builds an :class:`OptaxTrainer` starting at ``prms`` (``kwargs`` go to it: ``opt_kws``,
    ``dataset``, ``batch_size``, ``logger``, ...) and runs ``steps`` epochs.

    Returns:
        ``(params, state, metrics)`` with ``use_scan=True``, ``(params, state)`` otherwise;
        ``params`` are the final parameters (``state.params``; the best seen are
        ``state.best_params``).

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.train import optimize
        >>> loss = lambda p, key: (jnp.sum((p - 1.0) ** 2), {})
        >>> p, state, metrics = optimize(jnp.zeros(2), loss, jax.random.key(0), "adam",
        ...                              steps=300, learning_rate=0.05)
        >>> [round(float(v), 2) for v in p]
        [1.0, 1.0]
    """
    prms = jax.tree.map(jnp.asarray, prms)
    trainer = OptaxTrainer(
        epochs=steps, optimizer=optimizer, initializer=lambda key: prms, loss_fn=loss_fn,
        learning_rate=learning_rate, **kwargs,
    )
    if use_scan:
        state, metrics = trainer.init_and_train(key)
        return state.params, state, metrics
    state = trainer.init_and_train_(key)
    return state.params, state
