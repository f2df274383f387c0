"""Table 4 -- PPO on gymnax CartPole-v1 with PureJaxRL's configuration.

4 environments x 128 steps per update, 4 epochs x 4 minibatches, 5e5 env-steps, Adam 2.5e-4
(PureJaxRL anneals it linearly), gamma 0.99, GAE lambda 0.95, clip 0.2, entropy 0.01, value
0.5, gradient norm 0.5, tanh MLP 64x64 for actor and critic; the whole run is one jitted
function of a key in both libraries:

* ``realax``: ``realax.train.rl.OnPolicyTrainer`` with ``realax.agents.PPO`` (if installed);
* ``rejax``: rejax 0.1.3's ``PPO`` in its own environment (``benchmarks/peers/rejax``).

Env-steps/s = 5e5 / run time; final return = mean return of greedy evaluation episodes.

Both runs are ~1,000 updates of many tiny XLA kernels, so on a loaded 2-core host single runs
vary a lot: XLA's CPU runtime sometimes keeps a second worker thread spinning for a whole call
(seen with realax's program, not with rejax's), which doubles that call's CPU time and wall
time. The full run therefore takes the median of 5 warm runs, not 3.

The cause was traced (docs/_parts/ppo.md) to XLA's concurrency-optimised scheduler in the
rollout; the full run adds both rows again with that flag off (``NO_CONCURRENCY_FLAG``).
"""

from __future__ import annotations

import importlib.util
from typing import Any

#: XLA flag that stops the spinning second worker thread in most calls (docs/_parts/ppo.md)
NO_CONCURRENCY_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"


def base_cfg(quick: bool) -> dict[str, Any]:
    return {
        "num_envs": 4,
        "num_steps": 128,
        "num_epochs": 4,
        "num_minibatches": 4,
        "total_timesteps": 20_480 if quick else 500_000,
        "lr": 2.5e-4,
        "gamma": 0.99,
        "gae_lambda": 0.95,
        "clip_eps": 0.2,
        "ent_coef": 0.01,
        "vf_coef": 0.5,
        "max_grad_norm": 0.5,
        "seed": 0,
        "repeats": 1 if quick else 5,
    }


def realax_available() -> bool:
    try:
        if importlib.util.find_spec("realax.train.rl") is None:
            return False
        from realax.train.rl import OnPolicyTrainer  # noqa: F401
    except ImportError:
        return False
    return True


def plan(quick: bool) -> list[dict[str, Any]]:
    cfg = base_cfg(quick)
    rows = [
        {
            "group": "CartPole-v1",
            "label": "realax OnPolicyTrainer + PPO",
            "module": "ppo",
            "func": "realax_ppo",
            "cfg": cfg,
            "realax": True,
        },
        {
            "group": "CartPole-v1",
            "label": "rejax 0.1.3 PPO",
            "peer": "rejax",
            "script": "ppo.py",
            "func": "rejax_ppo",
            "cfg": cfg,
            "realax": False,
            "optional": True,
        },
    ]
    if not quick:
        # the same two programs with XLA's concurrency-optimised scheduler off (see the
        # module docstring); the flag is read when jax starts, so each row sets it itself
        flag = {"XLA_FLAGS": NO_CONCURRENCY_FLAG}
        for row in list(rows):
            rows.append({**row, "label": row["label"] + " (scheduler flag)", "env": flag})
    if not realax_available():
        rows[0]["pending"] = (
            "pending: realax.train.rl (OnPolicyTrainer) was not in this checkout when the "
            "benchmarks ran"
        )
        rows[0]["optional"] = True
    return rows


def realax_ppo(cfg):
    import jax
    from realax.agents import PPO
    from realax.train.rl import OnPolicyTrainer

    from benchmarks._common import measure

    steps = cfg["total_timesteps"] // (cfg["num_envs"] * cfg["num_steps"])
    trainer = OnPolicyTrainer(
        PPO,
        "CartPole-v1",
        num_envs=cfg["num_envs"],
        num_steps=cfg["num_steps"],
        train_steps=steps,
        anneal_lr=False,
        agent_kwargs={
            "learning_rate": cfg["lr"],
            "update_epochs": cfg["num_epochs"],
            "num_minibatches": cfg["num_minibatches"],
            "discount": cfg["gamma"],
            "gae_lambda": cfg["gae_lambda"],
            "clip_eps": cfg["clip_eps"],
            "vf_coef": cfg["vf_coef"],
            "ent_coef": cfg["ent_coef"],
            "max_grad_norm": cfg["max_grad_norm"],
            "hidden_dims": (64, 64),
            "activation": "tanh",
        },
        eval_freq=steps,
        eval_episodes=128,
    )
    state0 = trainer.initialize(jax.random.key(cfg["seed"]))
    res = measure(lambda: jax.block_until_ready(trainer.train(state0)), cfg["repeats"])
    state, metrics = res["out"]
    res["env_steps"] = int(state.env_steps) - int(state0.env_steps)
    res["final_return"] = float(metrics["eval_return"][-1])
    res["note"] = "anneal_lr=False (as rejax); return = mean of 128 greedy eval episodes"
    return res


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_mem, fmt_rate, fmt_s, ratio_note, short_error, table

    cfg = rows[0]["cfg"] if rows else base_cfg(quick)
    out = [
        f"{cfg['num_envs']} envs x {cfg['num_steps']} steps, {cfg['num_epochs']} epochs x "
        f"{cfg['num_minibatches']} minibatches, {cfg['total_timesteps']:,} env-steps, one "
        f"seed; run = median of {cfg['repeats']} warm run(s) of the whole jitted training.",
        "",
    ]

    def best_other(env: Any) -> float | None:  # the peer run under the same XLA flags
        return min(
            (
                r["result"]["run_s"]
                for r in rows
                if not r["realax"] and r.get("ok") and r.get("env") == env
            ),
            default=None,
        )

    body = []
    for r in rows:
        res = r.get("result") or {}
        if not r.get("ok"):
            body.append([r["label"], "not run", "", "", "", "", "", short_error(r["error"], 200)])
            continue
        body.append(
            [
                r["label"],
                fmt_s(res["compile_s"]),
                fmt_s(res["run_s"]),
                fmt_rate(res["env_steps"] / res["run_s"]),
                f"{res['final_return']:.1f}",
                fmt_mem(r.get("peak_rss_mb")),
                ratio_note(res["run_s"], best_other(r.get("env"))) if r["realax"] else "",
                res.get("note", ""),
            ]
        )
    out.append(
        table(
            [
                "variant",
                "compile (s)",
                "run (s)",
                "env-steps/s",
                "final return",
                "peak RSS",
                "run time realax / rejax (same flags)",
                "note",
            ],
            body,
        )
    )
    return "\n".join(out)
