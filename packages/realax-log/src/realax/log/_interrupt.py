"""Ctrl-C and SIGTERM: the first signal asks the run to stop after saving, a second one stops
the process at once.

:class:`InterruptGuard` is the public piece: a context manager that, while active in the main
thread, catches SIGINT and SIGTERM. The first one is recorded (``guard.requested``) and a
message is printed at once; code inside polls ``requested`` (the Logger does it at every
step) and stops in its own time. A second signal stops the process at once and cleanly: the
guards' ``on_hard_stop`` callbacks run (the Logger writes its buffered metrics rows), stdout
and stderr are flushed and the process exits with status ``128 + signal`` (130 for SIGINT)
without unwinding, so no native thread is torn down half-way ("terminate called ...").

The signals are read by a watcher thread from the wakeup fd (``signal.set_wakeup_fd``): the
main thread is usually blocked inside XLA while a compiled loop runs, and Python-level signal
handlers only run between bytecodes of the main thread. Guards nest: the outermost one
installs the handlers, inner ones share what it records.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from ._console import flush_all, say

#: the signals a guard turns into "stop after saving" (and, a second time, "stop now")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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


class StopTraining(KeyboardInterrupt):
    """Raised inside the checkpoint callback to abort a compiled loop after SIGINT/SIGTERM;
    ``Logger.save_on_interrupt`` replaces it with ``KeyboardInterrupt`` or :class:`Terminated`."""


class HideStop(logging.Filter):
    """Drops jax's "io_callback failed" log record (and traceback) for a planned stop."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, StopTraining)


JAX_CALLBACK_LOGGER = "jax._src.callback"


class _Watch:
    """The process-wide part: signal handlers, wakeup socket and watcher thread, installed by
    the outermost active guard and shared by the guards nested in it."""

    def __init__(self) -> None:
        self.guards: list[InterruptGuard] = []
        self.signal: int | None = None
        self.count = 0
        self._lock = threading.Lock()
        self._sockets: tuple[socket.socket, socket.socket] | None = None
        self._previous: dict = {}
        self._previous_fd = -1
        self._thread: threading.Thread | None = None

    def enter(self, guard: InterruptGuard) -> bool:
        if threading.current_thread() is not threading.main_thread():
            return False
        with self._lock:
            if not self.guards:
                self._install()
            self.guards.append(guard)
        return True

    def exit(self, guard: InterruptGuard) -> None:
        with self._lock:
            self.guards.remove(guard)
            if not self.guards:
                self._uninstall()

    def _install(self) -> None:
        reader, writer = socket.socketpair()
        writer.setblocking(False)
        self._sockets = (reader, writer)
        self.signal, self.count = None, 0
        # the Python-level handler only keeps the default one (KeyboardInterrupt) away: the
        # watcher thread acts on every signal, even while the main thread is inside XLA
        self._previous = {sig: signal.signal(sig, _ignore) for sig in STOP_SIGNALS}
        self._previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
        self._thread = threading.Thread(
            target=self._watch, args=(reader,), name="realax-log-signals", daemon=True
        )
        self._thread.start()

    def _uninstall(self) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)
        assert self._sockets is not None
        reader, writer = self._sockets
        with contextlib.suppress(OSError):
            writer.send(b"\0")  # ends the watcher
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        reader.close()
        writer.close()
        self._sockets, self._thread = None, None
        self.signal, self.count = None, 0

    def _watch(self, reader: socket.socket) -> None:
        """Thread: act on the signal numbers the C-level handler writes to the wakeup fd; a
        zero byte (sent when the outermost guard exits) ends it."""
        while True:
            try:
                data = reader.recv(256)
            except OSError:
                return
            if not data:
                return
            for b in data:
                if b == 0:
                    return
                if b in STOP_SIGNALS:
                    self._received(b)

    def _received(self, signum: int) -> None:
        self.count += 1
        name = signal.Signals(signum).name
        if self.count == 1:
            self.signal = signum
            guards = list(self.guards)
            message = next((g.message for g in reversed(guards) if g.message), None)
            say(
                f"realax.log: {name} received: {message or 'stopping at the next step'} "
                "(send it again to stop at once)",
                err=True,
            )
            return
        say(f"realax.log: second signal ({name}): stopping now", err=True)
        for guard in reversed(list(self.guards)):
            if guard.on_hard_stop is not None:
                with contextlib.suppress(BaseException):  # stopping anyway
                    guard.on_hard_stop()
        flush_all()
        os._exit(128 + signum)


def _ignore(signum: int, frame: object) -> None:
    del signum, frame


_WATCH = _Watch()


