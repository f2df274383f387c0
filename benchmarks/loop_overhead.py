"""Table 1 -- loop overhead without an environment.

BBOB rastrigin (evosax's ``bbob_fns["rastrigin"]`` with a sampled optimum, 100-D), population 64,
1000 generations, Sep_CMA_ES and Open_ES. The same evosax algorithm instance, the same
fitness function and the same starting mean in every variant:

* ``realax train (scan)``: ``EvosaxTrainer.train`` (``lax.scan``, per-step metrics);
* ``realax train_ (fori)``: ``EvosaxTrainer.train_`` (``lax.fori_loop``, final state only);
* ``hand-written scan``: one jitted ``lax.scan`` of ``ask -> vmap(f) -> tell``, the limit;
* ``Python ask/tell loop``: jitted ``ask``, evaluation and ``tell`` called from a Python loop.
"""

from __future__ import annotations

from typing import Any

STRATEGIES = ("Sep_CMA_ES", "Open_ES")


def plan(quick: bool) -> list[dict[str, Any]]:
    gens = 100 if quick else 1000
    rows = []
    for strategy in STRATEGIES[-1:] if quick else STRATEGIES:
        cfg = {
            "strategy": strategy,
            "dims": 100,
            "popsize": 64,
            "gens": gens,
            "repeats": 1 if quick else 9,  # a run is ~0.2 s: more runs for a stable median
        }
        for func, label, realax in (
            ("realax_scan", "realax train (scan)", True),
            ("realax_fori", "realax train_ (fori)", True),
            ("hand_scan", "hand-written jitted scan", False),
            ("python_loop", "Python ask/tell loop", False),
        ):
            rows.append(
                {
                    "group": strategy,
                    "label": label,
                    "module": "loop_overhead",
                    "func": func,
                    "cfg": cfg,
                    "realax": realax,
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


def _trainer(cfg):
    from realax.train import EvosaxTrainer

    jax, jnp, strategy, fitness, x0 = _setup(cfg)
    trainer = EvosaxTrainer(cfg["gens"], strategy, lambda x, key: (fitness(x), {}), params_like=x0)
    return jax, trainer, trainer.initialize(jax.random.key(0))


def realax_scan(cfg):
    from benchmarks._common import measure

    jax, trainer, state0 = _trainer(cfg)
    res = measure(lambda: jax.block_until_ready(trainer.train(state0)), cfg["repeats"])
    state, metrics = res["out"]
    res["final_best"] = float(state.best_fitness)
    return res


def realax_fori(cfg):
    from benchmarks._common import measure

    jax, trainer, state0 = _trainer(cfg)
    res = measure(lambda: jax.block_until_ready(trainer.train_(state0)), cfg["repeats"])
    res["final_best"] = float(res["out"].best_fitness)
    return res


def hand_scan(cfg):
    from benchmarks._common import measure

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

    res = measure(lambda: jax.block_until_ready(run(state0, k_run)), cfg["repeats"])
    res["final_best"] = float(jnp.min(res["out"][1]))
    return res


def python_loop(cfg):
    from benchmarks._common import measure

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
        return jax.block_until_ready((state, best))

    res = measure(run, cfg["repeats"])
    res["final_best"] = float(min(res["out"][1]))
    return res


# ----------------------------------------------------------------------------- report


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_mem, fmt_s, ratio_note, table

    gens = rows[0]["cfg"]["gens"] if rows else 0
    out = [
        f"BBOB rastrigin 100-D, population 64, {gens} generations; compile = JAX trace + lower "
        f"+ compile time of the first call, run = median of {rows[0]['cfg']['repeats']} warm "
        "call(s) (net of compile).",
        "",
    ]
    body = []
    for strategy in STRATEGIES:
        group = [r for r in rows if r["group"] == strategy]
        best_other = min(
            (r["result"]["run_s"] for r in group if not r["realax"] and r.get("ok")),
            default=None,
        )
        for r in group:
            res = r.get("result", {})
            if not r.get("ok"):
                body.append([strategy, r["label"], "error", "", "", "", "", r.get("error", "")])
                continue
            run_s = res["run_s"]
            body.append(
                [
                    strategy,
                    r["label"],
                    fmt_s(res["compile_s"]),
                    fmt_s(run_s),
                    f"{1e6 * run_s / gens:.0f}",
                    fmt_mem(r.get("peak_rss_mb")),
                    f"{res['final_best']:.1f}",
                    ratio_note(run_s, best_other) if r["realax"] else "",
                ]
            )
    out.append(
        table(
            [
                "strategy",
                "variant",
                "compile (s)",
                "run (s)",
                "µs / generation",
                "peak RSS",
                "best fitness",
                "run time realax / best other",
            ],
            body,
        )
    )
    return "\n".join(out)
