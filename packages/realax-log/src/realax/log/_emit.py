"""The traced side of ``Logger.log``: checks what ``metrics_fn`` returns and sends each step
to the host with ordered ``io_callback``s, one call per step even under ``jax.vmap`` (the
loops of realax.train hand over blocks of steps instead: :mod:`._blocks`).

Host side, two callbacks receive the payload (see ``Logger``):

- ``on_log(seed_dims, log_tree, step, leaves)`` every step; with ``answer`` it returns
  whether the step must be checkpointed now (a stop signal arrived);
- ``on_ckpt(seed_dims, records, groups, step, packed)`` on checkpoint steps
  (``step % ckpt_freq == 0`` for any seed, or when ``on_log`` answered yes): the state's
  leaves packed into one array per dtype (one transfer), ``records`` / ``groups`` say where
  each leaf is (``_serialize.manifest``).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap
from jax.experimental import io_callback

from . import _serialize


@dataclasses.dataclass(frozen=True)
class Step:
    """What ``metrics_fn(state, data)`` gave for one traced step, checked."""

    log_data: dict[str, jax.Array]
    ckpt_data: Any
    step: jax.Array


def call_metrics_fn(metrics_fn: Callable, state: Any, data: Any) -> Step:
    """Run ``metrics_fn`` and check its ``(log_data, ckpt_data, step)`` (at trace time)."""
    out = metrics_fn(state, data)
    if not isinstance(out, tuple) or len(out) != 3:
        raise TypeError(
            "metrics_fn must return a tuple (log_data, ckpt_data, step), got "
            f"{type(out).__name__}{'' if not isinstance(out, tuple) else f' of {len(out)}'}"
        )
    log_data, ckpt_data, step = out
    if log_data is None:
        log_data = {}
    if not isinstance(log_data, Mapping):
        raise TypeError(
            f"metrics_fn's log_data must be a dict of arrays, got {type(log_data).__name__}"
        )
    for k in log_data:
        if not isinstance(k, str):
            raise TypeError(f"log_data keys must be strings, got {k!r}")
    step = jnp.asarray(step)
    if step.shape != () or not jnp.issubdtype(step.dtype, jnp.integer):
        raise TypeError(
            "metrics_fn's step must be an integer scalar (e.g. state.step), got "
            f"{step.dtype}{step.shape}"
        )
    return Step({k: jnp.asarray(v) for k, v in log_data.items()}, ckpt_data, step)


def flatten_step(s: Step, checkpoint: bool) -> tuple[list, Any, list, tuple, tuple]:
    """``(log_leaves, log_tree, ckpt_leaves, paths, key_impls)`` of a step (typed keys as
    their key data; no checkpoint leaves without ``checkpoint``)."""
    log_leaves, log_tree = jax.tree_util.tree_flatten(s.log_data)
    if not checkpoint:
        return log_leaves, log_tree, [], (), ()
    ck_leaves, paths, impls = _serialize.split_keys(s.ckpt_data)
    return log_leaves, log_tree, [jnp.asarray(x) for x in ck_leaves], tuple(paths), tuple(impls)


@dataclasses.dataclass(frozen=True)
class Emitter:
    """Builds the function that sends one step to the host.

    ``answer``: the log callback answers whether to checkpoint this step (Ctrl-C). A host
    callback that returns a value cannot be used in a program spanning several processes, so
    the Logger turns it off there (multi-process runs rely on the periodic checkpoints).
    """

    on_log: Callable[..., Any]
    on_ckpt: Callable[..., None]
    ckpt_freq: int

    def emit(self, s: Step, *, checkpoint: bool, answer: bool) -> None:
        log_leaves, log_tree, ck_leaves, paths, impls = flatten_step(s, checkpoint)
        fn = self._build(0, log_tree, len(log_leaves), paths, impls, checkpoint, answer)
        fn(s.step, *log_leaves, *ck_leaves)

    def _build(self, seed_dims, log_tree, n_log, paths, impls, checkpoint, answer):
        """A custom_vmap'd function: its vmap rule adds the mapped axis to every argument and
        recurses with ``seed_dims + 1``, so a vmapped loop makes one host call per step for
        all seeds (and ``lax.cond`` keeps an unbatched predicate)."""
        log_cb = functools.partial(self.on_log, seed_dims, log_tree)
        freq = self.ckpt_freq

        @custom_vmap
        def emit(step, *leaves):
            logged = list(leaves[:n_log])
            if answer:
                interrupted = io_callback(
                    functools.partial(log_cb, answer=True),
                    jax.ShapeDtypeStruct((), jnp.bool_),
                    step,
                    logged,
                    ordered=True,
                )
            else:
                io_callback(log_cb, None, step, logged, ordered=True)
                interrupted = jnp.bool_(False)
            if checkpoint:
                save = pack_and_send(self.on_ckpt, list(leaves[n_log:]), paths, impls, seed_dims)
                lax.cond(jnp.any(step % freq == 0) | interrupted, lambda: save(step), lambda: None)
            return jnp.zeros((), jnp.int32)

        @emit.def_vmap
        def _rule(axis_size, in_batched, step, *leaves):
            args = [
                x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x)))
                for x, b in zip((step, *leaves), in_batched, strict=True)
            ]
            inner = self._build(seed_dims + 1, log_tree, n_log, paths, impls, checkpoint, answer)
            return inner(*args), False

        return emit


def pack_and_send(on_ckpt: Callable, ck: list, paths, impls, seed_dims: int) -> Callable:
    """``save(step)``: the checkpoint's leaves packed into one array per dtype (traced), handed
    to ``on_ckpt(seed_dims, records, groups, step, packed)`` in one ordered callback."""
    records, groups = _serialize.manifest(ck, list(paths), list(impls))
    cb = functools.partial(on_ckpt, seed_dims, records, groups)

    def save(step):
        return io_callback(cb, None, step, _serialize.pack(ck, records, groups, jnp), ordered=True)

    return save


def abstract(data: Any) -> Any:
    """Shapes and dtypes of a step's metrics (``None`` if they are not all arrays)."""
    try:
        return jax.tree_util.tree_map(
            lambda x: jax.ShapeDtypeStruct(jnp.shape(x), jnp.result_type(x)), data
        )
    except (TypeError, ValueError):
        return None


def final_checkpoint(
    metrics_fn: Callable, state: Any, data_like: Any, seed_dims: int
) -> tuple[Any, np.ndarray] | None:
    """``(ckpt_data, step)`` that ``metrics_fn`` gives for a final state (host side, eagerly),
    with zeros in place of the step's metrics (``data_like``: their shapes, from tracing);
    ``None``, with a warning, if ``metrics_fn`` cannot be evaluated that way."""

    def final(st):
        data = {} if data_like is None else jax.tree_util.tree_map(_zeros, data_like)
        _, ckpt_data, step = metrics_fn(st, data)
        return ckpt_data, jnp.asarray(step)

    for _ in range(seed_dims):
        final = jax.vmap(final)
    try:
        ckpt_data, step = final(state)
    except Exception as e:  # e.g. a metrics_fn whose ckpt_data needs real metrics
        warnings.warn(
            f"realax.log: on_run_end could not evaluate metrics_fn on the final state "
            f"({type(e).__name__}: {e}); its last step is not checkpointed",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return ckpt_data, np.asarray(jax.device_get(step))


def _zeros(s: jax.ShapeDtypeStruct) -> jax.Array:
    if jax.dtypes.issubdtype(s.dtype, jax.dtypes.prng_key):
        return jax.random.key(0)  # a placeholder of the right kind (metrics hold no keys)
    return jnp.zeros(s.shape, s.dtype)
