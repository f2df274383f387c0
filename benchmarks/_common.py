"""Measurement helpers shared by every benchmark variant.

Only the standard library and jax are imported here, so the peer scripts under
``benchmarks/peers/*`` (which run in their own environments, without realax) use the same
definitions of compile time and run time as the realax variants.

* compile time: seconds JAX spends tracing, lowering and compiling (the
  ``/jax/core/compile/*`` duration events of ``jax.monitoring``) during the first call;
* run time: the median over ``repeats`` later calls of their wall time minus any compile
  time inside them (libraries that rebuild their jitted functions on every call, such as
  ``brax.training.agents.es.train``, recompile each time; that part is not run time);
* peak memory is measured by the parent process (``benchmarks/_harness.py``) from the
  variant's own subprocess, with ``os.wait4``.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

RESULT_MARKER = "@@BENCH_RESULT@@ "
_COMPILE_EVENTS = (
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
)
_compile_seconds = [0.0]
_installed = [False]


def _listener(event: str, duration: float, **kwargs: Any) -> None:
    del kwargs
    if event in _COMPILE_EVENTS:
        _compile_seconds[0] += duration


def compile_seconds() -> float:
    """Total seconds JAX has spent tracing/lowering/compiling in this process so far."""
    if not _installed[0]:
        import jax

        jax.monitoring.register_event_duration_secs_listener(_listener)
        _installed[0] = True
    return _compile_seconds[0]


def measure(call: Callable[[], Any], repeats: int) -> dict[str, Any]:
    """Time ``call`` (which must block until its results are ready) once cold, then
    ``repeats`` times warm (``repeats=0``, used by ``--quick`` for slow peers: the run time
    is the cold call's wall time net of compile).

    Returns a dict with ``compile_s`` (JAX compile time during the first call),
    ``first_call_s``, ``run_s`` (median warm time net of compile), ``run_times_s`` and
    ``out`` (the last call's return value).
    """
    compile_seconds()  # install the listener before anything is compiled
    c0, t0 = compile_seconds(), time.perf_counter()
    out = call()
    first = time.perf_counter() - t0
    compile_s = compile_seconds() - c0
    times = [] if repeats else [first - compile_s]  # repeats=0: the cold call, net of compile
    for _ in range(int(repeats)):
        c0, t0 = compile_seconds(), time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t0 - (compile_seconds() - c0))
    return {
        "compile_s": compile_s,
        "first_call_s": first,
        "run_s": statistics.median(times),
        "run_times_s": times,
        "out": out,
    }


def emit(result: dict[str, Any]) -> None:
    """Print a variant's result as one marked JSON line (read by the parent process)."""

    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items() if k != "out"}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        if hasattr(x, "item") and getattr(x, "size", 2) == 1:
            return x.item()
        if hasattr(x, "tolist"):
            return x.tolist()
        return x

    sys.stdout.write(RESULT_MARKER + json.dumps(clean(result)) + "\n")
    sys.stdout.flush()


def first_reaching(times: list[float], values: list[float], target: float) -> float | None:
    """Time of the first entry whose value is >= target (None if never)."""
    for t, v in zip(times, values, strict=True):
        if v >= target:
            return t
    return None
