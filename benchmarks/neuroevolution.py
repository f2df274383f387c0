"""Table 2 -- neuroevolution on gymnax CartPole-v1.

MLP 4-64-64-2 (tanh, argmax action), population 128, 4 rollouts per member, episodes of at
most 500 steps, 64 generations, Open_ES (Adam 0.05, sigma 0.1, centered ranks), no observation
normalisation. Variants:

* ``realax``: ``EvosaxTrainer`` + ``GymnaxTask`` (default early-exit rollouts, ``lax.while_loop``);
* ``realax (trajectory mode)``: the same with ``GymnaxTask(mode="trajectory")`` (``lax.scan``
  over all 500 steps);
* ``hand-written``: one jitted ``lax.scan`` over generations of ``ask -> vmapped early-exit
  gymnax rollouts -> tell``, with realax's key derivation so it does exactly the same work
  (its fitness curve is the same as realax's);
* ``evosax GymnaxProblem``: evosax 0.3's own problem class for gymnax (``lax.scan`` over all 500
  steps) with evosax's MLP, in a hand-written jitted scan over generations;
* ``EvoJAX``: EvoJAX 0.2.17's ``Trainer`` on gymnax's ``GymnaxToEvoJaxTask`` wrapper, in its own
  environment (``benchmarks/peers/evojax``); EvoJAX's Open_ES wraps the pre-0.2 evosax API, so
  it runs EvoJAX's native PGPE (its recommended solver) with an argmax MLP of the same shape.

Valid env-steps are the steps that belong to an episode (CartPole pays 1 per step, so they are
the sum of the returns); time to 475 is the run time until the first generation whose best
member's mean return over its 4 rollouts reaches 475 (recorded by a host callback at every
generation, present in every variant).

Every variant runs in its own process (EvoJAX in its own environment); their warm runs are
interleaved round by round (``"interleave"``: realax, trajectory, hand-written, evosax, EvoJAX,
then the next round), so the ratio's spread over the rounds is reported beside it.
"""

from __future__ import annotations

import time
from typing import Any

ENV = "CartPole-v1"
TARGET = 475.0


def base_cfg(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "popsize": 32,
            "reps": 2,
            "max_steps": 200,
            "gens": 4,
            "width": 64,
            "depth": 2,
            "lr": 0.05,
            "std": 0.1,
            "repeats": 1,
            "target": 190.0,
        }
    return {
        "popsize": 128,
        "reps": 4,
        "max_steps": 500,
        "gens": 64,
        "width": 64,
        "depth": 2,
        "lr": 0.05,
        "std": 0.1,
        "repeats": 3,
        "target": TARGET,
    }


def plan(quick: bool) -> list[dict[str, Any]]:
    cfg = base_cfg(quick)
    rows = [
        {"label": "realax EvosaxTrainer + GymnaxTask", "func": "realax", "realax": True},
        {
            "label": "realax, GymnaxTask(mode='trajectory')",
            "func": "realax_trajectory",
            "realax": True,
        },
        {"label": "hand-written jitted loop (same work)", "func": "hand_written", "realax": False},
        {"label": "evosax 0.3 GymnaxProblem", "func": "evosax_problem", "realax": False},
        {
            "label": "EvoJAX 0.2.17 Trainer (PGPE)",
            "func": "evojax",
            "realax": False,
            "peer": "evojax",
            "script": "cartpole.py",
            "optional": True,
        },
    ]
    for r in rows:
        r.update(group=ENV, module="neuroevolution", cfg=cfg, interleave=ENV)
    if quick:  # EvoJAX recompiles on every Trainer: one cold run, net of compile
        rows[-1]["cfg"] = dict(cfg, repeats=0)
        rows = [r for r in rows if r["func"] != "realax_trajectory"]
    return rows


# ----------------------------------------------------------------------------- helpers


