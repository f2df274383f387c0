"""Table 11 -- population-based training: one compiled PBT program against the same
population trained as fixed configurations one after another.

The problem is the noisy quadratic of ``packages/realax-train/tests/test_pbt.py``: SGD with
gradient noise on a quadratic whose curvatures spread over ``[0.2, 1]``, where a learning
rate that drops over time wins. Both variants run in one process:

* ``realax PBT``: ``PBT(OptaxTrainer(...), population=P, hparams={"learning_rate": rates},
  interval=10)`` -- the members vmapped, exploit/explore inside the loop;
* ``fixed, sequential``: the same ``P`` learning rates, each a run of the traced trainer
  (one compiled program, ``P`` calls), one after another.

Wall time is the median of ``rounds`` warm runs (compile time: the first call's); "final
loss" is the best member's (PBT) or configuration's (fixed) loss averaged over the last 10
steps, the statistic the learning test compares.
"""

from __future__ import annotations

import statistics
import time
from typing import Any


def plan(quick: bool) -> list[dict[str, Any]]:
    cfg = {
        "dims": 16 if quick else 256,
        "steps": 100 if quick else 1_000,
        "population": 8 if quick else 16,
        "interval": 10,
        "rounds": 2 if quick else 5,
    }
    label = f"{cfg['population']} members x {cfg['steps']} steps"
    return [{"group": "PBT", "label": label, "module": "pbt", "func": "ab", "cfg": cfg}]


def ab(cfg: dict[str, Any]) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from realax.train import PBT, OptaxTrainer, member_values, set_hparams

    from benchmarks._common import compile_seconds

    d, steps, pop, interval = cfg["dims"], cfg["steps"], cfg["population"], cfg["interval"]
    curvature = jnp.linspace(0.2, 1.0, d)

    def loss(p, key):
        lin = jnp.dot(jax.random.normal(key, (d,)), p)
        return 0.5 * jnp.sum(curvature * (p - 3.0) ** 2) + lin - jax.lax.stop_gradient(lin), {}

    rates = np.geomspace(1.0, 3e-3, pop).tolist()
    inner = OptaxTrainer(steps, "sgd", lambda k: jnp.zeros(d), loss, 0.1)
    pbt = PBT(inner, population=pop, hparams={"learning_rate": rates}, interval=interval)
    traced = inner.traced(["learning_rate"])
    start = traced.initialize(jax.random.key(1))
    out: dict[str, Any] = {}

    def pbt_run():
        state, metrics = jax.block_until_ready(pbt.init_and_train(jax.random.key(0)))
        out["pbt_loss"] = float(member_values(metrics, "loss")[-interval:].mean(0).min())

    def fixed_run():
        finals = []
        for lr in rates:
            _, m = jax.block_until_ready(traced.train(set_hparams(start, {"learning_rate": lr})))
            finals.append(float(np.mean(m["loss"][-interval:])))
        out["fixed_loss"] = min(finals)

    compile_seconds()
    for name, run in (("pbt", pbt_run), ("fixed", fixed_run)):
        c0, t0 = compile_seconds(), time.perf_counter()
        run()
        out[f"{name}_first_call_s"] = time.perf_counter() - t0
        out[f"{name}_compile_s"] = compile_seconds() - c0
    times: dict[str, list[float]] = {"pbt": [], "fixed": []}
    for _ in range(cfg["rounds"]):
        for name, run in (("pbt", pbt_run), ("fixed", fixed_run)):
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    for name, ts in times.items():
        out[f"{name}_run_s"] = statistics.median(ts)
        out[f"{name}_run_times_s"] = ts
    out["member_steps_per_s"] = pop * steps / out["pbt_run_s"]
    out["speedup"] = out["fixed_run_s"] / out["pbt_run_s"]
    return out


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_mem, fmt_rate, fmt_s, short_error, table

    cfg = rows[0]["cfg"] if rows else plan(quick)[0]["cfg"]
    out = [
        f"Noisy quadratic, {cfg['dims']} dimensions, SGD; {cfg['population']} learning rates "
        f"from 1 to 0.003 (log-spaced), {cfg['steps']} steps, exploit every "
        f"{cfg['interval']} steps; run = median of {cfg['rounds']} interleaved warm runs.",
        "",
    ]
    body = []
    for r in rows:
        res = r.get("result") or {}
        if not r.get("ok"):
            body.append([r["label"], "not run", "", "", "", "", "", short_error(r["error"], 200)])
            continue
        body.append(
            [
                r["label"],
                f"{fmt_s(res['pbt_compile_s'])} / {fmt_s(res['fixed_compile_s'])}",
                fmt_s(res["pbt_run_s"]),
                fmt_s(res["fixed_run_s"]),
                f"{res['speedup']:.2f}",
                fmt_rate(res["member_steps_per_s"]),
                f"{res['pbt_loss']:.4g} / {res['fixed_loss']:.4g}",
                fmt_mem(r.get("peak_rss_mb")),
            ]
        )
    header = [
        "run",
        "compile PBT / fixed (s)",
        "PBT run (s)",
        "fixed, sequential (s)",
        "speed-up",
        "PBT member steps/s",
        "final loss PBT / best fixed",
        "peak RSS",
    ]
    out.append(table(header, body))
    return "\n".join(out)
