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
