"""Table 10 -- PQN on gymnax CartPole-v1 and PPO on Breakout-MinAtar, against rejax 0.1.3.

* PQN, CartPole-v1: 32 envs x 32 steps per update, 2 epochs x 4 minibatches, Adam 1e-3,
  gamma 0.99, lambda 0.9, epsilon 1.0 -> 0.05 over the first 20% of the run, a 64x64 ReLU
  MLP with LayerNorm (rejax fixes that network), 200,000 env-steps. realax clips the global
  gradient norm at 10, rejax each gradient element at 10 (``optax.clip``).
* PPO, Breakout-MinAtar: 64 envs x 128 steps, 4 epochs x 8 minibatches, Adam 5e-4, gamma
  0.99, GAE lambda 0.95, clip 0.2, entropy 0.01, 64x64 tanh MLP on the flattened 10x10x4
  grid (rejax's network), 500,000 env-steps; realax also with the small Nature CNN
  (``encoder="nature"``, no rejax counterpart).

Each variant runs in its own subprocess, realax and rejax alternating (``rounds`` rounds,
each one cold call for the compile time and one warm call for the run time), so a change of
the machine's load hits both libraries alike; the table reports medians over the rounds.
Env-steps/s = env-steps / warm run time; final return = mean return of greedy episodes at
the end (realax: 64 episodes; rejax: its 128 evaluation episodes).
"""

from __future__ import annotations

import statistics
from typing import Any

GROUPS = ("PQN CartPole-v1", "PPO Breakout-MinAtar")


def pqn_cfg(quick: bool) -> dict[str, Any]:
    return {
        "env": "CartPole-v1", "num_envs": 32, "num_steps": 32, "num_epochs": 2,
        "num_minibatches": 4, "total_timesteps": 16_384 if quick else 200_000, "lr": 1e-3,
        "gamma": 0.99, "td_lambda": 0.9, "eps_fraction": 0.2, "max_grad_norm": 10.0,
        "seed": 0,
    }  # fmt: skip


def ppo_cfg(quick: bool) -> dict[str, Any]:
    return {
        "env": "Breakout-MinAtar", "num_envs": 64 if not quick else 8, "num_steps": 128,
        "num_epochs": 4, "num_minibatches": 8,
        "total_timesteps": 2_048 if quick else 500_000, "lr": 5e-4, "gamma": 0.99,
        "gae_lambda": 0.95, "clip_eps": 0.2, "ent_coef": 0.01, "vf_coef": 0.5,
        "max_grad_norm": 0.5, "seed": 0,
    }  # fmt: skip


def plan(quick: bool) -> list[dict[str, Any]]:
    rounds = 1 if quick else 3
    rows: list[dict[str, Any]] = []
    for _ in range(rounds):  # alternate the libraries
        for group, cfg, kinds in (
            (GROUPS[0], pqn_cfg(quick), (("realax PQNTrainer + PQN", "realax_pqn", None),
                                         ("rejax 0.1.3 PQN", "rejax_pqn", "pqn.py"))),
            (GROUPS[1], ppo_cfg(quick), (("realax PPO, MLP", "realax_ppo_mlp", None),
                                         ("rejax 0.1.3 PPO, MLP", "rejax_ppo_minatar", "pqn.py"),
                                         ("realax PPO, Nature CNN", "realax_ppo_cnn", None))),
        ):  # fmt: skip
            for label, func, script in kinds:
                row = {"group": group, "label": label, "func": func, "cfg": cfg}
                if script is None:
                    row.update(module="pqn", realax=True)
                else:
                    row.update(peer="rejax", script=script, realax=False, optional=True)
                rows.append(row)
    return rows


def _run(trainer: Any, seed: int) -> dict[str, Any]:
    import jax

    from benchmarks._common import measure

    state0 = trainer.initialize(jax.random.key(seed))
    res = measure(lambda: jax.block_until_ready(trainer.train(state0)), 1)
    state, metrics = res["out"]
    res["env_steps"] = int(state.env_steps) - int(state0.env_steps)
    res["final_return"] = float(metrics["eval_return"][-1])
    return res


