"""Table 18 -- random-policy rollouts per suite, and ES on a MuJoCo Playground environment.

Rollouts: ``n_envs`` environments under ``jax.vmap``, ``steps`` steps in one ``lax.scan``,
uniformly random actions, auto-reset at every episode end, for gymnax CartPole-v1,
Breakout-MinAtar and Playground CartpoleBalance (``impl="jax"``):

* ``realax``: ``realax.tasks.make(name)`` (``autoreset=True``), ``env.sample_action`` and
  ``env.step`` (what the RL trainers run);
* ``hand``: a hand-written jitted loop of the same work on the suite's own API (gymnax
  ``env.step``, which auto-resets; Playground's ``reset``/``step`` with a ``jnp.where``
  reset at ``done`` or the episode limit, the reset computed every step as realax does).

gymnax's README states seconds per 1M steps on an A100 with 2,000 workers (CartPole-v1 0.05,
Breakout-MinAtar 0.19): shown as context, with this machine's hand loop as a multiple of it.

ES: ``EvosaxTrainer`` + ``PlaygroundTask`` (early exit; CartpoleBalance episodes run to the
limit) against an evosax
``BraxProblem``-style hand loop (per member: reset, ``lax.scan`` over all steps of the MLP
policy and the environment, the return), both with the same Open_ES, popsize, MLP and
episode length. Both parts run in one process, interleaved A B A B; compile time is the
first call's JAX compile time, run time the median of the warm calls.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

ENVS = ("CartPole-v1", "Breakout-MinAtar", "CartpoleBalance")
PUBLISHED_S_PER_1M = {"CartPole-v1": 0.05, "Breakout-MinAtar": 0.19}  # gymnax README, A100


def plan(quick: bool) -> list[dict[str, Any]]:
    cfg = {
        "n_envs": 16 if quick else 256,
        "steps": 32 if quick else 500,
        "popsize": 4 if quick else 32,
        "max_steps": 20 if quick else 200,
        "gens": 2 if quick else 10,
        "rounds": 2 if quick else 5,
    }
    row = {"module": "suites_rollout", "cfg": cfg, "realax": True}
    return [
        {**row, "group": "rollouts", "label": "rollouts: realax vs hand", "func": "rollouts"},
        {**row, "group": "es", "label": "ES on CartpoleBalance", "func": "es"},
    ]


def _interleaved(variants: dict[str, Any], rounds: int) -> dict[str, Any]:
    from benchmarks._common import compile_seconds

    compile_seconds()
    out: dict[str, Any] = {"load_start": os.getloadavg()}
    for name, run in variants.items():
        c0 = compile_seconds()
        run()
        out[f"{name}_compile_s"] = compile_seconds() - c0
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, run in variants.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    for name, ts in times.items():
        out[f"{name}_run_s"] = statistics.median(ts)
    out["load_end"] = os.getloadavg()
    return out


def _realax_rollout(env: Any, n: int, steps: int) -> Any:
    import jax

    def run(key):
        obs, state = jax.vmap(env.reset)(jax.random.split(key, n))

        def body(state, k):
            k_act, k_step = jax.random.split(k)
            action = jax.vmap(env.sample_action)(jax.random.split(k_act, n))
            _, state, reward, *_ = jax.vmap(env.step)(jax.random.split(k_step, n), state, action)
            return state, reward

        return jax.lax.scan(body, state, jax.random.split(key, steps))[1].sum()

    return jax.jit(run)


def _hand_gymnax(name: str, n: int, steps: int) -> Any:
    import gymnax
    import jax

    env, params = gymnax.make(name)
    space = env.action_space(params)

    def run(key):
        _, state = jax.vmap(env.reset, (0, None))(jax.random.split(key, n), params)

        def body(state, k):
            k_act, k_step = jax.random.split(k)
            action = jax.vmap(space.sample)(jax.random.split(k_act, n))
            step = jax.vmap(env.step, (0, 0, 0, None))
            _, state, reward, *_ = step(jax.random.split(k_step, n), state, action, params)
            return state, reward

        return jax.lax.scan(body, state, jax.random.split(key, steps))[1].sum()

    return jax.jit(run)


def _hand_playground(pg_env: Any, limit: int, n: int, steps: int) -> Any:
    import jax
    import jax.numpy as jnp

    size = pg_env.action_size

    def one_step(carry, k):
        state, t = carry
        k_act, k_reset = jax.random.split(k)
        state = pg_env.step(state, jax.random.uniform(k_act, (size,), minval=-1.0, maxval=1.0))
        t = t + 1
        done = (state.done > 0) | (t >= limit)
        fresh = pg_env.reset(jax.random.key_data(k_reset))
        reward = state.reward
        state = jax.tree.map(lambda a, b: jnp.where(done, a, b), fresh, state)
        return (state, jnp.where(done, 0, t)), reward

    def run(key):
        keys = jax.random.key_data(jax.random.split(key, n))
        state = jax.vmap(pg_env.reset)(keys)
        carry = (state, jnp.zeros(n, jnp.int32))

        def body(carry, k):
            return jax.vmap(one_step)(carry, jax.random.split(k, n))

        return jax.lax.scan(body, carry, jax.random.split(key, steps))[1].sum()

    return jax.jit(run)


def rollouts(cfg: dict[str, Any]) -> dict[str, Any]:
    import jax
    import realax.tasks as rt

    n, steps = cfg["n_envs"], cfg["steps"]
    result: dict[str, Any] = {}
    for name in ENVS:
        env = rt.make(name)
        mine = _realax_rollout(env, n, steps)
        if env.suite == "playground":
            hand = _hand_playground(env.unwrapped, env.max_steps, n, steps)
        else:
            hand = _hand_gymnax(name, n, steps)
        res = _interleaved(
            {
                "realax": lambda f=mine: jax.block_until_ready(f(jax.random.key(0))),
                "hand": lambda f=hand: jax.block_until_ready(f(jax.random.key(0))),
            },
            cfg["rounds"],
        )
        res["realax_sps"] = n * steps / res["realax_run_s"]
        res["hand_sps"] = n * steps / res["hand_run_s"]
        result[name] = res
    return result


def es(cfg: dict[str, Any]) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import optax
    import realax.tasks as rt
    from evosax.algorithms import Open_ES
    from jax.flatten_util import ravel_pytree
    from realax.train import EvosaxTrainer, FitnessShaper

    env = rt.make("CartpoleBalance", autoreset=False)
    policy = rt.MLPPolicy.from_env(env, width=32, depth=2)
    T, pop, gens = cfg["max_steps"], cfg["popsize"], cfg["gens"]
    params, _ = rt.make_model_factory(policy, jnp.zeros(env.obs_shape), jax.random.key(0))
    flat, unravel = ravel_pytree(params)

    def strategy(solution):
        return Open_ES(population_size=pop, solution=solution, optimizer=optax.adam(0.01),
                       std_schedule=optax.constant_schedule(0.1))  # fmt: skip

    task = rt.PlaygroundTask(env, T, policy=policy)
    trainer = EvosaxTrainer(gens, strategy(params), task, params_like=params,
                            fitness_shaper=FitnessShaper(maximize=True))  # fmt: skip
    state0 = trainer.initialize(jax.random.key(1))
    pg = env.unwrapped

    def episode(flat_params, key):
        p = unravel(flat_params)
        state = pg.reset(jax.random.key_data(key))

        def body(state, k):
            action, _ = policy.apply(p, state.obs, None, k)
            state = pg.step(state, action)
            return state, state.reward

        return jax.lax.scan(body, state, jax.random.split(key, T))[1].sum()

    es_ = strategy(flat)
    es_params = es_.default_params

    @jax.jit
    def hand(key):
        def gen(es_state, k):
            k_ask, k_eval, k_tell = jax.random.split(k, 3)
            population, es_state = es_.ask(k_ask, es_state, es_params)
            fit = jax.vmap(episode, (0, None))(population, k_eval)
            es_state, _ = es_.tell(k_tell, population, -fit, es_state, es_params)
            return es_state, jnp.mean(fit)

        es_state = es_.init(key, flat, es_params)
        return jax.lax.scan(gen, es_state, jax.random.split(key, gens))[1]

    res = _interleaved(
        {
            "realax": lambda: jax.block_until_ready(trainer.train(state0)),
            "hand": lambda: jax.block_until_ready(hand(jax.random.key(1))),
        },
        cfg["rounds"],
    )
    for name in ("realax", "hand"):
        res[f"{name}_sps"] = gens * pop * T / res[f"{name}_run_s"]
    return res


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_mem, fmt_rate, fmt_s, short_error, table

    cfg = rows[0]["cfg"] if rows else plan(quick)[0]["cfg"]
    out = [
        f"Rollouts: {cfg['n_envs']} envs x {cfg['steps']} steps, random actions, auto-reset; "
        f"ES: Open_ES popsize {cfg['popsize']}, {cfg['gens']} generations of "
        f"{cfg['max_steps']}-step episodes, MLP 2x32. Run = median of {cfg['rounds']} "
        "interleaved warm calls; the load average (1 min) at start/end of each part is given "
        "(2 cores: above 2 the machine was shared and timings are noisy).",
        "",
    ]
    body = []
    for r in rows:
        res = r.get("result") or {}
        if not r.get("ok"):
            body.append([r["label"], "not run", "", "", "", "", "", short_error(r["error"], 200)])
            continue
        parts = res.items() if r["func"] == "rollouts" else [("ES CartpoleBalance", res)]
        for name, p in parts:
            published = PUBLISHED_S_PER_1M.get(name)
            context = (
                f"gymnax A100: {1e6 / published:,.0f}/s; hand here = "
                f"{p['hand_sps'] / (1e6 / published):.3f}x"
                if published
                else ""
            )
            load = f"{p['load_start'][0]:.1f}/{p['load_end'][0]:.1f}"
            body.append([
                name, fmt_s(p["realax_compile_s"]), fmt_s(p["hand_compile_s"]),
                fmt_rate(p["realax_sps"]), fmt_rate(p["hand_sps"]),
                f"{p['realax_sps'] / p['hand_sps']:.2f}", fmt_mem(r.get("peak_rss_mb")),
                f"load {load}. {context}",
            ])  # fmt: skip
    header = [
        "env / part", "compile realax (s)", "compile hand (s)", "realax env-steps/s",
        "hand env-steps/s", "realax / hand", "peak RSS", "note",
    ]  # fmt: skip
    out.append(table(header, body))
    return "\n".join(out)
