"""Metrics in blocks: the rows of k steps cross to the host in one transfer.

A loop that carries a *block* (a buffer of rows, beside its state) calls
``Logger.log_to_block(block, state, metrics)`` after every step instead of ``Logger.log``:
the step's row (``metrics_fn``'s ``log_data`` and ``step``) is written into the buffer on the
device, and one ordered ``io_callback`` hands the filled rows to the host when the block is
full, on a checkpoint step, and (``close_block``) after the loop. The host writes exactly the
rows a per-step ``log`` would have written, in the same order.

The block size ``k`` is either fixed (``Logger(log_block=k)``) or chosen on the host from
the measured step time (:class:`BlockClock`): the callback answers the size of the next block,
so that blocks cross about every :data:`TARGET_SECONDS`. The answer also carries a stop
signal (SIGINT / SIGTERM), on which the block's last step is checkpointed at once.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap
from jax.experimental import io_callback

from ._emit import Step, flatten_step, pack_and_send

#: seconds of training between two hand-overs when the block size is automatic
TARGET_SECONDS = 0.1
#: the largest automatic block (steps), and the largest buffer (bytes, all seeds)
MAX_BLOCK = 256
MAX_BUFFER_BYTES = 1 << 20


class BlockClock:
    """The host's choice of the next block size, from the time the last block took.

    Fixed (``k``): always ``k``. Automatic: starts at 1 and grows at most 4x per block towards
    ``TARGET_SECONDS`` of steps, never above the buffer's capacity.
    """

    def __init__(self, fixed: int | None):
        self.fixed = fixed
        self._last: float | None = None

    def next(self, n_rows: int, capacity: int) -> int:
        if self.fixed is not None:
            return min(self.fixed, capacity)
        now = time.perf_counter()
        last, self._last = self._last, now
        if last is None or now <= last:
            return min(capacity, 4 * n_rows)
        want = int(TARGET_SECONDS * n_rows / (now - last))
        return max(1, min(capacity, 4 * n_rows, want))


def capacity(fixed: int | None, row_bytes: int) -> int:
    """Rows the buffer holds: ``fixed``, else as many as fit ``MAX_BUFFER_BYTES`` (<= 256)."""
    if fixed is not None:
        return fixed
    return max(1, min(MAX_BLOCK, MAX_BUFFER_BYTES // max(row_bytes, 1)))


def empty_block(step: Any, log_data: Any, *, size: int, limit: int) -> dict:
    """A block of ``size`` rows shaped like ``step`` and ``log_data`` (abstract values), empty;
    the first hand-over after ``limit`` rows."""
    leaves = jax.tree_util.tree_leaves(log_data)
    return {
        "count": jnp.zeros((), jnp.int32),
        "limit": jnp.full((), limit, jnp.int32),
        "steps": jnp.zeros((size, *step.shape), step.dtype),
        "rows": [jnp.zeros((size, *x.shape), x.dtype) for x in leaves],
    }


def row_bytes(log_data: Any, step: Any) -> int:
    leaves = [*jax.tree_util.tree_leaves(log_data), step]
    return sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in leaves)


def _first(x: jax.Array) -> jax.Array:
    """The value shared by every seed (all seeds step together)."""
    return jnp.reshape(x, (-1,))[0]


@dataclasses.dataclass(frozen=True)
class BlockEmitter:
    """Builds the traced functions that fill a block and hand it over.

    ``on_rows(seed_dims, log_tree, capacity, count, steps, rows, answer=...)`` receives a
    block (``answer``: returns ``[next block size, stop]``); ``on_ckpt(seed_dims, records,
    groups, step, packed)`` a packed checkpoint.
    """

    on_rows: Callable[..., Any]
    on_ckpt: Callable[..., None]
    ckpt_freq: int

    def push(self, block: dict, s: Step, *, checkpoint: bool, answer: bool) -> dict:
        log_leaves, log_tree, ck_leaves, paths, impls = flatten_step(s, checkpoint)
        rows = block["rows"]
        fn = self._build(0, log_tree, len(rows), paths, impls, checkpoint, answer)
        out = fn(block["count"], block["limit"], block["steps"], *rows, s.step, *log_leaves,
                 *ck_leaves)  # fmt: skip
        return {"count": out[0], "limit": out[1], "steps": out[2], "rows": list(out[3:])}

    def close(self, block: dict, log_tree: Any) -> None:
        """Hand over the rows left in ``block`` (after the loop)."""
        rows = block["rows"]
        fn = self._build_close(0, log_tree, len(rows))
        fn(block["count"], block["steps"], *rows)

    def _build(self, seed_dims, log_tree, n_log, paths, impls, checkpoint, answer):
        size_of = lambda steps: steps.shape[seed_dims]  # noqa: E731
        freq = self.ckpt_freq

        @custom_vmap
        def push(count, limit, steps, *rest):
            bufs, step = list(rest[:n_log]), rest[n_log]
            leaves, ck = rest[n_log + 1 : 2 * n_log + 1], list(rest[2 * n_log + 1 :])
            c, lim = _first(count), _first(limit)
            steps = lax.dynamic_update_index_in_dim(steps, step, c, seed_dims)
            bufs = [
                lax.dynamic_update_index_in_dim(b, x, c, seed_dims)
                for b, x in zip(bufs, leaves, strict=True)
            ]
            n = c + 1
            ck_due = jnp.any(step % freq == 0) if checkpoint else jnp.bool_(False)
            rows_cb = functools.partial(self.on_rows, seed_dims, log_tree, size_of(steps))

            def hand_over():
                if answer:
                    res = io_callback(
                        functools.partial(rows_cb, answer=True),
                        jax.ShapeDtypeStruct((2,), jnp.int32),
                        n, steps, bufs, ordered=True,
                    )  # fmt: skip
                    nxt, stop = res[0], res[1] > 0
                else:
                    io_callback(rows_cb, None, n, steps, bufs, ordered=True)
                    nxt, stop = lim, jnp.bool_(False)
                if checkpoint:
                    save = pack_and_send(self.on_ckpt, ck, paths, impls, seed_dims)
                    lax.cond(ck_due | stop, lambda: save(step), lambda: None)
                return jnp.int32(0), nxt.astype(jnp.int32)

            c2, lim2 = lax.cond((n >= lim) | ck_due, hand_over, lambda: (n, lim))
            return (
                jnp.broadcast_to(c2, jnp.shape(count)),
                jnp.broadcast_to(lim2, jnp.shape(limit)),
                steps,
                *bufs,
            )

        @push.def_vmap
        def _rule(axis_size, in_batched, *args):
            args = _batched(axis_size, in_batched, args)
            inner = self._build(seed_dims + 1, log_tree, n_log, paths, impls, checkpoint, answer)
            out = inner(*args)
            return out, (True,) * len(out)

        return push

    def _build_close(self, seed_dims, log_tree, n_log):
        @custom_vmap
        def close(count, steps, *bufs):
            c = _first(count)
            cb = functools.partial(self.on_rows, seed_dims, log_tree, steps.shape[seed_dims])
            lax.cond(
                c > 0,
                lambda: io_callback(cb, None, c, steps, list(bufs), ordered=True),
                lambda: None,
            )
            return jnp.zeros((), jnp.int32)

        @close.def_vmap
        def _rule(axis_size, in_batched, *args):
            inner = self._build_close(seed_dims + 1, log_tree, n_log)
            return inner(*_batched(axis_size, in_batched, args)), False

        return close


def _batched(axis_size: int, in_batched: Any, args: tuple) -> list:
    return [
        x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x)))
        for x, b in zip(args, in_batched, strict=True)
    ]


def split_block(seed_dims: int, count: int, steps: np.ndarray, rows: list) -> list[tuple]:
    """A handed-over block as ``(step, leaves)`` per row, oldest first (host side)."""
    lead: tuple[Any, ...] = (slice(None),) * seed_dims
    out = []
    for j in range(count):
        at: Any = (*lead, j, Ellipsis)
        out.append((steps[at], [r[at] for r in rows]))
    return out