def realax_pqn(cfg):
    import optax
    from realax.agents import PQN
    from realax.train.rl import PQNTrainer

    steps = cfg["total_timesteps"] // (cfg["num_envs"] * cfg["num_steps"])
    total = steps * cfg["num_envs"] * cfg["num_steps"]
    trainer = PQNTrainer(
        PQN, cfg["env"], num_envs=cfg["num_envs"], num_steps=cfg["num_steps"],
        train_steps=steps, eval_freq=steps, eval_episodes=64,
        epsilon=optax.linear_schedule(1.0, 0.05, int(cfg["eps_fraction"] * total)),
        agent_kwargs={
            "learning_rate": cfg["lr"], "update_epochs": cfg["num_epochs"],
            "num_minibatches": cfg["num_minibatches"], "discount": cfg["gamma"],
            "q_lambda": cfg["td_lambda"], "max_grad_norm": cfg["max_grad_norm"],
            "hidden_dims": (64, 64),
        },
    )  # fmt: skip
    return _run(trainer, cfg["seed"])


def _realax_ppo(cfg, encoder):
    from realax.agents import PPO
    from realax.train.rl import OnPolicyTrainer

    steps = cfg["total_timesteps"] // (cfg["num_envs"] * cfg["num_steps"])
    env_kwargs = None if encoder else {"obs_fn": lambda o: o.reshape(-1)}
    trainer = OnPolicyTrainer(
        PPO, cfg["env"], num_envs=cfg["num_envs"], num_steps=cfg["num_steps"],
        train_steps=steps, eval_freq=steps, eval_episodes=64, env_kwargs=env_kwargs,
        agent_kwargs={
            "learning_rate": cfg["lr"], "update_epochs": cfg["num_epochs"],
            "num_minibatches": cfg["num_minibatches"], "discount": cfg["gamma"],
            "gae_lambda": cfg["gae_lambda"], "clip_eps": cfg["clip_eps"],
            "ent_coef": cfg["ent_coef"], "vf_coef": cfg["vf_coef"],
            "max_grad_norm": cfg["max_grad_norm"], "hidden_dims": (64, 64),
            "activation": "tanh", "encoder": encoder,
        },
    )  # fmt: skip
    return _run(trainer, cfg["seed"])


def realax_ppo_mlp(cfg):
    return _realax_ppo(cfg, None)


def realax_ppo_cnn(cfg):
    return _realax_ppo(cfg, "nature")


def _median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r["result"][key] for r in rows if r.get("ok") and key in r["result"]]
    return statistics.median(values) if values else None


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_mem, fmt_rate, fmt_s, ratio_note, short_error, table

    out = [
        "Medians over alternating rounds (realax, rejax, ...): compile = the cold call's JAX "
        "compile time, run = one warm call of the whole jitted training.",
        "",
    ]
    for group in GROUPS:
        mine = [r for r in rows if r["group"] == group]
        if not mine:
            continue
        cfg = mine[0]["cfg"]
        out.append(
            f"**{group}**: {cfg['num_envs']} envs x {cfg['num_steps']} steps, "
            f"{cfg['num_epochs']} epochs x {cfg['num_minibatches']} minibatches, "
            f"{cfg['total_timesteps']:,} env-steps, seed {cfg['seed']}."
        )
        out.append("")
        labels = list(dict.fromkeys(r["label"] for r in mine))
        peer = [r for r in mine if not r["realax"]]
        peer_run, peer_steps = _median(peer, "run_s"), _median(peer, "env_steps")
        rejax_rate = peer_steps / peer_run if peer_run and peer_steps else None
        body = []
        for label in labels:
            sel = [r for r in mine if r["label"] == label]
            run, steps = _median(sel, "run_s"), _median(sel, "env_steps")
            if run is None or steps is None:
                err = next((r.get("error", "") for r in sel if not r.get("ok")), "")
                body.append([label, "not run", "", "", "", "", "", short_error(err, 200)])
                continue
            rate = steps / run
            body.append([
                label, fmt_s(_median(sel, "compile_s")), fmt_s(run), fmt_rate(rate),
                f"{_median(sel, 'final_return'):.1f}",
                fmt_mem(max((r.get("peak_rss_mb") or 0) for r in sel)),
                ratio_note(rate, rejax_rate) if sel[0]["realax"] else "",
                f"{len(sel)} round(s)",
            ])  # fmt: skip
        header = ["variant", "compile (s)", "run (s)", "env-steps/s", "final return",
                  "peak RSS", "env-steps/s realax / rejax", "note"]  # fmt: skip
        out += [table(header, body), ""]
    return "\n".join(out).rstrip()
