"""Table 1 -- loop overhead without an environment.

BBOB rastrigin (evosax's ``bbob_fns["rastrigin"]`` with a sampled optimum, 100-D), population 64,
1000 generations, for Sep_CMA_ES, Open_ES, SNES, CMA_ES and PGPE. The same evosax algorithm
instance, the same fitness function and the same starting mean in every variant:

* ``realax train (scan)``: ``EvosaxTrainer.train`` (``lax.scan``, the seven metrics of every
  generation, the default ``metrics="all"``);
* ``realax train (scan), metrics="minimal"``: the same with ``generation`` and
  ``best_fitness`` only;
* ``realax train_ (fori)``: ``EvosaxTrainer.train_`` (``lax.fori_loop``, final state only);
* ``hand-written scan``: one jitted ``lax.scan`` of ``ask -> vmap(f) -> tell``, the limit;
* ``Python ask/tell loop``: jitted ``ask``, evaluation and ``tell`` called from a Python loop.

The variants of one strategy run in one process, interleaved (``benchmarks._common.
interleaved``: every round calls each variant once, the order rotating), so load from other
processes falls on all of them alike; the ratio is the median of the per-round ratios to the
hand-written scan, with its spread (quartiles) over the rounds, and the load average is
recorded before and after.
"""

from __future__ import annotations

from typing import Any

STRATEGIES = ("Sep_CMA_ES", "Open_ES", "SNES", "CMA_ES", "PGPE")
#: (key, label, realax) in table order; the hand-written scan is the baseline
VARIANTS = (
    ("realax_scan", "realax train (scan)", True),
    ("realax_minimal", 'realax train (scan), metrics="minimal"', True),
    ("realax_fori", "realax train_ (fori)", True),
    ("hand_scan", "hand-written jitted scan", False),
    ("python_loop", "Python ask/tell loop", False),
)


def plan(quick: bool) -> list[dict[str, Any]]:
    rows = []
    for strategy in STRATEGIES[1:2] if quick else STRATEGIES:
        cfg = {
            "strategy": strategy,
            "dims": 100,
            "popsize": 64,
            "gens": 100 if quick else 1000,
            "repeats": 2 if quick else 15,  # a run is ~0.2 s: many rounds for a stable ratio
        }
        rows.append(
            {
                "group": strategy,
                "label": f"{strategy}: realax vs hand-written (interleaved)",
                "module": "loop_overhead",
                "func": "interleaved_run",
                "cfg": cfg,
                "realax": True,
            }
        )
    return rows


# ----------------------------------------------------------------------------- the work


def _setup(cfg):
    import jax
    import jax.numpy as jnp
    import optax
    from evosax import algorithms
    from evosax.problems import BBOBProblem, bbob_fns

    problem = BBOBProblem("rastrigin", num_dims=cfg["dims"], seed=0)
    p = problem._params  # x_opt, f_opt, R, Q of the sampled instance
    fn = bbob_fns["rastrigin"]

    def fitness(x):
        value, _ = fn(x, p.x_opt, p.R, p.Q, cfg["dims"])
        return value + p.f_opt

    x0 = jnp.full((cfg["dims"],), 3.0)
    if cfg["strategy"] == "Open_ES":
        strategy = algorithms.Open_ES(
            population_size=cfg["popsize"],
            solution=x0,
            optimizer=optax.adam(0.05),
            std_schedule=optax.constant_schedule(0.5),
        )
    else:
        strategy = getattr(algorithms, cfg["strategy"])(population_size=cfg["popsize"], solution=x0)
    return jax, jnp, strategy, fitness, x0


def _trainer(cfg, **options):
    from realax.train import EvosaxTrainer

    jax, jnp, strategy, fitness, x0 = _setup(cfg)
    task = lambda x, key: (fitness(x), {})  # noqa: E731
    trainer = EvosaxTrainer(cfg["gens"], strategy, task, params_like=x0, **options)
    return jax, trainer, trainer.initialize(jax.random.key(0))


def realax_scan(cfg, **options):
    jax, trainer, state0 = _trainer(cfg, **options)

    def call():
        state, _ = jax.block_until_ready(trainer.train(state0))
        return float(state.best_fitness)

    return call


