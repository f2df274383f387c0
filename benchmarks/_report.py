"""Markdown formatting helpers for BENCHMARKS.md."""

from __future__ import annotations

from collections.abc import Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in row) + " |")
    return "\n".join(lines)


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 0.1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def fmt_mem(mb: float | None) -> str:
    return "-" if mb is None else f"{mb:,.0f} MB"


def fmt_rate(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def ratio_note(mine: float | None, best_other: float | None) -> str:
    if mine is None or not best_other:
        return "-"
    return f"{mine / best_other:.2f}"


def short_error(text: str, limit: int = 160) -> str:
    """The exception line of a traceback (the last ``SomethingError: ...`` line)."""
    import re

    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|Exit)\b", ln)]
    last = errors[-1] if errors else (lines[-1] if lines else "unknown error")
    return last if len(last) <= limit else last[: limit - 3] + "..."


def fmt_ratio(stats: dict | None, invert: bool = False) -> str:
    """``"1.02 (0.97-1.08)"``: the median per-round ratio and its min-max over the rounds
    (``_common.ratio_stats``); ``invert`` turns a run-time ratio into a speed ratio."""
    if not stats or stats.get("ratio") is None:
        return "-"
    mid, lo, hi = stats["ratio"], stats["ratio_min"], stats["ratio_max"]
    if invert:
        mid, lo, hi = 1 / mid, 1 / hi, 1 / lo
    if len(stats.get("ratios", ())) < 2:
        return f"{mid:.2f} (1 round)"
    return f"{mid:.2f} ({lo:.2f}-{hi:.2f})"


def conditions(data: dict) -> str:
    """The line under a table: when, on which CPU, and the load average at its start and end."""
    start, end = data.get("load_start"), data.get("load_end")
    where = f"{data['cpu']}, {data['cores']} cores" if data.get("cpu") else "CPU not recorded"
    if not start or not end:
        return f"_Measured {data.get('date', '?')} ({where}); load not recorded for this table._"
    cores = data.get("cores") or 2
    busy = max(start[0], end[0]) > cores
    return (
        f"_Measured {data.get('date', '?')} on {where}; load average (1/5/15 min) "
        f"{start[0]:.2f}/{start[1]:.2f}/{start[2]:.2f} at the start of this table, "
        f"{end[0]:.2f}/{end[1]:.2f}/{end[2]:.2f} at its end"
        + (
            ": other jobs shared the machine, trust the interleaved ratios over the times._"
            if busy
            else "._"
        )  # fmt: skip
    )
