"""Table 5 -- scaling of table 2's workload (CartPole-v1, MLP 4-64-64-2, 4 rollouts per member,
episodes of at most 500 steps) with the population size, and with the number of CPU devices.

* population 64 -> 4096 on one device: realax (``EvosaxTrainer`` + ``GymnaxTask``, early exit)
  and evosax's ``GymnaxProblem`` (full-length scan), a few generations each;
* 1, 2 and 4 forced CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=N``, set
  in the variant's own subprocess before jax starts): realax with ``n_devices=N`` splitting the
  population over devices with ``shard_map``. This machine has 2 cores, so 4 devices
  oversubscribe them.

No per-generation host callback here (ordered callbacks cannot run on several devices).
The rows compared with each other (realax and evosax at one population; the device counts)
run in their own processes with their warm runs interleaved round by round.
"""

from __future__ import annotations

from typing import Any

from benchmarks.neuroevolution import base_cfg


def plan(quick: bool) -> list[dict[str, Any]]:
    base = base_cfg(quick)
    gens = 2 if quick else 4
    pops = (32,) if quick else (64, 256, 1024, 4096)
    rows = []
    for pop in pops:
        cfg = dict(base, popsize=pop, gens=gens, repeats=1 if quick else 3, clock=False)
        rows.append(
            {
                "group": "population",
                "x": pop,
                "label": "realax",
                "func": "realax",
                "cfg": cfg,
                "realax": True,
                "interleave": f"population {pop}",
            }
        )
        rows.append(
            {
                "group": "population",
                "x": pop,
                "label": "evosax GymnaxProblem",
                "func": "evosax_problem",
                "cfg": cfg,
                "realax": False,
                "interleave": f"population {pop}",
            }
        )
    dev_pop = 64 if quick else 1024
    for n in (2,) if quick else (1, 2, 4):
        cfg = dict(
            base, popsize=dev_pop, gens=gens, repeats=1 if quick else 3, n_devices=n, clock=False
        )
        rows.append(
            {
                "group": "devices",
                "x": n,
                "label": f"realax, n_devices={n}",
                "func": "realax",
                "cfg": cfg,
                "realax": True,
                "env": {"XLA_FLAGS": f"--xla_force_host_platform_device_count={n}"},
                "interleave": "devices",
            }
        )
    for r in rows:
        r["module"] = "neuroevolution"
    return rows


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_mem, fmt_rate, fmt_ratio, fmt_s, short_error, table
    from benchmarks.neuroevolution import rate, rate_ratio

    cfg = rows[0]["cfg"] if rows else {}
    out = [
        f"{cfg.get('gens')} generations per run, {cfg.get('reps')} rollouts per member, "
        f"episodes of at most {cfg.get('max_steps')} steps, run = median of "
        f"{cfg.get('repeats')} warm run(s), "
        + (
            "interleaved round by round with the rows they are compared with"
            if any(r.get("interleave") for r in rows)
            else "one variant after another (saved before runs were interleaved)"
        )
        + " (ratios: median over the rounds, min-max in brackets). "
        "Early in training most episodes are short, which "
        "favours early exit (realax) over full-length scans (evosax).",
        "",
        "By population (1 device):",
        "",
    ]
    body = []
    pops = sorted({r["x"] for r in rows if r["group"] == "population"})
    for pop in pops:
        cells = {r["func"]: r for r in rows if r["group"] == "population" and r["x"] == pop}
        line = [pop]
        for func in ("realax", "evosax_problem"):
            r = cells.get(func)
            if r is None or not r.get("ok"):
                line += ["error: " + short_error(r["error"] if r else "missing", 60), "", ""]
                continue
            res = r["result"]
            line += [fmt_rate(rate(res)), fmt_s(res["compile_s"]), fmt_mem(r.get("peak_rss_mb"))]
        a = cells.get("realax", {}).get("result")
        b = cells.get("evosax_problem", {}).get("result")
        line.append(fmt_ratio(rate_ratio(a, b), invert=True) if a and b and rate(b) else "-")
        body.append(line)
    out.append(
        table(
            [
                "population",
                "realax env-steps/s",
                "realax compile (s)",
                "realax peak RSS",
                "evosax env-steps/s",
                "evosax compile (s)",
                "evosax peak RSS",
                "realax / evosax",
            ],
            body,
        )
    )
    out += ["", f"By forced CPU devices (realax, population {rows[-1]['cfg']['popsize']}):", ""]
    body = []
    dev = [r for r in rows if r["group"] == "devices"]
    base = next((r["result"] for r in dev if r["x"] == 1 and r.get("ok")), None)
    for r in dev:
        if not r.get("ok"):
            body.append([r["x"], "error: " + short_error(r["error"], 80), "", "", ""])
            continue
        res = r["result"]
        body.append(
            [
                r["x"],
                fmt_rate(rate(res)),
                fmt_s(res["compile_s"]),
                fmt_mem(r.get("peak_rss_mb")),
                fmt_ratio(rate_ratio(res, base), invert=True) if base else "-",
            ]
        )
    out.append(table(["devices", "env-steps/s", "compile (s)", "peak RSS", "vs 1 device"], body))
    return "\n".join(out)
