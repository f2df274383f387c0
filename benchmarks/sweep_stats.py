"""Table 10 -- the statistics of a sweep report: the stratified bootstrap of
``realax.log.stats`` (vectorised numpy) against ``scipy.stats.bootstrap`` and against a loop
that draws one resample at a time (what rliable's ``arch``-based bootstrap does), on the same
IQM interval; and ``realax.log.report`` of a sweep-sized array (CSV, JSON and the PNG).

The three bootstraps run in one process, interleaved (``_common.interleaved``: round r of
each before round r + 1), and each one's time against realax's is given with its min-max over
the rounds.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

VARIANTS = ("realax.log.stats", "scipy.stats.bootstrap", "one resample at a time")


def plan(quick: bool) -> list[dict[str, Any]]:
    reps = 2000 if quick else 50_000
    rows = [
        {
            "label": "IQM interval: the three bootstraps, interleaved",
            "module": "sweep_stats",
            "func": "bootstraps",
            "realax": True,
            "cfg": {"reps": reps, "runs": 32, "repeats": 2 if quick else 3},
        }
    ]
    shape = (2, 4, 50) if quick else (8, 4, 500)
    rows.append(
        {
            "label": "realax.log.report",
            "module": "sweep_stats",
            "func": "report",
            "realax": True,
            "cfg": {"shape": shape, "reps": 1000 if quick else 5000},
        }
    )
    return rows


def _scores(runs: int) -> np.ndarray:
    return np.random.default_rng(0).normal(400.0, 80.0, size=runs)


def _iqm(x: np.ndarray) -> float:
    x = np.sort(x)
    cut = int(0.25 * x.size)
    return float(x[cut : x.size - cut].mean())


def bootstrap(cfg: dict[str, Any]) -> dict[str, Any]:
    """Seconds for one 95% IQM interval of ``runs`` seeds with ``reps`` resamples."""
    from realax.log import stats
    from scipy import stats as sps  # imported before the clock starts, like realax's

    x, reps = _scores(cfg["runs"]), cfg["reps"]
    t0 = time.perf_counter()
    if cfg["variant"] == VARIANTS[0]:
        _, (lo, hi) = stats.interval_estimate(x, "iqm", reps=reps, seed=0)
    elif cfg["variant"] == VARIANTS[1]:
        res = sps.bootstrap(
            (x,), lambda s, axis: sps.trim_mean(s, 0.25, axis=axis), n_resamples=reps,
            method="percentile", vectorized=True, random_state=np.random.default_rng(0),
        )  # fmt: skip
        lo, hi = res.confidence_interval
    else:
        rng = np.random.default_rng(0)
        dist = [_iqm(x[rng.integers(0, x.size, x.size)]) for _ in range(reps)]
        lo, hi = np.percentile(dist, [2.5, 97.5])
    return {"seconds": time.perf_counter() - t0, "ci": [float(lo), float(hi)]}


def bootstraps(cfg: dict[str, Any]) -> dict[str, Any]:
    """Every bootstrap of ``VARIANTS`` on the same interval, interleaved round by round."""
    from benchmarks._common import interleaved

    calls = {v: (lambda v=v: bootstrap(dict(cfg, variant=v))) for v in VARIANTS}
    timed = interleaved(calls, cfg["repeats"], baseline=VARIANTS[0])
    return {
        "variants": [
            {
                "name": v,
                "seconds": r["run_s"],
                "run_times_s": r["run_times_s"],
                "ci": r["out"]["ci"],
                **{k: x for k, x in r.items() if k.startswith("ratio")},
            }
            for v, r in timed.items()
        ]  # fmt: skip
    }


def report(cfg: dict[str, Any]) -> dict[str, Any]:
    """Seconds for ``realax.log.report`` of a ``(configs, seeds, steps)`` sweep, PNG included."""
    import tempfile

    import realax.log as rlog

    curves = np.random.default_rng(0).normal(0.0, 1.0, size=cfg["shape"]).cumsum(axis=-1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        rlog.report(curves, out, reps=cfg["reps"])
    return {"seconds": time.perf_counter() - t0}


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_ratio, fmt_s, short_error, table

    body = []
    for r in rows:
        if not r.get("ok"):
            body.append([r["label"], "-", "-", "error: " + short_error(r.get("error") or "", 80)])
            continue
        res, cfg = r["result"], r["cfg"]
        # one row per bootstrap (older results: one result per row, not interleaved)
        for v in res.get("variants") or [dict(res, name=r["label"])]:
            if "ci" in v:
                what = f"IQM 95% CI of {cfg['runs']} seeds, {cfg['reps']} resamples: " + (
                    f"[{v['ci'][0]:.1f}, {v['ci'][1]:.1f}]"
                )
            else:
                c, s, n = cfg["shape"]
                what = f"{c} configs x {s} seeds x {n} steps, {cfg['reps']} resamples per CI, PNG"
            body.append([v["name"], fmt_s(v["seconds"]), fmt_ratio(v) if "ratios" in v else "-",
                         what])  # fmt: skip
    return (
        "One interval (and one whole report): wall time of a call, the bootstraps' median of "
        "interleaved rounds"
        + (" (--quick)" if quick else "")
        + ".\n\n"
        + table(["variant", "time (s)", "time vs realax.log.stats (min-max)", "what"], body)
    )
