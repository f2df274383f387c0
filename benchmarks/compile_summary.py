"""Table 19 -- compile time: realax against every peer on the same work, from the other
tables' saved results (nothing is run for it).

For every table, the compile time of realax's default variant (the one labelled "default",
else the first) of a piece of work is
set beside each other variant's on the same work (the same ``group`` of rows, or the
``variants`` of a row that ran them in one process). Peers are other libraries; hand-written
loops are listed too but the target -- realax's compile time at or below every peer's -- is
judged against peers only. Rows repeated as ``"<label> #k"`` (a table that re-runs each side
a few times) are summarised by the median of their compile times.

A table module may define ``compile_pairs(rows) -> list[dict]`` (keys ``work``, ``realax``,
``realax_s``, ``other``, ``other_s``, ``kind``: ``"peer"`` or ``"hand-written"``) when the
generic reading below does not fit its results.
"""

from __future__ import annotations

import importlib
import re
import statistics
from typing import Any

NAME = "compile_summary"
TITLE = "19. Compile time: realax against each peer (summary of the tables above)"
_HAND = re.compile(r"hand-written|hand |python ask/tell|loop \(same work\)", re.I)


def _kind(label: str) -> str:
    return "hand-written" if _HAND.search(label) or label.lower().startswith("hand") else "peer"


def _stem(label: str) -> str:
    return re.sub(r"\s*#\d+$", "", label)


def _pairs_of(work: str, variants: list[tuple[str, bool, float]]) -> list[dict[str, Any]]:
    """``variants`` = (label, is realax, compile s) of one piece of work -> comparisons."""
    by_label: dict[str, list[float]] = {}
    realax_flag: dict[str, bool] = {}
    for label, is_realax, seconds in variants:
        by_label.setdefault(_stem(label), []).append(seconds)
        realax_flag[_stem(label)] = is_realax
    mine_all = [lab for lab in by_label if realax_flag[lab]]
    # realax's default: the variant labelled "default" if the table has one, else the first
    mine = next((lab for lab in mine_all if "default" in lab), mine_all[0] if mine_all else None)
    if mine is None:
        return []
    mine_s = statistics.median(by_label[mine])
    return [
        {
            "work": work,
            "realax": mine,
            "realax_s": mine_s,
            "other": lab,
            "other_s": statistics.median(ts),
            "kind": _kind(lab),
        }  # fmt: skip
        for lab, ts in by_label.items()
        if not realax_flag[lab]
    ]


def generic_pairs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Comparisons read from rows whose result has ``compile_s`` (grouped by ``group`` and
    ``x``), ``variants`` (each with ``name`` and ``compile_s``), or ``<who>_compile_s``."""
    groups: dict[str, list[tuple[str, bool, float]]] = {}
    out: list[dict[str, Any]] = []
    for r in rows:
        res = r.get("result") or {}
        if not r.get("ok"):
            continue
        work = " ".join(str(p) for p in (r.get("group"), r.get("x")) if p not in (None, ""))
        if isinstance(res.get("variants"), list):
            vs = [(v["name"], str(v["name"]).startswith("realax"), v["compile_s"])
                  for v in res["variants"] if v.get("compile_s") is not None]  # fmt: skip
            out += _pairs_of(work or r["label"], vs)
        elif isinstance(res.get("compile_s"), int | float):
            groups.setdefault(work, []).append((r["label"], bool(r.get("realax")),
                                                res["compile_s"]))  # fmt: skip
        elif "realax_compile_s" in res:
            vs = [(k[: -len("_compile_s")], k.startswith("realax"), v) for k, v in res.items()
                  if k.endswith("_compile_s") and isinstance(v, int | float)]  # fmt: skip
            out += _pairs_of(work or r["label"], vs)
    for work, vs in groups.items():
        out += _pairs_of(work, vs)
    return out


def collect(
    tables: dict[str, dict[str, Any]], modules: dict[str, str], titles: dict[str, str]
) -> list[dict[str, Any]]:
    """Every comparison of every saved table, in the report's table order (``modules`` and
    ``titles``: ``__main__.TABLES`` and ``TITLES``)."""
    found = []
    for name in [n for n in modules if n in tables]:
        module = importlib.import_module(f"benchmarks.{modules[name]}")
        rows = tables[name]["rows"]
        try:
            pairs = (getattr(module, "compile_pairs", None) or generic_pairs)(rows)
        except (KeyError, TypeError, ValueError) as e:  # a table's results of another shape
            pairs = [{"work": f"not read: {type(e).__name__}: {e}", "kind": "error"}]
        number = titles[name].split(".", 1)[0]
        for p in pairs:
            found.append({"table": number, "quick": tables[name].get("quick"), **p})
    return found


def render(
    tables: dict[str, dict[str, Any]], modules: dict[str, str], titles: dict[str, str]
) -> str:
    """Table 19's markdown from the saved ``tables`` (see ``collect``)."""
    from benchmarks._report import fmt_s, table

    pairs = collect(tables, modules, titles)
    body, met, peers = [], 0, 0
    for p in pairs:
        if p["kind"] == "error":
            body.append([p["table"], p["work"], "", "", "", "", "", "", ""])
            continue
        ratio = p["realax_s"] / p["other_s"] if p["other_s"] else None
        verdict = ""
        if p["kind"] == "peer":
            peers += 1
            met += p["realax_s"] <= p["other_s"]
            verdict = "met" if p["realax_s"] <= p["other_s"] else "not met"
        body.append(
            [
                p["table"] + (" (quick)" if p.get("quick") else ""),
                p["work"],
                p["realax"],
                fmt_s(p["realax_s"]),
                p["other"],
                p["kind"],
                fmt_s(p["other_s"]),
                "-" if ratio is None else f"{ratio:.2f}",
                verdict,
            ]
        )
    if not body:
        return "No table with compile times has been run yet."
    header = ["table", "work", "realax variant", "realax compile (s)", "other variant", "kind",
              "other's compile (s)", "realax / other", "target: at or below the peer"]  # fmt: skip
    intro = (
        "JAX compile time (trace + lower + XLA compile of the first call, `jax.monitoring`) "
        "of realax's default variant against every other variant on the same work, read from "
        "the tables' saved results (no new runs; each table's own conditions apply). Target: "
        f"at or below every peer: **met in {met} of {peers}** peer comparisons."
    )
    return intro + "\n\n" + table(header, body)
