"""``Logger``: metrics and checkpoints out of compiled JAX training loops.

A small facade over the pieces of :mod:`realax.log`: the traced emitter (:mod:`._emit`), the
writer thread and its sinks (:mod:`._writer`, :mod:`._sinks`), the checkpoint writer
(:mod:`._ckpt_writer`), the run directory (:mod:`._rundir`), the interrupt guard
(:mod:`._interrupt`) and the multi-process helpers (:mod:`._hosts`).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np

from . import _blocks, _hosts, _options, _rundir
from ._ckpt_writer import Checkpoints
from ._emit import Emitter, abstract, call_metrics_fn, final_checkpoint
from ._handover import HandOver
from ._interrupt import StopOnSignal, Terminated
from ._sinks import run_sinks
from ._sweep_log import check_sweep, wandb_sink, write_sweep_file
from ._writer import RowWriter

MetricsFn = Callable[[Any, Any], tuple[Mapping[str, Any], Any, Any]]

__all__ = ["Logger", "MetricsFn", "Terminated"]


class Logger(HandOver):
    """Logs metrics to wandb and a local file and checkpoints the training state, from inside
    ``jit``, ``lax.scan``, ``lax.fori_loop`` and ``vmap``.

    Each :meth:`log` runs ``metrics_fn(state, data) -> (log_data, ckpt_data, step)`` in the
    compiled program and sends ``log_data`` (a small dict of scalars) to the host with an
    ordered ``io_callback``; the loops of realax.train instead carry a block of rows
    (:meth:`open_block`, :meth:`log_to_block`, :meth:`close_block`) and hand the rows of
    ``log_block`` steps over in one transfer (the same rows, in the same order). ``ckpt_data``
    (by default the whole state) crosses only when ``step % ckpt_freq == 0``, packed into one
    array per dtype, and is written without orbax (format ``realax-log/2``; checkpoints of
    earlier versions, written by orbax, still restore). On the host the callback only
    buffers the row: a writer thread writes the rows to ``metrics.jsonl`` (strict JSON: NaN
    and inf as ``null``) and the wandb run every 0.25 s and before each checkpoint, and
    another thread saves checkpoints with orbax, so the loop never waits on disk or network
    (checkpoints requested faster than they can be written: up to 16 wait, then the oldest
    waiting one is skipped with one warning; the newest is always written). After a run,
    :meth:`on_run_end` checkpoints the final step; at the end, :meth:`finish` writes what is
    left, waits for the checkpoints and closes the wandb run and the file.

    Under ``jax.vmap`` (seeds trained at once) one host call per step carries every seed: one
    row per seed with a ``"seed"`` field (a list for nested vmaps), wandb keys
    ``seed<i>/<name>``, and checkpoints of the whole batched state (restore it with a batched
    ``like``), taken when any seed's step is a multiple of ``ckpt_freq``. Inside ``pmap`` each
    device would call back separately: call ``log`` outside the per-device function. In a
    multi-process run (``jax.distributed``) every process builds the same Logger and calls
    the same methods; only process 0 writes, and :meth:`finish` waits for it everywhere.

    Args:
        wandb_log: also log to Weights & Biases (needs :meth:`init`).
        metrics_fn: ``(state, data) -> (log_data, ckpt_data, step)``, traced inside the loop;
            e.g. :func:`realax.log.default_es_metrics`. ``log_data`` is a dict of arrays
            (scalars are best); ``ckpt_data`` a pytree or ``None`` (no checkpoint);
            ``step`` an integer scalar.
        host_log_transform: optional host-side function applied to ``log_data`` (numpy
            values) before writing, e.g. to build ``wandb.Histogram``s. Values that are not
            numbers or arrays are sent to wandb only.
        ckpt_dir: directory for orbax checkpoints and ``metrics.jsonl``; ``None`` disables
            checkpoints.
        ckpt_freq: checkpoint when ``step % ckpt_freq == 0``.
        max_to_keep: keep at most this many checkpoints (``None``: all).
        resume: the run directory may already hold a run, to be continued: its complete
            checkpoints are kept (steps saved again overwrite them), half-written ones are
            removed, and the metrics rows after the newest checkpoint are dropped (and, at
            the first row written, those at or after its step), so a resumed run's file is
            byte-identical to an uninterrupted run's. Fine on an empty directory too.
        overwrite: delete the checkpoints and metrics a previous run left in the directory
            and start afresh. Without ``resume`` or ``overwrite`` a directory that already
            holds a run raises ``FileExistsError``: a run is never overwritten silently.
        checkpoint_on_interrupt: inside :meth:`save_on_interrupt` (entered by the trainers),
            SIGINT / SIGTERM checkpoint the next step, then stop; a second signal stops at
            once.
        verbose: print each logged step and checkpoint.
        ckpt_file: alias of ``ckpt_dir`` (name used by earlier realax versions).
        log_dir: where ``metrics.jsonl`` goes when there is no ``ckpt_dir`` (default: the
            wandb run directory, else ``./realax_runs/<time>-<id>``).
        mode: wandb mode for :meth:`init`: ``"online"``, ``"offline"`` or ``"disabled"``
            (default: ``WANDB_MODE``, else online). Online runs that cannot reach the server
            continue offline with one warning.
        sweep_configs: a sweep's configurations (dicts, in order): rows get ``config`` and
            ``seed`` columns, the folder a ``sweep.json`` (for :func:`realax.log.report`).
        sweep_wandb: ``"per_config"`` (one wandb run per configuration in a group, :attr:`runs`)
            or ``"table"`` (one run, keys ``config<i>/seed<j>/<name>``, a final ``sweep`` table).
        log_block: steps whose rows cross to the host together in the loops of realax.train
            (``None``: chosen from the step time, about every 0.1 s, at most 256). A stop
            signal is seen, and its checkpoint taken, at the end of the block.
        wandb_every: send only the rows whose step is a multiple of this to wandb
            (``metrics.jsonl`` keeps every row); ``run.log`` costs ~0.2 ms of CPU per row.

    Example:
        >>> import realax.log as rlog
        >>> logger = rlog.Logger(wandb_log=True, metrics_fn=rlog.default_es_metrics,
        ...                      ckpt_dir="runs/es", ckpt_freq=50)  # doctest: +SKIP
        >>> logger.init(project="es_example", config={"popsize": 32})  # doctest: +SKIP
        >>> trainer = EvosaxTrainer(..., logger=logger)  # doctest: +SKIP
        >>> state = trainer.init_and_train(jax.random.key(0))  # doctest: +SKIP
        >>> logger.finish()  # doctest: +SKIP
    """

    def __init__(
        self,
        wandb_log: bool,
        metrics_fn: MetricsFn,
        host_log_transform: Callable[[dict], dict] | None = None,
        ckpt_dir: str | Path | None = None,
        ckpt_freq: int = 100,
        max_to_keep: int | None = None,
        verbose: bool = False,
        ckpt_file: str | Path | None = None,
        *,
        log_dir: str | Path | None = None,
        mode: str | None = None,
        resume: bool = False,
        overwrite: bool = False,
        checkpoint_on_interrupt: bool = True,
        sweep_configs: Sequence[Mapping[str, Any]] | None = None,
        sweep_wandb: str = "per_config",
        log_block: int | None = None,
        wandb_every: int = 1,
    ):
        # the arguments are checked (each error names one) before anything is written
        _options.check_functions(metrics_fn, host_log_transform)
        self.ckpt_dir = _options.ckpt_dir_of(ckpt_dir, ckpt_file)
        self.wandb_log = _options.wandb_log_flag(wandb_log)
        self.ckpt_freq = int(_options.positive_int("ckpt_freq", ckpt_freq))
        self.max_to_keep = _options.positive_int("max_to_keep", max_to_keep, allow_none=True)
        self.log_block = _options.positive_int("log_block", log_block, allow_none=True)
        self.mode = _options.wandb_mode(mode)
        self.resume = _options.flag("resume", resume)
        self.overwrite = _options.flag("overwrite", overwrite)
        self.checkpoint_on_interrupt = _options.flag(
            "checkpoint_on_interrupt", checkpoint_on_interrupt
        )
        _options.check_resume_or_overwrite(self.resume, self.overwrite)
        self._sweep = check_sweep(sweep_configs, sweep_wandb)
        self._log_dir = None if log_dir is None else Path(log_dir).expanduser().resolve()
        _rundir.prepare_dirs(
            self.ckpt_dir, self._log_dir, resume=self.resume, overwrite=self.overwrite
        )
        self.metrics_fn = metrics_fn
        self.host_log_transform = host_log_transform
        self.verbose = bool(verbose)
        self._lock = threading.Lock()
        self._wandb = wandb_sink(self._sweep, sweep_wandb)
        self._wandb.every = int(_options.positive_int("wandb_every", wandb_every))
        self._writer = RowWriter([], host_log_transform, layout=self._sweep)
        self._opened = False
        ckpt, drain = self.ckpt_dir, self._writer.drain
        self._ckpt = Checkpoints(ckpt, max_to_keep, self.verbose, drain) if ckpt else None
        self._emitter = Emitter(self._on_log, self._on_ckpt, self.ckpt_freq)
        self._block_emitter = _blocks.BlockEmitter(self._on_rows, self._on_ckpt, self.ckpt_freq)
        self._clock = _blocks.BlockClock(self.log_block)
        self._log_tree: Any = None
        self._stop = StopOnSignal(on_hard_stop=self._writer.hard_flush)
        # what on_run_end needs to checkpoint a final state like the periodic checkpoints
        self._data_like: Any = None
        self._checkpoints_state = True  # False once metrics_fn gave ckpt_data=None
        self._seed_dims: int | None = None
        self._logged = False

    # ------------------------------------------------------------------ host side setup
    @property
    def run(self) -> Any:
        """The wandb run started by :meth:`init` (``None`` without one)."""
        return self._wandb.run

    @property
    def runs(self) -> list[Any]:
        """A sweep's wandb runs (one per configuration with ``sweep_wandb="per_config"``)."""
        return list(getattr(self._wandb, "runs", [self._wandb.run]))

    @property
    def run_dir(self) -> Path:
        """Directory of ``metrics.jsonl`` (the ``ckpt_dir`` when there is one)."""
        if self.ckpt_dir is not None:
            return self.ckpt_dir
        if self._log_dir is None:
            self._log_dir = _rundir.default_log_dir(self.run)
        return self._log_dir

    def init(
        self,
        project: str | None = None,
        config: Mapping[str, Any] | None = None,
        **wandb_kwargs: Any,
    ) -> Logger:
        """Start the wandb run (if ``wandb_log``) and write ``config.json`` to the run dir.

        Args:
            project: wandb project name.
            config: hyperparameters recorded with the run.
            **wandb_kwargs: further ``wandb.init`` arguments (``name``, ``group``, ``dir``,
                ``mode``, ``settings``, ...).

        Returns:
            The logger itself.

        Example:
            >>> logger.init(project="es_brax_example", config={"popsize": 32})  # doctest: +SKIP
        """
        if config is not None and not isinstance(config, Mapping):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        self._wandb.initialized = True
        if not _hosts.is_primary():
            return self  # multi-process runs: only process 0 writes wandb, metrics, checkpoints
        if self.wandb_log:
            self._wandb.start(project, config, **{"mode": self.mode, **wandb_kwargs})
        self._open()
        if config is not None:
            (self.run_dir / "config.json").write_text(json.dumps(dict(config), default=repr))
        return self

    def _open(self) -> None:
        with self._lock:
            if not self._opened:
                wandb = self._wandb if self.wandb_log else None
                self._writer.sinks = run_sinks(self.run_dir, self.resume, wandb, self.verbose)
                if self._sweep is not None:
                    write_sweep_file(self.run_dir, self._sweep)
                self._opened = True
            self._writer.start()

    # ------------------------------------------------------------------ traced side
    def log(self, state: Any, data: Any) -> None:
        """Log a step; callable inside ``jit``, ``lax.scan``, ``lax.fori_loop`` and ``vmap``.

        Args:
            state: the trainer state after the step.
            data: the step's metrics dict.

        Example:
            >>> def body(state, _):
            ...     state, metrics = trainer.train_step(state)  # doctest: +SKIP
            ...     logger.log(state, metrics)
            ...     return state, None
        """
        s, checkpoint = self._traced_step(state, data)
        answer = checkpoint and self.checkpoint_on_interrupt and not _hosts.multi_process()
        self._emitter.emit(s, checkpoint=checkpoint, answer=answer)

    def _traced_step(self, state: Any, data: Any) -> tuple[Any, bool]:
        s = call_metrics_fn(self.metrics_fn, state, data)
        self._data_like = abstract(data)
        self._checkpoints_state = s.ckpt_data is not None
        return s, self.ckpt_dir is not None and s.ckpt_data is not None

    # ------------------------------------------------------------------ SIGINT / SIGTERM
    @contextlib.contextmanager
    def save_on_interrupt(self) -> Iterator[None]:
        """Context manager: SIGINT (Ctrl-C) or SIGTERM inside saves a checkpoint, then stops.

        The trainers of ``realax.train`` enter it around every compiled loop, so it is
        rarely needed directly. While active, the first SIGINT or SIGTERM does not kill the
        process: a line saying so is printed on stderr at once, the next step that reaches
        :meth:`log` is checkpointed (whatever ``ckpt_freq``), the checkpoint and the metrics
        rows before it are waited for, and the loop stops with ``KeyboardInterrupt``
        (SIGINT) or :class:`Terminated` (SIGTERM, a ``SystemExit`` with status 143), naming
        the step. A second signal stops the process at once, cleanly: the metrics rows
        logged so far are written, every complete checkpoint stays (a half-written one is
        removed when the run is resumed) and the process exits with status 130 (143 for a
        second SIGTERM). Signals are handled by an :class:`InterruptGuard`. On SLURM, ask
        for SIGTERM before the job is killed (``#SBATCH --signal=TERM@60``).

        Without a ``ckpt_dir``, with ``checkpoint_on_interrupt=False``, outside the main
        thread or in a multi-process run (which relies on its periodic checkpoints) it does
        nothing.

        Example:
            >>> with logger.save_on_interrupt():  # doctest: +SKIP
            ...     state = jax.jit(my_loop)(state)  # my_loop calls logger.log each step
            ...     jax.block_until_ready(state)
        """
        if (
            self.ckpt_dir is None
            or not self.checkpoint_on_interrupt
            or self._stop.active
            or _hosts.multi_process()  # see log(): no Ctrl-C checkpoints across processes
        ):
            yield
            return
        with self._stop.guarding(self.ckpt_dir):
            yield

    # ------------------------------------------------------------------ host-side saves
    def checkpoint_now(self, state: Any, step: int | None = None) -> None:
        """Save ``state`` as a checkpoint at once, from the host, and wait until it is on disk.

        For hand-written Python loops, e.g. in an ``except KeyboardInterrupt`` block. A state
        with a leading seed axis (vmapped seeds) is saved whole, under the largest step.

        Args:
            state: the pytree to save (restore it with :func:`realax.log.restore`).
            step: checkpoint step (default ``state.step``).

        Example:
            >>> try:  # doctest: +SKIP
            ...     for _ in range(n): state, m = step_fn(state)
            ... except KeyboardInterrupt:
            ...     logger.checkpoint_now(state)
            ...     raise
        """
        step = _options.step_of(state, step, self.ckpt_dir)
        if _hosts.is_primary():
            assert self._ckpt is not None
            self._ckpt.save_tree(state, np.asarray(jax.device_get(step)))

    def on_run_end(self, state: Any) -> None:
        """Called by the trainers once a compiled run has returned normally, with its final
        state: checkpoints it unless that step is saved already (so the last step of a run
        is always on disk, whatever ``ckpt_freq``) and writes the buffered metrics rows.

        Cheap when the step is saved already; calling it again does nothing more. The state
        may have leading seed axes (vmapped seeds): it is saved whole, like the periodic
        checkpoints. What is saved is ``metrics_fn``'s ``ckpt_data`` of the final state
        (with the step's metrics replaced by zeros: by default the whole state); with
        ``ckpt_data=None`` or without a ``ckpt_dir`` nothing is saved.

        Args:
            state: the state returned by the run.

        Example:
            >>> state, metrics = trainer.train(state)  # doctest: +SKIP
            >>> logger.on_run_end(state)  # doctest: +SKIP
        """
        jax.effects_barrier()  # every callback of the run has been handled
        if self._ckpt is not None and self._checkpoints_state and _hosts.is_primary():
            seed_dims = self._seed_dims
            if seed_dims is None:  # nothing logged: the state's own step tells
                seed_dims = np.ndim(getattr(state, "step", 0))
            final = final_checkpoint(self.metrics_fn, state, self._data_like, seed_dims)
            if final is not None and final[0] is not None:
                ckpt_data, step = final
                if not self._ckpt.is_saved(int(step.max()), logged=self._logged):
                    self._ckpt.save_tree(ckpt_data, step)
        self._writer.drain()

    # ------------------------------------------------------------------ end of run
    def flush(self) -> None:
        """Write every step logged so far (checkpoints may still be saving)."""
        jax.effects_barrier()
        self._writer.drain()

    def wait(self) -> None:
        """:meth:`flush`, then wait for the checkpoints being saved; the run stays open until
        :meth:`finish` (``realax.log.log_video(logger.run, path)`` can still add to it)."""
        self.flush()
        if self._ckpt is not None:
            self._ckpt.wait()

    def finish(self) -> None:
        """Wait for pending logs and checkpoints, close the wandb run and the metrics file.

        In a multi-process run every process must call it: it returns once process 0 has
        written everything (a barrier), so any process can then restore the last checkpoint.

        Raises:
            RuntimeError: a checkpoint or a metrics row could not be written during the run.

        Example:
            >>> logger.finish()  # doctest: +SKIP
        """
        jax.effects_barrier()
        errors: list[BaseException] = []
        self._writer.stop()
        if self._ckpt is not None:
            try:
                self._ckpt.close()
            except RuntimeError as e:
                errors.append(e)
        with self._lock:
            self._writer.close()  # the metrics file, the wandb run
            self._writer.sinks = []
            self._opened = False
        errors.extend(self._writer.errors)
        self._writer.errors = []
        # Every process calls finish(); none returns before process 0 has written the last
        # checkpoint, so a restore right after finish() sees the complete run.
        _hosts.barrier("realax.log.Logger.finish")
        if errors:
            raise RuntimeError(f"realax.log: {len(errors)} error(s) during logging") from errors[0]

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()
