"""The gradient algorithm: ``init`` and ``step`` (one epoch) of an optax optimiser on a loss."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from ._algorithm import Algorithm
from ._datasets import take
from ._mesh import AXIS
from ._protocols import LossFn
from ._step_data import EVAL_DATA, METRICS
from ._validate import as_typed_key, call_with_data

__all__ = ["GradAlgorithm", "GradState"]


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
        hparams: traced hyperparameters (``{name: float32 scalar}``) of a trainer built with
            ``OptaxTrainer.traced(names)``; empty otherwise (the untraced program is unchanged).
    """

    params: Any
    opt_state: Any
    step: jax.Array
    key: jax.Array
    best_loss: jax.Array
    best_params: Any
    data: Any = None
    hparams: dict = struct.field(default_factory=dict)

    @classmethod
    def create(
        cls,
        *,
        params: Any,
        opt_state: Any,
        key: jax.Array,
        data: Any = None,
        step: int = 0,
        hparams: dict | None = None,
    ) -> GradState:
        """Build a fresh state (keyword-only)."""
        hparams = {k: jnp.asarray(v, jnp.float32) for k, v in (hparams or {}).items()}
        return cls(
            params=params,
            opt_state=opt_state,
            step=jnp.asarray(step, jnp.int32),
            key=as_typed_key(key),
            best_loss=jnp.asarray(jnp.inf, jnp.float32),
            best_params=params,
            data=data,
            hparams=hparams,
        )


def inject(opt_state: Any, hparams: dict) -> Any:
    """``opt_state`` of an ``optax.inject_hyperparams`` optimiser with the traced values of
    ``hparams`` copied into its ``hyperparams`` (in their stored dtype), so a value changed in
    ``state.hparams`` (by PBT, ``set_hparams``) takes effect at the next update."""
    if not hparams:
        return opt_state
    stored = opt_state.hyperparams
    new = {k: jnp.asarray(v, jnp.asarray(stored[k]).dtype) for k, v in hparams.items()}
    return opt_state._replace(hyperparams={**stored, **new})


