"""``Logger``: metrics and checkpoints out of compiled JAX training loops."""

from __future__ import annotations

import collections
import contextlib
import datetime
import functools
import json
import logging
import signal
import socket
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap
from jax.experimental import io_callback

from . import _checkpoint, _metrics_file, _serialize, _wandb, _wandb_reader

MetricsFn = Callable[[Any, Any], tuple[Mapping[str, Any], Any, Any]]


def _positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(
            f"{name} must be a positive int{' or None' if allow_none else ''} (got {name}="
            f"{value!r}); e.g. {name}=100"
        )


def _seed_label(idx: tuple[int, ...]) -> str:
    return "seed" + "_".join(str(i) for i in idx)


#: the signals a Logger turns into "checkpoint, then stop" (see Logger.save_on_interrupt)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: seconds between two writes of the buffered metrics rows (rows also go to disk before
#: every checkpoint and in flush() / finish())
_FLUSH_INTERVAL = 0.25


class _StopTraining(KeyboardInterrupt):
    """Raised inside the checkpoint callback to abort a compiled loop after SIGINT/SIGTERM;
    ``save_on_interrupt`` replaces it with ``KeyboardInterrupt`` or :class:`Terminated`."""


class _HideStop(logging.Filter):
    """Drops jax's "io_callback failed" log record (and traceback) for a planned stop."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, _StopTraining)


_JAX_CALLBACK_LOGGER = "jax._src.callback"


class Terminated(SystemExit):
    """Raised by a training loop stopped by SIGTERM, once its checkpoint is on disk.

    A :class:`SystemExit` with exit status 143 (128 + SIGTERM, what a process killed by
    SIGTERM reports), so an uncaught one ends the script quietly, after ``finally`` blocks
    and ``with logger:`` have run, and a scheduler sees the usual status of a terminated job.
    Catch it to do something else first (e.g. requeue the job).

    Attributes:
        step: the step of the checkpoint saved before stopping (``None`` if none was saved).
        ckpt_dir: where it was saved.

    Example:
        >>> import realax.log as rlog
        >>> try:  # doctest: +SKIP
        ...     state, _ = trainer.train(state)
        ... except rlog.Terminated as e:
        ...     print("preempted; resume from step", e.step)
        ...     raise
    """

    def __init__(self, message: str, step: int | None = None, ckpt_dir: Path | None = None):
        super().__init__(message)
        self.code = 128 + int(signal.SIGTERM)
        self.step = step
        self.ckpt_dir = ckpt_dir

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Logger:
    """Logs metrics to wandb and a local file and checkpoints the training state, from inside
    ``jit``, ``lax.scan`` and ``lax.fori_loop``.

    Each call to :meth:`log` (made by the trainer after every step) runs ``metrics_fn(state,
    data) -> (log_data, ckpt_data, step)`` in the compiled program and sends ``log_data`` (a
    small dict of scalars) to the host with an ordered ``io_callback``; ``ckpt_data`` (by
    default the whole state) crosses to the host only when ``step % ckpt_freq == 0``. On the
    host the per-step callback only appends the row to a buffer; a background thread writes
    the buffered rows to ``metrics.jsonl`` and the wandb run every 0.25 s (and before each
    checkpoint), and another thread hands checkpoints to orbax, so the loop never waits on
    disk or network. If checkpoints are requested faster than they can be written (an orbax
    save of a small state takes tens of milliseconds), up to 16 wait and older waiting ones
    are then skipped in favour of newer ones, with one warning; the newest is always written.
    Call :meth:`finish` at the end: it writes the remaining rows, waits for pending
    checkpoints, closes the wandb run and the metrics file.

    Under ``jax.vmap`` (e.g. several seeds trained at once) one host call per step carries
    every seed: the metrics file gets one row per seed with a ``"seed"`` field (the index along
    the vmapped axis, a list for nested vmaps), wandb gets keys ``seed<i>/<name>``, and the
    checkpoint holds the whole batched state (restore it with a batched ``like``). A
    checkpoint is taken when any seed's step is a multiple of ``ckpt_freq``. Inside ``pmap``
    each device would call back separately: call ``log`` outside the per-device function.

    In a multi-process run (``jax.distributed``) every process builds the same Logger and
    calls the same methods, but only process 0 writes metrics, wandb and checkpoints (the
    state is the same on every process); :meth:`finish` waits for it on every process.

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
        resume: the run directory (``ckpt_dir``, or ``log_dir``) may already hold a run, to
            be continued: checkpoints are kept, steps saved again overwrite the old ones and
            metrics rows are appended (:func:`realax.log.read_metrics` keeps the newest row
            of a step). Also fine on an empty directory, so one script can start or resume.
        overwrite: delete the checkpoints and metrics a previous run left in the directory
            and start afresh. Without ``resume`` or ``overwrite`` a directory that already
            holds a run raises ``FileExistsError``: a run is never overwritten silently.
        checkpoint_on_interrupt: when training with a trainer (or inside
            :meth:`save_on_interrupt`), Ctrl-C (SIGINT) saves a checkpoint of the next step
            and then stops with ``KeyboardInterrupt``; SIGTERM (e.g. a SLURM preemption)
            does the same and stops with :class:`Terminated` (a ``SystemExit``, status 143).
            A second signal stops at once.
        verbose: print each logged step and checkpoint.
        ckpt_file: alias of ``ckpt_dir`` (name used by earlier realax versions).
        log_dir: where ``metrics.jsonl`` goes when there is no ``ckpt_dir`` (default: the
            wandb run directory, else ``./realax_runs/<time>-<id>``).
        mode: wandb mode for :meth:`init`: ``"online"``, ``"offline"`` or ``"disabled"``
            (default: ``WANDB_MODE``, else online). Online runs that cannot reach the server
            continue offline with one warning.

    Example:
        >>> import realax.log as rlog
        >>> logger = rlog.Logger(wandb_log=True, metrics_fn=rlog.default_es_metrics,
        ...                      ckpt_dir="runs/es", ckpt_freq=50)
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
    ):
        if not isinstance(wandb_log, bool | np.bool_):
            raise TypeError(f"wandb_log must be True or False, got {wandb_log!r}")
        if not callable(metrics_fn):
            raise TypeError(
                "metrics_fn must be a function (state, data) -> (log_data, ckpt_data, step), "
                f"got {type(metrics_fn).__name__}; e.g. realax.log.default_es_metrics"
            )
        if host_log_transform is not None and not callable(host_log_transform):
            raise TypeError(
                f"host_log_transform must be callable or None, got {type(host_log_transform)}"
            )
        if ckpt_file is not None:
            if ckpt_dir is not None and Path(ckpt_dir) != Path(ckpt_file):
                raise ValueError(
                    f"ckpt_file is an alias of ckpt_dir; got both (ckpt_dir={str(ckpt_dir)!r}, "
                    f"ckpt_file={str(ckpt_file)!r}); pass only ckpt_dir"
                )
            ckpt_dir = ckpt_file
        _positive_int("ckpt_freq", ckpt_freq)
        _positive_int("max_to_keep", max_to_keep, allow_none=True)
        if mode is not None:
            mode = _wandb.resolve_mode(mode)
        for name, flag in (
            ("resume", resume),
            ("overwrite", overwrite),
            ("checkpoint_on_interrupt", checkpoint_on_interrupt),
        ):
            if not isinstance(flag, bool | np.bool_):
                raise TypeError(f"{name} must be True or False, got {name}={flag!r}")
        if resume and overwrite:
            raise ValueError(
                "resume=True and overwrite=True contradict each other; pass resume=True to "
                "continue the run in ckpt_dir or overwrite=True to replace it"
            )
        for directory in (ckpt_dir, log_dir):
            if directory is not None:
                _checkpoint.prepare_dir(
                    Path(directory).expanduser().resolve(),
                    resume=bool(resume),
                    overwrite=bool(overwrite),
                )
        self.resume = bool(resume)
        self.overwrite = bool(overwrite)
        self.checkpoint_on_interrupt = bool(checkpoint_on_interrupt)
        self.wandb_log = bool(wandb_log)
        self.metrics_fn = metrics_fn
        self.host_log_transform = host_log_transform
        self.ckpt_dir = None if ckpt_dir is None else Path(ckpt_dir).expanduser().resolve()
        self.ckpt_freq = int(ckpt_freq)
        self.max_to_keep = max_to_keep
        self.verbose = bool(verbose)
        self.mode = mode
        self._log_dir = None if log_dir is None else Path(log_dir).expanduser().resolve()
        self.run = None
        self._lock = threading.Lock()
        self._warned_no_init = False
        self._initialized = False
        self._metrics: _metrics_file.MetricsFile | None = None
        self._ckpt: _checkpoint.CheckpointWriter | None = None
        # metrics rows logged but not yet written: (seed_dims, log_tree, step, leaves)
        self._rows: collections.deque = collections.deque()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._errors: list[BaseException] = []
        # SIGINT / SIGTERM handling (see save_on_interrupt)
        self._guarded = False
        self._signal_count = 0
        self._stop_signal: int | None = None
        self._interrupted_step: int | None = None

    # ------------------------------------------------------------------ host side setup
    @property
    def run_dir(self) -> Path:
        """Directory of ``metrics.jsonl`` (the ``ckpt_dir`` when there is one)."""
        if self.ckpt_dir is not None:
            return self.ckpt_dir
        if self._log_dir is None:
            if self.run is not None:
                self._log_dir = Path(self.run.dir).parent
            else:
                stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
                self._log_dir = Path("realax_runs", f"{stamp}-{uuid.uuid4().hex[:6]}").resolve()
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
        if not _checkpoint.is_primary():
            # Multi-process runs: only process 0 writes wandb, metrics and checkpoints.
            self._initialized = True
            return self
        if self.wandb_log:
            if self.run is not None:
                self.run.finish()
            mode = wandb_kwargs.pop("mode", self.mode)
            self.run = _wandb.start_run(project=project, config=config, mode=mode, **wandb_kwargs)
        self._initialized = True
        self._open()
        if config is not None:
            (self.run_dir / "config.json").write_text(json.dumps(dict(config), default=repr))
        return self

    def _open(self) -> None:
        with self._lock:
            if self._metrics is None:
                self._metrics = _metrics_file.MetricsFile(self.run_dir)
            if self.ckpt_dir is not None and self._ckpt is None:
                self._ckpt = _checkpoint.CheckpointWriter(
                    self.ckpt_dir,
                    max_to_keep=self.max_to_keep,
                    verbose=self.verbose,
                    before_save=self._drain_rows,
                )
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._writer, name="realax-log-writer", daemon=True
                )
                self._thread.start()

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
        out = self.metrics_fn(state, data)
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
        log_leaves, log_tree = jax.tree_util.tree_flatten(
            {k: jnp.asarray(v) for k, v in log_data.items()}
        )
        if self.ckpt_dir is not None and ckpt_data is not None:
            ck_leaves, paths, impls = _serialize.split_keys(ckpt_data)
            ck_leaves = [jnp.asarray(x) for x in ck_leaves]
        else:
            ck_leaves, paths, impls = [], None, None
        checkpoint = bool(ck_leaves) or paths is not None
        # A host callback that returns a value cannot be used in a program spanning several
        # processes (its result would have to come from process 0 to every process), so
        # Ctrl-C checkpoints are a single-process feature; multi-process runs rely on the
        # periodic checkpoints.
        answer = checkpoint and self.checkpoint_on_interrupt and not _multi_process()
        emit = self._emitter(
            0,
            log_tree,
            len(log_leaves),
            tuple(paths or ()),
            tuple(impls or ()),
            checkpoint,
            answer,
        )
        emit(step, *log_leaves, *ck_leaves)

    def _emitter(self, seed_dims, log_tree, n_log, paths, impls, checkpoint, answer):
        """A custom_vmap'd function sending one step to the host.

        Its vmap rule adds the mapped axis to every argument and recurses with
        ``seed_dims + 1``, so a vmapped loop makes one host call per step for all seeds
        (and ``lax.cond`` keeps an unbatched predicate).
        """
        log_cb = functools.partial(self._host_log, seed_dims, log_tree)
        ckpt_cb = functools.partial(self._host_ckpt, seed_dims, paths, impls)
        freq = self.ckpt_freq

        @custom_vmap
        def emit(step, *leaves):
            if not answer:
                io_callback(log_cb, None, step, list(leaves[:n_log]), ordered=True)
                if checkpoint:
                    ck = list(leaves[n_log:])
                    lax.cond(
                        jnp.any(step % freq == 0),
                        lambda: io_callback(ckpt_cb, None, step, ck, ordered=True),
                        lambda: None,
                    )
                return jnp.zeros((), jnp.int32)
            # The log callback answers whether Ctrl-C was pressed: then this step is
            # checkpointed (and the checkpoint callback stops the run).
            interrupted = io_callback(
                functools.partial(log_cb, answer=True),
                jax.ShapeDtypeStruct((), jnp.bool_),
                step,
                list(leaves[:n_log]),
                ordered=True,
            )
            ck = list(leaves[n_log:])
            lax.cond(
                jnp.any(step % freq == 0) | interrupted,
                lambda: io_callback(ckpt_cb, None, step, ck, ordered=True),
                lambda: None,
            )
            return jnp.zeros((), jnp.int32)

        @emit.def_vmap
        def _rule(axis_size, in_batched, step, *leaves):
            args = [
                x if b else jnp.broadcast_to(x, (axis_size, *jnp.shape(x)))
                for x, b in zip((step, *leaves), in_batched, strict=True)
            ]
            inner = self._emitter(seed_dims + 1, log_tree, n_log, paths, impls, checkpoint, answer)
            return inner(*args), False

        return emit

    # ------------------------------------------------------------------ host callbacks
    def _host_log(self, seed_dims, log_tree, step, leaves, answer=False):
        # Runs once per step on the thread executing the compiled loop: keep it minimal (the
        # rows are converted and written by the writer thread, in batches).
        if _checkpoint.is_primary():
            self._rows.append((seed_dims, log_tree, step, leaves))
            if self._thread is None:
                self._open()
        if answer:
            # a stop signal (SIGINT/SIGTERM) was seen by the watcher thread: checkpoint now
            return np.bool_(self._guarded and self._stop_signal is not None)
        return None

    def _host_ckpt(self, seed_dims, paths, impls, step, leaves) -> None:
        if not _checkpoint.is_primary():
            return
        stop_signal = self._stop_signal if self._guarded else None
        step = np.asarray(step)
        arrays = [np.array(x, copy=True) for x in leaves]
        if seed_dims and np.unique(step).size > 1:
            warnings.warn(
                f"realax.log: vmapped seeds are at different steps {np.unique(step).tolist()}; "
                f"checkpoint saved under step {int(step.max())}",
                RuntimeWarning,
                stacklevel=1,
            )
        if self._ckpt is None:
            self._open()
        self._ckpt.submit(
            int(step.max()),
            arrays,
            list(paths),
            list(impls),
            seed_dims,
            supersede=stop_signal is not None,
        )
        if stop_signal is not None:
            # SIGINT/SIGTERM: make this checkpoint (and the rows before it) durable, then
            # abort the compiled loop; save_on_interrupt turns this into the right exception.
            self._ckpt.wait()
            self._drain_rows()
            self._interrupted_step = int(step.max())
            raise _StopTraining(
                f"realax.log: stopped by signal {stop_signal}; checkpoint of step "
                f"{self._interrupted_step} saved in {self.ckpt_dir}"
            )

    def _drain_rows(self) -> None:
        """Write every buffered metrics row (in logging order); thread-safe."""
        with self._write_lock:
            rows = self._rows
            batch = []
            while rows:
                batch.append(rows.popleft())
            if not batch:
                return
            try:
                self._write_batch(batch)
            except BaseException as e:
                if not self._errors:
                    warnings.warn(
                        f"realax.log: writing logged metrics failed: {e!r}",
                        RuntimeWarning,
                        stacklevel=1,
                    )
                self._errors.append(e)

    # ------------------------------------------------------------------ SIGINT / SIGTERM
    def _interrupt_requested(self) -> bool:
        return self._guarded and self._stop_signal is not None

    def _watch(self, reader: socket.socket) -> None:
        """Thread: read the signal numbers the C-level handler writes to the wakeup fd.

        The main thread is usually blocked inside XLA while a compiled loop runs, and Python
        signal handlers only run between bytecodes of the main thread; this thread records
        the first stop signal at once, so the per-step callback only reads an attribute.
        A zero byte (sent by save_on_interrupt on exit) ends the thread.
        """
        while True:
            try:
                data = reader.recv(256)
            except OSError:
                return
            if not data:
                return
            for b in data:
                if b in _STOP_SIGNALS and self._stop_signal is None:
                    self._stop_signal = b
            if 0 in data:
                return

    @contextlib.contextmanager
    def save_on_interrupt(self):
        """Context manager: SIGINT (Ctrl-C) or SIGTERM inside saves a checkpoint, then stops.

        The trainers of ``realax.train`` enter it around every compiled loop, so it is
        rarely needed directly. While active, the first SIGINT or SIGTERM does not kill the
        process: the next step that reaches :meth:`log` is checkpointed (whatever
        ``ckpt_freq``), the checkpoint and the metrics rows before it are waited for, and
        the loop stops with ``KeyboardInterrupt`` (SIGINT) or :class:`Terminated` (SIGTERM,
        a ``SystemExit`` with status 143), naming the step. A second signal stops at once
        without saving. The signal is noticed by a watcher thread; the compiled loop acts on
        it at its next step, so the delay is one step (plus the time of one save).

        On SLURM, ask for SIGTERM some time before the job is killed (``#SBATCH
        --signal=TERM@60``: 60 s before the time limit; preemption sends SIGTERM and waits
        ``GraceTime``); the script then stops with a fresh checkpoint and, started again with
        ``resume=True``, continues bit-identically.

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
            or self._guarded
            or threading.current_thread() is not threading.main_thread()
            or _multi_process()  # see log(): no Ctrl-C checkpoints across processes
        ):
            yield
            return
        reader, writer = socket.socketpair()
        writer.setblocking(False)

        def handler(signum, frame):
            # runs in the main thread once it executes Python again; the first signal was
            # already recorded by the watcher, a second one stops at once
            del frame
            self._signal_count += 1
            if self._stop_signal is None:
                self._stop_signal = signum
            if self._signal_count > 1:
                if signum == signal.SIGTERM:
                    raise Terminated("realax.log: second signal (SIGTERM): stopped without saving")
                raise KeyboardInterrupt("realax.log: second signal: stopped without saving")

        previous = {sig: signal.signal(sig, handler) for sig in _STOP_SIGNALS}
        previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._signal_count = 0
        self._stop_signal = None
        self._interrupted_step = None
        watcher = threading.Thread(
            target=self._watch, args=(reader,), name="realax-log-signals", daemon=True
        )
        watcher.start()
        hide = _HideStop()
        logging.getLogger(_JAX_CALLBACK_LOGGER).addFilter(hide)
        self._guarded = True
        error: BaseException | None = None
        try:
            yield
        except BaseException as e:  # noqa: BLE001 - re-raised below
            error = e
        finally:
            self._guarded = False
            logging.getLogger(_JAX_CALLBACK_LOGGER).removeFilter(hide)
            signal.set_wakeup_fd(previous_fd)
            for sig, prev in previous.items():
                signal.signal(sig, prev)
            with contextlib.suppress(OSError):
                writer.send(b"\0")
            watcher.join(timeout=5.0)
            reader.close()
            writer.close()
        sig = self._stop_signal
        if sig is None:
            if error is not None:
                raise error
            return
        name = signal.Signals(sig).name
        if self._interrupted_step is not None:
            message = (
                f"realax.log: stopped by {name}; checkpoint of step {self._interrupted_step} "
                f"saved in {self.ckpt_dir}"
            )
        else:
            # the signal arrived but no step was logged afterwards: honour it now
            message = f"realax.log: stopped by {name} (no step was logged after it)"
        if sig == signal.SIGTERM:
            if not isinstance(error, Terminated):
                print(message, file=sys.stderr, flush=True)
                raise Terminated(message, self._interrupted_step, self.ckpt_dir) from error
            raise error
        raise KeyboardInterrupt(message) from error

    def checkpoint_now(self, state: Any, step: int | None = None) -> None:
        """Save ``state`` as a checkpoint at once, from the host, and wait until it is on disk.

        For hand-written Python loops, e.g. in an ``except KeyboardInterrupt`` block.

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
        if self.ckpt_dir is None:
            raise ValueError("checkpoint_now needs a Logger with a ckpt_dir (got ckpt_dir=None)")
        if step is None:
            if not hasattr(state, "step"):
                raise TypeError(
                    f"checkpoint_now(state) needs state.step or an explicit step (got a "
                    f"{type(state).__name__} without a step field); pass step=..."
                )
            step = state.step
        step_arr = np.asarray(jax.device_get(step))
        if not _checkpoint.is_primary():
            return
        leaves, paths, impls = _serialize.split_keys(state)
        arrays = [np.array(jax.device_get(x), copy=True) for x in leaves]
        if self._ckpt is None:
            self._open()
        self._ckpt.submit(int(step_arr.max()), arrays, list(paths), list(impls), 0)
        self._ckpt.wait()

    def _writer(self) -> None:
        """Thread: write the buffered rows every ``_FLUSH_INTERVAL`` seconds, in one batch."""
        while not self._stopping:
            self._wake.wait(_FLUSH_INTERVAL)
            self._wake.clear()
            self._drain_rows()

    def _write_batch(self, batch: list) -> None:
        lines = []
        for seed_dims, log_tree, step, leaves in batch:
            step = np.asarray(step)
            values = jax.tree_util.tree_unflatten(log_tree, [np.asarray(x) for x in leaves])
            lines += self._write(seed_dims, step, values)
        self._metrics.write_lines(lines)

    def _write(self, seed_dims: int, step: np.ndarray, values: dict) -> list[dict]:
        """Send one logged step to wandb; return its metrics-file rows (one per seed)."""
        rows = []
        if self.host_log_transform is not None:
            values = dict(self.host_log_transform(dict(values)))
        seed_shape = step.shape[:seed_dims]
        for idx in np.ndindex(*seed_shape):
            row: dict[str, Any] = {"step": int(step[idx])}
            if seed_dims:
                row["seed"] = idx[0] if seed_dims == 1 else list(idx)
            for k, v in values.items():
                if isinstance(v, np.ndarray | np.generic | int | float | bool):
                    row[k] = _metrics_file.to_json_value(np.asarray(v)[idx])
            rows.append(row)
            if self.verbose:
                shown = " ".join(
                    f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in row.items()
                    if not isinstance(v, list)
                )
                print(f"[realax.log] {shown}")
        if self.wandb_log:
            if self.run is None:
                if not self._initialized and not self._warned_no_init:
                    self._warned_no_init = True
                    warnings.warn(
                        "realax.log: Logger(wandb_log=True) is logging but Logger.init(...) was "
                        "not called; metrics go to metrics.jsonl only. Call "
                        "logger.init(project=..., config=...) before training.",
                        RuntimeWarning,
                        stacklevel=1,
                    )
                return rows
            if seed_dims == 0:
                payload = {k: _wandb_value(v) for k, v in values.items()}
            else:
                payload = {}
                for idx in np.ndindex(*seed_shape):
                    for k, v in values.items():
                        if isinstance(v, np.ndarray):
                            payload[f"{_seed_label(idx)}/{k}"] = _wandb_value(v[idx])
            self.run.log(payload, step=int(step.max()))
        return rows

    # ------------------------------------------------------------------ end of run
    def flush(self) -> None:
        """Write every step logged so far (checkpoints may still be saving)."""
        jax.effects_barrier()
        self._drain_rows()

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
        errors = []
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join()
            self._thread = None
        self._drain_rows()
        if self._ckpt is not None:
            try:
                self._ckpt.close()
            except RuntimeError as e:
                errors.append(e)
            self._ckpt = None
        if self.run is not None:
            sync_file = getattr(self.run.settings, "sync_file", None)
            self.run.finish()
            self.run = None
            if sync_file:
                _wait_for_run_file(sync_file)
        self._initialized = False
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        errors.extend(self._errors)
        self._errors = []
        if _multi_process():
            # Every process calls finish(); none returns before process 0 has written the
            # last checkpoint, so a restore right after finish() sees the complete run.
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("realax.log.Logger.finish")
        if errors:
            raise RuntimeError(f"realax.log: {len(errors)} error(s) during logging") from errors[0]

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc) -> None:
        self.finish()


def _multi_process() -> bool:
    return jax.distributed.is_initialized() and jax.process_count() > 1


def _wait_for_run_file(path: str, timeout: float = 15.0) -> None:
    """wandb's service writes the end of the ``.wandb`` file after ``run.finish()`` returns;
    wait (bounded) until the exit record is on disk so the run can be read or synced."""
    deadline = time.monotonic() + timeout
    while not _wandb_reader.is_complete(path):
        if time.monotonic() > deadline:
            warnings.warn(
                f"realax.log: wandb had not finished writing {path} after {timeout:.0f} s",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        time.sleep(0.05)


def _wandb_value(v: Any) -> Any:
    if isinstance(v, np.ndarray | np.generic):
        a = np.asarray(v)
        return a.item() if a.ndim == 0 else a
    return v
