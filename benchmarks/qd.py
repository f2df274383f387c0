"""Table 8 -- quality-diversity: QDTrainer against qdax's own MAP-Elites loop.

qdax's rastrigin task (``qdax.tasks.standard_functions.rastrigin``: genotypes in [0, 1]^D,
descriptor = the first two genes), a Euclidean grid of cells, the same MixingEmitter
(iso+line variation, ``iso_sigma=0.005``, ``line_sigma=0.05``, clipped to [0, 1]) and the
same uniform initial population in every variant:

* ``realax QDTrainer.train (scan)``: ``QDTrainer.train`` (``lax.scan``, per-step metrics:
  coverage, QD score, max fitness);
* ``realax QDTrainer.train_ (fori)``: ``QDTrainer.train_`` (``lax.fori_loop``, final state);
* ``qdax MAPElites (scan)``: qdax's recipe, one jitted ``lax.scan`` of
  ``MAPElites.scan_update`` (which computes qdax's ``default_qd_metrics`` every iteration).

All variants run in one process, interleaved (``_common.interleaved``: round r of every
variant before round r + 1, the order rotating), so load from other processes affects them
alike; the ratio's min-max over the rounds is shown beside it. Compile = JAX trace + lower +
compile time of the first call (``jax.monitoring``); run = median of the warm calls, each
continuing from the initial state. Standalone: ``uv run python -m benchmarks --only qd [--quick]``.
"""

from __future__ import annotations

import functools
from typing import Any


def plan(quick: bool) -> list[dict[str, Any]]:
    cfg = {
        "dims": 20 if quick else 100,
        "batch": 64 if quick else 256,
        "grid": [16, 16] if quick else [50, 50],
        "iterations": 50 if quick else 1000,
        "repeats": 2 if quick else 7,
    }
    return [
        {
            "group": "rastrigin",
            "label": "realax QDTrainer vs qdax MAPElites (interleaved)",
            "module": "qd",
            "func": "interleaved",
            "cfg": cfg,
            "realax": True,
        }
    ]


# ----------------------------------------------------------------------------- the work


def _variants(cfg: dict[str, Any]) -> dict[str, Any]:
    """name -> (call, initial argument): each call runs ``iterations`` iterations."""
    import jax
    import jax.numpy as jnp
    from qdax.core.containers.mapelites_repertoire import compute_euclidean_centroids
    from qdax.core.emitters.mutation_operators import isoline_variation
    from qdax.core.emitters.standard_emitters import MixingEmitter
    from qdax.core.map_elites import MAPElites
    from qdax.tasks.standard_functions import rastrigin, rastrigin_scoring_function
    from qdax.utils.metrics import default_qd_metrics
    from realax.train import QDTrainer

    dims, batch, n = cfg["dims"], cfg["batch"], cfg["iterations"]
    grid = tuple(cfg["grid"])
    trainer = QDTrainer(
        n,
        lambda x, key: (*rastrigin(x), {}),
        jnp.full(dims, 0.5),
        batch_size=batch,
        grid_shape=grid,
        descriptor_bounds=(0.0, 1.0),
        genotype_bounds=(0.0, 1.0),
    )
    state0 = trainer.initialize(jax.random.key(0))

    variation = functools.partial(
        isoline_variation, iso_sigma=0.005, line_sigma=0.05, minval=0.0, maxval=1.0
    )
    emitter = MixingEmitter(
        mutation_fn=lambda x, key: x,
        variation_fn=variation,
        variation_percentage=1.0,
        batch_size=batch,
    )
    me = MAPElites(
        scoring_function=rastrigin_scoring_function,
        emitter=emitter,
        metrics_function=functools.partial(default_qd_metrics, qd_offset=0.0),
    )
    key, k_init = jax.random.split(jax.random.key(0))
    genotypes = jax.random.uniform(k_init, (batch, dims), minval=0.0, maxval=1.0)
    repertoire, emitter_state, _ = me.init(genotypes, compute_euclidean_centroids(grid, 0, 1), key)

    @jax.jit
    def qdax_scan(carry):
        return jax.lax.scan(me.scan_update, carry, None, length=n)

    def coverage_of(rep):
        return float(100 * jnp.mean(rep.fitnesses > -jnp.inf))

    return {
        "realax QDTrainer.train (scan)": (
            lambda s: jax.block_until_ready(trainer.train(s)),
            state0,
            lambda out: coverage_of(out[0].repertoire),
        ),
        "realax QDTrainer.train_ (fori)": (
            lambda s: jax.block_until_ready(trainer.train_(s)),
            state0,
            lambda out: coverage_of(out.repertoire),
        ),
        "qdax MAPElites (scan)": (
            lambda c: jax.block_until_ready(qdax_scan(c)),
            (repertoire, emitter_state, key),
            lambda out: coverage_of(out[0][0]),
        ),
    }


def interleaved(cfg: dict[str, Any]) -> dict[str, Any]:
    from benchmarks._common import interleaved as run_interleaved

    variants = _variants(cfg)
    names = list(variants)
    calls = {name: (lambda c=call, a=arg: c(a)) for name, (call, arg, _) in variants.items()}
    timed = run_interleaved(calls, cfg["repeats"], baseline=names[-1])  # qdax is the baseline
    n = cfg["iterations"]
    out = []
    for name, r in timed.items():
        ratio = {k: r[k] for k in ("ratio", "ratio_min", "ratio_max", "ratio_q1", "ratio_q3")}
        out.append(
            {
                "name": name,
                "compile_s": r["compile_s"],
                "run_s": r["run_s"],
                "run_times_s": r["run_times_s"],
                "iters_per_s": n / r["run_s"],
                "coverage": variants[name][2](r["out"]),
                # speed against qdax's: the inverse of the per-round run-time ratios
                "ratio": 1 / r["ratio"],
                "ratio_min": 1 / r["ratio_max"],
                "ratio_max": 1 / r["ratio_min"],
                "time_ratio": ratio,
            }
        )
    return {"variants": out, "compile_s": out[0]["compile_s"], "run_s": out[0]["run_s"]}


# ----------------------------------------------------------------------------- report


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_s, short_error, table

    if not rows:
        return ""
    r = rows[0]
    cfg = r["cfg"]
    if not r.get("ok"):
        return f"not run: {short_error(r.get('error') or '')}"
    grid = "x".join(str(g) for g in cfg["grid"])
    out = [
        f"qdax rastrigin, {cfg['dims']} genes, batch {cfg['batch']}, {grid} grid, "
        f"{cfg['iterations']} iterations per call; median of {cfg['repeats']} interleaved "
        "calls from the same initial state; compile = JAX compile time of the first call. "
        f"Peak RSS of the process (all variants): {r.get('peak_rss_mb') or 0:,.0f} MB."
        + (" (--quick sizes)" if quick else ""),
        "",
    ]
    body = [
        [
            v["name"],
            fmt_s(v["compile_s"]),
            fmt_s(v["run_s"]),
            f"{v['iters_per_s']:,.0f}",
            f"{v['coverage']:.1f}",
            f"{v['ratio']:.2f}"
            + (f" ({v['ratio_min']:.2f}-{v['ratio_max']:.2f})" if "ratio_min" in v else ""),
        ]
        for v in r["result"]["variants"]
    ]
    header = ["variant", "compile (s)", "run (s)", "iterations/s", "coverage (%)"]
    out.append(table([*header, "iterations/s vs qdax (target >= 1.0)"], body))
    return "\n".join(out)
