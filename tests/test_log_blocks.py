"""The trainers' loops hand a realax.log.Logger's metrics over in blocks of steps: the metrics
file and the checkpoints are those of a logger that gets ``log`` every step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
import realax.log as rlog
from realax.train import EvosaxTrainer
from realax.train._protocols import BlockLogger


class PerStep:
    """The same Logger behind an object without the block methods: ``log`` every step."""

    def __init__(self, inner):
        self.inner = inner

    def log(self, state, metrics):
        self.inner.log(state, metrics)

    def save_on_interrupt(self):
        return self.inner.save_on_interrupt()

    def on_run_end(self, state):
        self.inner.on_run_end(state)


def _task(x, key, data=None):
    return jnp.sum((x - 1.0) ** 2) + 0.01 * jax.random.normal(key), {}


def _run(path, how, wrap, **kw):
    logger = rlog.Logger(False, rlog.default_es_metrics, ckpt_dir=path, ckpt_freq=4, **kw)
    lg = PerStep(logger) if wrap else logger
    assert isinstance(lg, BlockLogger) != wrap
    t = EvosaxTrainer(11, "SNES", _task, params_like=jnp.zeros(3), popsize=8, logger=lg)
    if how == "seeds":
        t.init_and_train_seeds(jax.random.split(jax.random.key(0), 2))
    else:
        state = t.initialize(jax.random.key(0))
        t.train(state) if how == "scan" else t.train_(state)
    logger.finish()
    return (path / "metrics.jsonl").read_bytes(), rlog.all_steps(path)


@pytest.mark.parametrize(("how", "block"), [("scan", None), ("seeds", 2)])
def test_trainer_blocks_write_the_rows_of_per_step_logging(tmp_path, how, block):
    ref = _run(tmp_path / "step", how, True)
    got = _run(tmp_path / "block", how, False, log_block=block)
    assert got == ref and ref[1] == [4, 8, 11]
    assert len(ref[0].splitlines()) == 11 * (2 if how == "seeds" else 1)
