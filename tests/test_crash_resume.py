"""Crash and resume: a training script killed at a random point (SIGKILL) and started again
ends bit-identical to an uninterrupted run; Ctrl-C (SIGINT) and SIGTERM (a SLURM preemption or
time limit) save a checkpoint first; a damaged latest checkpoint falls back to the previous one;
a run directory is never overwritten silently.

The training script (SCRIPT below) is what a user would write: it resumes from its ckpt_dir
when a checkpoint exists, else starts fresh. Each step is throttled to ~25 ms by a host
callback so the kill lands in the middle of training.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import _subprocs as sp
import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import jax, jax.numpy as jnp, numpy as np
    from jax.experimental import io_callback
    import realax.log as rlog
    from realax.train import EvosaxTrainer, OptaxTrainer

    kinds, root, delay = sys.argv[1].split(","), sys.argv[2], float(sys.argv[3])
    verbose = sys.argv[4:] == ["verbose"]

    def say(text):  # stdout may be a pipe its reader closed
        try:
            print(text, flush=True)
        except BrokenPipeError:
            pass

    class Throttled:
        # the real Logger, plus a host callback that makes every step take `delay` seconds
        def __init__(self, inner):
            self.inner = inner

        def log(self, state, metrics):
            self.inner.log(state, metrics)
            io_callback(lambda s: time.sleep(delay), None, state.step, ordered=True)

        def save_on_interrupt(self):
            return self.inner.save_on_interrupt()

        def on_run_end(self, state):
            self.inner.on_run_end(state)

    def train(kind, ckpt_dir, out):
        if kind == "es":
            def task(x, key, data=None):
                return jnp.sum((x["w"] - 1.0) ** 2) + 0.1 * jax.random.normal(key), {}
            metrics_fn = rlog.default_es_metrics
        else:
            rng = np.random.default_rng(0)
            xs = rng.normal(size=(64, 3)).astype(np.float32)
            ys = xs @ np.array([1.0, -2.0, 0.5], np.float32)
            metrics_fn = rlog.default_grad_metrics

        logger = rlog.Logger(wandb_log=False, metrics_fn=metrics_fn, ckpt_dir=ckpt_dir,
                             ckpt_freq=5, resume=True, verbose=verbose)
        if kind == "es":
            trainer = EvosaxTrainer(60, "CMA_ES", task, params_like={"w": jnp.zeros(4)},
                                    popsize=8, logger=Throttled(logger))
        else:
            trainer = OptaxTrainer(
                60, "adam", lambda k: {"w": jax.random.normal(k, (3,)), "b": jnp.zeros(())},
                lambda p, k, b: (jnp.mean((b["x"] @ p["w"] + p["b"] - b["y"]) ** 2), {}),
                learning_rate=0.05, dataset={"x": xs, "y": ys}, batch_size=16,
                logger=Throttled(logger))

        state = trainer.initialize(jax.random.key(0))
        if rlog.latest_step(ckpt_dir) is not None:
            state = rlog.restore(ckpt_dir, like=state)
            say(f"RESUMED {int(state.step)}")
        say("TRAINING")
        state = trainer.resume_(state)
        logger.on_run_end(state)  # what the trainers' loops do after a run (idempotent)
        logger.finish()
        is_key = lambda x: jnp.issubdtype(x.dtype, jax.dtypes.prng_key)
        leaves = [np.asarray(jax.random.key_data(x) if is_key(x) else x)
                  for x in jax.tree.leaves(state)]
        np.savez(out, *leaves)

    for kind in kinds:
        train(kind, f"{root}/{kind}", f"{root}/{kind}.npz")
    say("DONE")
    """
)


def _wait_for_checkpoint(proc, ckpt_dir: Path, after: int = 0, timeout=150.0):
    deadline = time.monotonic() + timeout
    while not [s for s in sp.steps_on_disk(ckpt_dir) if s > after]:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


def _assert_bit_identical(a: list[np.ndarray], b: list[np.ndarray]):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y, strict=True)


