"""Multi-process runs (``jax.distributed``): which process writes, and the end-of-run barrier.

Only process 0 writes metrics, wandb and checkpoints (the state is the same on every process);
every other process skips the writes and waits for it in :func:`barrier`.
"""

from __future__ import annotations

import jax


def process_index() -> int:
    """This process's index under ``jax.distributed`` (0 when it is not initialised).

    Does not initialise a JAX backend when ``jax.distributed`` is not initialised, so a
    Logger may be built before ``jax.distributed.initialize``.
    """
    if not jax.distributed.is_initialized():
        return 0
    return jax.process_index()


def is_primary() -> bool:
    """True on the process that writes metrics, wandb and checkpoints (process 0)."""
    return process_index() == 0


def multi_process() -> bool:
    """True in a ``jax.distributed`` run of more than one process."""
    return jax.distributed.is_initialized() and jax.process_count() > 1


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier ``name`` (nothing in a one-process run)."""
    if multi_process():
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
