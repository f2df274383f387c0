"""OptaxTrainer: compiled gradient descent (optax) on a differentiable loss (front end)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from . import _loops
from ._base import BaseTrainer, train_from_key
from ._datasets import (
    check_dataset,
    check_dataset_sharding,
    global_examples,
    shard_dataset,
)
from ._grad_algorithm import GradAlgorithm, GradState
from ._hparams import Traceable
from ._mesh import make_mesh
from ._optimizers import (
    available_optimizers,
    build_optimizer,
    check_learning_rate,
    optimizer_numbers,
    traced_optimizer,
)
from ._protocols import Logger, LossFn
from ._step_data import check_step_data
from ._validate import (
    as_typed_key,
    check_bool,
    check_divisible,
    check_logger,
    check_n_devices,
    check_pair_output,
    check_positive_int,
    n_positional,
    shape_str,
    traces,
)

__all__ = ["GradState", "OptaxTrainer", "available_optimizers", "optimize"]


def _check_callables(initializer: Any, loss_fn: Any) -> None:
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


def _check_batch_size(batch_size: Any, dataset: Any, n_examples: int, n_devices: int) -> Any:
    if batch_size is not None:
        if dataset is None:
            raise ValueError(
                f"batch_size={batch_size} needs a dataset to batch; pass dataset=... or "
                "drop batch_size."
            )
        batch_size = check_positive_int(batch_size, "batch_size", "e.g. batch_size=32")
        if batch_size > n_examples:
            raise ValueError(
                f"batch_size must be <= the number of examples (got batch_size={batch_size},"
                f" dataset has {n_examples} examples); use batch_size<={n_examples}."
            )
    elif dataset is not None:
        batch_size = n_examples
    if n_devices > 1:
        if dataset is None:
            raise ValueError(
                f"n_devices={n_devices} splits minibatches over devices and needs a "
                "dataset; pass dataset=... (and batch_size) or use n_devices=1."
            )
        check_divisible(batch_size, "batch_size", n_devices, fix="choose")
    return batch_size


def check_loss_output(out: Any) -> None:
    check_pair_output(out, "loss_fn", "(loss, aux)", "(loss, {})", "e.g. jnp.mean(...)")


class OptaxTrainer(Traceable, BaseTrainer):
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
        step_data: per-epoch data, off by default (keyword only). ``True``: the metrics of
            ``train`` also hold ``metrics["metrics"]`` (the scalar metrics, so the original's
            ``data["metrics"]["loss"]``, plus ``"batch_loss"``, ``(epochs, n_batches)``) and
            ``metrics["eval_data"]`` (the loss's ``aux`` of every minibatch, leaves
            ``(epochs, n_batches, ...)``; with ``n_devices > 1`` a device axis follows). A
            callable ``fn(batch_losses, aux) -> pytree`` runs inside the compiled epoch and
            its output is stored as ``eval_data`` instead. ``fori`` runs hand the entries to
            ``logger.log`` instead.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from realax.train import OptaxTrainer
        >>> loss = lambda p, key: (jnp.sum((p - 3.0) ** 2), {})
        >>> trainer = OptaxTrainer(200, "adam", lambda key: jnp.zeros(2), loss, 0.1)
        >>> state, metrics = trainer.init_and_train(jax.random.key(0))
        >>> [round(float(v), 2) for v in state.params]
        [3.0, 3.0]

        Traced hyperparameters (``sweepable()``, ``traced(names)``, ``set_hparams``):

        >>> from realax.train import set_hparams
        >>> traced = trainer.traced(["learning_rate"])
        >>> start = traced.initialize(jax.random.key(0))
        >>> float(start.hparams["learning_rate"])
        0.10000000149011612
        >>> state, _ = traced.train(set_hparams(start, {"learning_rate": 0.0}), n_steps=5)
        >>> state.params.tolist()  # rate 0: nothing moved
        [0.0, 0.0]
    """

    def __init__(
        self,
        epochs: int,
        optimizer: Any,
        initializer: Callable[[jax.Array], Any],
        loss_fn: LossFn,
        learning_rate: Any = 1e-3,
        opt_kws: dict | None = None,
        logger: Logger | None = None,
        progress_bar: bool = False,
        n_devices: int = 1,
        dataset: Any = None,
        batch_size: int | None = None,
        dataset_sharding: str = "replicated",
        *,
        step_data: bool | Callable = False,
    ):
        self._args = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.train_steps = check_positive_int(
            epochs, "epochs", "pass the number of epochs, e.g. epochs=100"
        )
        self.epochs = self.train_steps
        self.learning_rate = check_learning_rate(learning_rate)
        if opt_kws is not None and not isinstance(opt_kws, dict):
            raise TypeError(f"opt_kws must be a dict or None (got {type(opt_kws).__name__})")
        self._opt_spec = (optimizer, learning_rate, dict(opt_kws or {}))
        self.optimizer = build_optimizer(*self._opt_spec)
        _check_callables(initializer, loss_fn)
        self.initializer, self.loss_fn = initializer, loss_fn
        self.logger = check_logger(logger)
        self.progress_bar = check_bool(progress_bar, "progress_bar")
        self.n_devices = check_n_devices(n_devices)
        self.dataset_sharding = check_dataset_sharding(dataset_sharding, dataset, self.n_devices)
        self.dataset, self.n_examples = check_dataset(dataset)
        if self.dataset_sharding == "process_local":
            # from here on n_examples counts the examples of every process
            self.n_examples = global_examples(self.n_examples, self.n_devices)
        self.batch_size = _check_batch_size(
            batch_size, self.dataset, self.n_examples, self.n_devices
        )
        mesh = make_mesh(self.n_devices)
        sharded = self.dataset_sharding == "process_local" and mesh is not None
        if mesh is not None and sharded:
            self.dataset = shard_dataset(self.dataset, mesh)
        self._alg = GradAlgorithm(
            optimizer=self.optimizer,
            initializer=initializer,
            loss_fn=loss_fn,
            nargs=n_positional(loss_fn),
            mesh=mesh,
            n_examples=self.n_examples,
            batch_size=self.batch_size,
            sharded_dataset=sharded,
            step_data=check_step_data(step_data, "OptaxTrainer", "fn(batch_losses, aux)"),
        )
        self.n_batches = self._alg.n_batches
        self.algorithm = self._alg.algorithm()
        self._checked = False
        self._params_spec = self._check_initializer()
        self._check_loss(None, construction=True)

    @property
    def consts(self) -> Any:  # type: ignore[override]
        """The dataset, passed to the compiled loops as an argument."""
        return self.dataset

    # -- traced hyperparameters ------------------------------------------------------------

    def sweepable(self) -> dict[str, float]:
        """The settings :meth:`traced` can turn into traced values, with their current values:
        the optimiser's numbers (``learning_rate`` unless it is a schedule, and the alias's
        float arguments such as ``b1``, ``eps``, ``weight_decay``). Empty when ``optimizer``
        is a transformation rather than an alias name.

        Example:
            >>> import jax.numpy as jnp
            >>> from realax.train import OptaxTrainer
            >>> t = OptaxTrainer(10, "sgd", lambda k: jnp.ones(2), lambda p, k: (p.sum(), {}),
            ...                  0.1, opt_kws={"momentum": 0.9})
            >>> t.sweepable()
            {'momentum': 0.9, 'learning_rate': 0.1}
        """
        return optimizer_numbers(*self._opt_spec)

    def shape_settings(self) -> dict[str, Any]:
        """The settings that fix the program's array shapes or structure (one program per
        value; ``rebuild(**changes)`` makes a trainer with others): ``optimizer`` (its state's
        structure), ``batch_size``, ``n_devices``."""
        optimizer = self._opt_spec[0]
        return {
            "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
            "batch_size": self.batch_size,
            "n_devices": self.n_devices,
        }

    def _trace(self, values: dict[str, float]) -> None:
        """Rebuild the algorithm so states carry ``values`` in ``state.hparams``; the
        optimiser (``optax.inject_hyperparams`` over exactly those names, every other argument
        static) reads them before every update. With the same values it computes what the
        untraced trainer computes (bit-identical for ``learning_rate`` and ``eps``; ``b1`` /
        ``b2`` to float32 rounding: optax folds ``1 - b1`` in double precision when static)."""
        if values:
            self.optimizer = traced_optimizer(*self._opt_spec, tuple(values))
        alg = copy.copy(self._alg)
        alg.optimizer, alg.hparams = self.optimizer, dict(values)
        self._alg, self.algorithm = alg, alg.algorithm()

    # -- validation ------------------------------------------------------------------------

    def _check_initializer(self) -> Any:
        try:
            return jax.eval_shape(self.initializer, jax.random.key(0))
        except Exception as e:
            raise ValueError(
                f"initializer(key) failed when traced: {type(e).__name__}: {e}. It must be a "
                "jittable function of a PRNG key returning the parameters."
            ) from e

    def _batch_spec(self, data: Any) -> Any:
        if self.dataset is not None:
            return jax.tree.map(
                lambda x: jax.ShapeDtypeStruct((self.batch_size, *x.shape[1:]), x.dtype),
                self.dataset,
            )
        return data

    def _check_loss(self, data: Any, construction: bool = False) -> None:
        if self._checked:
            return
        batch = self._batch_spec(data)
        self._checked = traces(
            self._alg.call_loss,
            self._params_spec,
            jax.random.key(0),
            batch,
            failed=f"loss_fn failed when traced with params {shape_str(self._params_spec)} and "
            f"batch {shape_str(batch)}",
            hint="Check that initializer's output and the dataset have the structure loss_fn "
            "expects.",
            check_output=check_loss_output,
            quiet=construction and self.dataset is None,  # data may be given later
        )

    def _check_ready(self, data: Any) -> None:
        self._check_loss(data)

    def initialize(self, key: jax.Array, data: Any = None) -> GradState:
        """Initial :class:`GradState`: ``params = initializer(key')``.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from realax.train import OptaxTrainer
            >>> t = OptaxTrainer(10, "sgd", lambda k: jnp.ones(2), lambda p, k: (p.sum(), {}))
            >>> t.initialize(jax.random.key(0)).params.tolist()
            [1.0, 1.0]
        """
        return _loops.init(self.algorithm, as_typed_key(key), data)

    def train_params(self, params: Any, key: jax.Array) -> tuple[GradState, dict]:
        """Train from given parameters (the original's ``train_params(params, key)``):
        ``train`` from :meth:`initialize` with ``params`` (and a fresh optimiser state for
        them) in place of ``initializer``'s output.

        Example:
            >>> import jax, jax.numpy as jnp
            >>> from realax.train import OptaxTrainer
            >>> loss = lambda p, key: (jnp.sum((p - 3.0) ** 2), {})
            >>> t = OptaxTrainer(100, "adam", lambda key: jnp.zeros(2), loss, 0.1)
            >>> state, metrics = t.train_params(jnp.full(2, 2.9), jax.random.key(0))
            >>> bool(metrics["loss"][0] < 0.1)
            True
        """
        params = jax.tree.map(jnp.asarray, params)
        state = self.initialize(key)
        state = state.replace(
            params=params, best_params=params, opt_state=self.optimizer.init(params)
        )
        return self.train(state)


def optimize(
    prms: Any,
    loss_fn: LossFn,
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
    # OptaxTrainer(epochs, optimizer, initializer, loss_fn, learning_rate, ...)
    trainer = OptaxTrainer(steps, optimizer, lambda key: prms, loss_fn, learning_rate, **kwargs)
    return train_from_key(trainer, key, use_scan, "params")
