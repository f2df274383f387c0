"""Table 8 -- offline RL: gradient steps per second of `OfflineTrainer` against a hand-written
jitted update loop.

The same agent, the same dataset (Pendulum-shaped, 3-D observations and 1-D actions in
``[-1, 1]``, random values: speed does not depend on them) and the same minibatch size in
both variants:

* ``realax OfflineTrainer.train_``: ``lax.fori_loop`` of the trainer's step (sample a
  minibatch with ``Dataset.sample``, ``agent.update``), no evaluation, no logger;
* ``hand-written``: one jitted ``lax.fori_loop`` of ``idx = randint(...)``; gather the rows;
  ``agent.update(batch)``, with the dataset as an argument.

Both run in one process, interleaved (``_common.interleaved``: ``rounds`` rounds of one warm
run each, the order alternating), so machine load drifts affect both alike; the run time is
the median per variant, compile time the first call's, and the ratio's min-max over the
rounds is shown. IQL is the agent of the issue's target (ratio <= 1.05); TD3+BC and CQL rows
show the trainer on the other offline agents (CQL on a CartPole-shaped dataset).
"""

from __future__ import annotations

from typing import Any

AGENTS = ("IQL", "TD3", "CQL")


def plan(quick: bool) -> list[dict[str, Any]]:
    import realax.agents as ra

    rows = []
    for agent in AGENTS[1:2] if quick else AGENTS:
        cfg = {
            "agent": agent,
            "rows": 10_000 if quick else 100_000,
            "batch_size": 256,
            "steps": 200 if quick else 5_000,
            "hidden": 64 if quick else 256,
            "rounds": 2 if quick else 7,
        }
        rows.append(
            {
                "group": agent,
                "label": f"{agent}: realax vs hand-written (interleaved)",
                "module": "offline",
                "func": "ab",
                "cfg": cfg,
                "realax": True,
                **(
                    {}
                    if hasattr(ra, agent)
                    else {"pending": f"no realax.agents.{agent}", "optional": True}
                ),
            }
        )
    return rows


def _dataset(cfg: dict[str, Any]) -> Any:
    import jax
    import jax.numpy as jnp
    from realax.agents import Dataset

    n = cfg["rows"]
    keys = jax.random.split(jax.random.key(0), 4)
    discrete = cfg["agent"] == "CQL"
    obs_dim = 4 if discrete else 3
    actions = (
        jax.random.randint(keys[1], (n,), 0, 2)
        if discrete
        else jax.random.uniform(keys[1], (n, 1), minval=-1.0, maxval=1.0)
    )
    return Dataset.create(
        observations=jax.random.normal(keys[0], (n, obs_dim)),
        actions=actions,
        rewards=jax.random.normal(keys[2], (n,)),
        masks=jnp.ones(n),
        dones=jnp.zeros(n, bool),
        next_observations=jax.random.normal(keys[3], (n, obs_dim)),
    )


def ab(cfg: dict[str, Any]) -> dict[str, Any]:
    import jax
    import realax.agents as ra
    from jax import lax
    from realax.train.rl import OfflineTrainer

    from benchmarks._common import interleaved

    agent_cls = getattr(ra, cfg["agent"], None)
    if agent_cls is None:
        raise RuntimeError(f"realax.agents has no {cfg['agent']} in this tree")
    kwargs: dict[str, Any] = {"hidden_dims": (cfg["hidden"],) * 2}
    if cfg["agent"] == "TD3":
        kwargs["bc_alpha"] = 2.5
    data = _dataset(cfg)
    steps, batch_size = cfg["steps"], cfg["batch_size"]
    trainer = OfflineTrainer(agent_cls, data, None, train_steps=steps, batch_size=batch_size,
                             agent_kwargs=kwargs)  # fmt: skip
    state0 = trainer.initialize(jax.random.key(1))
    agent0 = state0.agent

    @jax.jit
    def hand(agent, dataset, key):
        def body(i, agent):
            k = jax.random.fold_in(key, i)
            idx = jax.random.randint(k, (batch_size,), 0, dataset.size)
            batch = dataset.subset(idx)
            return agent.update(batch)[0]

        return lax.fori_loop(0, steps, body, agent)

    def realax_run():
        return jax.block_until_ready(trainer.train_(state0))

    def hand_run():
        return jax.block_until_ready(hand(agent0, data, jax.random.key(2)))

    timed = interleaved({"realax": realax_run, "hand": hand_run}, cfg["rounds"], baseline="hand")
    result: dict[str, Any] = {}
    for name, r in timed.items():
        result[f"{name}_first_call_s"] = r["first_call_s"]
        result[f"{name}_compile_s"] = r["compile_s"]
        result[f"{name}_run_s"] = r["run_s"]
        result[f"{name}_run_times_s"] = r["run_times_s"]
        result[f"{name}_steps_per_s"] = steps / r["run_s"]
    result["ratio"] = result["realax_run_s"] / result["hand_run_s"]
    # the per-round ratios (each round ran both, one after the other)
    result["round_ratio"] = {k: v for k, v in timed["realax"].items() if k.startswith("ratio")}
    return result


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_mem, fmt_rate, fmt_ratio, fmt_s, short_error, table

    cfg = rows[0]["cfg"] if rows else plan(quick)[0]["cfg"]
    out = [
        f"{cfg['steps']:,} gradient steps on minibatches of {cfg['batch_size']} from a "
        f"{cfg['rows']:,}-row dataset, hidden {cfg['hidden']}x2; run = median of "
        f"{cfg['rounds']} interleaved warm runs per variant. Target: realax / hand-written "
        "<= 1.05 for IQL.",
        "",
    ]
    body = []
    for r in rows:
        res = r.get("result") or {}
        if not r.get("ok"):
            body.append([r["group"], "not run", "", "", "", "", "", short_error(r["error"], 200)])
            continue
        body.append(
            [
                r["group"],
                fmt_s(res["realax_compile_s"]),
                fmt_s(res["hand_compile_s"]),
                fmt_rate(res["realax_steps_per_s"]),
                fmt_rate(res["hand_steps_per_s"]),
                fmt_ratio(res["round_ratio"]) if "round_ratio" in res else f"{res['ratio']:.3f}",
                fmt_mem(r.get("peak_rss_mb")),
                "",
            ]
        )
    header = [
        "agent",
        "compile realax (s)",
        "compile hand (s)",
        "realax steps/s",
        "hand-written steps/s",
        "run time realax / hand (min-max over rounds)",
        "peak RSS",
        "note",
    ]
    out.append(table(header, body))
    return "\n".join(out)
