"""Table 10 -- a PPO CartPole sweep as one program against the same runs one after another.

8 configurations (learning rate 1e-4, 3e-4, 1e-3, 3e-3 x clip 0.1, 0.2) x 4 seeds of PPO on
gymnax CartPole-v1 (4 environments x 128 steps per update, 4 epochs x 4 minibatches, tanh
MLP 64x64, no evaluation episodes):

* ``realax sweep``: ``realax.train.sweep(trainer, space, key, seeds=4)``, the 32 members in
  one compiled program (traced hyperparameters, ``vmap``);
* ``realax one after another``: a trainer per configuration (its numbers are compile-time
  constants, so 8 programs), each seed trained alone (``init_and_train``), as a plain Python
  loop over the 32 runs would;
* ``rejax vmapped hyperparameters``: rejax 0.1.3's PPO with the learning rate and clip as
  ``vmap``-ped leaves of stacked agents and the seeds vmapped inside
  (``benchmarks/peers/rejax/sweep.py``), if rejax can run.

realax's compile column is the set-up and compilation of each program (``sweep``'s plan and
its compiled loop; ``OnPolicyTrainer.run``'s ``compile_seconds`` per run), the run column the
compiled programs alone (the sweep's: a second, warm call of its compiled program); the total
wall time is what a user waits for, cold. The throughput is environment steps of all members
per second of run time.
"""

from __future__ import annotations

import time
from typing import Any

RATES = [1e-4, 3e-4, 1e-3, 3e-3]
CLIPS = [0.1, 0.2]


def base_cfg(quick: bool) -> dict[str, Any]:
    return {
        "num_envs": 4,
        "num_steps": 128 if not quick else 16,
        "num_epochs": 4,
        "num_minibatches": 4,
        "train_steps": 100 if not quick else 2,
        "rates": RATES if not quick else RATES[:2],
        "clips": CLIPS if not quick else CLIPS[:1],
        "seeds": 4 if not quick else 2,
        "hidden": [64, 64] if not quick else [8],
    }


def plan(quick: bool) -> list[dict[str, Any]]:
    cfg = base_cfg(quick)
    common = {"group": "PPO CartPole-v1 sweep", "module": "sweep", "cfg": cfg, "realax": True}
    return [
        {**common, "label": "realax sweep (one program)", "func": "realax_sweep"},
        {**common, "label": "realax one after another", "func": "realax_sequential"},
        {
            "group": "PPO CartPole-v1 sweep", "label": "rejax 0.1.3 vmapped hyperparameters",
            "peer": "rejax", "script": "sweep.py", "func": "rejax_sweep", "cfg": cfg,
            "realax": False, "optional": True,
        },
    ]  # fmt: skip


def _trainer(cfg, **agent):
    from realax.agents import PPO
    from realax.train.rl import OnPolicyTrainer

    kwargs = {
        "update_epochs": cfg["num_epochs"],
        "num_minibatches": cfg["num_minibatches"],
        "hidden_dims": tuple(cfg["hidden"]),
        **agent,
    }
    return OnPolicyTrainer(
        PPO, "CartPole-v1", num_envs=cfg["num_envs"], num_steps=cfg["num_steps"],
        train_steps=cfg["train_steps"], eval_episodes=0, agent_kwargs=kwargs,
    )  # fmt: skip


def _members(cfg) -> int:
    return len(cfg["rates"]) * len(cfg["clips"]) * cfg["seeds"]


def realax_sweep(cfg):
    """The program of ``realax.train.sweep`` compiled, then run (timed apart)."""
    import jax
    import numpy as np
    from realax.train import _loops
    from realax.train._sweep import _SWEEP_JIT, _Plan

    space = {"learning_rate": cfg["rates"], "clip_eps": cfg["clips"]}
    t0 = time.perf_counter()
    plan = _Plan(_trainer(cfg), space, jax.random.key(0), cfg["seeds"], "grid", None, None)
    (indices,) = plan.groups.values()
    t = plan.trainers[0]
    keys, hparams = plan.member_inputs(indices)
    args = (t.algorithm, _loops._Static(None), False, t.train_steps, 1, keys, hparams, None, None)
    prepared = _loops.Prepared(
        fn=_SWEEP_JIT, args=args, logger=None, progress=False, total=t.train_steps, start=0,
        metric=t.algorithm.progress_metric, n_static=5, with_metrics=True,
    ).compile()  # fmt: skip
    t1 = time.perf_counter()
    state, metrics = jax.block_until_ready(prepared())
    t2 = time.perf_counter()
    env_steps = int(np.sum(np.asarray(state.env_steps)))
    late = np.nanmean(np.asarray(metrics["episode_return"])[:, -10:])
    return {"compile_s": t1 - t0, "run_s": t2 - t1, "wall_s": t2 - t0,
            "env_steps": env_steps, "return": float(late)}  # fmt: skip


def realax_sequential(cfg):
    """A trainer per configuration, a run per seed; each program compiled then run."""
    import jax
    import numpy as np

    keys = jax.random.split(jax.random.key(0), cfg["seeds"])
    t0 = time.perf_counter()
    env_steps, late, compile_s, run_s = 0, [], 0.0, 0.0
    for lr in cfg["rates"]:
        for clip in cfg["clips"]:
            trainer = _trainer(cfg, learning_rate=lr, clip_eps=clip)
            for key in keys:
                state, metrics, timing = trainer.run(key)
                compile_s += timing["compile_seconds"]
                run_s += timing["train_seconds"]
                env_steps += int(state.env_steps)
                late.append(np.nanmean(np.asarray(metrics["episode_return"])[-10:]))
    wall = time.perf_counter() - t0
    return {"compile_s": compile_s, "run_s": run_s, "wall_s": wall,
            "env_steps": env_steps, "return": float(np.nanmean(late))}  # fmt: skip


def render(rows: list[dict[str, Any]], quick: bool) -> str:
    from benchmarks._report import fmt_mem, fmt_rate, fmt_s, short_error, table

    cfg = rows[0]["cfg"] if rows else base_cfg(quick)
    n = _members(cfg)
    out = [
        f"{len(cfg['rates'])} learning rates x {len(cfg['clips'])} clips x {cfg['seeds']} "
        f"seeds = {n} PPO runs of {cfg['train_steps']} updates ({cfg['num_envs']} envs x "
        f"{cfg['num_steps']} steps, {cfg['num_epochs']} epochs x {cfg['num_minibatches']} "
        "minibatches); compile (set-up + compile) apart from run (compiled programs).",
        "",
    ]
    seq = next((r for r in rows if r.get("func") == "realax_sequential" and r.get("ok")), None)
    body = []
    for r in rows:
        res = r.get("result") or {}
        if not r.get("ok"):
            body.append([r["label"], "not run", "", "", "", "", "", short_error(r["error"], 200)])
            continue
        ratio = ""
        if seq is not None:
            ratio = f"{seq['result']['run_s'] / res['run_s']:.2f}x"
        body.append([
            r["label"], fmt_s(res["compile_s"]), fmt_s(res["run_s"]), fmt_s(res["wall_s"]),
            fmt_rate(res["env_steps"] / res["run_s"]), ratio, fmt_mem(r.get("peak_rss_mb")),
            f"{res['return']:.1f}",
        ])  # fmt: skip
    header = ["variant", "compile (s)", "run (s)", "total wall (s)", "env-steps/s",
              "throughput vs one after another", "peak RSS", "late episode return"]  # fmt: skip
    out.append(table(header, body))
    return "\n".join(out)