def realax_minimal(cfg):
    return realax_scan(cfg, metrics="minimal")


def realax_fori(cfg):
    jax, trainer, state0 = _trainer(cfg)
    return lambda: float(jax.block_until_ready(trainer.train_(state0)).best_fitness)


def hand_scan(cfg):
    jax, jnp, strategy, fitness, x0 = _setup(cfg)
    params = strategy.default_params
    k_init, k_run = jax.random.split(jax.random.key(0))
    state0 = strategy.init(k_init, x0, params)

    @jax.jit
    def run(state, key):
        def body(state, key):
            k_ask, k_tell = jax.random.split(key)
            population, state = strategy.ask(k_ask, state, params)
            fit = jax.vmap(fitness)(population)
            state, _ = strategy.tell(k_tell, population, fit, state, params)
            return state, jnp.min(fit)

        return jax.lax.scan(body, state, jax.random.split(key, cfg["gens"]))

    return lambda: float(jnp.min(jax.block_until_ready(run(state0, k_run))[1]))


def python_loop(cfg):
    jax, jnp, strategy, fitness, x0 = _setup(cfg)
    params = strategy.default_params
    k_init, k_run = jax.random.split(jax.random.key(0))
    state0 = strategy.init(k_init, x0, params)
    ask = jax.jit(strategy.ask)
    tell = jax.jit(strategy.tell)
    evaluate = jax.jit(jax.vmap(fitness))
    keys = jax.random.split(k_run, (cfg["gens"], 2))

    def run():
        state, best = state0, []
        for g in range(cfg["gens"]):
            population, state = ask(keys[g, 0], state, params)
            fit = evaluate(population)
            state, _ = tell(keys[g, 1], population, fit, state, params)
            best.append(jnp.min(fit))
        jax.block_until_ready((state, best))
        return float(min(best))

    return run


def interleaved_run(cfg):
    """Every variant of one strategy, interleaved in this process (the hand-written scan is
    the baseline of the ratios)."""
    from benchmarks._common import interleaved, load_sample

    load_start = load_sample()
    calls = {key: globals()[key](cfg) for key, _, _ in VARIANTS}
    res = interleaved(calls, cfg["repeats"], baseline="hand_scan")
    for r in res.values():
        r["final_best"] = r.pop("out")
    return {"variants": res, "load_start": load_start, "load_end": load_sample()}


# ----------------------------------------------------------------------------- report


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_s, short_error, table

    cfg = rows[0]["cfg"] if rows else {}
    gens = cfg.get("gens", 0)
    out = [
        f"BBOB rastrigin 100-D, population 64, {gens} generations; the variants of a strategy "
        f"run in one process, interleaved ({cfg.get('repeats')} rounds, the order rotating); "
        "compile = JAX trace + lower + compile time of the first call, run = median of the "
        "rounds (net of compile); ratio = median of the per-round run-time ratios to the "
        "hand-written scan [quartiles]; load = 1-min load average before / after the strategy.",
        "",
    ]
    body = []
    for r in rows:
        if not r.get("ok"):
            body.append([r["group"], "error", "", "", "", "", "", short_error(r.get("error", ""))])
            continue
        res = r["result"]
        load = f"{res['load_start'][0]:.1f} / {res['load_end'][0]:.1f}"
        for key, label, _ in VARIANTS:
            v = res["variants"][key]
            ratio = f"{v['ratio']:.3f} [{v['ratio_q1']:.3f}, {v['ratio_q3']:.3f}]"
            body.append(
                [
                    r["group"],
                    label,
                    fmt_s(v["compile_s"]),
                    fmt_s(v["run_s"]),
                    f"{1e6 * v['run_s'] / gens:.0f}",
                    f"{v['final_best']:.1f}",
                    "" if key == "hand_scan" else ratio,
                    load,
                ]
            )
    header = ["strategy", "variant", "compile (s)", "run (s)", "µs / generation"]
    header += ["best fitness", "run time / hand-written [quartiles]", "load"]
    out.append(table(header, body))
    if rows and rows[0].get("peak_rss_mb"):
        rss = rows[0]["peak_rss_mb"]
        out += ["", f"Peak RSS of one strategy's process (all variants): {rss:.0f} MB."]
    return "\n".join(out)