class GenClock:
    """Host-side timestamps of every generation (``jax.debug.callback``, ordered)."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.records: list[tuple[float, int, float]] = []

    def start(self):
        self.t0 = time.perf_counter()
        self.records = []

    def record(self, gen, best):
        self.records.append((time.perf_counter() - self.t0, int(gen), float(best)))

    def emit(self, gen, best):
        import jax

        jax.debug.callback(self.record, gen, best, ordered=True)

    def time_to(self, target: float) -> tuple[float | None, int | None]:
        for t, gen, best in self.records:
            if best >= target:
                return t, gen
        return None, None


def timed_runs(call, clock: GenClock, repeats: int, target: float) -> dict[str, Any]:
    """``measure`` plus the per-run time-to-target and the best-return curve."""
    from benchmarks._common import measure

    ttt, gens = [], []

    def wrapped():
        clock.start()
        out = call()
        import jax

        jax.effects_barrier()
        t, g = clock.time_to(target)
        ttt.append(t)
        gens.append(g)
        return out

    res = measure(wrapped, repeats)
    warm = ttt[1:]
    res["time_to_target_s"] = None if None in warm else sorted(warm)[len(warm) // 2]
    res["gens_to_target"] = gens[-1]
    res["best_curve"] = [round(b, 1) for _, _, b in clock.records]
    return res


def realax_policy(cfg):
    import realax.tasks as rt

    return rt.MLPPolicy(action_dims=2, discrete=True, width=cfg["width"], depth=cfg["depth"])


def open_es(solution, cfg):
    import optax
    from evosax.algorithms import Open_ES

    return Open_ES(
        population_size=cfg["popsize"],
        solution=solution,
        optimizer=optax.adam(cfg["lr"]),
        std_schedule=optax.constant_schedule(cfg["std"]),
    )


class CountingTask:
    """A task that also counts the valid env-steps of every rollout in ``data`` (through
    realax's ``init_data`` / ``update_data`` protocol, so the count lives in the state next
    to the task's own data, e.g. observation statistics)."""

    def __init__(self, task):
        self.task = task

    def __call__(self, params, key, data=None):
        return self.task(params, key, None if data is None else data["inner"])

    def init_data(self, key):
        import jax.numpy as jnp

        return {"inner": self.task.init_data(key), "steps": jnp.zeros((), jnp.float32)}

    def update_data(self, data, info):
        import jax.numpy as jnp

        steps = data["steps"] + jnp.sum(info["episode_length"]).astype(jnp.float32)
        return {"inner": self.task.update_data(data["inner"], info), "steps": steps}


# ----------------------------------------------------------------------------- variants


def _realax(cfg, mode="early_exit", n_devices=1):
    import jax
    import jax.numpy as jnp
    import realax.tasks as rt
    from realax.train import EvosaxTrainer, FitnessShaper

    policy = realax_policy(cfg)
    task = rt.GymnaxTask(ENV, policy=policy, max_steps=cfg["max_steps"], mode=mode)
    key = jax.random.key(0)
    params, _ = rt.make_model_factory(policy, jnp.zeros((4,)), key)
    clock = GenClock()

    class Clock:
        def log(self, state, metrics):
            clock.emit(metrics["generation"], metrics["fitness_max"])

    trainer = EvosaxTrainer(
        cfg["gens"],
        open_es(params, cfg),
        CountingTask(task),
        params_like=params,
        eval_reps=cfg["reps"],
        fitness_shaper=FitnessShaper(maximize=True),
        logger=Clock() if cfg.get("clock", True) else None,
        n_devices=n_devices,
    )
    state0 = trainer.initialize(jax.random.key(1))
    res = timed_runs(
        lambda: jax.block_until_ready(trainer.train(state0)), clock, cfg["repeats"], cfg["target"]
    )
    state, metrics = res["out"]
    res["valid_steps"] = float(state.data["steps"])
    res["final_mean_return"] = float(metrics["fitness_mean"][-1])
    res["final_best_return"] = float(metrics["fitness_max"][-1])
    res["n_params"] = int(sum(x.size for x in jax.tree.leaves(params)))
    return res


def realax(cfg):
    return _realax(cfg, n_devices=cfg.get("n_devices", 1))


def realax_trajectory(cfg):
    return _realax(cfg, mode="trajectory")


def hand_written(cfg):
    """ask -> vmapped early-exit rollouts -> tell in one jitted scan, with realax's keys."""
    import gymnax
    import jax
    import jax.numpy as jnp
    import realax.tasks as rt

    env, env_params = gymnax.make(ENV)
    policy = realax_policy(cfg)
    params, _ = rt.make_model_factory(policy, jnp.zeros((4,)), jax.random.key(0))
    strategy = open_es(params, cfg)
    es_params = strategy.default_params
    pop, reps, T = cfg["popsize"], cfg["reps"], cfg["max_steps"]
    clock = GenClock()

    def episode(p, key):
        k_reset, _, k_loop = jax.random.split(key, 3)
        obs, st = env.reset_env(k_reset, env_params)

        def cond(c):
            t, _, _, done, _ = c
            return jnp.logical_and(~done, t < T)

        def body(c):
            t, obs, st, _, ret = c
            k_act, k_env = jax.random.split(jax.random.fold_in(k_loop, t))
            action, _ = policy.apply(p, obs, None, k_act)
            k_step, _ = jax.random.split(k_env)
            obs, st, r, term, _ = env.step_env(k_step, st, action, env_params)
            t = t + 1
            done = term | env.is_truncated(st, env_params) | (t >= T)
            return t, obs, st, done, ret + r

        init = (jnp.zeros((), jnp.int32), obs, st, jnp.zeros((), bool), jnp.zeros(()))
        t, _, _, _, ret = jax.lax.while_loop(cond, body, init)
        return ret, t

    rollouts = jax.vmap(jax.vmap(episode, in_axes=(None, 0)), in_axes=(0, 0))
    k_init, _, _, _, k_run = jax.random.split(jax.random.key(1), 5)
    es0 = strategy.init(k_init, params, es_params)

    @jax.jit
    def run(es_state):
        def gen(carry, g):
            es_state, steps = carry
            k_ask, k_eval, k_tell = jax.random.split(jax.random.fold_in(k_run, g), 3)
            population, es_state = strategy.ask(k_ask, es_state, es_params)
            ret, length = rollouts(population, jax.random.split(k_eval, (pop, reps)))
            fit = jnp.mean(ret, axis=1)
            es_state, _ = strategy.tell(k_tell, population, -fit, es_state, es_params)
            clock.emit(g + 1, jnp.max(fit))
            return (es_state, steps + jnp.sum(length)), (jnp.mean(fit), jnp.max(fit))

        return jax.lax.scan(gen, (es_state, jnp.zeros(())), jnp.arange(cfg["gens"]))

    res = timed_runs(lambda: jax.block_until_ready(run(es0)), clock, cfg["repeats"], cfg["target"])
    (_, steps), (mean_fit, max_fit) = res["out"]
    res["valid_steps"] = float(steps)
    res["final_mean_return"] = float(mean_fit[-1])
    res["final_best_return"] = float(max_fit[-1])
    return res


def evosax_problem(cfg):
    import jax
    import jax.numpy as jnp
    from evosax.problems import MLP, GymnaxProblem

    def argmax_output(x, key=None):
        del key
        return jnp.argmax(x, axis=-1)

    policy = MLP(layer_sizes=(cfg["width"],) * cfg["depth"] + (2,), output_fn=argmax_output)
    problem = GymnaxProblem(
        ENV,
        policy=policy,
        episode_length=cfg["max_steps"],
        num_rollouts=cfg["reps"],
        use_normalize_obs=False,
    )
    # start from the same parameters as the realax variants (same layers, evosax's names)
    import realax.tasks as rt

    rp, _ = rt.make_model_factory(realax_policy(cfg), jnp.zeros((4,)), jax.random.key(0))
    rp = rp["params"]
    layers = [rp[f"hidden_{i}"] for i in range(cfg["depth"])] + [rp["action_head"]]
    solution = {"params": {f"Dense_{i}": layer for i, layer in enumerate(layers)}}
    strategy = open_es(solution, cfg)
    es_params = strategy.default_params
    k_init, k_prob, k_run = jax.random.split(jax.random.key(1), 3)
    es0 = strategy.init(k_init, solution, es_params)
    p0 = problem.init(k_prob)
    clock = GenClock()

    @jax.jit
    def run(es_state, p_state):
        def gen(carry, key):
            es_state, p_state, g = carry
            k_ask, k_eval, k_tell = jax.random.split(key, 3)
            population, es_state = strategy.ask(k_ask, es_state, es_params)
            fit, p_state, _ = problem.eval(k_eval, population, p_state)
            es_state, _ = strategy.tell(k_tell, population, -fit, es_state, es_params)
            if cfg.get("clock", True):
                clock.emit(g + 1, jnp.max(fit))
            # CartPole pays 1 per valid step: the returns are the valid step counts
            steps = jnp.sum(fit) * cfg["reps"]
            return (es_state, p_state, g + 1), (steps, jnp.mean(fit), jnp.max(fit))

        init = (es_state, p_state, jnp.zeros((), jnp.int32))
        return jax.lax.scan(gen, init, jax.random.split(k_run, cfg["gens"]))

    res = timed_runs(
        lambda: jax.block_until_ready(run(es0, p0)), clock, cfg["repeats"], cfg["target"]
    )
    _, (steps, mean_fit, max_fit) = res["out"]
    res["valid_steps"] = float(jnp.sum(steps))
    res["final_mean_return"] = float(mean_fit[-1])
    res["final_best_return"] = float(max_fit[-1])
    res["n_params"] = int(sum(x.size for x in jax.tree.leaves(solution)))
    return res


# ----------------------------------------------------------------------------- report


def rate(res: dict[str, Any]) -> float | None:
    if not res or not res.get("run_s"):
        return None
    return res["valid_steps"] / res["run_s"]


def rate_ratio(res: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Per-round ratios of run time per valid env-step, ``res`` over ``other`` (the rounds of
    an interleaved set: the two calls of a round ran one after the other); show them with
    ``fmt_ratio(..., invert=True)`` as env-steps/s ratios."""
    from benchmarks._common import ratio_stats

    def per_step(r: dict[str, Any]) -> list[float]:
        return [t / r["valid_steps"] for t in r.get("run_times_s") or []]

    return ratio_stats(per_step(res), per_step(other))


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_mem, fmt_rate, fmt_ratio, fmt_s, short_error, table

    cfg = rows[0]["cfg"] if rows else base_cfg(quick)
    target = cfg["target"]
    out = [
        f"{ENV}: MLP 4-{cfg['width']}-{cfg['width']}-2, population {cfg['popsize']}, "
        f"{cfg['reps']} rollouts per member, episodes of at most {cfg['max_steps']} steps, "
        f"{cfg['gens']} generations, Open_ES (Adam {cfg['lr']}, sigma {cfg['std']}). Run = "
        f"median of {cfg['repeats']} warm run(s) of all generations"
        + (
            ", the variants' runs interleaved round by round"
            if any(r.get("interleave") for r in rows)
            else ", the variants one after another (saved before runs were interleaved)"
        )
        + " (ratio: median over the rounds, min-max in brackets); valid env-steps/s = "
        f"steps that belong to an episode / run time; time to {target:.0f} = run time until "
        f"a member's mean return reaches {target:.0f}.",
        "",
    ]
    others = [r["result"] for r in rows if not r["realax"] and r.get("ok")]
    best_other = max(others, key=lambda res: rate(res) or 0, default=None)
    body = []
    for r in rows:
        res = r.get("result") or {}
        if not r.get("ok"):
            body.append([r["label"], "not run", "", "", "", "", "", "", short_error(r["error"])])
            continue
        ttt = res.get("time_to_target_s")
        gens = res.get("gens_to_target")
        body.append(
            [
                r["label"],
                fmt_s(res["compile_s"]),
                fmt_s(res["run_s"]),
                fmt_rate(rate(res)),
                "not reached" if ttt is None else f"{fmt_s(ttt)} s (gen {gens})",
                f"{res['final_mean_return']:.0f} / {res['final_best_return']:.0f}",
                fmt_mem(r.get("peak_rss_mb")),
                fmt_ratio(rate_ratio(res, best_other), invert=True)
                if r["realax"] and best_other
                else "",
                res.get("note", ""),
            ]
        )
    out.append(
        table(
            [
                "variant",
                "compile (s)",
                "run (s)",
                "valid env-steps/s",
                f"time to {target:.0f}",
                "final mean / best return",
                "peak RSS",
                "env-steps/s realax / best other",
                "note",
            ],
            body,
        )
    )
    return "\n".join(out)