def _kill_at_random_point(proc, ckpt_dir: Path, after: int = 0) -> list[int]:
    """SIGKILL ``proc`` at a random moment after a (new) checkpoint exists."""
    seed = random.randrange(2**32)
    _wait_for_checkpoint(proc, ckpt_dir, after)
    time.sleep(random.Random(seed).uniform(0.0, 0.6))  # 60 steps x 25 ms
    proc.send_signal(signal.SIGKILL)
    code, _, _ = sp.finish(proc)
    assert code == -signal.SIGKILL, f"the run finished before the kill (seed {seed})"
    on_disk = sp.steps_on_disk(ckpt_dir)
    assert on_disk and on_disk[-1] < 60, (on_disk, seed)
    return on_disk


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("crash") / "train.py"
    path.write_text(SCRIPT)
    return path


@pytest.fixture(scope="module")
def reference(script, tmp_path_factory):
    """Uninterrupted ES and gradient runs: final states (leaves) and run directories."""
    root = tmp_path_factory.mktemp("reference")
    code, stdout, err = sp.finish(sp.start(script, "es,grad", root, 0.0))
    assert code == 0, err[-3000:]
    assert "RESUMED" not in stdout
    return {k: (sp.load_arrays(root / f"{k}.npz"), root / k) for k in ("es", "grad")}


def _assert_same_run(root: Path, kind: str, reference):
    import realax.log as rlog

    _assert_bit_identical(sp.load_arrays(root / f"{kind}.npz"), reference[kind][0])
    # nothing lost in the metrics either: every step once, as in the uninterrupted run
    rows, ref_rows = rlog.read_metrics(root / kind), rlog.read_metrics(reference[kind][1])
    assert [r["step"] for r in rows] == list(range(1, 61))
    assert rows == ref_rows
    # and the file itself: each row once, in order, byte for byte (resume truncates the rows
    # an interrupted attempt logged after its newest checkpoint)
    ref_file = reference[kind][1] / "metrics.jsonl"
    assert (root / kind / "metrics.jsonl").read_bytes() == ref_file.read_bytes()
    assert not list((root / kind).glob("*orbax-checkpoint-tmp*"))


@pytest.mark.slow
def test_es_sigint_then_sigkill_then_resume_is_bit_identical(script, reference, tmp_path):
    ckpt = tmp_path / "es"
    # 1. Ctrl-C: a checkpoint of the current step is saved, then KeyboardInterrupt
    proc = sp.start(script, "es", tmp_path, 0.025)
    _wait_for_checkpoint(proc, ckpt)
    time.sleep(random.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGINT)
    code, _, err = sp.finish(proc)
    assert code != 0 and "KeyboardInterrupt" in err, err[-3000:]
    saved = int(err.split("checkpoint of step ")[1].split()[0])
    assert 5 <= saved < 60 and sp.steps_on_disk(ckpt)[-1] == saved  # newest checkpoint
    # 2. restart, then SIGKILL at a random point after a further checkpoint
    proc = sp.start(script, "es", tmp_path, 0.025)
    on_disk = _kill_at_random_point(proc, ckpt, after=saved)
    assert not (tmp_path / "es.npz").exists()
    # 3. restart: resumes from the newest complete checkpoint, ends as if never stopped
    code, stdout, err = sp.finish(sp.start(script, "es", tmp_path, 0.0))
    assert code == 0, err[-3000:]
    assert f"RESUMED {on_disk[-1]}" in stdout
    _assert_same_run(tmp_path, "es", reference)


