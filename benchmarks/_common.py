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
  variant's own subprocess, with ``os.wait4``;
* ratios between variants come from calls run **interleaved** in one process (``interleaved``:
  round r of every variant before round r + 1), or, for variants that need their own process
  (a peer in its own environment), from ``measure`` calls that the parent paces round by round
  (``SERVE_ENV``, see ``measure``), so load from other jobs on the machine falls on every
  variant alike; ``ratio_stats`` gives the per-round ratios' median and spread, and
  ``load_sample`` the load average to record beside a result.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

RESULT_MARKER = "@@BENCH_RESULT@@ "
#: set to "1" by the parent (``benchmarks/_harness.py``) in a process whose ``measure`` it paces
SERVE_ENV = "REALAX_BENCH_SERVE"
READY_MARKER = "@@BENCH_READY@@ "
TIME_MARKER = "@@BENCH_TIME@@ "
_served = [False]
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


def load_sample() -> tuple[float, float, float]:
    """The machine's load average over the last 1, 5 and 15 minutes (``os.getloadavg()``).

    Recorded at the start and end of every table: a load above the number of cores means other
    jobs shared the machine, and only ratios from interleaved calls can be trusted then.

    >>> len(load_sample())
    3
    """
    one, five, fifteen = os.getloadavg()
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def ratio_stats(times: Sequence[float], base_times: Sequence[float]) -> dict[str, Any]:
    """Median and spread of the per-round ratios ``times[r] / base_times[r]``.

    Both lists are in round order (as ``interleaved`` and a paced ``measure`` return them), so
    each ratio compares two calls made one right after the other, under the same load. Rounds
    past the shorter list are ignored; empty lists give ``ratio=None``.

    Returns ``ratio`` (median of the per-round ratios), ``ratio_min``, ``ratio_max``,
    ``ratio_q1`` / ``ratio_q3`` (quartiles; both the single value for one round) and
    ``ratios`` (the per-round ratios).

    >>> r = ratio_stats([1.1, 2.0, 1.2], [1.0, 1.0, 1.0])
    >>> r["ratio"], r["ratio_min"], r["ratio_max"]
    (1.2, 1.1, 2.0)
    """
    ratios = [t / b for t, b in zip(times, base_times, strict=False) if b > 0]
    if not ratios:
        return {"ratio": None, "ratio_min": None, "ratio_max": None, "ratio_q1": None,
                "ratio_q3": None, "ratios": []}  # fmt: skip
    if len(ratios) > 1:
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    else:
        q1 = q3 = ratios[0]
    return {
        "ratio": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ratio_q1": q1,
        "ratio_q3": q3,
        "ratios": ratios,
    }


def _timed(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """``(out, wall seconds, compile seconds)`` of one call."""
    c0, t0 = compile_seconds(), time.perf_counter()
    out = call()
    return out, time.perf_counter() - t0, compile_seconds() - c0


def interleaved(
    variants: dict[str, Callable[[], Any]],
    repeats: int,
    warmup: int = 1,
    baseline: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Time several variants of the same work in this process, interleaved.

    Each call must block until its results are ready (``jax.block_until_ready``). First every
    variant makes ``warmup`` untimed calls, one variant after another (the first of them
    compiles). Then ``repeats`` timed rounds: each round calls every variant once, the order
    rotating by one variant per round (A B C, B C A, C A B, ...) so that no variant always
    runs first or last in a round. Run times are net of any compile time inside the call.

    Args:
        variants: name -> a call doing the work once; the dict order is the round order.
        repeats: timed rounds. ``0`` times nothing warm: the run time is then the first
            call's wall time net of compile (for slow variants at ``--quick`` sizes).
        warmup: untimed calls per variant before the rounds (at least 1).
        baseline: the variant ratios are taken against (default: the first).

    Returns:
        name -> ``compile_s`` (JAX compile seconds during the warm-up calls),
        ``first_call_s`` (wall time of the first call), ``run_times_s`` (one per round, in
        round order), ``run_s`` (their median), ``out`` (the last call's return value; not
        written by ``emit``) and ``ratio_stats(run_times_s, baseline's run_times_s)``
        (``ratio`` = median of the per-round run-time ratios, ``ratio_min`` /
        ``ratio_max`` / ``ratio_q1`` / ``ratio_q3``, ``ratios``). The baseline's ratios
        are all 1.

    >>> res = interleaved({"a": lambda: sum(range(1000)), "b": lambda: sum(range(2000))},
    ...                   repeats=3)
    >>> sorted(res["b"])[:4], len(res["b"]["run_times_s"]), res["a"]["ratio"]
    (['compile_s', 'first_call_s', 'out', 'ratio'], 3, 1.0)
    """
    if not variants:
        raise ValueError("interleaved: expected at least one variant in `variants`, got none")
    names = list(variants)
    base = names[0] if baseline is None else baseline
    if base not in variants:
        raise ValueError(
            f"interleaved: expected `baseline` to be one of {names}, got {baseline!r}; "
            "pass the name of a variant (or leave it out to compare against the first)"
        )
    compile_seconds()  # install the listener before anything is compiled
    res: dict[str, dict[str, Any]] = {}
    for name in names:
        out, first, compile_s = _timed(variants[name])
        for _ in range(max(int(warmup), 1) - 1):
            out, _, c = _timed(variants[name])
            compile_s += c
        res[name] = {"compile_s": compile_s, "first_call_s": first, "out": out,
                     "run_times_s": [] if repeats else [first - compile_s]}  # fmt: skip
    for r in range(int(repeats)):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            out, wall, compile_s = _timed(variants[name])
            res[name]["out"] = out
            res[name]["run_times_s"].append(wall - compile_s)
    for name in names:
        res[name]["run_s"] = statistics.median(res[name]["run_times_s"])
        res[name].update(ratio_stats(res[name]["run_times_s"], res[base]["run_times_s"]))
    return res


def measure(call: Callable[[], Any], repeats: int) -> dict[str, Any]:
    """Time ``call`` (which must block until its results are ready) once cold, then
    ``repeats`` times warm (``repeats=0``, used by ``--quick`` for slow peers: the run time
    is the cold call's wall time net of compile).

    In a process started by the harness with ``REALAX_BENCH_SERVE=1`` (the variants of one
    interleaved set, each in its own process), the first ``measure`` does not run its warm
    calls by itself: it prints a ready line after the cold call, then makes one warm call per
    ``run`` line read on standard input (printing its time) until ``stop`` or end of input,
    so the parent interleaves the warm calls of several processes round by round.

    Returns a dict with ``compile_s`` (JAX compile time during the first call),
    ``first_call_s``, ``run_s`` (median warm time net of compile), ``run_times_s`` and
    ``out`` (the last call's return value).
    """
    compile_seconds()  # install the listener before anything is compiled
    out, first, compile_s = _timed(call)
    times: list[float] = []
    if os.environ.get(SERVE_ENV) == "1" and not _served[0]:
        _served[0] = True
        sys.stdout.write(READY_MARKER + json.dumps({"compile_s": compile_s}) + "\n")
        sys.stdout.flush()
        while sys.stdin.readline().strip() == "run":
            out, wall, c = _timed(call)
            times.append(wall - c)
            sys.stdout.write(TIME_MARKER + json.dumps(times[-1]) + "\n")
            sys.stdout.flush()
    else:
        for _ in range(int(repeats)):
            out, wall, c = _timed(call)
            times.append(wall - c)
    times = times or [first - compile_s]  # no warm call: the cold call, net of compile
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