class InterruptGuard:
    """Context manager: SIGINT (Ctrl-C) and SIGTERM ask the code inside to stop; a second
    signal stops the process at once, cleanly.

    While active (in the main thread), the first SIGINT or SIGTERM does not interrupt
    anything: :attr:`requested` becomes true, :attr:`signal` holds the signal number and a
    line is printed on stderr at once (``message`` says what happens next). The code inside
    checks :attr:`requested` where it can stop safely. A second signal runs the
    ``on_hard_stop`` callbacks of the active guards (innermost first), flushes stdout and
    stderr and ends the process with status ``128 + signal`` (130 after Ctrl-C, 143 after
    SIGTERM) at once, without unwinding the stack. A :class:`realax.log.Logger` writes its
    buffered metrics rows there; complete checkpoints are never touched, and a half-written
    one is removed when the run is resumed.

    Guards nest (e.g. a command line's guard around ``Logger.save_on_interrupt()``): inner
    guards see the signal the outer one recorded. Outside the main thread a guard does
    nothing (:attr:`active` is false).

    Args:
        message: what the first signal leads to, printed after ``"<SIGNAL> received: "``
            (default: ``"stopping at the next step"``).
        on_hard_stop: called (from a background thread, bounded work only) when a second
            signal stops the process.

    Example:
        >>> import realax.log as rlog
        >>> with rlog.InterruptGuard(message="stopping after this chunk") as guard:
        ...     for chunk in range(3):
        ...         if guard.requested:
        ...             break
        >>> guard.requested
        False
    """

    def __init__(
        self, message: str | None = None, on_hard_stop: Callable[[], None] | None = None
    ) -> None:
        if on_hard_stop is not None and not callable(on_hard_stop):
            raise TypeError(f"on_hard_stop must be callable or None, got {on_hard_stop!r}")
        self.message = message
        self.on_hard_stop = on_hard_stop
        self.active = False

    @property
    def signal(self) -> int | None:
        """The first stop signal received while active (``signal.SIGINT`` / ``SIGTERM``)."""
        return _WATCH.signal if self.active else None

    @property
    def requested(self) -> bool:
        """Whether a stop signal was received while the guard is active."""
        return self.signal is not None

    def __enter__(self) -> InterruptGuard:
        if self.active:
            raise RuntimeError("this InterruptGuard is already active; build a new one")
        self.active = _WATCH.enter(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.active:
            self.active = False
            _WATCH.exit(self)


class StopOnSignal:
    """What ``Logger.save_on_interrupt`` does with an :class:`InterruptGuard`: while
    :meth:`guarding`, :attr:`signal` tells the Logger's callbacks to checkpoint the next step
    (which records it in :attr:`step` and raises :class:`StopTraining`); on the way out the
    run ends with ``KeyboardInterrupt`` (SIGINT) or :class:`Terminated` (SIGTERM)."""

    def __init__(self, on_hard_stop: Callable[[], None]):
        self.on_hard_stop = on_hard_stop
        self.guard: InterruptGuard | None = None
        self.step: int | None = None

    @property
    def active(self) -> bool:
        return self.guard is not None

    @property
    def signal(self) -> int | None:
        guard = self.guard
        return guard.signal if guard is not None else None

    @contextlib.contextmanager
    def guarding(self, ckpt_dir: Path) -> Iterator[None]:
        guard = InterruptGuard(
            message="checkpointing the next step, then stopping", on_hard_stop=self.on_hard_stop
        )
        error: BaseException | None = None
        self.step = None
        hide = HideStop()
        with guard:
            if not guard.active:  # not the main thread
                yield
                return
            self.guard = guard
            logging.getLogger(JAX_CALLBACK_LOGGER).addFilter(hide)
            try:
                yield
            except BaseException as e:  # noqa: BLE001 - re-raised below
                error = e
            finally:
                sig = guard.signal
                self.guard = None
                logging.getLogger(JAX_CALLBACK_LOGGER).removeFilter(hide)
        if sig is None:
            if error is not None:
                raise error
            return
        stop = self._stop_error(sig, ckpt_dir, error)
        if stop is error:
            raise error
        raise stop from error

    def _stop_error(self, sig: int, ckpt_dir: Path, error: BaseException | None) -> BaseException:
        name = signal.Signals(sig).name
        if self.step is not None:
            message = f"realax.log: stopped by {name}; checkpoint of step {self.step} saved in "
            message += str(ckpt_dir)
        else:  # the signal arrived but no step was logged afterwards
            message = f"realax.log: stopped by {name} (no step was logged after it)"
        if sig != signal.SIGTERM:
            return KeyboardInterrupt(message)
        if isinstance(error, Terminated):
            return error
        say(message, err=True)
        return Terminated(message, self.step, ckpt_dir)