@pytest.mark.slow
def test_es_sigterm_saves_a_checkpoint_then_resume_is_bit_identical(script, reference, tmp_path):
    import realax.log as rlog

    ckpt = tmp_path / "es"
    # SIGTERM (what SLURM sends before killing a job): checkpoint of the current step, then a
    # clean exit with status 143 (realax.log.Terminated, a SystemExit)
    proc = sp.start(script, "es", tmp_path, 0.025)
    _wait_for_checkpoint(proc, ckpt)
    time.sleep(random.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGTERM)
    code, stdout, err = sp.finish(proc)
    assert code == 143, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert "stopped by SIGTERM; checkpoint of step " in err, err[-3000:]
    saved = int(err.split("checkpoint of step ")[1].split()[0])
    assert 5 <= saved < 60 and sp.steps_on_disk(ckpt)[-1] == saved  # newest checkpoint
    assert "DONE" not in stdout and not (tmp_path / "es.npz").exists()
    # the metrics of every step up to the checkpoint are on disk too
    assert [r["step"] for r in rlog.read_metrics(ckpt)][:saved] == list(range(1, saved + 1))
    # restart: resumes from that checkpoint, ends as if never stopped
    code, stdout, err = sp.finish(sp.start(script, "es", tmp_path, 0.0))
    assert code == 0, err[-3000:]
    assert f"RESUMED {saved}" in stdout
    _assert_same_run(tmp_path, "es", reference)


@pytest.mark.slow
def test_grad_sigkill_with_damaged_latest_checkpoint_resumes_bit_identical(
    script, reference, tmp_path
):
    ckpt = tmp_path / "grad"
    # (killed once at least two checkpoints exist, so there is a previous one to fall back to)
    on_disk = _kill_at_random_point(sp.start(script, "grad", tmp_path, 0.025), ckpt, after=5)
    # the newest checkpoint gets damaged (e.g. a disk error): the restart falls back
    newest = ckpt / str(on_disk[-1]) / "state"
    for f in (p for p in newest.rglob("*") if p.is_file() and p.stat().st_size):
        f.write_bytes(bytes(b ^ 0xFF for b in f.read_bytes()))
    code, stdout, err = sp.finish(sp.start(script, "grad", tmp_path, 0.0))
    assert code == 0, err[-3000:]
    assert f"checkpoint step {on_disk[-1]}" in err and "falling back" in err
    assert f"RESUMED {on_disk[-2]}" in stdout
    _assert_same_run(tmp_path, "grad", reference)


def test_a_run_directory_is_never_overwritten_silently(reference, tmp_path):
    import shutil

    import realax.log as rlog

    run = tmp_path / "run"
    shutil.copytree(reference["grad"][1], run)
    with pytest.raises(FileExistsError, match=r"ckpt_dir .* already holds a run.*resume=True"):
        rlog.Logger(False, rlog.default_grad_metrics, ckpt_dir=run)
    with pytest.raises(ValueError, match="resume=True and overwrite=True"):
        rlog.Logger(False, rlog.default_grad_metrics, ckpt_dir=run, resume=True, overwrite=True)
    rlog.Logger(False, rlog.default_grad_metrics, ckpt_dir=run, resume=True)
    assert sp.steps_on_disk(run) == list(range(5, 61, 5))  # resume keeps everything
    rlog.Logger(False, rlog.default_grad_metrics, ckpt_dir=run, overwrite=True)
    assert sp.steps_on_disk(run) == [] and not (run / "metrics.jsonl").exists()
    # an empty or new directory needs no choice
    rlog.Logger(False, rlog.default_grad_metrics, ckpt_dir=run)
    rlog.Logger(False, rlog.default_grad_metrics, ckpt_dir=tmp_path / "new" / "dir")


# --------------------------------------------------------------------------- signals, watched


class _Watched:
    """The training script in a subprocess whose stderr lines are read as they come (with
    the time each arrived), so a test can wait for a message."""

    def __init__(self, script: Path, *args: object, stdout=subprocess.DEVNULL):
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *(str(a) for a in args)],
            env={**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"},
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line))

    @property
    def err(self) -> str:
        return "".join(line for _, line in self.lines)

    def wait_for(self, text: str, timeout: float = 150.0) -> float:
        """When the first stderr line containing ``text`` arrived."""
        deadline = time.monotonic() + timeout
        while True:
            hit = [t for t, line in self.lines if text in line]
            if hit:
                return hit[0]
            assert self.proc.poll() is None or self._reader.is_alive(), self.err[-3000:]
            assert time.monotonic() < deadline, f"no {text!r} on stderr: {self.err[-3000:]}"
            time.sleep(0.02)

    def end(self, timeout: float = 150.0) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=30)
        return code


