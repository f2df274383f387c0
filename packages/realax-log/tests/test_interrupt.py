"""realax.log.InterruptGuard: the first signal is a request, a second one ends the process at
once (status 128 + signal) after the guards' on_hard_stop callbacks."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import realax.log as rlog


def _wait(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_first_signal_is_recorded_said_and_shared_by_nested_guards(capfd):
    before = signal.getsignal(signal.SIGINT)
    with rlog.InterruptGuard() as outer:
        with rlog.InterruptGuard(message="saving, then stopping") as inner:
            assert outer.active and inner.active and not inner.requested
            os.kill(os.getpid(), signal.SIGTERM)
            _wait(lambda: inner.requested)
            assert inner.signal == outer.signal == signal.SIGTERM
        assert outer.requested  # still recorded for the outer guard
    assert not outer.requested and signal.getsignal(signal.SIGINT) is before
    err = capfd.readouterr().err
    assert "realax.log: SIGTERM received: saving, then stopping" in err


def test_guard_outside_the_main_thread_does_nothing():
    seen = {}

    def worker():
        with rlog.InterruptGuard() as guard:
            seen["active"] = guard.active

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == {"active": False}


def test_second_signal_runs_on_hard_stop_and_exits_with_128_plus_signal():
    code = textwrap.dedent(
        """
        import os, signal, time
        import realax.log as rlog

        with rlog.InterruptGuard(on_hard_stop=lambda: print("FLUSHED", flush=True)) as g:
            os.kill(os.getpid(), signal.SIGINT)
            while not g.requested:
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(60)
        print("NOT REACHED")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 130, out.stderr
    assert out.stdout == "FLUSHED\n"
    assert "second signal (SIGINT): stopping now" in out.stderr
    assert "Traceback" not in out.stderr