class GradAlgorithm:
    """The validated configuration of a gradient run and its pure functions (built by
    :class:`OptaxTrainer`; compared by identity, so it is a static jit argument)."""

    def __init__(
        self,
        *,
        optimizer: optax.GradientTransformation,
        initializer: Callable,
        loss_fn: LossFn,
        nargs: int | None,
        mesh: Mesh | None,
        n_examples: int,
        batch_size: int | None,
        sharded_dataset: bool,
        step_data: Callable | None = None,
        hparams: dict[str, float] | None = None,
    ):
        self.optimizer, self.initializer, self.loss_fn = optimizer, initializer, loss_fn
        self.nargs, self.mesh, self.n_examples = nargs, mesh, n_examples
        self.batch_size, self.sharded_dataset = batch_size, sharded_dataset
        self.n_batches = 1 if batch_size is None else n_examples // batch_size
        #: per-step data reducer ``fn(batch_losses, aux)`` (``_step_data``), None when off
        self.step_data = step_data
        #: traced hyperparameters and their initial values (``OptaxTrainer.traced``)
        self.hparams = dict(hparams or {})

    def algorithm(self) -> Algorithm:
        return Algorithm(self.init, self.step, None, "loss")

    def call_loss(self, params: Any, key: jax.Array, batch: Any) -> Any:
        return call_with_data(self.loss_fn, self.nargs, params, key, batch)

    def init(self, key: jax.Array, data: Any) -> GradState:
        k_init, k_run = jax.random.split(key)
        params = self.initializer(k_init)
        return GradState.create(
            params=params,
            opt_state=self.optimizer.init(params),
            key=k_run,
            data=data,
            hparams=self.hparams,
        )

    def grads(self, params, key, batch):
        def lossf(p, k, b):
            loss, aux = self.call_loss(p, k, b)
            return jnp.asarray(loss, jnp.float32), aux

        grad_fn = jax.value_and_grad(lossf, has_aux=True)
        if self.mesh is None:
            (loss, aux), grads = grad_fn(params, key, batch)
            return loss, grads, (aux if self.step_data is not None else None)

        def sharded(p, k, b):
            # Gather every device's loss and gradients and average them in device order:
            # an exact, topology-independent reduction (the same bits whether the devices sit
            # in one process or in several), at the cost of n_devices copies of the gradients.
            (loss, aux), grads = grad_fn(p, k, b)
            gathered = jax.lax.all_gather((loss, grads), AXIS)
            loss, grads = jax.tree.map(lambda x: jnp.mean(x, axis=0), gathered)
            if self.step_data is None:
                return loss, grads, None
            # per-step data: every device's aux, stacked on a leading device axis
            return loss, grads, jax.lax.all_gather(aux, AXIS)

        fn = jax.shard_map(
            sharded,
            mesh=self.mesh,
            in_specs=(P(), P(), P(AXIS)),
            out_specs=P(),
            check_vma=False,
        )
        return fn(params, key, batch)

    def update(self, params, opt_state, key, batch, hparams=None):
        loss, grads, aux = self.grads(params, key, batch)
        opt_state = inject(opt_state, hparams)
        extra = {}
        if isinstance(self.optimizer, optax.GradientTransformationExtraArgs):
            # line-search optimisers (optax.lbfgs, ...) need the loss value and a loss function
            extra = {
                "value": loss,
                "grad": grads,
                "value_fn": lambda p: jnp.asarray(self.call_loss(p, key, batch)[0], jnp.float32),
            }
        updates, opt_state = self.optimizer.update(grads, opt_state, params, **extra)
        params = optax.apply_updates(params, updates)
        return params, opt_state, loss, optax.global_norm(grads), aux

    def step(self, state: GradState, data: Any, consts: Any, keys: Any) -> tuple[GradState, dict]:
        del keys
        dataset = consts
        key = jax.random.fold_in(state.key, state.step)
        start_params = state.params
        if dataset is None:
            batch = state.data if data is None else data
            out = self.update(state.params, state.opt_state, key, batch, state.hparams)
            params, opt_state, loss, gnorm, aux = out
            if self.step_data is not None:  # one "minibatch" per epoch: the same leading axis
                losses, auxs = loss[None], jax.tree.map(lambda x: x[None], aux)
        else:
            k_perm, k_batches = jax.random.split(key)
            perm = jax.random.permutation(k_perm, self.n_examples)
            size = int(self.batch_size or self.n_examples)
            idx = perm[: self.n_batches * size].reshape(self.n_batches, size)

            def body(carry, xs):
                params, opt_state = carry
                i, batch_idx = xs
                batch = take(
                    dataset, batch_idx, self.mesh if self.sharded_dataset else None, self.n_examples
                )
                params, opt_state, loss, gnorm, aux = self.update(
                    params, opt_state, jax.random.fold_in(k_batches, i), batch, state.hparams
                )
                return (params, opt_state), (loss, gnorm, aux)

            (params, opt_state), (losses, gnorms, auxs) = jax.lax.scan(
                body, (state.params, state.opt_state), (jnp.arange(self.n_batches), idx)
            )
            loss, gnorm = jnp.mean(losses), jnp.mean(gnorms)
        better = loss < state.best_loss
        best_loss = jnp.where(better, loss, state.best_loss)
        best_params = jax.tree.map(
            lambda new, old: jnp.where(better, new, old), start_params, state.best_params
        )
        step = state.step + 1
        state = state.replace(params=params, opt_state=opt_state, step=step)
        state = state.replace(best_loss=best_loss, best_params=best_params)
        metrics = {"step": step, "loss": loss, "best_loss": best_loss, "grad_norm": gnorm}
        if self.step_data is not None:
            # the original's data["metrics"]["loss"] / data["eval_data"] (opt in)
            metrics[METRICS] = {"batch_loss": losses}
            metrics[EVAL_DATA] = self.step_data(losses, auxs)
        return state, metrics