def _rows_on_disk(ckpt: Path) -> list[int]:
    import realax.log as rlog

    path = ckpt / "metrics.jsonl"
    return [r["step"] for r in rlog.read_metrics(ckpt)] if path.is_file() else []


def _resume_to_the_end(script, reference, root: Path, kind: str, after: int):
    code, stdout, err = sp.finish(sp.start(script, kind, root, 0.0))
    assert code == 0, err[-3000:]
    assert f"RESUMED {after}" in stdout
    _assert_same_run(root, kind, reference)


@pytest.mark.slow
def test_first_sigint_says_so_at_once_and_checkpoints_the_next_step(script, reference, tmp_path):
    ckpt = tmp_path / "es"
    run = _Watched(script, "es", tmp_path, 1.5)  # 1.5 s per step: the next step is far
    _wait_for_checkpoint(run.proc, ckpt)
    logged = _rows_on_disk(ckpt)[-1]
    before = sp.steps_on_disk(ckpt)
    run.proc.send_signal(signal.SIGINT)
    said = run.wait_for("SIGINT received")
    deadline = time.monotonic() + 150
    while sp.steps_on_disk(ckpt) == before:  # the checkpoint of the next step
        assert time.monotonic() < deadline and run.proc.poll() is None, run.err[-3000:]
        time.sleep(0.01)
    saved_at = time.monotonic()
    assert said < saved_at, "the message came only after the checkpoint"
    assert run.end() != 0 and "KeyboardInterrupt" in run.err, run.err[-3000:]
    saved = int(run.err.split("checkpoint of step ")[1].split()[0])
    # the step after the signal (the newest row on disk may lag by one step)
    assert logged + 1 <= saved <= logged + 2 and sp.steps_on_disk(ckpt)[-1] == saved
    _resume_to_the_end(script, reference, tmp_path, "es", saved)


@pytest.mark.slow
def test_second_sigint_stops_at_once_cleanly_then_resumes(script, reference, tmp_path):
    ckpt = tmp_path / "grad"
    run = _Watched(script, "grad", tmp_path, 1.5)
    _wait_for_checkpoint(run.proc, ckpt)
    run.proc.send_signal(signal.SIGINT)
    run.wait_for("SIGINT received")
    run.proc.send_signal(signal.SIGINT)  # before the next step: stop now, without saving
    code = run.end()
    err = run.err
    assert code == 130, err[-3000:]
    for bad in ("terminate called", "FATAL", "Fatal Python error", "Traceback"):
        assert bad not in err, err[-3000:]
    assert "second signal" in err
    on_disk = sp.steps_on_disk(ckpt)
    assert on_disk and on_disk[-1] < 60
    # every row logged before the stop is on disk (possibly beyond the newest checkpoint)
    assert _rows_on_disk(ckpt)[: on_disk[-1]] == list(range(1, on_disk[-1] + 1))
    _resume_to_the_end(script, reference, tmp_path, "grad", on_disk[-1])


@pytest.mark.slow
def test_sigint_with_stdout_closed_still_saves_and_resumes(script, reference, tmp_path):
    # `realax ... | head`: the reader of stdout is gone; verbose rows and checkpoint lines
    # written to it must not stop the run or the save
    ckpt = tmp_path / "es"
    run = _Watched(script, "es", tmp_path, 0.3, "verbose", stdout=subprocess.PIPE)
    assert run.proc.stdout is not None
    run.proc.stdout.close()
    _wait_for_checkpoint(run.proc, ckpt)
    run.proc.send_signal(signal.SIGINT)
    code = run.end()
    assert code != 0 and "KeyboardInterrupt" in run.err, run.err[-3000:]
    saved = int(run.err.split("checkpoint of step ")[1].split()[0])
    assert sp.steps_on_disk(ckpt)[-1] == saved
    assert not list(ckpt.glob("*orbax-checkpoint-tmp*"))
    _resume_to_the_end(script, reference, tmp_path, "es", saved)
